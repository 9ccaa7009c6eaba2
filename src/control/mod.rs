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
    #[error("the master closed the connection without answering")]
    Closed,
    #[error("{0}")]
    Remote(String),
    /// Kept as text: a raw `BrokenPipe` in the error chain would read as a quiet success to
    /// `exit` (which treats a closed stdout that way).
    #[error("control connection: {0}")]
    Io(String),
}

impl From<std::io::Error> for ControlError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e.to_string())
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
