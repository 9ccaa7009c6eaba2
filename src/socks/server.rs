//! SOCKS5 server shell: accepts clients on a caller-bound TCP or Unix listener, runs the
//! [`proto::Handshake`] core under a time limit, asks a [`Connector`] for the upstream stream,
//! answers with the right reply code and hands both streams to [`crate::relay`]. It owns
//! connection limits, timeouts, credential checks and [`ServerStats`]; it does not route:
//! where a [`Destination`] goes (SSH upstream, direct, reject) is the connector's decision.
//!
//! Lifecycle follows mini-redis `server::run`: the caller binds (tests use `127.0.0.1:0`), a
//! cap on live connections ([`Limits`]) turns clients over it away at once with REP 0x01, and
//! the connection tasks are owned by a `JoinSet`. Shutdown has two phases
//! ([`Server::serve_until`]): when `stop` resolves the listener is closed and the connections in
//! flight carry on; when `abort` resolves (the caller's grace period, or a second signal) the
//! ones still running are aborted. [`run`] does both at once. The accept loop and its backoff
//! live in `accept.rs`, the cap in `limit.rs`.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::proto::{
    AuthPolicy, Credentials, Destination, Handshake, Host, ProtoError, Reply, Step,
};
use crate::redact::Redacted;
use crate::relay::{relay_with, RelayCounters};
pub use accept::Listener;
use limit::Slots;
pub use limit::{Limits, DEFAULT_MAX_CONNECTIONS};
use stats::ActiveGuard;
pub use stats::{ServerStats, StatsSnapshot};

mod accept;
mod conn_log;
mod http;
mod limit;
mod protocol;
mod stats;
pub use protocol::Protocol;

pub use crate::relay::{AsyncStream, BoxedStream};

/// How a connector routed a destination, for the connection's log line: the rule that decided
/// (`routes[2]`, `default`) and where it sent the stream (an upstream's name, `direct`,
/// `reject`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub route: String,
    pub upstream: String,
}

/// What a successful [`Connector::connect`] yields. `bound` is reported to the client as
/// BND.ADDR when known (a direct TCP dial knows its local address; an SSH channel does not).
pub struct Connected {
    pub stream: BoxedStream,
    pub bound: Option<SocketAddr>,
    pub via: Option<Via>,
}

impl Connected {
    pub fn new(stream: impl AsyncStream + 'static) -> Self {
        Self {
            stream: Box::new(stream),
            bound: None,
            via: None,
        }
    }

    pub fn with_bound(mut self, bound: SocketAddr) -> Self {
        self.bound = Some(bound);
        self
    }

    pub fn with_via(mut self, via: Via) -> Self {
        self.via = Some(via);
        self
    }
}

impl fmt::Debug for Connected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connected")
            .field("bound", &self.bound)
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
}

/// A refused or failed connect, with the SOCKS reply code the client should see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reply}: {message}")]
pub struct ConnectError {
    pub reply: Reply,
    pub message: String,
    /// How the destination was routed, when it got that far (for the log line).
    pub via: Option<Via>,
}

impl ConnectError {
    pub fn new(reply: Reply, message: impl Into<String>) -> Self {
        Self {
            reply,
            message: message.into(),
            via: None,
        }
    }

    pub fn with_via(mut self, via: Via) -> Self {
        self.via = Some(via);
        self
    }

    /// Maps an I/O error (see [`reply_for_io_error`]), prefixing `context` to the message.
    pub fn from_io(err: &io::Error, context: impl fmt::Display) -> Self {
        Self::new(reply_for_io_error(err), format!("{context}: {err}"))
    }
}

/// The usual mapping from a dial error to RFC 1928 reply codes; connectors other than
/// [`DirectConnector`] should reuse it so clients see consistent codes.
pub fn reply_for_io_error(err: &io::Error) -> Reply {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => Reply::ConnectionRefused,
        io::ErrorKind::TimedOut => Reply::TtlExpired,
        io::ErrorKind::NetworkUnreachable => Reply::NetworkUnreachable,
        io::ErrorKind::HostUnreachable | io::ErrorKind::AddrNotAvailable => Reply::HostUnreachable,
        io::ErrorKind::PermissionDenied => Reply::NotAllowed,
        _ => Reply::GeneralFailure,
    }
}

pub type ConnectFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Connected, ConnectError>> + Send + 'a>>;

/// Opens the upstream for a CONNECT. Implemented by the router (SSH upstreams, direct, reject);
/// the server bounds each call with [`ServerConfig::connect_timeout`].
pub trait Connector: Send + Sync + 'static {
    fn connect(&self, dest: Destination) -> ConnectFuture<'_>;
}

/// Dials the destination directly over TCP from this host.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirectConnector;

impl Connector for DirectConnector {
    fn connect(&self, dest: Destination) -> ConnectFuture<'_> {
        Box::pin(direct_connect(dest))
    }
}

