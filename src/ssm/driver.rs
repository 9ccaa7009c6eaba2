//! The tokio shell around [`Channel`]: pumps frames between a WebSocket and the core, bytes
//! between the core and an application stream, fires timers, pings, and replaces the WebSocket
//! when it drops (resume) without losing channel state.
//!
//! Both ends use it: the client (`stdio`, upstream pools) with a [`Transport`] that calls
//! ResumeSession and dials again, and the simulator's agent with one that waits for the client
//! to come back. Everything that can block is a `select!` branch, so a slow application never
//! stops acknowledgements, and a slow WebSocket never stops reading (no write/write deadlock).

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{Sink, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::ssm::channel::{Channel, Event, Role, SessionInfo, Stats};
use crate::ssm::message::MAX_FRAME_LEN;
use crate::ssm::payload::{Flag, OpenDataChannel};

/// The WebSocket type used on both ends (plain TCP on loopback, TLS to AWS).
pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Boxed future used by [`Transport`] implementations.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Why the driver stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("data channel lost and could not be resumed: {0}")]
    ResumeFailed(String),
    #[error("session handshake failed: {0}")]
    Handshake(String),
    #[error("local stream error: {0}")]
    App(#[source] std::io::Error),
    #[error("could not open the local side of the session: {0}")]
    AppConnect(#[source] std::io::Error),
}

/// How a session ended normally.
#[derive(Debug)]
pub enum End {
    /// The service sent channel_closed (the only authoritative end, §9.1).
    ChannelClosed { output: String },
    /// Agent role: the target closed its connection and everything was acknowledged.
    TargetClosed,
    /// The peer asked to end the session with a Flag (TerminateSession / DisconnectToPort).
    PeerTerminated(Flag),
    /// Our side asked to stop (signal, TerminateSession API, shutdown).
    Cancelled,
    /// Client role: the application stopped reading (stdout closed) after its input ended.
    AppClosed,
}

/// What a transport says when it cannot produce a WebSocket.
#[derive(Debug, Clone)]
pub enum ReconnectError {
    /// Worth trying again after a pause.
    Retry(String),
    /// The session is gone (terminated, expired, token refused): stop now.
    Fatal(String),
}

/// A message link carrying data-channel frames: a WebSocket, or the simulator's in-process
/// link between its service relay and its agent.
pub trait Link:
    futures_util::Stream<Item = Result<WsMessage, Self::Err>>
    + Sink<WsMessage, Error = Self::Err>
    + Unpin
    + Send
    + 'static
{
    type Err: std::fmt::Display + Send;
}

impl Link for WsStream {
    type Err = tokio_tungstenite::tungstenite::Error;
}

/// Produces replacement links after a drop; the returned link is ready for binary frames
/// (the OpenDataChannel frame already sent, or already received on the agent side).
pub trait Transport<L: Link>: Send + 'static {
    fn reconnect(&mut self, attempt: u32) -> BoxFuture<Result<L, ReconnectError>>;
}

/// Commands from the owner of a running driver.
#[derive(Debug)]
pub enum Command {
    /// Send a Flag message (e.g. TerminateSession).
    SendFlag(Flag),
    /// Stop: send TerminateSession, wait briefly for its acknowledge, then end.
    Terminate,
}

/// Live view of a driver, for status displays and tests.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub connected: bool,
    pub ready: bool,
    pub reconnects: u32,
    pub session: Option<SessionInfo>,
    pub stats: Stats,
}

/// Tunables of the shell.
#[derive(Debug, Clone)]
pub struct Options {
    /// WebSocket ping period; the plugin's 5 min is too long behind idle-killing proxies.
    pub ping_interval: Duration,
    /// How long to keep trying to resume after the WebSocket drops.
    pub reconnect_budget: Duration,
    /// Agent role: how long to wait for outstanding output to be acknowledged at the end.
    pub drain_timeout: Duration,
    /// Size of the application read buffer.
    pub io_buffer: usize,
    /// Read at most `.1` bytes from the application per `.0` (the simulator's `--pace-ms`,
    /// imitating the agent's 1 KiB-then-sleep-1 ms loop). Scheduled on a fixed grid so timer
    /// granularity does not lower the average rate.
    pub pace: Option<(Duration, usize)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(30),
            reconnect_budget: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(2),
            io_buffer: 64 * 1024,
            pace: None,
        }
    }
}

/// Size caps for WebSocket frames and messages: one data-channel message at most.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_LEN))
        .max_frame_size(Some(MAX_FRAME_LEN))
}

/// Milliseconds since the Unix epoch, for CreatedDate.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
}

