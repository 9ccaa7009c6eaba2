//! Where session-proxy keeps its files: the XDG state dir (known_hosts, logs, pid file) and the
//! runtime dir (control socket), with fallbacks for systems that lack them.

use std::path::PathBuf;

fn dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "session-proxy")
}

/// `$XDG_STATE_HOME/session-proxy` (or the platform's local data dir).
pub fn state_dir() -> PathBuf {
    dirs()
        .and_then(|d| {
            d.state_dir()
                .map(PathBuf::from)
                .or_else(|| Some(d.data_local_dir().to_path_buf()))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("session-proxy"))
}

/// `$XDG_RUNTIME_DIR/session-proxy`, falling back to the state dir.
pub fn runtime_dir() -> PathBuf {
    dirs()
        .and_then(|d| d.runtime_dir().map(PathBuf::from))
        .unwrap_or_else(state_dir)
}