/// Resolves (for domains) and tries each address in turn, with `TCP_NODELAY` since relayed
/// traffic is often interactive. The last address's error decides the reply code.
pub async fn direct_connect(dest: Destination) -> Result<Connected, ConnectError> {
    let addrs: Vec<SocketAddr> = match &dest.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, dest.port)],
        Host::Domain(name) => tokio::net::lookup_host((name.as_str(), dest.port))
            .await
            .map_err(|e| {
                ConnectError::new(Reply::HostUnreachable, format!("resolving {name}: {e}"))
            })?
            .collect(),
    };
    let mut last_err = ConnectError::new(Reply::HostUnreachable, format!("{dest}: no addresses"));
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(%addr, error = %e, "socks: set_nodelay failed");
                }
                let bound = stream.local_addr().ok();
                let mut connected = Connected::new(stream);
                connected.bound = bound;
                return Ok(connected);
            }
            Err(e) => last_err = ConnectError::from_io(&e, format_args!("connecting to {addr}")),
        }
    }
    Err(last_err)
}

/// Server settings. `Debug` is safe to log: passwords are [`Redacted`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// RFC 1929 users. Non-empty means every client must authenticate (no-auth is refused).
    pub users: Vec<(String, Redacted<String>)>,
    /// Greeting through request must complete within this, or the client is dropped.
    pub handshake_timeout: Duration,
    /// Bound on [`Connector::connect`]; expiry replies `TtlExpired`.
    pub connect_timeout: Duration,
    /// The connection cap and the tunnel idle timeout; [`Server::set_limits`] changes them.
    pub limits: Limits,
    /// SOCKS5 or HTTP CONNECT on the wire; the rest of the server is the same.
    pub protocol: Protocol,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            protocol: Protocol::Socks5,
        }
    }
}

/// Serves SOCKS5 on `listener` until `shutdown` resolves. See [`Server`] to share limits and
/// stats between listeners or to read the stats.
pub async fn run(
    listener: TcpListener,
    cfg: ServerConfig,
    connector: Arc<dyn Connector>,
    shutdown: impl Future<Output = ()>,
) {
    Server::new(cfg, connector).run(listener, shutdown).await;
}

/// [`run`] for a Unix-domain socket listener.
pub async fn run_unix(
    listener: UnixListener,
    cfg: ServerConfig,
    connector: Arc<dyn Connector>,
    shutdown: impl Future<Output = ()>,
) {
    Server::new(cfg, connector)
        .run_unix(listener, shutdown)
        .await;
}

/// A SOCKS5 server: config, connector, connection cap and stats. Cloning shares all of them,
/// so one `Server` can serve a TCP and a Unix listener under one cap.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

/// RFC 1929 users; empty means no authentication.
type Users = Arc<Vec<(String, Redacted<String>)>>;

struct Inner {
    cfg: ServerConfig,
    /// The users in force, swapped whole by [`Server::set_users`]; each handshake reads them
    /// once, when it starts (`cfg.users` is only the initial value).
    users: std::sync::RwLock<Users>,
    connector: Arc<dyn Connector>,
    stats: Arc<ServerStats>,
    slots: Arc<Slots>,
    /// Over-cap clients being answered (their handshake runs first); past this many, further
    /// over-cap clients are closed without an answer, so a flood cannot hold descriptors.
    refusals: Arc<Semaphore>,
}

/// Over-cap clients answered at a time (see `Inner::refusals`).
const MAX_REFUSALS: usize = 64;

impl Server {
    pub fn new(cfg: ServerConfig, connector: Arc<dyn Connector>) -> Self {
        let slots = Slots::new(cfg.limits);
        let stats = Arc::new(ServerStats::default());
        let users = std::sync::RwLock::new(Arc::new(cfg.users.clone()));
        Self {
            inner: Arc::new(Inner {
                users,
                cfg,
                connector,
                stats,
                slots,
                refusals: Arc::new(Semaphore::new(MAX_REFUSALS)),
            }),
        }
    }

    /// Replaces the cap and idle timeout (`reload`). Clients accepted from now on see the new
    /// values; connections already open keep their place and their idle timeout.
    pub fn set_limits(&self, limits: Limits) {
        self.inner.slots.set(limits);
    }

    pub fn limits(&self) -> Limits {
        self.inner.slots.limits()
    }

    /// Replaces the RFC 1929 users (`reload`): every handshake that starts from now on checks
    /// the new ones (an empty list turns authentication off); clients already past their
    /// handshake stay connected.
    pub fn set_users(&self, users: Vec<(String, Redacted<String>)>) {
        let mut u = self.inner.users.write().unwrap_or_else(|p| p.into_inner());
        *u = Arc::new(users);
    }

