//! `ssh-config`: prints (or writes with `--write`) an ssh_config snippet that makes plain
//! `ssh i-…` and `ssh <alias>` go through `session-proxy stdio`. The ProxyCommand names this
//! binary and the config file by absolute path, because ssh runs it from any directory and
//! with whatever PATH the user's session has.

mod render;
mod write;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::GlobalArgs;
use crate::config;
use crate::exit::StdoutError;
pub use write::WriteError;

#[derive(Debug, Clone, Args)]
pub struct SshConfigArgs {
    /// AWS profile for the ProxyCommand (default: each alias's, else AWS_PROFILE or the default
    /// profile).
    #[arg(long)]
    pub profile: Option<String>,
    /// AWS region for the ProxyCommand (default: each alias's, else AWS_REGION or the profile's).
    #[arg(long)]
    pub region: Option<String>,
    /// Write the snippet to this file (atomically, mode 0644), e.g.
    /// ~/.ssh/config.d/session-proxy, and print the `Include` line ~/.ssh/config needs. The
    /// user's own ~/.ssh/config is never changed.
    #[arg(long, value_name = "PATH")]
    pub write: Option<PathBuf>,
    /// Make the ProxyCommand push your public key with EC2 Instance Connect before each login
    /// (`stdio --send-key --os-user %r`), for instances that have no key of yours.
    #[arg(long)]
    pub send_key: bool,
}

pub fn run(g: &GlobalArgs, a: SshConfigArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the path of this binary")?;
    // The file this run read is the one the ProxyCommand must read too, wherever ssh runs it.
    let config_path = match config::discover(g.config.as_deref())? {
        Some(p) => Some(
            std::path::absolute(&p)
                .with_context(|| format!("cannot make the config path {} absolute", p.display()))?,
        ),
        None => None,
    };
    let cfg = config_path.as_deref().map(config::load).transpose()?;
    // Alias names are already valid ssh Host names: the config check allows only letters,
    // digits, '-', '_' and '.'.
    let aliases = cfg
        .iter()
        .flat_map(|c| c.hosts.iter())
        .map(|(name, host)| (name.as_str(), host.port))
        .collect();
    let text = render::snippet(&render::Snippet {
        exe: &exe,
        config: config_path.as_deref(),
        profile: a.profile.as_deref(),
        region: a.region.as_deref(),
        send_key: a.send_key,
        aliases,
    });
    let out = match &a.write {
        None => text,
        Some(path) => write_and_explain(path, &text)?,
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(StdoutError::from)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the snippet and returns what to tell the user: what happened to the file and the
/// `Include` line, or that ~/.ssh/config has it already.
fn write_and_explain(path: &Path, text: &str) -> anyhow::Result<String> {
    let path = std::path::absolute(path)
        .with_context(|| format!("cannot make {} absolute", path.display()))?;
    let written = write::write_atomic(&path, text)?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let user_config = home.as_ref().map(|h| h.join(".ssh").join("config"));
    let included = user_config
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .is_some_and(|t| write::has_include(&t, &path, home.as_deref()));
    let what = match written {
        write::Written::Created => "wrote",
        write::Written::Updated => "updated",
        write::Written::Unchanged => "unchanged:",
    };
    let include = render::include_line(&path);
    Ok(if included {
        format!(
            "{what} {}\n~/.ssh/config already has: {include}\n",
            path.display()
        )
    } else {
        format!(
            "{what} {}\nadd this line to ~/.ssh/config, above its first Host or Match line:\n{include}\n",
            path.display()
        )
    })
}
