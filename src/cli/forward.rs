//! `session-proxy forward`: the `ssh -L` of Session Manager. Each spec gets a listener; each
//! accepted connection becomes a smux stream on the forward's SSM port sessions (§7), or, with
//! `--via UPSTREAM` while a master runs, a stream through the master's SSH pool.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use super::GlobalArgs;
use crate::config::Config;
use crate::control::{self, client::Client, proto::Request, proto::Response};
use crate::forward::listen::Listener;
use crate::forward::run::{self, Carrier};
use crate::forward::sessions::{PortTarget, SessionSet};
use crate::forward::spec::ForwardSpec;
use crate::ssm::api::{AwsSettings, SsmApi};
use crate::ssm::target;

#[derive(Debug, Clone, Args)]
pub struct ForwardArgs {
    /// `[BIND:]LPORT:HOST:PORT` (BIND defaults to 127.0.0.1; HOST `localhost` is the instance
    /// itself), or `/path.sock:HOST:PORT` for a Unix socket (mode 0600). Repeatable.
    #[arg(required = true, value_name = "SPEC")]
    pub specs: Vec<String>,
    /// The instance that reaches HOST: an id (i-…, mi-…), Name tag, `hosts:` alias, or an
    /// upstream of the config (through the running master's SSH pool when one runs).
    #[arg(long, value_name = "TARGET")]
    pub via: String,
    /// SSM sessions per spec; connections spread over them (one carries about 1 MB/s).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub sessions: u16,
    /// Allow a BIND address that is not loopback (other machines can then use the forward).
    #[arg(long)]
    pub allow_remote: bool,
    /// AWS profile (default: the alias's or upstream's, else AWS_PROFILE or the default).
    #[arg(long)]
    pub profile: Option<String>,
    /// AWS region (default: AWS_REGION or the profile's region).
    #[arg(long)]
    pub region: Option<String>,
    /// Once listening, write the bound addresses here, one per line (for scripts and tests).
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
}

pub async fn run(g: &GlobalArgs, a: ForwardArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load::optional(g)?;
    let home = directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf());
    let specs = a
        .specs
        .iter()
        .map(|s| ForwardSpec::parse(s, home.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut listeners = Vec::new();
    for spec in &specs {
        let l = Listener::bind(&spec.listen, a.allow_remote)
            .await
            .with_context(|| format!("listening for {}", spec.listen))?;
        listeners.push(l);
    }
    let route = Route::decide(g, &a, cfg.as_ref()).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut bound = Vec::new();
    for (spec, listener) in specs.iter().zip(listeners) {
        let label: Arc<str> = format!(
            "{} → {} via {}",
            listener.address(),
            spec.dest,
            route.name()
        )
        .into();
        eprintln!("session-proxy: forwarding {label}");
        bound.push(listener.address().to_string());
        let carrier = route.carrier(spec, a.sessions.into());
        tasks.push(tokio::spawn(run::run(
            listener,
            carrier,
            label,
            stop_rx.clone(),
        )));
    }
    if let Some(path) = &a.ready_file {
        std::fs::write(path, bound.join("\n") + "\n")
            .with_context(|| format!("writing --ready-file {}", path.display()))?;
    }
    wait_for_signal().await?;
    eprintln!("session-proxy: stopping; terminating every SSM session");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, SIGTERM and SIGHUP all end the forward (and terminate its sessions).
async fn wait_for_signal() -> anyhow::Result<()> {
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    tokio::select! {
        _ = sigint.recv() => {}
        _ = sigterm.recv() => {}
        _ = sighup.recv() => {}
    }
    Ok(())
}

/// Where `--via` leads.
enum Route {
    /// Our own SSM sessions to this instance.
    Direct { api: Arc<SsmApi>, instance: String },
    /// The running master's upstream.
    Master { socket: PathBuf, upstream: String },
}

impl Route {
    async fn decide(g: &GlobalArgs, a: &ForwardArgs, cfg: Option<&Config>) -> anyhow::Result<Self> {
        let socket = control::socket_path(
            g.control_socket.as_deref(),
            cfg.and_then(|c| c.control_socket.as_deref()),
        );
        if master_has_upstream(&socket, &a.via).await {
            return Ok(Self::Master {
                socket,
                upstream: a.via.clone(),
            });
        }
        let (name, mut settings) = direct_target(a, cfg);
        settings.profile = a.profile.clone().or(settings.profile);
        settings.region = a.region.clone().or(settings.region);
        let api = Arc::new(SsmApi::new(&settings).await);
        let instance = target::resolve(&api, &name).await?;
        Ok(Self::Direct { api, instance })
    }

    fn name(&self) -> String {
        match self {
            Self::Direct { instance, .. } => instance.clone(),
            Self::Master { upstream, .. } => format!("{upstream} (the master's SSH pool)"),
        }
    }

    fn carrier(&self, spec: &ForwardSpec, sessions: usize) -> Carrier {
        match self {
            Self::Direct { api, instance } => Carrier::Sessions(SessionSet::start(
                PortTarget {
                    api: api.clone(),
                    request: spec.session_request(instance),
                    label: spec.dest.to_string(),
                },
                sessions,
            )),
            Self::Master { socket, upstream } => Carrier::Master {
                socket: socket.clone(),
                upstream: upstream.clone(),
                host: spec.dest.host.dial_text(),
                port: spec.dest.port,
            },
        }
    }
}

/// The instance name and AWS settings `--via` names without a master: an upstream's first
/// target, a `hosts:` alias, or the text itself (an id or Name tag).
fn direct_target(a: &ForwardArgs, cfg: Option<&Config>) -> (String, AwsSettings) {
    let mut settings = AwsSettings {
        profile: None,
        region: None,
        credentials: None,
        endpoint_url: None,
        proxy: cfg.map(|c| c.proxy.clone()).unwrap_or_default(),
    };
    if let Some(u) = cfg.and_then(|c| c.upstream(&a.via)) {
        settings.profile = u.profile.clone();
        settings.region = u.region.clone();
        settings.credentials = u.credentials.clone();
        let first = u.targets.first().map(|t| t.as_str().to_owned());
        return (first.unwrap_or_else(|| a.via.clone()), settings);
    }
    if let Some(h) = cfg.and_then(|c| c.hosts.get(&a.via)) {
        settings.profile = h.profile.clone();
        settings.region = h.region.clone();
        return (h.target.as_str().to_owned(), settings);
    }
    (a.via.clone(), settings)
}

/// A master answers on `socket` and has an upstream called `name`.
async fn master_has_upstream(socket: &std::path::Path, name: &str) -> bool {
    let Ok(mut c) = Client::connect(socket).await else {
        return false;
    };
    if c.send(&Request::Status).await.is_err() {
        return false;
    }
    match c.recv(Some(std::time::Duration::from_secs(5))).await {
        Ok(Response::Status(r)) => r.upstreams.iter().any(|u| u.name == name),
        _ => false,
    }
}