    fn users(&self) -> Users {
        self.inner
            .users
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn stats(&self) -> Arc<ServerStats> {
        self.inner.stats.clone()
    }

    /// Serves until `shutdown` resolves, then aborts live connections at once.
    pub async fn run(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        self.serve_until(listener.into(), shutdown, std::future::ready(()))
            .await;
    }

    /// [`Server::run`] for a Unix-domain socket listener.
    pub async fn run_unix(&self, listener: UnixListener, shutdown: impl Future<Output = ()>) {
        self.serve_until(listener.into(), shutdown, std::future::ready(()))
            .await;
    }

    /// Serves until `stop` resolves, then drains: the listener is closed (new clients are
    /// refused by the kernel) while the connections in flight run to their end, until `abort`
    /// resolves and whatever is left is aborted. Returns when no connection task is left.
    pub async fn serve_until(
        &self,
        listener: Listener,
        stop: impl Future<Output = ()>,
        abort: impl Future<Output = ()>,
    ) {
        let mut tasks = JoinSet::new();
        self.accept_loop(&listener, stop, &mut tasks).await;
        // Closed now, not after the drain: new clients must be refused while streams finish.
        drop(listener);
        drain(tasks, abort).await;
    }

    /// Runs one client connection to completion (handshake, connect, relay). Public so callers
    /// with their own accept loop (or tests) can reuse it; it does not take a slot under the cap.
    pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send>(&self, client: S) {
        self.serve_client(client, "-").await;
    }

    /// [`Server::serve_connection`] for a client known as `peer` in the log. Logs one line when
    /// the connection closes (or is refused): client, destination, route, upstream, result,
    /// bytes each way and duration.
    pub(super) async fn serve_client<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &self,
        mut client: S,
        peer: &str,
    ) {
        let started = tokio::time::Instant::now();
        let inner = &*self.inner;
        let proto = inner.cfg.protocol.name();
        let _active = ActiveGuard::new(&inner.stats);
        let Some((dest, leftover)) = self.bounded_handshake(&mut client, peer).await else {
            return;
        };
        let upstream = match self.connect(&dest).await {
            Ok(upstream) => upstream,
            Err(e) => {
                conn_log::refused(proto, peer, &dest, &e, started.elapsed());
                inner.stats.record_reply(e.reply);
                let answer = inner.cfg.protocol.reply(e.reply, None);
                let _ = write_flush(&mut client, &answer).await;
                return;
            }
        };
        inner.stats.record_reply(Reply::Succeeded);
        let line = conn_log::Closed::new(proto, peer, &dest, upstream.via.as_ref());
        let answer = inner.cfg.protocol.reply(Reply::Succeeded, upstream.bound);
        if let Err(e) = write_flush(&mut client, &answer).await {
            line.log(&Err(e), &RelayCounters::default(), started.elapsed());
            return;
        }
        tracing::debug!(%dest, early_bytes = leftover.len(), "socks: connected");

        let idle = inner.slots.idle_timeout();
        let own = RelayCounters::default();
        let counters = [&inner.stats.bytes, &own];
        let result = if leftover.is_empty() {
            relay_with(client, upstream.stream, idle, &counters).await
        } else {
            // Bytes the client sent before our reply go upstream first, through the relay so
            // they are counted and their write errors handled like any other.
            let (read, write) = tokio::io::split(client);
            let client = tokio::io::join(io::Cursor::new(leftover).chain(read), write);
            relay_with(client, upstream.stream, idle, &counters).await
        };
        line.log(&result.map(|_| ()), &own, started.elapsed());
    }

    /// Asks the connector for `dest`'s stream, within the connect timeout.
    async fn connect(&self, dest: &Destination) -> Result<Connected, ConnectError> {
        let inner = &*self.inner;
        let connect = inner.connector.connect(dest.clone());
        match tokio::time::timeout(inner.cfg.connect_timeout, connect).await {
            Ok(result) => result,
            Err(_) => Err(ConnectError::new(
                Reply::TtlExpired,
                format!("connect timed out after {:?}", inner.cfg.connect_timeout),
            )),
        }
    }

