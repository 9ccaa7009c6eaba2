//! The ssh_config text `ssh-config` prints or writes: pure, so it is tested without files.
//!
//! Quoting has two layers. OpenSSH takes a `ProxyCommand` as the raw rest of the line, expands
//! `%` tokens in it and hands it to the user's shell, so each word is single-quoted for `sh` and
//! every literal `%` doubled. An `Include` argument is split by ssh_config's own rules, where
//! double quotes keep spaces.

use std::fmt::Write as _;
use std::path::Path;

use crate::exec::wrap::sh_quote;

/// What goes into the snippet.
#[derive(Debug, Clone)]
pub(super) struct Snippet<'a> {
    /// Absolute path of this binary.
    pub(super) exe: &'a Path,
    /// Absolute config path carried into the ProxyCommand (`--config`), if any.
    pub(super) config: Option<&'a Path>,
    pub(super) profile: Option<&'a str>,
    pub(super) region: Option<&'a str>,
    /// Push the user's key with EC2 Instance Connect for ssh's login user (`%r`).
    pub(super) send_key: bool,
    /// `hosts:` aliases with their port, in config order.
    pub(super) aliases: Vec<(&'a str, Option<u16>)>,
}

/// A literal `%` in an ssh_config token is written `%%`.
fn ssh_escape(s: &str) -> String {
    s.replace('%', "%%")
}

/// One word of the ProxyCommand: shell-quoted unless it is plainly safe, then `%`-escaped.
fn word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@,".contains(&b));
    ssh_escape(&if plain { s.to_owned() } else { sh_quote(s) })
}

/// The `ProxyCommand` value: `<exe> stdio %h -p %p` and the carried options.
pub(super) fn proxy_command(s: &Snippet<'_>) -> String {
    let mut cmd = word(&s.exe.display().to_string());
    if let Some(c) = s.config {
        let _ = write!(cmd, " --config {}", word(&c.display().to_string()));
    }
    cmd.push_str(" stdio %h -p %p");
    if let Some(p) = s.profile {
        let _ = write!(cmd, " --profile {}", word(p));
    }
    if let Some(r) = s.region {
        let _ = write!(cmd, " --region {}", word(r));
    }
    if s.send_key {
        // `%r` is the login ssh uses: the OS user the pushed key must be for.
        cmd.push_str(" --send-key --os-user %r");
    }
    cmd
}

/// The whole snippet: one Host block per alias, then the instance-id block.
pub(super) fn snippet(s: &Snippet<'_>) -> String {
    let proxy = proxy_command(s);
    let mut out = String::from(
        "# Written by `session-proxy ssh-config`: ssh reaches instances by id (and the config's\n\
         # `hosts:` aliases) through Session Manager. Run it again after changing `hosts:`.\n",
    );
    for (name, port) in &s.aliases {
        let _ = write!(out, "\nHost {name}\n");
        if let Some(p) = port {
            let _ = writeln!(out, "    Port {p}");
        }
        let _ = writeln!(out, "    ProxyCommand {proxy}");
    }
    if s.send_key {
        // Managed nodes (mi-…) are not EC2 instances: Instance Connect cannot reach them.
        let plain = proxy_command(&Snippet {
            send_key: false,
            ..s.clone()
        });
        let _ = write!(out, "\nHost i-*\n    ProxyCommand {proxy}\n");
        let _ = write!(out, "\nHost mi-*\n    ProxyCommand {plain}\n");
    } else {
        let _ = write!(out, "\nHost i-* mi-*\n    ProxyCommand {proxy}\n");
    }
    out
}

/// The `Include` line for `~/.ssh/config` naming `path`.
pub(super) fn include_line(path: &Path) -> String {
    let p = path.display().to_string();
    if p.contains([' ', '\t', '"']) {
        format!("Include \"{}\"", p.replace('"', ""))
    } else {
        format!("Include {p}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(exe: &Path) -> Snippet<'_> {
        Snippet {
            exe,
            config: None,
            profile: None,
            region: None,
            send_key: false,
            aliases: Vec::new(),
        }
    }

    #[test]
    fn plain_paths_stay_unquoted_and_percent_is_doubled() {
        let exe = Path::new("/opt/bin/session-proxy");
        assert_eq!(
            proxy_command(&base(exe)),
            "/opt/bin/session-proxy stdio %h -p %p"
        );
        let odd = Path::new("/opt/100% sure/it's");
        assert_eq!(
            proxy_command(&base(odd)),
            r"'/opt/100%% sure/it'\''s' stdio %h -p %p"
        );
    }

    #[test]
    fn config_profile_and_region_are_carried() {
        let exe = Path::new("/b/sp");
        let mut s = base(exe);
        let cfg = Path::new("/home/me/my config.yaml");
        s.config = Some(cfg);
        s.profile = Some("prod");
        s.region = Some("eu-west-1");
        assert_eq!(
            proxy_command(&s),
            "/b/sp --config '/home/me/my config.yaml' stdio %h -p %p --profile prod --region eu-west-1"
        );
    }

    #[test]
    fn aliases_get_their_own_block_with_port() {
        let exe = Path::new("/b/sp");
        let mut s = base(exe);
        s.aliases = vec![("web", Some(2222)), ("db", None)];
        let text = snippet(&s);
        assert!(text.contains("\nHost web\n    Port 2222\n    ProxyCommand /b/sp stdio %h -p %p\n"));
        assert!(text.contains("\nHost db\n    ProxyCommand /b/sp stdio %h -p %p\n"));
        assert!(text.ends_with("\nHost i-* mi-*\n    ProxyCommand /b/sp stdio %h -p %p\n"));
    }

    #[test]
    fn send_key_pushes_for_ssh_s_login_on_ec2_ids_only() {
        let exe = Path::new("/b/sp");
        let mut s = base(exe);
        s.send_key = true;
        let send = "/b/sp stdio %h -p %p --send-key --os-user %r";
        assert_eq!(proxy_command(&s), send);
        let text = snippet(&s);
        assert!(
            text.contains(&format!("\nHost i-*\n    ProxyCommand {send}\n")),
            "{text}"
        );
        assert!(
            text.ends_with("\nHost mi-*\n    ProxyCommand /b/sp stdio %h -p %p\n"),
            "{text}"
        );
    }

    #[test]
    fn include_line_quotes_paths_with_spaces() {
        assert_eq!(include_line(Path::new("/h/.ssh/sp")), "Include /h/.ssh/sp");
        assert_eq!(
            include_line(Path::new("/h/my dir/sp")),
            "Include \"/h/my dir/sp\""
        );
    }
}
