//! \[shell\] The master's answers to control requests: status, connect, disconnect, reload,
//! stop and `open` (a stream through a pool, spliced onto the control connection).
//!
//! The master owns the running config, the upstream registry shared with the SOCKS connector,
//! the SOCKS listeners and its life phase. Reload re-reads the config through a caller-supplied
//! loader and applies `config::diff` as a whole or not at all: what only a restart can apply,
//! or a new listener that cannot be bound, refuses the reload before anything changes. Pools
//! that did not change, and the streams open through them, are left alone; a `pool_size`
//! change resizes the pool in place; kept listeners keep their connections and take new
//! users and limits for the next handshake (see [`super::listeners`]).
//! Forwards (`forwards:`) are applied the same way: new sockets are bound before anything
//! changes, kept forwards keep their connections (see [`super::forwards`]).
//!
//! Stopping is a drain: the first `stop` (or signal) moves the phase from running to draining,
//! which closes the SOCKS listeners and refuses new `open` streams while those in flight go on;
//! [`Master::drain`] waits for them up to the grace period (`drain_timeout_secs`). A second
//! stop, or the end of the grace period, moves to closing: what is left is aborted, and then the
//! caller terminates every SSM session.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

mod connect;
mod forwards;

use super::connector::{Routing, RoutingConnector};
use super::forwards::ForwardSet;
use super::listeners::{self, Bound, BoundListener, Lifecycle, ListenerSet};
use crate::config::{self, Change, Config};
use crate::control::proto::{ErrorKind, MasterPhase, Request, Response, StatusReport};
use crate::control::server::{Exchange, HandleFuture, Handler};
use crate::route::{Action, HostRef};
use crate::upstream::pool::PoolOptions;
use crate::upstream::Upstreams;

/// How long the closing phase may take to unwind what the drain left (aborted tasks).
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Re-reads the configuration for `reload`.
pub type Loader = Box<dyn Fn() -> anyhow::Result<Config> + Send + Sync>;

/// Shared state of a running master.
pub struct Master {
    cfg: Mutex<Config>,
    pub upstreams: Arc<tokio::sync::RwLock<Upstreams>>,
    pub connector: Arc<RoutingConnector>,
    opts: PoolOptions,
    started: Instant,
    /// The SOCKS listeners, started by `serve` ([`Master::start_listeners`]).
    listeners: Mutex<ListenerSet>,
    /// The port forwards, started with the listeners.
    forwards: Mutex<ForwardSet>,
    phase: watch::Sender<MasterPhase>,
    /// `open` streams (stdio through the master) in flight; the drain waits for them.
    relays: watch::Sender<usize>,
    loader: Loader,
    /// Serialises reloads, connects and disconnects against each other.
    admin: tokio::sync::Mutex<()>,
    /// Which config this master runs (a file path, or ad-hoc flags), for `route`'s answer.
    config_source: std::sync::OnceLock<String>,
}

/// Counts one `open` stream in the master's `relays` while it lives.
struct RelayGuard(watch::Sender<usize>);

impl RelayGuard {
    fn new(relays: &watch::Sender<usize>) -> Self {
        relays.send_modify(|n| *n += 1);
        Self(relays.clone())
    }
}

