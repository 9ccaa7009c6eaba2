//! `serve`: the SOCKS5 multiplexer over SSH-over-SSM upstream pools. Reads the config file (or
//! builds a one-upstream config from `--target/--user/--identity`), applies flag overrides,
//! and runs in the foreground until SIGINT/SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use super::GlobalArgs;
use crate::config::{AdHoc, Config, HostKeyPolicy, Overrides};
use crate::exit::UsageError;
use crate::serve;
use crate::upstream::pool::PoolOptions;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Stay in the foreground (for systemd, launchd and tests).
    #[arg(long)]
    pub foreground: bool,
    /// SOCKS5 listen address or Unix socket path (repeatable; replaces the config's listeners).
    #[arg(long, value_name = "ADDR|PATH")]
    pub listen: Vec<String>,
    /// Allow listening on non-loopback addresses.
    #[arg(long)]
    pub allow_remote: bool,
    /// Default action: direct, reject or an upstream name.
    #[arg(long)]
    pub default: Option<String>,
    /// AWS profile for every upstream.
    #[arg(long)]
    pub profile: Option<String>,
    /// AWS region for every upstream.
    #[arg(long)]
    pub region: Option<String>,
    /// Directory for known_hosts and logs (default: XDG state dir).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<String>,
    /// Ad-hoc mode: bastion instance id or name (repeatable); builds a one-upstream config.
    #[arg(long = "target", value_name = "INSTANCE")]
    pub targets: Vec<String>,
    /// Ad-hoc mode: SSH user on the bastion.
    #[arg(long)]
    pub user: Option<String>,
    /// Ad-hoc mode: SSH private key (repeatable).
    #[arg(long = "identity", short = 'i', value_name = "FILE")]
    pub identities: Vec<String>,
    /// Ad-hoc mode: use ssh-agent ($SSH_AUTH_SOCK).
    #[arg(long)]
    pub ssh_agent: bool,
    /// Ad-hoc mode: sshd port on the bastion.
    #[arg(long)]
    pub port: Option<u16>,
    /// Ad-hoc mode: SSH connections (SSM sessions) to keep open.
    #[arg(long)]
    pub pool_size: Option<u64>,
    /// Ad-hoc mode: host key policy (accept-new, strict, off).
    #[arg(long)]
    pub host_key_policy: Option<String>,
}

impl ServeArgs {
    /// The effective config: file (or ad-hoc) plus flag overrides.
    pub fn config(&self, g: &GlobalArgs) -> anyhow::Result<Config> {
        let mut cfg = if self.targets.is_empty() {
            match super::load::optional(g)? {
                Some(c) => c,
                None => {
                    return Err(UsageError::Config(format!(
                        "no config file found (searched {}); write one (see config.example.yaml) or use --target i-… --user USER --identity KEY",
                        crate::config::search_paths().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                    ))
                    .into())
                }
            }
        } else {
            let user = self.user.clone().ok_or_else(|| {
                UsageError::Usage("--target needs --user (the SSH user on the bastion)".into())
            })?;
            let host_key_policy = match &self.host_key_policy {
                Some(p) => Some(
                    p.parse::<HostKeyPolicy>()
                        .map_err(|e| UsageError::Usage(format!("--host-key-policy: {e}")))?,
                ),
                None => None,
            };
            Config::ad_hoc(&AdHoc {
                targets: self.targets.clone(),
                user,
                identity_files: self.identities.clone(),
                ssh_agent: self.ssh_agent,
                port: self.port,
                pool_size: self.pool_size,
                host_key_policy,
                profile: self.profile.clone(),
                region: self.region.clone(),
            })?
        };
        cfg.apply(&Overrides {
            profile: self.profile.clone(),
            region: self.region.clone(),
            listen: self.listen.clone(),
            allow_remote: self.allow_remote,
            default: self.default.clone(),
            state_dir: self.state_dir.clone(),
            ..Overrides::default()
        })?;
        for w in cfg.warnings() {
            tracing::warn!("{w}");
        }
        Ok(cfg)
    }
}

pub async fn run(g: &GlobalArgs, a: ServeArgs) -> anyhow::Result<ExitCode> {
    if !a.foreground {
        return Err(UsageError::Usage(
            "the background daemon is not available yet; run `session-proxy serve --foreground`"
                .into(),
        )
        .into());
    }
    let cfg = a.config(g)?;
    let state_dir = cfg
        .state_dir
        .clone()
        .unwrap_or_else(crate::paths::state_dir);
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating state dir {}", state_dir.display()))?;
    let bound = serve::bind(&cfg).await?;
    let ups = serve::start_upstreams(&cfg, &state_dir, &PoolOptions::default()).await?;
    for addr in &bound.addresses {
        eprintln!("session-proxy: SOCKS5 proxy listening on {addr}");
    }
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        eprintln!("session-proxy: shutting down (closing SSM sessions)");
    };
    serve::serve(&cfg, bound, ups, shutdown).await;
    Ok(ExitCode::SUCCESS)
}
