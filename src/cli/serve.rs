//! `serve`: the SOCKS5 multiplexer over SSH-over-SSM upstream pools. Reads the config file (or
//! builds a one-upstream config from `--target/--user/--identity`), applies flag overrides,
//! and runs as the master: detached into the background by default (re-executing itself with
//! `--foreground` in a new session, output to `<state dir>/serve.log`, pid in
//! `<state dir>/serve.pid`; a master on another control socket gets files named after it, see
//! [`crate::paths::master_files`]), or in the foreground with `--foreground`. SIGINT/SIGTERM and the
//! `stop` command drain (streams in flight get `--drain-timeout` seconds to finish) and exit; a
//! second one closes what is left at once. SIGHUP and the `reload` command re-read the config.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::GlobalArgs;
use crate::config::{AdHoc, Config, HostKeyPolicy, Overrides, MAX_DRAIN_TIMEOUT_SECS};
use crate::control::client;
use crate::control::proto::{Request, Response};
use crate::control::{self, ControlError};
use crate::exit::UsageError;
use crate::serve;
use crate::serve::master::{Loader, Master};
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
    /// Ad-hoc mode: host key policy.
    #[arg(long, value_parser = ["accept-new", "strict", "off"])]
    pub host_key_policy: Option<String>,
    /// Once ready, write the bound listener addresses here, one per line (for scripts and
    /// tests that listen on port 0).
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
    /// Seconds `stop`/SIGTERM/SIGINT let streams in flight finish before closing them
    /// (config `drain_timeout_secs`, default 10); a second stop closes them at once.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=MAX_DRAIN_TIMEOUT_SECS))]
    pub drain_timeout: Option<u64>,
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
        if let Some(secs) = self.drain_timeout {
            cfg.drain_timeout = Duration::from_secs(secs);
        }
        for w in cfg.warnings() {
            tracing::warn!("{w}");
        }
        Ok(cfg)
    }

    /// Which config [`ServeArgs::config`] reads, for `route`'s answer: the file (absolute), or
    /// the ad-hoc flags.
    fn config_source(&self, g: &GlobalArgs) -> String {
        if !self.targets.is_empty() {
            return "an ad-hoc config from --target flags".into();
        }
        match crate::config::discover(g.config.as_deref()) {
            Ok(Some(p)) => {
                let p = std::path::absolute(&p).unwrap_or(p);
                format!("config {}", p.display())
            }
            _ => "its config".into(),
        }
    }
}

/// Set in the environment of the re-executed foreground master by the detaching parent.
const DAEMON_ENV: &str = "SESSION_PROXY_DAEMON_CHILD";
/// How long the detaching parent waits for the master to be ready.
const READY_WAIT: Duration = Duration::from_secs(120);
/// After this long without the master ready, the parent says what it is waiting for.
const SLOW_START: Duration = Duration::from_secs(3);

/// The state dir of `cfg`, created owner-only if missing (the default one is also tightened:
/// it holds the control socket when `$XDG_RUNTIME_DIR` is unset).
fn state_dir(cfg: &Config) -> anyhow::Result<PathBuf> {
    let (dir, made) = match &cfg.state_dir {
        Some(d) => (d.clone(), crate::paths::create_private_dir(d)),
        None => {
            let d = crate::paths::state_dir();
            let made = crate::paths::ensure_private_dir(&d);
            (d, made)
        }
    };
    made.with_context(|| format!("creating state dir {}", dir.display()))?;
    Ok(dir)
}

/// Refuses to start when a master already answers on `socket`, naming its pid.
async fn refuse_if_running(socket: &Path) -> anyhow::Result<()> {
    match client::request(socket, &Request::Status).await {
        Ok(Response::Status(s)) => Err(ControlError::AlreadyRunning {
            path: socket.to_path_buf(),
            pid: Some(s.pid),
        }
        .into()),
        Err(ControlError::NotRunning { .. }) => Ok(()),
        // Something answers there but not like a master: let bind() decide.
        _ => Ok(()),
    }
}

pub async fn run(g: &GlobalArgs, a: ServeArgs) -> anyhow::Result<ExitCode> {
    let cfg = a.config(g)?;
    let socket = control::socket_path(g.control_socket.as_deref(), cfg.control_socket.as_deref());
    refuse_if_running(&socket).await?;
    let state_dir = state_dir(&cfg)?;
    let files = crate::paths::master_files(&state_dir, &socket, &control::socket_path(None, None));
    if a.foreground {
        foreground(g, a, cfg, &socket, &state_dir, &files.pid).await
    } else {
        daemonize(&socket, &files.log).await
    }
}

