//! The `instances` table: one line per instance, columns padded to their widest cell, no
//! colours (the output is meant for pipes as much as terminals). Cells come from the AWS
//! answer and the config, so control and bidi characters are escaped before they can move
//! the cursor or forge a line.

use crate::printable::Printable;

use super::Row;

const HEADER: [&str; 8] = [
    "ID",
    "NAME",
    "PING",
    "PLATFORM",
    "AGENT",
    "IP",
    "LAST PING",
    "USED BY",
];

/// The table, header first; an empty list says so instead of printing a lone header.
pub(super) fn table(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "no managed instances match\n".to_owned();
    }
    let mut lines: Vec<Vec<String>> = vec![HEADER.iter().map(|h| (*h).to_owned()).collect()];
    lines.extend(rows.iter().map(cells));
    let mut widths = [0usize; HEADER.len()];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (w, cell) in widths.iter().zip(line) {
            let pad = w.saturating_sub(cell.chars().count());
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', pad + 2));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

fn cells(r: &Row) -> Vec<String> {
    let show = |s: &Option<String>| {
        s.as_deref()
            .map_or("-".to_owned(), |s| Printable(s).to_string())
    };
    let used: Vec<String> = r
        .aliases
        .iter()
        .map(|a| format!("host:{a}"))
        .chain(r.upstreams.iter().map(|u| format!("upstream:{u}")))
        .collect();
    vec![
        Printable(&r.instance.instance_id).to_string(),
        show(&r.instance.name),
        show(&r.instance.ping_status),
        show(&r.instance.platform),
        show(&r.instance.agent_version),
        show(&r.instance.ip_address),
        show(&r.instance.last_ping),
        if used.is_empty() {
            "-".to_owned()
        } else {
            Printable(&used.join(",")).to_string()
        },
    ]
}
