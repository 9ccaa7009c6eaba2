//! The forwards' rows of `status`'s table.

use super::{human_bytes, last_error, table};
use crate::forward::stats::ForwardStatus;

const COLUMNS: [&str; 9] = [
    "FORWARD",
    "STATE",
    "LISTEN",
    "TO",
    "VIA",
    "SESSIONS",
    "CONNECTIONS",
    "IN",
    "OUT",
];

/// "LAST ERROR" goes last, as in the upstream table.
fn row(f: &ForwardStatus, now_unix: u64) -> Vec<String> {
    let mut r: Vec<String> = vec![
        f.name.clone(),
        f.state.to_string(),
        f.listen.clone().unwrap_or_else(|| "-".into()),
        f.to.clone(),
        f.via.clone(),
        if f.sessions_total == 0 {
            "-".into()
        } else {
            format!("{}/{}", f.sessions_up, f.sessions_total)
        },
        format!("{}/{}", f.open_connections, f.connections_total),
        human_bytes(f.bytes_in),
        human_bytes(f.bytes_out),
    ];
    r.push(last_error(
        f.last_error.as_deref(),
        f.last_error_at,
        now_unix,
    ));
    r
}

/// The forwards' table (a blank line first), or nothing when there are none.
pub(super) fn render(forwards: &[ForwardStatus], now_unix: u64) -> String {
    if forwards.is_empty() {
        return String::new();
    }
    let mut header: Vec<String> = COLUMNS.iter().map(|s| (*s).to_owned()).collect();
    header.push("LAST ERROR".into());
    let mut rows = vec![header];
    rows.extend(forwards.iter().map(|f| row(f, now_unix)));
    format!("\n{}", table(&rows))
}