/// Dials `url` (verbatim, §1.4) with Nagle off (§10 item 18) and sends the OpenDataChannel frame.
pub async fn open(
    url: &str,
    token: &str,
    client_id: &str,
    client_version: &str,
) -> Result<WsStream, tokio_tungstenite::tungstenite::Error> {
    let (mut ws, _resp) =
        tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true).await?;
    let frame = OpenDataChannel {
        message_schema_version: "1.0".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        token_value: token.to_owned(),
        client_id: Some(client_id.to_owned()),
        client_version: Some(client_version.to_owned()),
    };
    futures_util::SinkExt::send(&mut ws, WsMessage::text(frame.to_json())).await?;
    Ok(ws)
}

/// Messages waiting for a sink, plus whether the sink holds unflushed ones. Pumping is
/// cancel-safe (a message leaves the queue only when the sink takes it), so it can sit in a
/// `select!` next to the reader; the dirty flag keeps the pump armed until the flush completes.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    q: VecDeque<WsMessage>,
    dirty: bool,
}

impl Outbox {
    pub(crate) fn push(&mut self, m: WsMessage) {
        self.q.push_back(m);
    }

    /// Nothing queued and nothing left unflushed.
    pub(crate) fn is_idle(&self) -> bool {
        self.q.is_empty() && !self.dirty
    }

    /// Forgets everything (the sink is gone).
    pub(crate) fn clear(&mut self) {
        self.q.clear();
        self.dirty = false;
    }

    /// Sends everything queued and flushes.
    pub(crate) async fn pump<S>(&mut self, sink: &mut S) -> Result<(), S::Error>
    where
        S: Sink<WsMessage> + Unpin,
    {
        poll_fn(|cx| loop {
            if self.q.is_empty() {
                let r = Pin::new(&mut *sink).poll_flush(cx);
                if r.is_ready() {
                    self.dirty = false;
                }
                return r;
            }
            match Pin::new(&mut *sink).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            if let Some(m) = self.q.pop_front() {
                self.dirty = true;
                if let Err(e) = Pin::new(&mut *sink).start_send(m) {
                    return Poll::Ready(Err(e));
                }
            }
        })
        .await
    }
}

fn backoff(attempt: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
    let jitter = rand::random::<u64>() % (base / 2 + 1);
    Duration::from_millis(base / 2 + jitter)
}

/// Opens the application side once the session is ready (the agent dials its target only
/// after the handshake, §7.1; the client's stream exists from the start).
pub type AppConnect<A> = BoxFuture<std::io::Result<A>>;

