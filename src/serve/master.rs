//! \[shell\] The master's answers to control requests: status, connect, disconnect, reload,
//! stop and `open` (a stream through a pool, spliced onto the control connection).
//!
//! The master owns the running config, the upstream registry shared with the SOCKS connector,
//! and the stop signal. Reload re-reads the config through a caller-supplied loader and applies
//! `config::diff`: pools that did not change, and the streams open through them, are left alone.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::connector::{Routing, RoutingConnector};
use crate::config::{self, Change, Config};
use crate::control::proto::{ErrorKind, Request, Response, StatusReport, UpstreamStatus};
use crate::control::server::{Exchange, HandleFuture, Handler};
use crate::route::{Action, HostRef};
use crate::upstream::pool::PoolOptions;
use crate::upstream::{PoolState, PoolStatus, UpstreamConfig, Upstreams};

/// Re-reads the configuration for `reload`.
pub type Loader = Box<dyn Fn() -> anyhow::Result<Config> + Send + Sync>;

/// Shared state of a running master.
pub struct Master {
    cfg: Mutex<Config>,
    pub upstreams: Arc<tokio::sync::RwLock<Upstreams>>,
    pub connector: Arc<RoutingConnector>,
    opts: PoolOptions,
    state_dir: PathBuf,
    started: Instant,
    listeners: Vec<String>,
    stop: watch::Sender<bool>,
    loader: Loader,
    /// Serialises reloads, connects and disconnects against each other.
    admin: tokio::sync::Mutex<()>,
}