/// Re-executes this binary as `serve --foreground` in its own session with its output in
/// `log_path`, and returns once it answers `status` on the control socket.
async fn daemonize(socket: &Path, log_path: &Path) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let log_path = log_path.to_path_buf();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening log file {}", log_path.display()))?;
    let log_len = log.metadata().map(|m| m.len()).unwrap_or(0);
    let exe = std::env::current_exe().context("finding the session-proxy binary to re-run")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .arg("--foreground")
        .env(DAEMON_ENV, "1")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().context("duplicating the log file handle")?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory; it detaches the child from
    // our terminal and process group so that closing the shell does not signal it.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting the background master")?;
    let started = tokio::time::Instant::now();
    let deadline = started + READY_WAIT;
    let mut told = false;
    loop {
        if let Some(st) = child.try_wait()? {
            return Err(serve::ServeError::MasterExited {
                status: st,
                reason: start_failure(&log_tail(&log_path, log_len)),
                log: log_path,
            }
            .into());
        }
        let probe = tokio::time::timeout(
            Duration::from_secs(2),
            client::request(socket, &Request::Status),
        )
        .await;
        if let Ok(Ok(Response::Status(s))) = probe {
            eprintln!(
                "session-proxy: master running (pid {}); control socket {}, log {}",
                s.pid,
                socket.display(),
                log_path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        // Errors that will not fix themselves end the master within a second or two; past
        // that, upstreams are retrying transient ones, which the log shows as they happen.
        if !told && started.elapsed() > SLOW_START {
            eprintln!(
                "session-proxy: the master is still connecting its upstreams (retrying transient errors); follow {}",
                log_path.display()
            );
            told = true;
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(anyhow::anyhow!(
                "the master was not ready within {READY_WAIT:?}; its log {} says:\n{}",
                log_path.display(),
                log_tail(&log_path, log_len)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last lines the log gained since it was `from` bytes long.
fn log_tail(path: &Path, from: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let new = text.get(from as usize..).unwrap_or_default();
    let s = String::from_utf8_lossy(new);
    let lines: Vec<&str> = s.lines().collect();
    lines
        .get(lines.len().saturating_sub(20)..)
        .unwrap_or_default()
        .join("\n")
}

/// The one line a failed master printed as its exit error (`session-proxy: ...`, see
/// `exit::report`), else the log lines themselves.
fn start_failure(tail: &str) -> String {
    tail.lines()
        .rev()
        .find_map(|l| l.strip_prefix("session-proxy: "))
        .map_or_else(|| tail.to_owned(), str::to_owned)
}

/// Writes `addresses` to `path` through a rename, so a reader never sees a partial file.
fn write_ready_file(path: &Path, addresses: &[String]) -> anyhow::Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, addresses.join("\n") + "\n")
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("writing --ready-file {}", path.display()))
}

/// Turns SIGINT/SIGTERM into stop requests: the first drains, the second closes what is left.
async fn stop_on_signals(master: Arc<Master>, mut sigint: Signal, mut sigterm: Signal) {
    loop {
        tokio::select! {
            Some(()) = sigint.recv() => {}
            Some(()) = sigterm.recv() => {}
            else => return,
        }
        eprintln!(
            "session-proxy: {}",
            master.stop_message(master.request_stop())
        );
    }
}

/// Removes the pid file when the master exits, if it still names this process (a file
/// rewritten by another master since is that master's).
struct PidFile(PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.0)
            .is_ok_and(|t| t.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

async fn foreground(
    g: &GlobalArgs,
    a: ServeArgs,
    cfg: Config,
    socket: &Path,
    state_dir: &Path,
    pid_path: &Path,
) -> anyhow::Result<ExitCode> {
    if let Some(level) = cfg.log_level.as_deref() {
        match crate::logging::apply_config(Some(level)) {
            Ok(applied) => tracing::info!("{applied}"),
            Err(e) => tracing::warn!("{e}; keeping the log level in force"),
        }
    }
    // Claim the control socket first, so a second master fails before dialling anything.
    let control = control::server::bind(socket)?;
    let bound = serve::bind(&cfg).await?;
    let opts = PoolOptions {
        proxy: cfg.proxy.clone(),
        ..PoolOptions::new(state_dir)
    };
    let ups = serve::start_upstreams(&cfg, &opts).await?;
    std::fs::write(pid_path, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing pid file {}", pid_path.display()))?;
    let _pid = PidFile(pid_path.to_path_buf());
    // Handlers go in before anything announces readiness: a signal right after it must
    // stop the master cleanly, not kill it with the default action.
    let (sigint, sigterm) = (
        signal(SignalKind::interrupt())?,
        signal(SignalKind::terminate())?,
    );
    let sighup = signal(SignalKind::hangup())?;
    for addr in &bound.addresses {
        let kind = if addr.starts_with("http://") {
            "HTTP CONNECT"
        } else {
            "SOCKS5"
        };
        eprintln!("session-proxy: {kind} proxy listening on {addr}");
    }
    for f in &bound.forwards {
        eprintln!("session-proxy: {}", f.describe());
    }
    if let Some(path) = &a.ready_file {
        write_ready_file(path, &bound.addresses)?;
    }
    eprintln!("session-proxy: control socket {}", socket.display());
    if std::env::var_os(DAEMON_ENV).is_some() {
        tracing::info!("running detached");
    }
    let (g2, a2) = (g.clone(), a.clone());
    let source = a.config_source(g);
    let loader: Loader = Box::new(move || a2.config(&g2));
    let master = Arc::new(Master::new(cfg, ups, opts, loader));
    master.set_config_source(source);
    let stops = tokio::spawn(stop_on_signals(master.clone(), sigint, sigterm));
    let reloads =
        futures_util::stream::unfold(
            sighup,
            |mut s| async move { s.recv().await.map(|()| ((), s)) },
        );
    // Stop requests come from the signal task and the `stop` command, both via the master.
    let shutdown = std::future::pending::<()>();
    serve::serve(bound, master, Some(&control), Box::pin(reloads), shutdown).await;
    stops.abort();
    eprintln!("session-proxy: stopped; every SSM session terminated");
    drop(control);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_start_failure_is_the_masters_own_error_line() {
        let log = "2026-11-30T13:00:00Z ERROR not retrying: no AWS credentials found\n\
                   session-proxy: no upstream could connect: upstream u: no AWS credentials found\n";
        assert_eq!(
            start_failure(log),
            "no upstream could connect: upstream u: no AWS credentials found"
        );
        assert_eq!(start_failure("panicked at x\n"), "panicked at x\n");
    }
}
