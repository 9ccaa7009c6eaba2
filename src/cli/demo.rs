//! `demo`: the whole product in one process with nothing to set up. Starts the simulator with
//! the built-in demo instance, then runs a master against it like `serve --foreground`, with a
//! generated config (one upstream `demo`, which is also the default route) and a control socket
//! (the default one when no other master holds it), so `status`, `route` and `stop` see it. It
//! writes an env file, an ssh_config snippet and its config into its state dir ([`files`]),
//! prints short commands that use them, and shuts down cleanly on SIGINT/SIGTERM or `stop`
//! (pools closed, SSM sessions terminated).
//!
//! The in-process AWS SDK is pointed at the simulator through explicit settings (endpoint,
//! static credentials, region), never by changing the process environment; the env file and
//! the ssh_config's ProxyCommand carry the same settings for separate processes.

mod files;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use super::GlobalArgs;
use crate::config::{self, Config};
use crate::control::{self, server::ControlListener, ControlError};
use crate::exit::UsageError;
use crate::serve::{self, Bound, ServeError};
use crate::sim::demo::{self, Demo};
use crate::sim::{Sim, SimOptions};
use crate::upstream::pool::PoolOptions;

/// Name of the one upstream in the generated config.
pub const UPSTREAM: &str = "demo";
/// The first SOCKS port tried when `--listen` is not given.
const FIRST_PORT: u16 = 1080;
/// How many ports from the first one are tried before any free port.
const PORT_TRIES: u16 = 20;
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
    /// Directory for the demo keys, known_hosts, env file and ssh_config (default:
    /// $XDG_STATE_HOME/session-proxy/demo).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Moves the first SOCKS port tried without `--listen`, so tests can make it one they hold
/// busy rather than bind 1080. Not a flag: users have `--listen`.
const FIRST_PORT_ENV: &str = "SESSION_PROXY_DEMO_PORT";

fn first_port() -> anyhow::Result<u16> {
    match std::env::var(FIRST_PORT_ENV) {
        Err(_) => Ok(FIRST_PORT),
        Ok(v) => v.trim().parse().map_err(|_| {
            UsageError::Usage(format!("{FIRST_PORT_ENV}={v:?} is not a port number")).into()
        }),
    }
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

/// The config `demo` serves, as YAML: one upstream to the demo instance, default route
/// through it, and the control socket when one is given.
fn config_text(listen: SocketAddr, key: &Path, state: &Path, control: Option<&Path>) -> String {
    let mut text = format!(
        "listeners:\n  - socks5: \"{listen}\"\n\
         upstreams:\n  {UPSTREAM}:\n    targets: [{id}]\n    region: {REGION}\n\
         \x20   credentials:\n      access_key_id: {ACCESS_KEY_ID}\n      secret_access_key: {SECRET_ACCESS_KEY}\n\
         \x20   user: demo\n    identity_files: [{key}]\n    pool_size: 1\n    host_key_policy: accept-new\n\
         default: {UPSTREAM}\nstate_dir: {state}\n",
        id = demo::INSTANCE_ID,
        key = yaml_str(&key.display().to_string()),
        state = yaml_str(&state.display().to_string()),
    );
    if let Some(c) = control {
        text.push_str(&format!(
            "control_socket: {}\n",
            yaml_str(&c.display().to_string())
        ));
    }
    text
}

/// The config `demo` serves, parsed (without a control socket: the demo claims its own).
pub fn demo_config(
    listen: SocketAddr,
    key: &Path,
    state: &Path,
) -> Result<Config, config::ConfigError> {
    config::from_yaml_str(&config_text(listen, key, state, None), "demo config")
}

/// What the demo's generated config needs.
struct Paths<'a> {
    key: &'a Path,
    state: &'a Path,
    control: &'a Path,
}