    /// Answers a client over the cap: its handshake first (bounded like any other, so the
    /// client reads a proper reply rather than a reset), then REP 0x01 and close.
    pub(super) async fn refuse<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &self,
        mut client: S,
        peer: &str,
    ) {
        if let Some((dest, _)) = self.bounded_handshake(&mut client, peer).await {
            let proto = self.inner.cfg.protocol.name();
            conn_log::over_cap(proto, peer, &dest, self.limits().max_connections.get());
            self.inner.stats.record_reply(Reply::GeneralFailure);
            let _ = write_flush(&mut client, &self.inner.cfg.protocol.over_cap()).await;
        }
    }

    /// Greeting, authentication and request within the handshake timeout. `None` when the
    /// client failed or stalled (counted; its wire answer, if any, already written).
    async fn bounded_handshake<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        client: &mut S,
        peer: &str,
    ) -> Option<(Destination, Vec<u8>)> {
        let inner = &*self.inner;
        let users = self.users();
        let policy = if users.is_empty() {
            AuthPolicy::NoAuth
        } else {
            AuthPolicy::UserPass
        };
        let handshake = async {
            match inner.cfg.protocol {
                Protocol::Socks5 => handshake(client, policy, &users, &inner.stats).await,
                Protocol::HttpConnect => http::handshake(client, &users, &inner.stats).await,
            }
        };
        let failure = match tokio::time::timeout(inner.cfg.handshake_timeout, handshake).await {
            Ok(Ok(done)) => return Some(done),
            Ok(Err(HandshakeError::AuthRejected { user })) => {
                // A reject worth a line at the default level: someone holds a wrong password.
                tracing::info!(client = %peer, user = %crate::printable::Printable(&user), "socks: refused: wrong username or password");
                format!("authentication failed for user {user:?}")
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("timed out after {:?}", inner.cfg.handshake_timeout),
        };
        inner
            .stats
            .handshake_failures
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(client = %peer, error = %failure, "socks: handshake failed");
        None
    }
}

/// Lets the connection tasks finish until `abort` resolves, then aborts the rest and waits for
/// them to unwind (their guards keep the stats right).
async fn drain(mut tasks: JoinSet<()>, abort: impl Future<Output = ()>) {
    if !tasks.is_empty() {
        tracing::info!(connections = tasks.len(), "socks: draining");
    }
    tokio::pin!(abort);
    loop {
        tokio::select! {
            biased;
            done = tasks.join_next() => match done {
                Some(done) => log_join(done),
                None => return,
            },
            () = &mut abort => break,
        }
    }
    tracing::info!(
        connections = tasks.len(),
        "socks: aborting connections still open"
    );
    tasks.shutdown().await;
}

fn log_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!(error = %e, "socks: connection task panicked");
        }
    }
}

async fn write_flush<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error(transparent)]
    Proto(#[from] ProtoError),
    #[error("i/o during handshake: {0}")]
    Io(#[from] io::Error),
    #[error("client closed the connection mid-handshake")]
    ClosedEarly,
    #[error("authentication failed for user {user:?}")]
    AuthRejected { user: String },
    #[error(transparent)]
    Http(#[from] crate::http_connect::RequestError),
    #[error("no Proxy-Authorization; the listener has users")]
    NoCredentials,
}

/// Bytes read from the client per call: at least one full message of any kind, small enough
/// that a hostile client cannot make the handshake hold much.
const READ_CHUNK: usize = 1024;

/// Drives the [`Handshake`] core over the stream. Protocol errors get their wire response
/// (e.g. `05 FF`, or a reply code) written before the error is returned.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    policy: AuthPolicy,
    users: &[(String, Redacted<String>)],
    stats: &ServerStats,
) -> Result<(Destination, Vec<u8>), HandshakeError> {
    let mut hs = Handshake::new(policy);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut filled = 0;
    loop {
        let step = hs.feed(buf.get(..filled).unwrap_or_default());
        filled = 0;
        match step {
            Err(e) => {
                if let Some(bytes) = e.wire_response() {
                    if let Some(reply) = e.as_reply() {
                        stats.record_reply(reply);
                    }
                    let _ = write_flush(stream, &bytes).await;
                }
                return Err(e.into());
            }
            Ok(Step::NeedMore) => {
                filled = stream.read(&mut buf).await?;
                if filled == 0 {
                    return Err(HandshakeError::ClosedEarly);
                }
            }
            Ok(Step::Send(bytes)) => write_flush(stream, &bytes).await?,
            Ok(Step::Authenticate(creds)) => {
                let ok = credentials_match(users, &creds);
                if !ok {
                    stats.auth_failures.fetch_add(1, Ordering::Relaxed);
                }
                write_flush(stream, &hs.auth_result(ok)?).await?;
                if !ok {
                    return Err(HandshakeError::AuthRejected {
                        user: creds.username_lossy().into_owned(),
                    });
                }
            }
            Ok(Step::Request(dest)) => return Ok((dest, hs.take_leftover())),
        }
    }
}

/// Checks every configured user without stopping early, comparing bytes in constant time per
/// length, so response timing says little about which part was wrong.
fn credentials_match(users: &[(String, Redacted<String>)], creds: &Credentials) -> bool {
    users.iter().fold(false, |found, (user, pass)| {
        let user_ok = ct_eq(user.as_bytes(), &creds.username);
        let pass_ok = ct_eq(pass.expose().as_bytes(), creds.password.expose());
        found | (user_ok & pass_ok)
    })
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod conn_log_tests;
#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod limit_tests;
#[cfg(test)]
mod tests;