impl Drop for RelayGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The phase a stop request moves to from `p`.
fn after_stop(p: MasterPhase) -> MasterPhase {
    match p {
        MasterPhase::Running => MasterPhase::Draining,
        MasterPhase::Draining | MasterPhase::Closing => MasterPhase::Closing,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Master {
    pub fn new(cfg: Config, ups: Upstreams, opts: PoolOptions, loader: Loader) -> Self {
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
            started: Instant::now(),
            listeners: Mutex::new(ListenerSet::default()),
            forwards: Mutex::new(ForwardSet::default()),
            phase: watch::channel(MasterPhase::Running).0,
            relays: watch::channel(0).0,
            loader,
            admin: tokio::sync::Mutex::new(()),
            config_source: std::sync::OnceLock::new(),
        }
    }

    /// Names the config this master runs (set once, at start), for `route`'s answer.
    pub fn set_config_source(&self, source: String) {
        let _ = self.config_source.set(source);
    }

    /// `route` asked of the master: the decision under the running config, and which it is.
    async fn route(&self, destination: &str) -> Response {
        let cfg = self.config();
        match super::route_query::explain(&cfg, destination).await {
            Ok(line) => Response::Done {
                lines: vec![
                    line,
                    format!(
                        "judged by the running master (pid {}) with {}",
                        std::process::id(),
                        self.config_source
                            .get()
                            .map_or("its config", String::as_str)
                    ),
                ],
            },
            Err(e) => Response::error(ErrorKind::BadRequest, e.to_string()),
        }
    }

    /// Resolves once the phase satisfies `pred` (at once if it already does).
    fn phase_reached(
        &self,
        pred: fn(MasterPhase) -> bool,
    ) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.phase.subscribe();
        async move {
            let _ = rx.wait_for(|p| pred(*p)).await;
        }
    }

    /// Resolves once a stop was requested: time to stop accepting.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        self.phase_reached(|p| p != MasterPhase::Running)
    }

    /// Resolves once the drain is over (or cut short): time to abort what is left.
    pub fn closing(&self) -> impl Future<Output = ()> + Send + 'static {
        self.phase_reached(|p| p == MasterPhase::Closing)
    }

    /// A stop request (the `stop` command, SIGTERM, SIGINT): the first starts the drain, the
    /// next one cuts it short. Returns the phase it moved to.
    pub fn request_stop(&self) -> MasterPhase {
        let mut now = MasterPhase::Running;
        self.phase.send_modify(|p| {
            *p = after_stop(*p);
            now = *p;
        });
        now
    }

    /// What the SOCKS listeners share with the master.
    fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            connector: self.connector.clone(),
            phase: self.phase.subscribe(),
        }
    }

    /// Serves the bound listeners and forwards until the master stops (see [`Master::drain`]).
    pub fn start_listeners(&self, mut bound: Bound) {
        let forwards = std::mem::take(&mut bound.forwards);
        lock(&self.forwards).start(forwards, &self.forward_context());
        lock(&self.listeners).start(bound, &self.lifecycle());
    }

    /// The grace period for streams in flight when stopping.
    pub fn drain_timeout(&self) -> Duration {
        lock(&self.cfg).drain_timeout
    }

    /// Waits for the SOCKS listeners (which end once their connections have) and the `open`
    /// streams to finish, at most the grace period or until a second stop; then moves to
    /// closing, which aborts the rest, and waits (bounded) for that to unwind.
    pub async fn drain(&self) {
        let servers = lock(&self.listeners).take_tasks();
        let forwards = lock(&self.forwards).take_tasks();
        let grace = self.drain_timeout();
        let mut relays = self.relays.subscribe();
        let done = async move {
            futures_util::future::join_all(servers).await;
            futures_util::future::join_all(forwards).await;
            let _ = relays.wait_for(|n| *n == 0).await;
        };
        tokio::pin!(done);
        let drained = tokio::select! {
            () = &mut done => true,
            () = tokio::time::sleep(grace) => {
                tracing::warn!("grace period of {grace:?} over; closing the streams still open");
                false
            }
            () = self.closing() => {
                tracing::warn!("second stop: closing the streams still open");
                false
            }
        };
        self.phase.send_replace(MasterPhase::Closing);
        if drained {
            tracing::info!("drained: every stream finished");
        } else if tokio::time::timeout(CLOSE_WAIT, done).await.is_err() {
            tracing::warn!("streams did not unwind within {CLOSE_WAIT:?}");
        }
    }

    fn config(&self) -> Config {
        lock(&self.cfg).clone()
    }

    pub async fn status(&self) -> StatusReport {
        let upstreams = self.upstreams.read().await.snapshot();
        let forwards = lock(&self.forwards).status(&upstreams);
        let (listeners, socks) = {
            let set = lock(&self.listeners);
            (set.addresses(), set.stats())
        };
        StatusReport {
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
            listeners,
            phase: *self.phase.borrow(),
            socks,
            upstreams,
            forwards,
        }
    }

    async fn disconnect(&self, name: &str) -> Response {
        let _admin = self.admin.lock().await;
        let pool = self.upstreams.read().await.get(name);
        let Some(pool) = pool else {
            return self.unknown_upstream(name).await;
        };
        let before = pool.snapshot().connections_up;
        pool.shutdown().await;
        Response::Done {
            lines: vec![format!(
                "upstream {name} disconnected ({before} SSM sessions terminated); `session-proxy connect {name}` brings it back"
            )],
        }
    }

    /// Re-reads the config and applies what changed, all of it or, when something cannot be
    /// applied, none of it (the error names what and why).
    pub async fn reload(&self) -> Result<Vec<String>, String> {
        let _admin = self.admin.lock().await;
        if *self.phase.borrow() != MasterPhase::Running {
            return Err(refused("the master is stopping"));
        }
        let new = (self.loader)().map_err(|e| refused(&crate::exit::render(&e)))?;
        let old = self.config();
        let changes = config::diff(&old, &new);
        let blocked: Vec<String> = changes
            .iter()
            .filter(|c| matches!(c, Change::RestartRequired(_)))
            .map(ToString::to_string)
            .collect();
        if !blocked.is_empty() {
            return Err(refused(&format!(
                "{}; restart the master (`session-proxy stop`, then `session-proxy serve`) to apply it",
                blocked.join("; ")
            )));
        }
        let matched = config::match_listeners(&old.listeners, &new.listeners);
        let fresh = bind_unmatched(&new.listeners, &matched)
            .await
            .map_err(|e| refused(&bind_failure(e)))?;
        let matched_forwards = config::match_forwards(&old.forwards, &new.forwards);
        let fresh_forwards = super::forwards::bind_unmatched(&new.forwards, &matched_forwards)
            .await
            .map_err(|e| refused(&e.to_string()))?;
        // Nothing below can fail: from here on the whole new config goes into force.
        let listening: Vec<String> = fresh
            .iter()
            .map(|b| format!("listening on {}", b.address()))
            .collect();
        lock(&self.listeners).reload(&new.listeners, &matched, fresh, &self.lifecycle());
        let ctx = self.forward_context();
        let (fw, fresh) = (&new.forwards, fresh_forwards);
        super::forwards::reload(&self.forwards, fw, &matched_forwards, fresh, &ctx).await;
        let mut lines = Vec::new();
        for change in &changes {
            lines.push(self.apply(change, &new).await);
        }
        lines.extend(listening);
        if changes
            .iter()
            .any(|c| matches!(c, Change::RoutesChanged | Change::DefaultChanged))
        {
            self.connector.set_routing(Routing {
                router: new.routes.clone(),
                default: new.default.clone(),
            });
        }
        *lock(&self.cfg) = new;
        if lines.is_empty() {
            lines.push("no changes".into());
        }
        tracing::info!("reload: {}", lines.join("; "));
        Ok(lines)
    }

    /// Applies one upstream or log-level change (listeners and routing are applied as a whole
    /// by `reload`) and returns the line that reports it.
    async fn apply(&self, change: &Change, new: &Config) -> String {
        match change {
            // Old pools are shut down after the registry lock is released.
            Change::UpstreamRemoved(name) => {
                let old = self.upstreams.write().await.take(name);
                if let Some(p) = old {
                    p.shutdown().await;
                }
            }
            Change::UpstreamResized {
                name, new: size, ..
            } => {
                if let Some(pool) = self.upstreams.read().await.get(name) {
                    pool.resize(*size);
                }
            }
            Change::UpstreamAdded(name)
            | Change::UpstreamChanged(name)
            | Change::UpstreamKindChanged { name, .. } => {
                if let Some(up) = new.upstream(name) {
                    // Every kind runs (`UpstreamHandle`); a config that validated runs too.
                    let replaced = self.upstreams.write().await.replace(up.clone(), &self.opts);
                    if let Ok(Some(p)) = replaced {
                        p.shutdown().await;
                    }
                }
            }
            Change::LogLevelChanged => {
                return crate::logging::apply_config_line(new.log_level.as_deref())
            }
            _ => {}
        }
        change.to_string()
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

    /// `forward --via UPSTREAM`: that upstream, unless a reject route covers `host`.
    async fn through(&self, via: &str, host: &str, port: u16) -> StdioRoute {
        match self.upstream_for(host, port).await {
            StdioRoute::Rejected(why) => StdioRoute::Rejected(why),
            _ if self.config().upstream(via).is_none() => StdioRoute::NotRouted,
            _ => StdioRoute::Upstream(via.to_owned(), host.to_owned()),
        }
    }

    async fn open(&self, host: &str, port: u16, via: Option<&str>, mut ex: Exchange) {
        if *self.phase.borrow() != MasterPhase::Running {
            ex.send(&Response::error(
                ErrorKind::Failed,
                "the master is stopping; start it again with `session-proxy serve`",
            ))
            .await;
            return;
        }
        let _relay = RelayGuard::new(&self.relays);
        let route = match via {
            Some(via) => self.through(via, host, port).await,
            None => self.upstream_for(host, port).await,
        };
        let (name, dest) = match route {
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

impl Master {
    /// What a stop request answers, by the phase it moved to.
    pub fn stop_message(&self, phase: MasterPhase) -> String {
        let pid = std::process::id();
        match phase {
            MasterPhase::Draining => format!(
                "master (pid {pid}) stopping: streams in flight get up to {}s to finish (stop again to cut them short), then every SSM session is terminated",
                self.drain_timeout().as_secs()
            ),
            _ => format!(
                "master (pid {pid}) stopping now: closing the streams still open and terminating every SSM session"
            ),
        }
    }
}

impl Handler for Master {
    fn handle(&self, req: Request, mut ex: Exchange) -> HandleFuture<'_> {
        Box::pin(async move {
            let resp = match req {
                Request::Status => Response::Status(self.status().await),
                Request::Connect { upstream } => {
                    let r = self.connect_named(&upstream, &mut ex).await;
                    log_admin("connect", &upstream, &r);
                    r
                }
                Request::Disconnect { upstream } => {
                    let r = self.disconnect_named(&upstream).await;
                    log_admin("disconnect", &upstream, &r);
                    r
                }
                Request::Reload => match self.reload().await {
                    Ok(lines) => Response::Done { lines },
                    Err(e) => {
                        tracing::warn!("{e}");
                        Response::error(ErrorKind::Failed, e)
                    }
                },
                Request::Route { destination } => self.route(&destination).await,
                Request::Stop => {
                    // Answer first: moving to closing aborts the control connections.
                    let next = after_stop(*self.phase.borrow());
                    let lines = vec![self.stop_message(next)];
                    tracing::info!("stop: {}", lines.join("; "));
                    ex.send(&Response::Done { lines }).await;
                    self.request_stop();
                    return;
                }
                Request::Open { host, port, via } => {
                    return self.open(&host, port, via.as_deref(), ex).await
                }
            };
            ex.send(&resp).await;
        })
    }
}

/// One log line for a `connect` or `disconnect` the master answered: what it did, or why not.
fn log_admin(what: &str, upstream: &str, resp: &Response) {
    match resp {
        Response::Done { lines } => tracing::info!("{what} {upstream}: {}", lines.join("; ")),
        Response::Error { message, .. } => tracing::warn!("{what} {upstream} failed: {message}"),
        _ => {}
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

/// A refused reload's message.
fn refused(why: &str) -> String {
    format!("reload refused, keeping the running config as it is: {why}")
}

/// Why a new listener could not be bound, with the fix that applies to a reload.
fn bind_failure(e: super::ServeError) -> String {
    match e {
        super::ServeError::Bind { what, error } => {
            format!("cannot listen on {what}: {error}; free it or change listeners: in the config")
        }
        other => other.to_string(),
    }
}

/// Binds, in order, the listeners of `new` that keep no running one (`matched[i]` is `None`).
async fn bind_unmatched(
    new: &[config::Listener],
    matched: &[Option<usize>],
) -> Result<Vec<BoundListener>, super::ServeError> {
    let mut fresh = Vec::new();
    for (l, m) in new.iter().zip(matched) {
        if m.is_none() {
            fresh.push(listeners::bind_one(l).await?);
        }
    }
    Ok(fresh)
}
