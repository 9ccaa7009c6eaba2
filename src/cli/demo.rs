//! `demo`: the whole product in one process with nothing to set up. Starts the simulator with
//! the built-in demo instance, then runs `serve` in the foreground against it with a generated
//! config (one upstream `demo`, which is also the default route), prints commands to try, and
//! shuts down cleanly on SIGINT/SIGTERM (pools closed, SSM sessions terminated).
//!
//! The in-process AWS SDK is pointed at the simulator through explicit settings (endpoint,
//! static credentials, region), never by changing the process environment; the printed `ssh`
//! line carries the same settings as `env` assignments because it runs a separate process.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use super::GlobalArgs;
use crate::config::{self, Config};
use crate::exit::UsageError;
use crate::serve::{self, Bound, ServeError};
use crate::sim::demo::{self, Demo};
use crate::sim::{Sim, SimOptions};
use crate::upstream::pool::PoolOptions;

/// Name of the one upstream in the generated config.
pub const UPSTREAM: &str = "demo";
/// SOCKS ports tried in order when `--listen` is not given.
const PORTS: std::ops::RangeInclusive<u16> = 1080..=1099;
/// Credentials the simulator accepts (it accepts any; these just look like the real shape).
const ACCESS_KEY_ID: &str = "AKIASIMULATOR0000000";
const SECRET_ACCESS_KEY: &str = "simulator-secret-key";
const REGION: &str = "us-east-1";

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// SOCKS5 listen address (loopback). Default: 127.0.0.1:1080, or the next free port up
    /// to 1099.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Directory for the demo keys and known_hosts (default: $XDG_STATE_HOME/session-proxy/demo).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Quotes `s` for a POSIX shell when it needs it.
fn sh_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@,%".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// JSON strings are YAML strings: quoting paths this way survives any character in them.
fn yaml_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The config `demo` serves: one upstream to the demo instance, default route through it.
pub fn demo_config(
    listen: SocketAddr,
    key: &Path,
    state: &Path,
) -> Result<Config, config::ConfigError> {
    let text = format!(
        "listeners:\n  - socks5: \"{listen}\"\n\
         upstreams:\n  {UPSTREAM}:\n    targets: [{id}]\n    region: {REGION}\n\
         \x20   credentials:\n      access_key_id: {ACCESS_KEY_ID}\n      secret_access_key: {SECRET_ACCESS_KEY}\n\
         \x20   user: demo\n    identity_files: [{key}]\n    pool_size: 1\n    host_key_policy: accept-new\n\
         default: {UPSTREAM}\nstate_dir: {state}\n",
        id = demo::INSTANCE_ID,
        key = yaml_str(&key.display().to_string()),
        state = yaml_str(&state.display().to_string()),
    );
    config::from_yaml_str(&text, "demo config")
}

/// Binds `--listen`, or the first free port of [`PORTS`] (then any port) on 127.0.0.1.
async fn bind(
    listen: Option<SocketAddr>,
    key: &Path,
    state: &Path,
) -> anyhow::Result<(Config, Bound)> {
    if let Some(addr) = listen {
        if !addr.ip().is_loopback() {
            return Err(UsageError::Usage(format!(
                "--listen {addr} is not a loopback address; the demo only listens on 127.0.0.0/8 or ::1"
            ))
            .into());
        }
        let cfg = demo_config(addr, key, state)?;
        let bound = serve::bind(&cfg).await?;
        return Ok((cfg, bound));
    }
    let candidates = PORTS.chain(std::iter::once(0));
    let mut last = None;
    for port in candidates {
        let cfg = demo_config(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), key, state)?;
        match serve::bind(&cfg).await {
            Ok(bound) => {
                if port != *PORTS.start() {
                    eprintln!(
                        "session-proxy demo: 127.0.0.1:{} is taken; using the next free port",
                        PORTS.start()
                    );
                }
                return Ok((cfg, bound));
            }
            Err(e @ ServeError::Bind { .. }) => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last
        .map(anyhow::Error::from)
        .unwrap_or_else(|| anyhow::anyhow!("no port to listen on")))
}