/// Runs a session until it ends. `ws` is the first WebSocket (None: ask `transport` at once).
#[allow(clippy::too_many_arguments)]
pub async fn run<A, T, L>(
    mut ch: Channel,
    ws: Option<L>,
    app: AppConnect<A>,
    mut transport: T,
    opts: Options,
    mut commands: mpsc::Receiver<Command>,
    status: watch::Sender<Status>,
    shutdown: impl Future<Output = ()> + Send,
) -> (Result<End, DriverError>, Option<L>)
where
    A: AsyncRead + AsyncWrite + Send + 'static,
    T: Transport<L>,
    L: Link,
{
    let role = ch.role();
    let mut app_connect = Some(app);
    let mut app_pending: Option<AppConnect<A>> = None;
    let mut app_r: Option<tokio::io::ReadHalf<A>> = None;
    let mut app_w: Option<tokio::io::WriteHalf<A>> = None;
    let mut app_read_open = true;
    let mut in_buf = vec![0u8; opts.io_buffer.max(1024)];
    let mut out_buf = vec![0u8; opts.io_buffer.max(1024)];
    let (mut out_pos, mut out_len) = (0usize, 0usize);
    // The application writer may buffer (stdout is line-buffered): flush once it is caught up.
    let mut app_unflushed = false;

    let (mut sink, mut stream) = match ws {
        Some(ws) => {
            let (s, r) = ws.split();
            (Some(s), Some(r))
        }
        None => (None, None),
    };
    let mut outq = Outbox::default();
    let mut reconnect: Option<BoxFuture<Result<L, ReconnectError>>> = None;
    let mut reconnect_at: Option<Instant> = if stream.is_none() {
        Some(Instant::now())
    } else {
        None
    };
    let mut attempts = 0u32;
    let mut lost_since: Option<Instant> = reconnect_at;
    let mut ping = tokio::time::interval(opts.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut st = Status {
        connected: stream.is_some(),
        ..Status::default()
    };
    let mut terminating: Option<Instant> = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut ended: Option<Result<End, DriverError>> = None;
    let mut closed_output: Option<String> = None;
    tokio::pin!(shutdown);
    let mut shutdown_done = false;
    let mut next_read_at: Option<Instant> = None;

    if stream.is_none() {
        ch.on_disconnect();
    }

    loop {
        // 1. Hand the core's output to the WebSocket queue, and collect events.
        while let Some(frame) = ch.poll_transmit() {
            outq.push(WsMessage::Binary(frame));
        }
        while let Some(ev) = ch.poll_event() {
            match ev {
                Event::Ready { session, .. } => {
                    st.ready = true;
                    st.session = Some(session);
                    if let Some(c) = app_connect.take() {
                        app_pending = Some(c);
                    }
                }
                Event::HandshakeFailed(r) => ended = Some(Err(DriverError::Handshake(r))),
                Event::Closed { output } => closed_output = Some(output),
                Event::Flag(f @ (Flag::TerminateSession | Flag::DisconnectToPort))
                    if role == Role::Agent =>
                {
                    ended = Some(Ok(End::PeerTerminated(f)));
                }
                Event::Flag(_) | Event::Readable | Event::Flushed => {}
            }
        }
        // Refill the application-bound buffer from the core.
        if out_pos == out_len && app_w.is_some() {
            out_pos = 0;
            out_len = ch.read(&mut out_buf);
        }
        // channel_closed ends the session once everything delivered reached the application.
        if let Some(output) = &closed_output {
            if out_pos == out_len && (ch.ready_bytes() == 0 || app_w.is_none()) {
                if let Some(w) = app_w.as_mut() {
                    let _ = AsyncWriteExt::shutdown(w).await;
                }
                ended = Some(Ok(End::ChannelClosed {
                    output: output.clone(),
                }));
            }
        }
        if let Some(t) = terminating {
            if ch.is_flushed() || Instant::now() >= t {
                ended = Some(Ok(End::Cancelled));
            }
        }
        if let Some(d) = drain_deadline {
            if ch.is_flushed() || Instant::now() >= d {
                ended = Some(Ok(End::TargetClosed));
            }
        }
        if ended.is_some() {
            // Best effort: push out what is queued (e.g. the last acknowledges).
            if let Some(s) = sink.as_mut() {
                let _ = tokio::time::timeout(opts.drain_timeout, outq.pump(s)).await;
            }
            break;
        }
        st.stats = ch.stats().clone();
        st.connected = stream.is_some();
        status.send_replace(st.clone());

        let timeout = ch.poll_timeout();
        let mut cap = ch.send_capacity().min(in_buf.len());
        if let Some((_, chunk)) = opts.pace {
            cap = cap.min(chunk.max(1));
        }
        let paced = next_read_at.is_some_and(|t| t > Instant::now());
        let want_read =
            app_read_open && cap > 0 && app_r.is_some() && terminating.is_none() && !paced;
        let pace_wait = if paced && app_read_open {
            next_read_at
        } else {
            None
        };
        let want_write = out_pos < out_len && app_w.is_some();
        let want_flush = app_unflushed && !want_write && app_w.is_some();
        let reconnect_due = reconnect_at;

        tokio::select! {
            biased;
            () = &mut shutdown, if !shutdown_done => {
                shutdown_done = true;
                ended = Some(Ok(End::Cancelled));
            }
            cmd = commands.recv() => match cmd {
                Some(Command::SendFlag(f)) => ch.send_flag(Instant::now(), f),
                Some(Command::Terminate) | None => {
                    if terminating.is_none() {
                        ch.send_flag(Instant::now(), Flag::TerminateSession);
                        terminating = Some(Instant::now() + Duration::from_secs(1));
                    }
                }
            },
            msg = async { stream.as_mut()?.next().await }, if stream.is_some() => {
                let now = Instant::now();
                match msg {
                    Some(Ok(WsMessage::Binary(b))) => { let _ = ch.handle_frame(now, &b); }
                    Some(Ok(WsMessage::Text(t))) => { let _ = ch.handle_frame(now, t.as_bytes()); }
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                    Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => {
                        stream = None;
                        sink = None;
                        outq.clear();
                        ch.on_disconnect();
                        // After channel_closed the service hangs up on purpose: nothing to resume.
                        if closed_output.is_none() {
                            tracing::info!("data channel WebSocket closed; resuming");
                            lost_since = Some(now);
                            attempts = 0;
                            reconnect_at = Some(now);
                        }
                    }
                }
            }
            r = async { match sink.as_mut() { Some(s) => outq.pump(s).await, None => Ok(()) } }, if sink.is_some() && !outq.is_idle() => {
                if let Err(e) = r {
                    stream = None;
                    sink = None;
                    outq.clear();
                    ch.on_disconnect();
                    if closed_output.is_none() {
                        tracing::info!("data channel WebSocket write failed ({e}); resuming");
                        lost_since = Some(Instant::now());
                        attempts = 0;
                        reconnect_at = Some(Instant::now());
                    }
                }
            }
            res = async { match app_pending.as_mut() { Some(f) => f.await, None => std::future::pending().await } }, if app_pending.is_some() => {
                app_pending = None;
                match res {
                    Ok(a) => {
                        let (r, w) = tokio::io::split(a);
                        app_r = Some(r);
                        app_w = Some(w);
                    }
                    Err(e) => ended = Some(Err(DriverError::AppConnect(e))),
                }
            }
            n = async { match app_r.as_mut() { Some(r) => r.read(in_buf.get_mut(..cap).unwrap_or_default()).await, None => std::future::pending().await } }, if want_read => {
                match n {
                    Ok(0) | Err(_) => {
                        app_read_open = false;
                        ch.close_write();
                        if role == Role::Agent {
                            drain_deadline = Some(Instant::now() + opts.drain_timeout);
                        }
                    }
                    Ok(n) => {
                        let now = Instant::now();
                        let taken = ch.write(now, in_buf.get(..n).unwrap_or_default());
                        debug_assert_eq!(taken, n);
                        if let Some((every, _)) = opts.pace {
                            // Fixed grid, but never bank more than a few ms of idle credit.
                            let grid = next_read_at.unwrap_or(now) + every;
                            next_read_at = Some(grid.max(now.checked_sub(every * 4).unwrap_or(now)));
                        }
                    }
                }
            }
            w = async {
                match app_w.as_mut() {
                    Some(w) if want_write => w.write(out_buf.get(out_pos..out_len).unwrap_or_default()).await.map(Some),
                    Some(w) => w.flush().await.map(|()| None),
                    None => std::future::pending().await,
                }
            }, if want_write || want_flush => {
                match w {
                    Ok(Some(0)) | Err(_) => {
                        // The application stopped reading: nothing more can be delivered.
                        app_w = None;
                        out_pos = out_len;
                        if !app_read_open || role == Role::Agent {
                            ended = Some(Ok(End::AppClosed));
                        }
                    }
                    Ok(Some(n)) => {
                        out_pos += n;
                        app_unflushed = true;
                    }
                    Ok(None) => app_unflushed = false,
                }
            }
            () = async { match timeout { Some(t) => tokio::time::sleep_until(t.into()).await, None => std::future::pending().await } }, if timeout.is_some() => {
                ch.handle_timeout(Instant::now());
            }
            () = async { match reconnect_due { Some(t) => tokio::time::sleep_until(t.into()).await, None => std::future::pending().await } }, if reconnect_due.is_some() && reconnect.is_none() => {
                reconnect_at = None;
                reconnect = Some(transport.reconnect(attempts));
                attempts += 1;
            }
            r = async { match reconnect.as_mut() { Some(f) => f.await, None => std::future::pending().await } }, if reconnect.is_some() => {
                reconnect = None;
                match r {
                    Ok(ws) => {
                        let (s, r) = ws.split();
                        sink = Some(s);
                        stream = Some(r);
                        outq.clear();
                        ch.on_reconnect(Instant::now());
                        st.reconnects += 1;
                        lost_since = None;
                        tracing::info!(reconnects = st.reconnects, "data channel resumed");
                    }
                    Err(ReconnectError::Fatal(m)) => ended = Some(Err(DriverError::ResumeFailed(m))),
                    Err(ReconnectError::Retry(m)) => {
                        let lost = lost_since.map(|t| t.elapsed()).unwrap_or_default();
                        if lost >= opts.reconnect_budget {
                            ended = Some(Err(DriverError::ResumeFailed(format!(
                                "gave up after {} attempts over {}s: {m}", attempts, lost.as_secs()))));
                        } else {
                            let d = backoff(attempts);
                            tracing::info!("resume attempt {attempts} failed ({m}); retrying in {d:?}");
                            reconnect_at = Some(Instant::now() + d);
                        }
                    }
                }
            }
            () = async { match pace_wait { Some(t) => tokio::time::sleep_until(t.into()).await, None => std::future::pending().await } }, if pace_wait.is_some() => {}
            _ = ping.tick() => {
                if sink.is_some() {
                    outq.push(WsMessage::Ping(bytes::Bytes::from_static(b"keepalive")));
                }
            }
        }
    }
    let ws = match (sink, stream) {
        (Some(s), Some(r)) => s.reunite(r).ok(),
        _ => None,
    };
    let end = ended.unwrap_or(Ok(End::Cancelled));
    if let Some(w) = app_w.as_mut() {
        let _ = w.flush().await;
    }
    st.stats = ch.stats().clone();
    st.connected = false;
    status.send_replace(st);
    (end, ws)
}
