//! The files `demo` leaves in its state dir for the user's own tools, so that the lines it
//! prints stay short: `env` (the AWS variables that point AWS tools and `session-proxy stdio` at
//! the simulator), `ssh_config` (a Host block whose ProxyCommand is `session-proxy stdio`, for
//! `ssh -F`, `scp -F` and `sftp -F`) and `config.yaml` (the generated config, to read, or to
//! try with `route --config`). They are rewritten at every start, because the simulator's port
//! changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{sh_quote, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use crate::sim::demo;

/// Paths of the written files.
#[derive(Debug, Clone)]
pub(super) struct Handoff {
    pub(super) env: PathBuf,
    pub(super) ssh_config: PathBuf,
    pub(super) config: PathBuf,
}

impl Handoff {
    pub(super) fn in_dir(dir: &Path) -> Self {
        Self {
            env: dir.join("env"),
            ssh_config: dir.join("ssh_config"),
            config: dir.join("config.yaml"),
        }
    }
}

/// The variables a separate process needs to reach the simulator, in order.
fn aws_vars(endpoint: &str) -> [(&'static str, String); 5] {
    [
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

/// A POSIX shell file to source: `. <dir>/env`.
pub(super) fn env_text(endpoint: &str) -> String {
    let mut s = String::from(
        "# Written by `session-proxy demo` while it runs: `. <this file>` points AWS tools and\n\
         # `session-proxy stdio` at the demo's simulator (the credentials are the simulator's, not AWS).\n",
    );
    for (k, v) in aws_vars(endpoint) {
        let _ = writeln!(s, "export {k}={}", sh_quote(&v));
    }
    s
}

/// ssh_config tokens expand `%`; a literal one is written `%%`.
fn ssh_escape(s: &str) -> String {
    s.replace('%', "%%")
}

/// ssh_config arguments with spaces need double quotes.
fn ssh_path(p: &Path) -> String {
    format!("\"{}\"", ssh_escape(&p.display().to_string()))
}

/// A Host block for `ssh -F <file> demo-bastion` (also `scp -F` and `sftp -F`).
pub(super) fn ssh_config_text(endpoint: &str, exe: &str, files: &demo::DemoFiles) -> String {
    let env: Vec<String> = aws_vars(endpoint)
        .iter()
        .map(|(k, v)| format!("{k}={}", sh_quote(v)))
        .collect();
    format!(
        "# Written by `session-proxy demo` while it runs: ssh -F <this file> {name}\n\
         Host {name} {id}\n  User demo\n  IdentityFile {key}\n  IdentitiesOnly yes\n  \
         UserKnownHostsFile {known}\n  StrictHostKeyChecking yes\n  \
         ProxyCommand env {env} {exe} stdio %h -p %p\n",
        name = demo::INSTANCE_NAME,
        id = demo::INSTANCE_ID,
        key = ssh_path(&files.client_key),
        known = ssh_path(&files.known_hosts),
        env = ssh_escape(&env.join(" ")),
        exe = ssh_escape(&sh_quote(exe)),
    )
}

/// Writes the three files into `dir` (owner-only, like the directory).
pub(super) fn write(
    dir: &Path,
    endpoint: &str,
    demo_files: &demo::DemoFiles,
    config_yaml: &str,
) -> std::io::Result<Handoff> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let h = Handoff::in_dir(dir);
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "session-proxy".into());
    let config = format!(
        "# Written by `session-proxy demo` while it runs (it points at the simulator):\n\
         # session-proxy --config <this file> route HOST\n{config_yaml}"
    );
    for (path, text) in [
        (&h.env, env_text(endpoint)),
        (&h.ssh_config, ssh_config_text(endpoint, &exe, demo_files)),
        (&h.config, config),
    ] {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(text.as_bytes())?;
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_config_quotes_paths_and_escapes_percent_signs() {
        let files = demo::DemoFiles::in_dir(Path::new("/tmp/odd dir/100%"));
        let text = ssh_config_text("http://127.0.0.1:9", "/opt/my bin/session-proxy", &files);
        assert!(
            text.contains("IdentityFile \"/tmp/odd dir/100%%/id_ed25519\""),
            "{text}"
        );
        assert!(
            text.contains("'/opt/my bin/session-proxy' stdio %h -p %p"),
            "{text}"
        );
        assert!(
            text.contains("Host demo-bastion i-0123456789abcdef0\n"),
            "{text}"
        );
    }

    #[test]
    fn env_file_exports_the_simulator_endpoint() {
        let text = env_text("http://127.0.0.1:9");
        assert!(
            text.contains("export AWS_ENDPOINT_URL=http://127.0.0.1:9\n"),
            "{text}"
        );
        assert!(text.contains("export AWS_REGION=us-east-1\n"), "{text}");
    }
}
