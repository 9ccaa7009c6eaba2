//! Where session-proxy keeps its files: the XDG state dir (known_hosts, logs, pid file) and the
//! runtime dir (control socket), with fallbacks for systems that lack them.

use std::path::{Path, PathBuf};

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

/// Creates `dir` and its missing parents owner-only (0700). An existing dir is left as it is:
/// it may be the user's own choice (`control_socket: /tmp/x.sock`).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// [`create_private_dir`], then tightens `dir` to 0700 if it is ours and wider (made 0755 by
/// an older version). Only for dirs session-proxy owns outright, such as the default state
/// dir, which holds the control socket when `$XDG_RUNTIME_DIR` is unset.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    create_private_dir(dir)?;
    let meta = std::fs::metadata(dir)?;
    // SAFETY: geteuid has no preconditions and touches no memory.
    let me = unsafe { libc::geteuid() };
    if meta.mode() & 0o077 != 0 && meta.uid() == me {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_dirs_are_created_0700_with_their_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state/session-proxy");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn an_existing_world_readable_dir_of_ours_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("old");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }
}
