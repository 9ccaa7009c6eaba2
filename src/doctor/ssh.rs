//! Check 7: the local OpenSSH client that runs `session-proxy stdio` as its ProxyCommand.
//!
//! Every OpenSSH has `ProxyCommand` with `%h`/`%p`; what `session-proxy` adds on top is the
//! `Include` line `ssh-config --write` asks for, which needs OpenSSH 7.3. A missing `ssh` is
//! a warning: `serve`, `shell`, `exec` and `forward` carry their own SSH or need none.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::report::Check;

const NAME: &str = "ssh";
/// The first OpenSSH with `Include` in ssh_config.
const INCLUDE_SINCE: (u32, u32) = (7, 3);
/// Hang guard for `ssh -V`.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The `ssh` line, searching `path_var` (the value of `PATH`).
pub async fn check(path_var: Option<&str>) -> Check {
    let Some(ssh) = find("ssh", path_var) else {
        return Check::warn(
            NAME,
            "no ssh on PATH",
            "install the OpenSSH client to use `ssh` with `session-proxy stdio` as ProxyCommand \
             (serve, shell, exec and forward do not need it)",
        );
    };
    let out = tokio::process::Command::new(&ssh)
        .arg("-V")
        .stdin(std::process::Stdio::null())
        .output();
    let text = match tokio::time::timeout(VERSION_TIMEOUT, out).await {
        Ok(Ok(o)) => {
            // OpenSSH prints its version on stderr; some builds use stdout.
            let mut t = String::from_utf8_lossy(&o.stderr).into_owned();
            t.push_str(&String::from_utf8_lossy(&o.stdout));
            t
        }
        Ok(Err(e)) => {
            return Check::warn(
                NAME,
                format!("{}: cannot run: {e}", ssh.display()),
                "check the file's permissions",
            )
        }
        Err(_) => {
            return Check::warn(
                NAME,
                format!("{}: `ssh -V` hung", ssh.display()),
                "check that it is the OpenSSH client",
            )
        }
    };
    judge(&ssh, text.lines().next().unwrap_or_default().trim())
}

fn judge(ssh: &Path, raw: &str) -> Check {
    let shown = ssh.display();
    // Whatever the program printed, shown without control characters.
    let banner = crate::printable::Printable(raw);
    match openssh_version(raw) {
        Some(v) if v >= INCLUDE_SINCE => Check::ok(
            NAME,
            format!("{shown}: {banner} (ProxyCommand and Include supported)"),
        ),
        Some(_) => Check::warn(
            NAME,
            format!("{shown}: {banner}: ProxyCommand works, but Include (for `ssh-config --write`) needs OpenSSH 7.3"),
            "paste `session-proxy ssh-config` output into ~/.ssh/config instead, or update OpenSSH",
        ),
        None => Check::warn(
            NAME,
            format!("{shown}: not OpenSSH (`ssh -V` says \"{banner}\")"),
            "session-proxy is tested with OpenSSH; other clients may treat ProxyCommand differently",
        ),
    }
}

/// `(9, 2)` from `OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024`.
fn openssh_version(banner: &str) -> Option<(u32, u32)> {
    let rest = banner.strip_prefix("OpenSSH_")?;
    let (major, rest) = rest.split_once('.')?;
    let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The first executable `name` in the `:`-separated `path_var`.
fn find(name: &str, path_var: Option<&str>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    path_var?
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssh_banners_give_major_and_minor_and_old_ones_warn_about_include() {
        let b = "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024";
        assert_eq!(openssh_version(b), Some((9, 2)));
        assert_eq!(openssh_version("OpenSSH_7.3p1, OpenSSL"), Some((7, 3)));
        assert_eq!(openssh_version("dropbear v2022.83"), None);
        let ssh = Path::new("/usr/bin/ssh");
        assert_eq!(judge(ssh, b).status, super::super::Status::Ok);
        let old = judge(ssh, "OpenSSH_6.6.1p1 Ubuntu");
        assert_eq!(old.status, super::super::Status::Warn);
        assert!(old.detail.contains("Include"), "{}", old.detail);
    }

    #[test]
    fn only_executable_files_on_path_are_found() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a");
        std::fs::create_dir(&plain).unwrap();
        std::fs::write(plain.join("ssh"), b"").unwrap();
        let exec = dir.path().join("b");
        std::fs::create_dir(&exec).unwrap();
        std::fs::write(exec.join("ssh"), b"").unwrap();
        std::fs::set_permissions(exec.join("ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}::{}", plain.display(), exec.display());
        assert_eq!(find("ssh", Some(&path)), Some(exec.join("ssh")));
        assert_eq!(find("ssh", None), None);
    }
}
