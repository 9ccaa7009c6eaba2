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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::stats::ForwardState;

    #[test]
    fn a_forward_row_shows_state_sessions_connections_bytes_and_the_last_error() {
        let f = ForwardStatus {
            name: "127.0.0.1:0".into(),
            listen: Some("127.0.0.1:40001".into()),
            to: "db.internal:5432".into(),
            via: "instance i-0123456789abcdef0".into(),
            state: ForwardState::Connecting,
            sessions_up: 1,
            sessions_total: 2,
            session_ids: vec!["s-1".into()],
            open_connections: 3,
            connections_total: 9,
            bytes_in: 2048,
            bytes_out: 10,
            last_error: Some("refused".into()),
            last_error_at: Some(1_000),
        };
        let t = render(&[f], 1_005);
        let row = t.lines().find(|l| l.starts_with("127.0.0.1:0 ")).unwrap();
        for cell in [
            "connecting",
            "127.0.0.1:40001",
            "db.internal:5432",
            "1/2",
            "3/9",
            "2.0 KiB",
            "10 B",
            "refused (5s ago)",
        ] {
            assert!(row.contains(cell), "{cell:?} missing in {row}");
        }
        assert_eq!(render(&[], 0), "", "no forwards, no table");
    }
}
