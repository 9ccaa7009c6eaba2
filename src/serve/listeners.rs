//! [shell] The master's SOCKS5 and HTTP CONNECT listeners: binding them (at start and on `reload`), the set that
//! runs, and how a reload turns one set into the next.
//!
//! A reload keeps every listener whose socket (TCP address or Unix path) is still configured,
//! with its open connections, and hands it the new users and limits, which the next handshake
//! uses. Sockets only the new config names are bound *before* anything is applied, so a bind
//! failure refuses the reload as a whole; sockets only the old config names stop accepting
//! while their connections carry on (they end with the master's drain at the latest).

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::ServeError;
use crate::config::Listener;
use crate::control::proto::MasterPhase;
use crate::redact::Redacted;
use crate::socks::server::{
    self as socks, Connector, Protocol, Server, ServerConfig, StatsSnapshot,
};

/// One bound socket, not yet served.
pub struct BoundListener {
    cfg: Listener,
    socket: socks::Listener,
    /// `socks5://IP:PORT` or `http://IP:PORT` (the port the kernel picked for `:0`), or
    /// `unix:PATH`.
    address: String,
}

/// Bound listeners, ready to serve (bind before announcing readiness), in config order.
pub struct Bound {
    pub(super) listeners: Vec<BoundListener>,
    pub addresses: Vec<String>,
    /// The forwards' listeners (`serve::bind` adds them).
    pub forwards: Vec<super::forwards::BoundForward>,
}

/// Binds every listener of `listeners`. Unix sockets get mode 0600 before they accept.
pub async fn bind(listeners: &[Listener]) -> Result<Bound, ServeError> {
    let mut b = Bound {
        listeners: Vec::new(),
        addresses: Vec::new(),
        forwards: Vec::new(),
    };
    for l in listeners {
        let bound = bind_one(l).await?;
        b.addresses.push(bound.address.clone());
        b.listeners.push(bound);
    }
    Ok(b)
}

/// Binds one listener.
pub async fn bind_one(l: &Listener) -> Result<BoundListener, ServeError> {
    let (socket, address) = match l {
        Listener::Tcp { addr, .. } | Listener::Http { addr, .. } => {
            let t = TcpListener::bind(addr)
                .await
                .map_err(|error| ServeError::Bind {
                    what: addr.to_string(),
                    error,
                })?;
            let local = t
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| addr.to_string());
            let scheme = server_config(l).protocol.name();
            (t.into(), format!("{scheme}://{local}"))
        }
        Listener::Unix { path, .. } => {
            let u = crate::paths::bind_unix_socket(path).map_err(|error| ServeError::Bind {
                what: path.display().to_string(),
                error,
            })?;
            // Ours to remove when the listener closes (`stop`), so none is left behind.
            let file = crate::paths::SocketFile::claim(path);
            (
                socks::Listener::OwnedUnix(u, file),
                format!("unix:{}", path.display()),
            )
        }
    };
    Ok(BoundListener {
        cfg: l.clone(),
        socket,
        address,
    })
}

/// The RFC 1929 users of `l`, as the SOCKS server checks them.
fn users(l: &Listener) -> Vec<(String, Redacted<String>)> {
    l.users()
        .iter()
        .map(|u| (u.username.clone(), u.password.clone()))
        .collect()
}

fn server_config(l: &Listener) -> ServerConfig {
    ServerConfig {
        users: users(l),
        limits: l.limits(),
        protocol: match l {
            Listener::Http { .. } => Protocol::HttpConnect,
            Listener::Tcp { .. } | Listener::Unix { .. } => Protocol::Socks5,
        },
        ..ServerConfig::default()
    }
}

/// What every listener shares: the connector, and the master's phase, whose stop closes the
/// sockets and whose closing aborts the connections left.
pub struct Lifecycle {
    pub connector: Arc<dyn Connector>,
    pub phase: watch::Receiver<MasterPhase>,
}

impl Lifecycle {
    fn reached(&self, pred: fn(MasterPhase) -> bool) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.phase.clone();
        async move {
            let _ = rx.wait_for(|p| pred(*p)).await;
        }
    }
}

