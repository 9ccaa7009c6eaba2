//! Check 6: the master (`serve`) behind the control socket, and its upstreams.
//!
//! No master is a warning, not a failure: every command but `status`/`connect`/... works
//! without one (a master only makes `ssh` start at once and pools connections). A socket that
//! is not the user's, or that others may open, fails: it is how commands steer the master.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::report::Check;
use crate::control::proto::{Request, Response, StatusReport};
use crate::control::{client, ControlError};
use crate::exit::codes;
use crate::upstream::PoolState;

const NAME: &str = "master";
const UPSTREAMS: &str = "upstreams";

/// The `master` and `upstreams` lines for the socket at `path`.
pub async fn check(path: &Path) -> Vec<Check> {
    let shown = path.display();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return not_running(format!("no master running (no socket at {shown})"));
        }
        Err(e) => {
            return failed(
                format!("cannot inspect {shown}: {e}"),
                "check the path's directory permissions",
            )
        }
    };
    if let Some(c) = socket_problem(&meta, euid()) {
        return vec![
            c.with_path(&shown.to_string()),
            Check::skip(UPSTREAMS, "no master"),
        ];
    }
    match client::request(path, &Request::Status).await {
        Ok(Response::Status(r)) => vec![running(&shown.to_string(), &r), upstreams(&r)],
        Ok(_) => failed(
            format!("{shown} answered status with something else"),
            "use the same session-proxy binary for the master and its commands",
        ),
        Err(ControlError::NotRunning { .. }) => {
            not_running(format!("stale socket {shown}: no master answers"))
        }
        Err(e) => failed(
            format!("{shown}: {e}"),
            "see the master's log; `session-proxy stop` then `serve` restarts it",
        ),
    }
}

fn not_running(detail: String) -> Vec<Check> {
    vec![
        Check::warn(
            NAME,
            detail,
            "optional: `session-proxy serve` keeps pooled connections so `ssh` starts at once",
        ),
        Check::skip(UPSTREAMS, "no master"),
    ]
}

fn failed(detail: String, fix: &str) -> Vec<Check> {
    vec![
        Check::fail(NAME, detail, fix, codes::OS),
        Check::skip(UPSTREAMS, "no master"),
    ]
}

/// The effective uid, which owns the sockets this user's master creates.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// A socket problem found from its metadata alone.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SocketProblem {
    NotASocket,
    Owner(u32),
    Mode(u32),
}

impl SocketProblem {
    fn with_path(self, path: &str) -> Check {
        let (detail, fix) = match self {
            Self::NotASocket => (
                format!("{path} exists but is not a socket"),
                "remove it, or give the master another --control-socket".to_owned(),
            ),
            Self::Owner(uid) => (
                format!("{path} belongs to uid {uid}, not to you"),
                "use your own socket (--control-socket, or the config's control_socket)".to_owned(),
            ),
            Self::Mode(mode) => (
                format!("{path} has mode {mode:04o}; it must be 0600 (only you may steer the master)"),
                format!("`chmod 600 {path}`, or `session-proxy stop` and start `serve` again (it creates the socket 0600)"),
            ),
        };
        Check::fail(NAME, detail, fix, codes::OS)
    }
}

fn socket_problem(meta: &std::fs::Metadata, euid: u32) -> Option<SocketProblem> {
    if !meta.file_type().is_socket() {
        return Some(SocketProblem::NotASocket);
    }
    if meta.uid() != euid {
        return Some(SocketProblem::Owner(meta.uid()));
    }
    let mode = meta.mode() & 0o777;
    (mode != 0o600).then_some(SocketProblem::Mode(mode))
}

fn running(path: &str, r: &StatusReport) -> Check {
    Check::ok(
        NAME,
        format!(
            "{} at {path} (pid {}, up {} s, socket 0600)",
            r.phase, r.pid, r.uptime_secs
        ),
    )
}

/// The upstreams' states: a `down` one fails (its routes get "host unreachable"), a
/// degraded or connecting one warns, idle (lazy) ones are fine.
fn upstreams(r: &StatusReport) -> Check {
    if r.upstreams.is_empty() {
        return Check::ok(UPSTREAMS, "none configured");
    }
    let line = |u: &crate::upstream::status::PoolStatus| {
        let mut s = format!(
            "{} {} {}/{}",
            u.name,
            u.state.label(),
            u.connections_up,
            u.connections_total
        );
        if let (PoolState::Down | PoolState::Degraded, Some(e)) = (u.state, &u.last_error) {
            s.push_str(&format!(" ({e})"));
        }
        s
    };
    let detail: Vec<String> = r.upstreams.iter().map(line).collect();
    let detail = detail.join(", ");
    let down: Vec<&str> = r
        .upstreams
        .iter()
        .filter(|u| u.state == PoolState::Down)
        .map(|u| u.name.as_str())
        .collect();
    if let Some(first) = down.first() {
        return Check::fail(
            UPSTREAMS,
            detail,
            format!(
                "`session-proxy status` shows why; `session-proxy connect {first}` retries now"
            ),
            codes::NO_HOST,
        );
    }
    let shaky = r
        .upstreams
        .iter()
        .any(|u| matches!(u.state, PoolState::Degraded | PoolState::Connecting));
    if shaky {
        return Check::warn(
            UPSTREAMS,
            detail,
            "`session-proxy status` shows each connection",
        );
    }
    Check::ok(UPSTREAMS, detail)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_socket_others_may_open_or_a_plain_file_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let euid = euid();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
        let meta = std::fs::symlink_metadata(&sock).unwrap();
        assert_eq!(socket_problem(&meta, euid), None);
        assert_eq!(
            socket_problem(&meta, euid + 1),
            Some(SocketProblem::Owner(euid))
        );
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
        let meta = std::fs::symlink_metadata(&sock).unwrap();
        assert_eq!(
            socket_problem(&meta, euid),
            Some(SocketProblem::Mode(0o666))
        );
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let meta = std::fs::symlink_metadata(&file).unwrap();
        assert_eq!(socket_problem(&meta, euid), Some(SocketProblem::NotASocket));
    }
}
