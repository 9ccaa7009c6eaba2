//! `--write PATH`: the snippet goes to a file of its own (temp file in the same directory, then
//! rename, so ssh never reads half a file), and the user's `~/.ssh/config` is only read, to say
//! whether the `Include` line is already there.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// Writing the snippet failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot create directory {}: {source}; check the --write path and its permissions", dir.display())]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}; check the directory's permissions or pick another --write path", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Whether the file already held exactly this text (then it is left alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    Created,
    Updated,
    Unchanged,
}

/// Writes `text` to `path` atomically with mode 0644, creating missing directories (0700, as
/// `~/.ssh` wants). An unchanged file is not rewritten.
pub(super) fn write_atomic(path: &Path, text: &str) -> Result<Written, WriteError> {
    let file_err = |source| WriteError::File {
        path: path.to_owned(),
        source,
    };
    let before = match std::fs::read(path) {
        Ok(old) if old == text.as_bytes() => return Ok(Written::Unchanged),
        Ok(_) => Written::Updated,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Written::Created,
        Err(e) => return Err(file_err(e)),
    };
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_owned(),
        None => PathBuf::from("."),
    };
    let mut b = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(b.recursive(true), 0o700);
    b.create(&dir).map_err(|source| WriteError::Dir {
        dir: dir.clone(),
        source,
    })?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map_or_else(|| "ssh-config".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let result = write_new(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(file_err)?;
    Ok(before)
}

/// Creates `tmp` (it must not exist), writes `text`, flushes it to disk and sets mode 0644
/// whatever the umask.
fn write_new(tmp: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)?;
    f.write_all(text.as_bytes())?;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    f.sync_all()
}

/// Whether `ssh_config` (the user's file's text) has an `Include` naming `path`, written as
/// the absolute path or with `~/` for `home`.
pub(super) fn has_include(ssh_config: &str, path: &Path, home: Option<&Path>) -> bool {
    let abs = path.display().to_string();
    let tilde = home
        .and_then(|h| path.strip_prefix(h).ok())
        .map(|rest| format!("~/{}", rest.display()));
    ssh_config.lines().any(|line| {
        let line = line.trim();
        let Some((key, rest)) = line.split_once([' ', '\t', '=']) else {
            return false;
        };
        key.eq_ignore_ascii_case("include")
            && split_args(rest)
                .iter()
                .any(|a| *a == abs || tilde.as_deref() == Some(a.as_str()))
    })
}

/// ssh_config's argument splitting, as far as `Include` needs it: whitespace separates,
/// double quotes keep spaces.
fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_is_found_absolute_quoted_or_with_tilde() {
        let home = Path::new("/home/me");
        let p = Path::new("/home/me/.ssh/config.d/session-proxy");
        assert!(has_include(
            "Include /home/me/.ssh/config.d/session-proxy\n",
            p,
            Some(home)
        ));
        assert!(has_include(
            "  include ~/.ssh/config.d/session-proxy other\n",
            p,
            Some(home)
        ));
        assert!(has_include(
            "Include=\"/home/me/.ssh/config.d/session-proxy\"",
            p,
            Some(home)
        ));
        assert!(!has_include(
            "# Include /home/me/.ssh/config.d/session-proxy",
            p,
            Some(home)
        ));
        assert!(!has_include(
            "Include ~/.ssh/config.d/other\nHost x",
            p,
            Some(home)
        ));
        let spaced = Path::new("/home/me/my dir/sp");
        assert!(has_include(
            "Include \"/home/me/my dir/sp\"",
            spaced,
            Some(home)
        ));
    }
}