/// A listener being served. Dropping `stop` closes its socket.
struct Running {
    cfg: Listener,
    address: String,
    server: Server,
    stop: oneshot::Sender<()>,
    task: Option<JoinHandle<()>>,
}

/// The listeners the master serves, in config order, and the removed ones whose connections
/// still run (their counters stay in `status`).
#[derive(Default)]
pub struct ListenerSet {
    running: Vec<Running>,
    retired: Vec<(Server, Option<JoinHandle<()>>)>,
}

impl BoundListener {
    /// `socks5://IP:PORT`, `http://IP:PORT` (the port the kernel picked for `:0`) or
    /// `unix:PATH`.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl ListenerSet {
    /// Starts serving `b`.
    fn spawn(b: BoundListener, life: &Lifecycle) -> Running {
        let server = Server::new(server_config(&b.cfg), life.connector.clone());
        let (stop, own_stop) = oneshot::channel();
        let stopped = life.reached(|p| p != MasterPhase::Running);
        let closing = life.reached(|p| p == MasterPhase::Closing);
        let s = server.clone();
        let socket = b.socket;
        let task = tokio::spawn(async move {
            let stop = async move {
                tokio::select! {
                    _ = own_stop => {}
                    () = stopped => {}
                }
            };
            s.serve_until(socket, stop, closing).await;
        });
        Running {
            cfg: b.cfg,
            address: b.address,
            server,
            stop,
            task: Some(task),
        }
    }

    /// Serves every listener of `bound`.
    pub fn start(&mut self, bound: Bound, life: &Lifecycle) {
        for b in bound.listeners {
            self.running.push(Self::spawn(b, life));
        }
    }

    /// Turns the set into `new` (see the module doc). `matched[i]` is the running listener
    /// `new[i]` keeps ([`crate::config::match_listeners`]); `fresh` holds, in order, the bound
    /// sockets of the unmatched ones.
    pub fn reload(
        &mut self,
        new: &[Listener],
        matched: &[Option<usize>],
        fresh: Vec<BoundListener>,
        life: &Lifecycle,
    ) {
        let mut old: Vec<Option<Running>> = self.running.drain(..).map(Some).collect();
        let mut fresh = fresh.into_iter();
        for (l, m) in new.iter().zip(matched) {
            let kept = m.and_then(|i| old.get_mut(i)).and_then(Option::take);
            let running = match kept {
                Some(mut r) => {
                    if r.cfg.users() != l.users() {
                        r.server.set_users(users(l));
                    }
                    if r.cfg.limits() != l.limits() {
                        r.server.set_limits(l.limits());
                    }
                    r.cfg = l.clone();
                    r
                }
                None => match fresh.next() {
                    Some(b) => Self::spawn(b, life),
                    None => continue,
                },
            };
            self.running.push(running);
        }
        for r in old.into_iter().flatten() {
            tracing::info!("listener {} closed; its open connections go on", r.address);
            if let Listener::Unix { path, .. } = &r.cfg {
                // Unlinked at once: nobody can connect through the path any more, and no
                // stale socket file is left behind.
                if let Err(e) = std::fs::remove_file(path) {
                    tracing::debug!("removing {}: {e}", path.display());
                }
            }
            drop(r.stop);
            self.retired.push((r.server, r.task));
        }
    }

    /// The addresses served, in config order.
    pub fn addresses(&self) -> Vec<String> {
        self.running.iter().map(|r| r.address.clone()).collect()
    }

    /// The counters of every listener, removed ones included.
    pub fn stats(&self) -> StatsSnapshot {
        let mut total = StatsSnapshot::default();
        let servers = self.running.iter().map(|r| &r.server);
        for s in servers.chain(self.retired.iter().map(|(s, _)| s)) {
            total.add(&s.stats().snapshot());
        }
        total
    }

    /// The listener tasks, for the drain to wait on (each ends once its connections have).
    pub fn take_tasks(&mut self) -> Vec<JoinHandle<()>> {
        let running = self.running.iter_mut().map(|r| &mut r.task);
        running
            .chain(self.retired.iter_mut().map(|(_, t)| t))
            .filter_map(Option::take)
            .collect()
    }
}
