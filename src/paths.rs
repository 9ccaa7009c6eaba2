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

/// Binds a Unix socket at `path` that only its owner can use: a missing parent dir is created
/// 0700, and the socket is created under a 0177 umask, so it is 0600 from the moment it exists
/// (no window in which another user could connect). A socket file nobody answers on is stale
/// and replaced; a live one, or a file that is not a socket, is left alone and refused.
pub fn bind_unix_socket(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            let msg = "a file that is not a socket is in the way; choose another path";
            return Err(Error::new(ErrorKind::AlreadyExists, msg));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            let msg = "a server is already listening there";
            return Err(Error::new(ErrorKind::AddrInUse, msg));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    // SAFETY: umask only swaps the process's file-mode mask; no memory is involved.
    let old = unsafe { libc::umask(0o177) };
    let l = tokio::net::UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let l = l?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// A socket file this process created, removed when this is dropped, unless something else
/// has taken the path since (a file with another inode there is someone else's and stays).
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    /// (device, inode) of the file as created.
    id: Option<(u64, u64)>,
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl SocketFile {
    /// Takes charge of the socket just bound at `path`.
    pub fn claim(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            id: file_id(path),
        }
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.id.is_some() && file_id(&self.path) == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The pid file and log file of one master, in the state dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterFiles {
    pub pid: PathBuf,
    pub log: PathBuf,
}

/// The files of the master whose control socket is `socket`. The master on the default socket
/// keeps the plain `serve.pid` / `serve.log`; any other gets names derived from its socket
/// (`serve-<socket name>-<hash of its path>`), so two masters sharing a state dir never write
/// one log or delete each other's pid file.
pub fn master_files(state_dir: &Path, socket: &Path, default_socket: &Path) -> MasterFiles {
    let stem = master_stem(socket, default_socket);
    MasterFiles {
        pid: state_dir.join(format!("{stem}.pid")),
        log: state_dir.join(format!("{stem}.log")),
    }
}

/// Longest socket-name part of a derived stem; the hash keeps longer names apart.
const MAX_NAME: usize = 32;

fn master_stem(socket: &Path, default_socket: &Path) -> String {
    let socket = std::path::absolute(socket).unwrap_or_else(|_| socket.to_path_buf());
    if socket == default_socket {
        return "serve".to_owned();
    }
    let name: String = socket
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME)
        .collect();
    format!(
        "serve-{name}-{:08x}",
        fnv1a(socket.as_os_str().as_encoded_bytes())
    )
}

/// 32-bit FNV-1a: a hash that stays the same across builds and Rust versions (std's hashers
/// promise neither), so a master started by one version and stopped by the next agree on
/// its file names.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn masters_on_different_sockets_get_their_own_pid_and_log_files() {
        let state = Path::new("/state");
        let default = Path::new("/run/user/1/session-proxy/control.sock");
        let plain = master_files(state, default, default);
        assert_eq!(plain.pid, Path::new("/state/serve.pid"));
        assert_eq!(plain.log, Path::new("/state/serve.log"));
        let a = master_files(state, Path::new("/tmp/a/control.sock"), default);
        let b = master_files(state, Path::new("/tmp/b/control.sock"), default);
        assert_ne!(a, b, "same socket name, different dirs");
        assert_ne!(a.pid, plain.pid);
        let name = a.log.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("serve-control-") && name.ends_with(".log"),
            "{name}"
        );
        assert_eq!(
            a,
            master_files(state, Path::new("/tmp/a/control.sock"), default),
            "stable"
        );
    }

    #[test]
    fn a_socket_file_is_removed_on_drop_unless_someone_else_took_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("socks.sock");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(SocketFile::claim(&path));
        assert!(!path.exists(), "ours: removed");
        drop(l);

        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let ours = SocketFile::claim(&path);
        std::fs::remove_file(&path).unwrap();
        let _theirs = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(ours);
        assert!(path.exists(), "a socket bound there since is left alone");
    }

    #[test]
    fn fnv1a_matches_its_reference_values() {
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a(b"foobar"), 0xbf9c_f968);
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