fn status_of(p: PoolStatus) -> UpstreamStatus {
    UpstreamStatus {
        name: p.name,
        state: serde_json::to_value(p.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        instances: p.instances,
        connections_up: p.connections_up,
        connections_total: p.connections_total,
        open_streams: p.open_streams,
        bytes_in: p.bytes_in,
        bytes_out: p.bytes_out,
        last_error: p.last_error,
    }
}

impl Master {
    pub fn new(
        cfg: Config,
        ups: Upstreams,
        opts: PoolOptions,
        state_dir: PathBuf,
        listeners: Vec<String>,
        loader: Loader,
    ) -> Self {
        let upstreams = Arc::new(tokio::sync::RwLock::new(ups));
        let connector = Arc::new(RoutingConnector::new(
            Routing {
                router: cfg.routes.clone(),
                default: cfg.default.clone(),
            },
            upstreams.clone(),
        ));
        Self {
            cfg: Mutex::new(cfg),
            upstreams,
            connector,
            opts,
            state_dir,
            started: Instant::now(),
            listeners,
            stop: watch::channel(false).0,
            loader,
            admin: tokio::sync::Mutex::new(()),
        }
    }

    /// Resolves once `stop` was requested.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    pub fn request_stop(&self) {
        self.stop.send_replace(true);
    }

    fn config(&self) -> Config {
        self.cfg
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub async fn status(&self) -> StatusReport {
        let snap = self.upstreams.read().await.snapshot();
        StatusReport {
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
            listeners: self.listeners.clone(),
            upstreams: snap.into_iter().map(status_of).collect(),
        }
    }

    async fn connect(&self, name: &str, ex: &mut Exchange) -> Response {
        let _admin = self.admin.lock().await;
        let pool = self.upstreams.read().await.get(name);
        let Some(mut pool) = pool else {
            return Response::error(
                ErrorKind::UnknownUpstream,
                format!("unknown upstream \"{name}\""),
            );
        };
        if pool.snapshot().state == PoolState::Stopped {
            // A disconnected pool cannot restart; build a fresh one from the same settings.
            let cfg = pool.config().clone();
            let mut ups = self.upstreams.write().await;
            if let Err(e) = ups.replace(cfg, &self.opts) {
                return Response::error(ErrorKind::Failed, e.to_string());
            }
            match ups.get(name) {
                Some(p) => pool = p,
                None => return Response::error(ErrorKind::Failed, "upstream vanished"),
            }
        }
        pool.start();
        ex.send(&Response::Progress {
            message: format!(
                "connecting upstream {name} ({} connections)",
                pool.config().pool_size
            ),
        })
        .await;
        let deadline = Instant::now() + self.opts.connect_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let step = left.min(Duration::from_secs(1));
            match pool.wait_ready(step).await {
                Ok(()) => {
                    let s = pool.snapshot();
                    return Response::Done {
                        lines: vec![format!(
                            "upstream {name} is {}: {}/{} connections up ({})",
                            status_of(s.clone()).state,
                            s.connections_up,
                            s.connections_total,
                            s.instances.join(", ")
                        )],
                    };
                }
                Err(e) if left <= step => return Response::error(ErrorKind::Failed, e.to_string()),
                Err(_) => {
                    let s = pool.snapshot();
                    let mut msg = format!(
                        "still connecting upstream {name}: {}",
                        status_of(s.clone()).state
                    );
                    if let Some(err) = s.last_error {
                        msg.push_str(&format!(" (last error: {err})"));
                    }
                    ex.send(&Response::Progress { message: msg }).await;
                }
            }
        }
    }

    async fn disconnect(&self, name: &str) -> Response {
        let _admin = self.admin.lock().await;
        let pool = self.upstreams.read().await.get(name);
        let Some(pool) = pool else {
            return Response::error(
                ErrorKind::UnknownUpstream,
                format!("unknown upstream \"{name}\""),
            );
        };
        let before = pool.snapshot().connections_up;
        pool.shutdown().await;
        Response::Done {
            lines: vec![format!(
                "upstream {name} disconnected ({before} SSM sessions terminated); `session-proxy connect {name}` brings it back"
            )],
        }
    }

    /// Re-reads the config and applies what changed.
    pub async fn reload(&self) -> Result<Vec<String>, String> {
        let _admin = self.admin.lock().await;
        let new = (self.loader)()
            .map_err(|e| format!("reload refused, keeping the running config: {e:#}"))?;
        let old = self.config();
        let changes = config::diff(&old, &new);
        let mut lines = Vec::new();
        let mut routing = false;
        for change in &changes {
            match change {
                // Old pools are shut down after the registry lock is released.
                Change::UpstreamRemoved(name) => {
                    let old = self.upstreams.write().await.take(name);
                    if let Some(p) = old {
                        p.shutdown().await;
                    }
                }
                Change::UpstreamAdded(name) | Change::UpstreamChanged(name) => {
                    if let Some(up) = new.upstream(name) {
                        let cfg = UpstreamConfig::from_config(up, &self.state_dir);
                        let replaced = self.upstreams.write().await.replace(cfg, &self.opts);
                        match replaced {
                            Ok(Some(p)) => p.shutdown().await,
                            Ok(None) => {}
                            Err(e) => {
                                lines.push(format!("upstream {name}: {e}"));
                                continue;
                            }
                        }
                    }
                }
                Change::RoutesChanged | Change::DefaultChanged => routing = true,
                Change::ListenersChanged => {
                    lines.push("listeners changed; restart the master to apply them".into());
                    continue;
                }
                _ => {}
            }
            lines.push(change.to_string());
        }
        if routing {
            self.connector.set_routing(Routing {
                router: new.routes.clone(),
                default: new.default.clone(),
            });
        }
        if let Ok(mut c) = self.cfg.lock() {
            *c = new;
        }
        if lines.is_empty() {
            lines.push("no changes".into());
        }
        for l in &lines {
            tracing::info!("reload: {l}");
        }
        Ok(lines)
    }

    /// The upstream `host` goes to: a route naming an upstream, or an upstream's own name
    /// (then the stream goes to the bastion itself). The default action does not count: a
    /// host nobody routed keeps the direct SSM path. A `reject` rule is refused outright, so
    /// `stdio` cannot walk around it.
    async fn upstream_for(&self, host: &str, port: u16) -> StdioRoute {
        let cfg = self.config();
        if cfg.upstream(host).is_some() {
            return StdioRoute::Upstream(host.to_owned(), "localhost".to_owned());
        }
        let mut d = cfg.routes.decide(&HostRef::parse(host), &Action::Reject);
        if d.resolve_locally {
            match tokio::net::lookup_host((host, port)).await {
                Ok(addrs) => {
                    let addrs: Vec<_> = addrs.map(|a| a.ip()).collect();
                    d = cfg.routes.decide_resolved(host, &d, &addrs);
                }
                Err(e) => {
                    return StdioRoute::Rejected(format!(
                        "cannot resolve {host} here (resolve: local): {e}"
                    ))
                }
            }
        }
        // Dial what was routed: a name that spells an address becomes that address.
        let dest = d.ip.map_or_else(|| host.to_owned(), |ip| ip.to_string());
        match (d.rule, d.action) {
            (Some(_), Action::Upstream(name)) => StdioRoute::Upstream(name, dest),
            (Some(_), Action::Reject) => StdioRoute::Rejected(d.explanation),
            // A malformed host matches no rule; the direct path only looks it up as an
            // instance (a Name tag may contain spaces) and dials nothing by that text.
            _ => StdioRoute::NotRouted,
        }
    }

    async fn open(&self, host: &str, port: u16, mut ex: Exchange) {
        let (name, dest) = match self.upstream_for(host, port).await {
            StdioRoute::Upstream(name, dest) => (name, dest),
            StdioRoute::Rejected(why) => {
                ex.send(&Response::error(ErrorKind::Failed, why)).await;
                return;
            }
            StdioRoute::NotRouted => {
                ex.send(&Response::error(
                    ErrorKind::NotRouted,
                    format!("no route sends {host} to an upstream"),
                ))
                .await;
                return;
            }
        };
        let pool = self.upstreams.read().await.get(&name);
        let Some(pool) = pool else {
            ex.send(&Response::error(
                ErrorKind::UnknownUpstream,
                format!("upstream {name} is not configured"),
            ))
            .await;
            return;
        };
        let stream = match pool.open_stream(&dest, port).await {
            Ok(s) => s,
            Err(e) => {
                ex.send(&Response::error(ErrorKind::Failed, e.to_string()))
                    .await;
                return;
            }
        };
        if !ex.send(&Response::Stream).await {
            return;
        }
        let (sock, early) = ex.into_parts();
        let mut stream = stream;
        if !early.is_empty() {
            use tokio::io::AsyncWriteExt;
            if stream.write_all(&early).await.is_err() {
                return;
            }
        }
        if let Err(e) = crate::relay::relay(sock, stream).await {
            tracing::debug!("stdio stream to {host}:{port} via {name} ended: {e}");
        }
    }
}

impl Handler for Master {
    fn handle(&self, req: Request, mut ex: Exchange) -> HandleFuture<'_> {
        Box::pin(async move {
            let resp = match req {
                Request::Status => Response::Status(self.status().await),
                Request::Connect { upstream } => self.connect(&upstream, &mut ex).await,
                Request::Disconnect { upstream } => self.disconnect(&upstream).await,
                Request::Reload => match self.reload().await {
                    Ok(lines) => Response::Done { lines },
                    Err(e) => Response::error(ErrorKind::Failed, e),
                },
                Request::Stop => {
                    self.request_stop();
                    Response::Done {
                        lines: vec![format!(
                            "master (pid {}) stopping: draining and terminating SSM sessions",
                            std::process::id()
                        )],
                    }
                }
                Request::Open { host, port } => return self.open(&host, port, ex).await,
            };
            ex.send(&resp).await;
        })
    }
}

/// Where the master sends a `stdio` stream.
enum StdioRoute {
    /// Through upstream `.0` to destination `.1`.
    Upstream(String, String),
    /// A rule refuses it; the text says which.
    Rejected(String),
    /// No rule names an upstream: `stdio` goes direct.
    NotRouted,
}
