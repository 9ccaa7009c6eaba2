//! `serve`: the multiplexer. Builds upstream pools from the config, connects the eager ones
//! (failing fast when none can), binds the SOCKS5 listeners and serves until shutdown, then
//! closes every pool (TerminateSession on every SSM session).

pub mod connector;
pub mod master;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::net::{TcpListener, UnixListener};

use crate::config::{Config, Listener};
use crate::control::server::ControlListener;
use crate::socks::server::{self as socks, Server, ServerConfig};
use crate::upstream::pool::PoolOptions;
use crate::upstream::{UpstreamError, Upstreams};
use master::Master;

/// Why `serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "cannot listen on {what}: {source}; is another proxy using it? pick another with --listen"
    )]
    Bind {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The pools could not be built (a config the upstream layer refuses).
    #[error(transparent)]
    Upstreams(#[from] UpstreamError),
    /// The detached master (`serve` without `--foreground`) exited before it was ready; the
    /// command exits with the master's code, so both forms of `serve` report failures alike.
    /// `reason` is the master's own one-line error when its log has one, so both forms of
    /// `serve` say the same thing; otherwise the last lines of its log.
    #[error("{reason} (master log: {})", log.display())]
    MasterExited {
        status: std::process::ExitStatus,
        log: std::path::PathBuf,
        reason: String,
    },
    /// Every eager upstream failed to connect. `first` is the first failure (its type picks
    /// the exit code); `summary` lists them all.
    #[error("no upstream could connect: {summary}{hint}")]
    NoUpstream {
        summary: String,
        /// What to check, when the failures do not say it themselves.
        hint: &'static str,
        #[source]
        first: UpstreamError,
    },
}

fn server_config(l: &Listener) -> ServerConfig {
    ServerConfig {
        users: l
            .users()
            .iter()
            .map(|u| (u.username.clone(), u.password.clone()))
            .collect(),
        limits: l.limits(),
        ..ServerConfig::default()
    }
}

/// Bound listeners, ready to serve (bind before announcing readiness), in config order so
/// `reload` can find each one's server by its index.
pub struct Bound {
    listeners: Vec<(socks::Listener, ServerConfig)>,
    pub addresses: Vec<String>,
}

/// Binds every listener of `cfg`. Unix sockets get mode 0600 before they accept.
pub async fn bind(cfg: &Config) -> Result<Bound, ServeError> {
    let mut b = Bound {
        listeners: Vec::new(),
        addresses: Vec::new(),
    };
    for l in &cfg.listeners {
        match l {
            Listener::Tcp { addr, .. } => {
                let t = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind {
                        what: addr.to_string(),
                        source,
                    })?;
                let local = t
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| addr.to_string());
                b.addresses.push(format!("socks5://{local}"));
                b.listeners.push((t.into(), server_config(l)));
            }
            Listener::Unix { path, .. } => {
                let u = bind_unix(path).map_err(|source| ServeError::Bind {
                    what: path.display().to_string(),
                    source,
                })?;
                b.addresses.push(format!("unix:{}", path.display()));
                b.listeners.push((u.into(), server_config(l)));
            }
        }
    }
    Ok(b)
}

fn bind_unix(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        // A socket nobody answers on is stale; a live one belongs to someone else.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "a server is already listening there",
            ));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // The umask makes the socket owner-only from the moment it exists.
    // SAFETY: umask only swaps the process's file-mode mask; no memory is involved.
    let old = unsafe { libc::umask(0o177) };
    let l = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let l = l?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Builds and starts the pools, waiting (bounded) until each eager upstream has a connection.
pub async fn start_upstreams(cfg: &Config, opts: &PoolOptions) -> Result<Upstreams, ServeError> {
    let ups = Upstreams::new(&cfg.upstreams, opts);
    ups.start();
    let mut failures = Vec::new();
    let mut eager = 0;
    for u in cfg.upstreams.iter().filter(|u| !u.lazy) {
        eager += 1;
        if let Some(pool) = ups.get(&u.name) {
            if let Err(e) = pool.wait_ready(opts.connect_timeout).await {
                failures.push(e);
            }
        }
    }
    if eager > 0 && failures.len() == eager {
        let summary = failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        // Errors that gave up already name their fix; timeouts and lost connections do not.
        let hint = if failures
            .iter()
            .all(|f| matches!(f, UpstreamError::GaveUp { .. }))
        {
            ""
        } else {
            "; check the instances, AWS credentials and SSH keys (or mark upstreams lazy: true)"
        };
        let mut all = failures.into_iter();
        if let Some(first) = all.next() {
            ups.shutdown().await;
            return Err(ServeError::NoUpstream {
                summary,
                hint,
                first,
            });
        }
        failures = all.collect();
    }
    for f in failures {
        tracing::warn!("{f}; serving the other upstreams, this one keeps retrying");
    }
    Ok(ups)
}

/// Serves the bound listeners and the control socket until `shutdown` resolves or a `stop`
/// arrives, then drains ([`Master::drain`]: streams in flight finish within the grace period)
/// and closes every pool (TerminateSession for each SSM session). The control socket keeps
/// answering during the drain, so `status` shows it and a second `stop` cuts it short.
/// SIGHUP-style reloads come in through `reload` (each item triggers `Master::reload`).
pub async fn serve(
    bound: Bound,
    master: Arc<Master>,
    control: Option<&ControlListener>,
    mut reload: impl futures_util::Stream<Item = ()> + Unpin + Send,
    shutdown: impl Future<Output = ()> + Send,
) {
    use futures_util::StreamExt;
    let mut servers = Vec::new();
    for (l, sc) in bound.listeners {
        let server = Server::new(sc, master.connector.clone());
        master.add_socks_server(server.clone());
        let (stop, abort) = (master.stopped(), master.closing());
        servers.push(tokio::spawn(async move {
            server.serve_until(l, stop, abort).await;
        }));
    }
    let control_loop = async {
        if let Some(c) = control {
            let handler: Arc<dyn crate::control::server::Handler> = master.clone();
            c.run(handler, master.closing()).await;
        }
    };
    let lifecycle = async {
        let reloads = async {
            while reload.next().await.is_some() {
                match master.reload().await {
                    Ok(lines) => eprintln!("session-proxy: reloaded: {}", lines.join("; ")),
                    Err(e) => eprintln!("session-proxy: {e}"),
                }
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            () = shutdown => {
                master.request_stop();
            }
            () = master.stopped() => {}
            () = reloads => {}
        }
        master.drain(servers).await;
    };
    tokio::join!(control_loop, lifecycle);
    master.upstreams.read().await.shutdown().await;
}