/// Binds `--listen`, or the first free port from `first` (then any port) on 127.0.0.1, and
/// says so when the first port was not free.
async fn bind(listen: Option<SocketAddr>, first: u16, p: &Paths<'_>) -> anyhow::Result<Bound> {
    if let Some(addr) = listen {
        if !addr.ip().is_loopback() {
            return Err(UsageError::Usage(format!(
                "--listen {addr} is not a loopback address; the demo only listens on 127.0.0.0/8 or ::1"
            ))
            .into());
        }
        let cfg = demo_config(addr, p.key, p.state)?;
        return Ok(serve::bind(&cfg).await?);
    }
    let last = first.saturating_add(PORT_TRIES - 1);
    let mut first_error: Option<std::io::Error> = None;
    for port in (first..=last).chain(std::iter::once(0)) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let cfg = demo_config(addr, p.key, p.state)?;
        match serve::bind(&cfg).await {
            Ok(bound) => {
                if let Some(e) = first_error {
                    let now = bound
                        .addresses
                        .first()
                        .map_or("", |a| a.trim_start_matches("socks5://"));
                    let why = match e.kind() {
                        std::io::ErrorKind::AddrInUse => "is busy".to_owned(),
                        kind => format!("cannot be used ({kind})"),
                    };
                    eprintln!(
                        "session-proxy demo: 127.0.0.1:{first} {why}; using {now} instead (or pick one with --listen)"
                    );
                }
                return Ok(bound);
            }
            Err(ServeError::Bind { error, .. }) => {
                if first_error.is_none() {
                    first_error = Some(error);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(anyhow::anyhow!(
        "no free port on 127.0.0.1 for the demo's SOCKS5 proxy; pick one with --listen"
    ))
}

/// Claims the control socket: `--control-socket`, else the default one, else (another master
/// holds the default) `<dir>/control.sock`. Returns it and whether it is the default.
fn claim_control(g: &GlobalArgs, dir: &Path) -> anyhow::Result<(ControlListener, bool)> {
    if let Some(path) = &g.control_socket {
        return Ok((control::server::bind(path)?, false));
    }
    let default = control::socket_path(None, None);
    match control::server::bind(&default) {
        Ok(l) => Ok((l, true)),
        Err(ControlError::AlreadyRunning { .. }) => {
            eprintln!(
                "session-proxy demo: another master holds {}; the demo's control socket is in {}",
                default.display(),
                dir.display()
            );
            Ok((control::server::bind(&dir.join("control.sock"))?, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// The lines to try, printed once everything is up: short, because the settings are in the
/// files the demo wrote.
fn instructions(
    sim: &Sim,
    demo: &Demo,
    socks: &str,
    h: &files::Handoff,
    control: Option<&Path>,
) -> String {
    let ssh_f = sh_quote(&h.ssh_config.display().to_string());
    let name = demo::INSTANCE_NAME;
    let ctl = match control {
        None => "session-proxy".to_owned(),
        Some(path) => format!(
            "session-proxy --control-socket {}",
            sh_quote(&path.display().to_string())
        ),
    };
    format!(
        "\nsession-proxy demo: SOCKS5 proxy on {socks}, through SSM (simulated at {endpoint}) to {name} ({id})\n\
         \nTry the page \"inside the VPC\":\n  curl --socks5-hostname {socks} {url}\n\
         \nssh, scp and sftp through Session Manager (its ssh_config runs `session-proxy stdio`):\n  \
         ssh -F {ssh_f} {name} echo hello\n  scp -F {ssh_f} FILE {name}:\n  sftp -F {ssh_f} {name}\n\
         \nThe demo runs a master, like `serve`:\n  {ctl} status\n  {ctl} route example.com\n  {ctl} stop\n\
         \nPoint AWS tools and `session-proxy stdio` at the simulator:  . {env}\n\
         \nThen forward a port over native SSM port sessions (no SSH), and fetch the page through it:\n  \
         session-proxy forward 8080:{fwd_host}:{fwd_port} --via {name} &\n  curl http://127.0.0.1:8080/\n\
         \nOr open a shell on {name} (the simulator runs `sh` in a pty on this machine):\n  \
         session-proxy shell {name}\n\
         \nPress Ctrl-C to stop.\n",
        endpoint = sim.endpoint_url(),
        id = demo::INSTANCE_ID,
        url = demo.web_url(),
        env = sh_quote(&h.env.display().to_string()),
        fwd_host = demo::FORWARD_HOST,
        fwd_port = demo.forward_port(),
    )
}

/// Starts the demo instance and the simulator that serves it.
async fn start_sim(dir: &Path) -> anyhow::Result<(Demo, Sim)> {
    let demo = Demo::start(dir).await?;
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
    Ok((demo, sim))
}

/// Ends on SIGINT or SIGTERM (a `stop` request ends the master by itself).
fn on_signals() -> anyhow::Result<impl std::future::Future<Output = ()> + Send> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        eprintln!("session-proxy demo: shutting down (closing SSM sessions)");
    })
}

pub async fn run(g: &GlobalArgs, a: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = a.state_dir.clone().unwrap_or_else(demo::default_dir);
    let (demo, sim) = start_sim(&dir).await?;
    let serve_state = dir.join("serve");
    std::fs::create_dir_all(&serve_state)
        .with_context(|| format!("creating {}", serve_state.display()))?;
    let (control, default_control) = claim_control(g, &dir)?;
    let paths = Paths {
        key: &demo.files.client_key,
        state: &serve_state,
        control: control.path(),
    };
    let bound = bind(a.listen, first_port()?, &paths).await?;
    let socks = bound
        .addresses
        .first()
        .map(|s| s.trim_start_matches("socks5://").to_owned())
        .unwrap_or_default();
    let listen: SocketAddr = socks.parse().context("the demo's SOCKS address")?;
    let text = config_text(listen, paths.key, paths.state, Some(paths.control));
    let cfg = config::from_yaml_str(&text, "demo config")?;
    let handoff = files::write(&dir, &sim.endpoint_url(), &demo.files, &text)
        .with_context(|| format!("writing the demo's env and ssh_config in {}", dir.display()))?;
    let opts = PoolOptions {
        endpoint_url: Some(sim.endpoint_url()),
        // The simulator is in this process on loopback: no corporate proxy can reach it.
        proxy: crate::proxy::ProxySetting::Disabled,
        ..PoolOptions::new(&serve_state)
    };
    let ups = serve::start_upstreams(&cfg, &opts).await?;
    // Handlers go in before the ready line: a SIGTERM right after it must stop us cleanly.
    let signals = on_signals()?;
    let named = (!default_control).then(|| control.path());
    eprint!("{}", instructions(&sim, &demo, &socks, &handoff, named));
    // Tests and scripts wait for this exact line.
    eprintln!("session-proxy demo: ready on {socks}");
    // The demo's config is generated, so a reload finds nothing to change.
    let fixed = cfg.clone();
    let loader: crate::serve::master::Loader = Box::new(move || Ok(fixed.clone()));
    let master = std::sync::Arc::new(crate::serve::master::Master::new(cfg, ups, opts, loader));
    master.set_config_source(format!(
        "the demo's generated config ({})",
        handoff.config.display()
    ));
    let reloads = futures_util::stream::pending();
    serve::serve(bound, master, Some(&control), reloads, signals).await;
    drop(control);
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
            cfg.upstreams[0].ssh().unwrap().identity_files,
            vec![PathBuf::from("/tmp/odd dir/id_ed25519")]
        );
        assert_eq!(cfg.default, config::Action::Upstream(UPSTREAM.into()));
        let text = config_text(
            "127.0.0.1:1080".parse().unwrap(),
            Path::new("/k"),
            Path::new("/s"),
            Some(Path::new("/tmp/odd dir/control.sock")),
        );
        let served = config::from_yaml_str(&text, "demo config").unwrap();
        assert_eq!(
            served.control_socket,
            Some(PathBuf::from("/tmp/odd dir/control.sock"))
        );
    }
}
