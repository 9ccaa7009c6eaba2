//! The control socket through which `status`, `connect`, `disconnect`, `reload`, `stop` and
//! `stdio` steer a running master (like OpenSSH's `ssh -O` on a ControlMaster).
//!
//! [`proto`] is the sans-IO wire format; [`server`] binds and guards the socket (0700
//! directory, 0600 socket before it listens, peer uid check, stale-socket probe); [`client`]
//! sends one request and reads the answer with a timeout.

pub mod client;
pub mod conn;
pub mod proto;
pub mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why talking over the control socket failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no master running at {path}; start one with `session-proxy serve`")]
    NotRunning { path: PathBuf },
    #[error("a master is already running at {path}{}; stop it with `session-proxy stop` or pick another --control-socket", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    AlreadyRunning { path: PathBuf, pid: Option<u32> },
    #[error("control socket {path}: {source}")]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the master did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Proto(#[from] proto::ProtoError),
    #[error("the master did not finish stopping within {0:?}; see its log")]
    NotStopped(Duration),
    #[error("the master closed the connection without answering")]
    Closed,
    /// The master answered, but not with what the request calls for.
    #[error("the master answered {got} where {expected} was expected; use the same session-proxy binary for the master and its commands")]
    Unexpected {
        expected: &'static str,
        got: &'static str,
    },
    /// The master refused or failed the request; `kind` says how (and picks the exit code).
    #[error("{message}")]
    Remote {
        kind: proto::ErrorKind,
        message: String,
    },
    /// Reading or writing the connection failed. A broken pipe here is a failure like any
    /// other: only `exit::StdoutError` stands for a closed stdout.
    #[error("control connection: {0}")]
    Io(#[from] std::io::Error),
}

impl ControlError {
    /// The error for an answer of the wrong kind (`Error` answers become [`Self::Remote`]).
    pub fn unexpected(expected: &'static str, got: proto::Response) -> Self {
        use proto::Response as R;
        let got = match got {
            R::Error { kind, message } => return Self::Remote { kind, message },
            R::Status(_) => "a status report",
            R::Progress { .. } => "a progress line",
            R::Done { .. } => "done",
            R::Stream => "a stream",
        };
        Self::Unexpected { expected, got }
    }
}

/// The socket path: `--control-socket`, else the config's `control_socket`, else
/// `<runtime dir>/control.sock` (the runtime dir falls back to the state dir).
pub fn socket_path(flag: Option<&Path>, configured: Option<&Path>) -> PathBuf {
    flag.or(configured)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate::paths::runtime_dir().join("control.sock"))
}

#[cfg(test)]
mod tests;