/// The lines to try, printed once everything is up.
fn instructions(sim: &Sim, demo: &Demo, socks: &str) -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "session-proxy".into());
    let proxy = sh_quote(&format!("{} stdio %h -p %p", sh_quote(&exe)));
    format!(
        "\nsession-proxy demo: SOCKS5 proxy on {socks}, through SSM (simulated at {endpoint}) to {name} ({id})\n\
         \nTry the page \"inside the VPC\":\n  curl --socks5-hostname {socks} {url}\n\
         \nSSH to the instance through Session Manager (the ProxyCommand is `session-proxy stdio`):\n  \
         env AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID={ACCESS_KEY_ID} AWS_SECRET_ACCESS_KEY={SECRET_ACCESS_KEY} \
         AWS_REGION={REGION} AWS_EC2_METADATA_DISABLED=true ssh -i {key} -o UserKnownHostsFile={known} \
         -o ProxyCommand={proxy} demo@{name} echo hello\n\
         \nPress Ctrl-C to stop.\n",
        endpoint = sim.endpoint_url(),
        name = demo::INSTANCE_NAME,
        id = demo::INSTANCE_ID,
        url = demo.web_url(),
        key = sh_quote(&demo.files.client_key.display().to_string()),
        known = sh_quote(&demo.files.known_hosts.display().to_string()),
    )
}

pub async fn run(_g: &GlobalArgs, a: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = a.state_dir.clone().unwrap_or_else(demo::default_dir);
    let demo = Demo::start(&dir).await?;
    let sim_listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("binding the simulator on 127.0.0.1")?;
    let sim = Sim::start(
        sim_listener,
        SimOptions {
            instances: vec![demo.instance()],
            ..SimOptions::default()
        },
    )?;
    let serve_state = dir.join("serve");
    std::fs::create_dir_all(&serve_state)
        .with_context(|| format!("creating {}", serve_state.display()))?;
    let (cfg, bound) = bind(a.listen, &demo.files.client_key, &serve_state).await?;
    let opts = PoolOptions {
        endpoint_url: Some(sim.endpoint_url()),
        ..PoolOptions::new(&serve_state)
    };
    let ups = serve::start_upstreams(&cfg, &opts).await?;
    let socks = bound
        .addresses
        .first()
        .map(|s| s.trim_start_matches("socks5://").to_owned())
        .unwrap_or_default();
    eprint!("{}", instructions(&sim, &demo, &socks));
    // Tests and scripts wait for this exact line.
    eprintln!("session-proxy demo: ready on {socks}");
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        eprintln!("session-proxy demo: shutting down (closing SSM sessions)");
    };
    // The demo's config is generated, so there is nothing to reload and no control socket.
    let fixed = cfg.clone();
    let loader: crate::serve::master::Loader = Box::new(move || Ok(fixed.clone()));
    let master = std::sync::Arc::new(crate::serve::master::Master::new(cfg, ups, opts, loader));
    serve::serve(
        bound,
        master,
        None,
        futures_util::stream::pending(),
        shutdown,
    )
    .await;
    let open = sim.open_sessions();
    sim.shutdown().await;
    demo.shutdown().await;
    if open > 0 {
        tracing::warn!("{open} SSM session(s) were still open at exit");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(sh_quote("/usr/bin/ssh"), "/usr/bin/ssh");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn generated_config_routes_everything_through_the_demo_upstream() {
        let cfg = demo_config(
            "127.0.0.1:1080".parse().unwrap(),
            Path::new("/tmp/odd dir/id_ed25519"),
            Path::new("/tmp/state"),
        )
        .unwrap();
        assert_eq!(cfg.upstreams.len(), 1);
        assert_eq!(cfg.upstreams[0].name, UPSTREAM);
        assert_eq!(
            cfg.upstreams[0].identity_files,
            vec![PathBuf::from("/tmp/odd dir/id_ed25519")]
        );
        assert_eq!(cfg.default, config::Action::Upstream(UPSTREAM.into()));
    }
}
