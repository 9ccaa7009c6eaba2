//! The tokio shell around [`Channel`]: moves frames between a link (WebSocket) and the core,
//! bytes between the core and an application layer, fires timers and pings, and replaces the
//! link when it drops (resume) without losing channel state.
//!
//! Both ends use it: the client (`stdio`, upstream pools) with a [`Transport`] that calls
//! ResumeSession and dials again, and the simulator's agent with one that never reconnects.
//! The state machine lives in `machine` (one method per event), the application side behind
//! [`AppLayer`], resuming in `resume`, and the errors in `error`.

mod app;
mod batch;
mod error;
mod machine;
mod outbox;
mod pace;
mod port;
mod resume;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::Sink;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use app::{AppConnect, AppLayer, ByteStream, Choose, Chosen, Outgoing};
pub use error::{DriverError, ReconnectError, ResumeError};
pub(crate) use outbox::Outbox;

use crate::ssm::channel::{Channel, SessionInfo, Stats};
use crate::ssm::kms::KeyProvider;
use crate::ssm::message::MAX_FRAME_LEN;
use crate::ssm::payload::Flag;

/// The WebSocket type used on both ends (plain TCP on loopback, TLS to AWS).
pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Boxed future used by [`Transport`] implementations.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

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

/// Plain words for logs and messages (never the `Debug` form).
impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ChannelClosed { output } if output.is_empty() => {
                f.write_str("the service closed the channel")
            }
            Self::ChannelClosed { output } => write!(
                f,
                "the service closed the channel: {}",
                crate::printable::Printable(output)
            ),
            Self::TargetClosed => f.write_str("the target closed its connection"),
            Self::PeerTerminated(Flag::DisconnectToPort) => {
                f.write_str("the peer disconnected from the port")
            }
            Self::PeerTerminated(Flag::TerminateSession) => {
                f.write_str("the peer terminated the session")
            }
            Self::PeerTerminated(Flag::ConnectToPortError) => {
                f.write_str("the instance could not connect to the port")
            }
            Self::PeerTerminated(Flag::Unknown(v)) => {
                write!(f, "the peer ended the session (flag {v})")
            }
            Self::Cancelled => f.write_str("stopped on our side"),
            Self::AppClosed => f.write_str("the application stopped reading"),
        }
    }
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

    /// Asks the kernel not to wake a reader until `bytes` are queued (see `batch`); false when
    /// the link has no socket of its own (the simulator's in-process link) or refused.
    fn set_read_low_water(&mut self, _bytes: usize) -> bool {
        false
    }
}

impl Link for WsStream {
    type Err = tokio_tungstenite::tungstenite::Error;

    fn set_read_low_water(&mut self, bytes: usize) -> bool {
        let socket = self.get_ref().get_ref();
        match batch::set_receive_low_water(socket, bytes) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("cannot batch data-channel reads: SO_RCVLOWAT: {e}");
                false
            }
        }
    }
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
    /// Link reads that gave messages: one per wake-up of the reader, so fewer than the
    /// messages received when reads are batched (see `batch`).
    pub link_reads: u64,
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
    /// Runs the KMS calls of an encrypted session (§5); without one, a KMSEncryption request
    /// is answered Failed and the session ends with [`DriverError::Kms`].
    pub keys: Option<KeyProvider>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(30),
            reconnect_budget: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(2),
            io_buffer: 64 * 1024,
            pace: None,
            keys: None,
        }
    }
}

/// Bytes tungstenite reads (and zero-fills first) per socket read; see [`ws_config`].
const WS_READ_BUFFER: usize = 16 * 1024;

/// Size caps for WebSocket frames and messages: one data-channel message at most.
///
/// The read buffer is small on purpose: tungstenite zero-fills `read_buffer_size` bytes before
/// every socket read, and at the agent's pace (one ~1.1 KiB frame per wake-up) its 128 KiB
/// default meant a 128 KiB memset per message, measured at 7 % of stdio's CPU and evicting
/// the caches the next wake-up needs. 16 KiB still takes a dozen queued frames per read.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
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

/// What a driver runs: the channel core, the first link (None: ask the transport at once),
/// the application layer, the transport for replacement links, and the tunables.
pub struct Parts<P, T, L> {
    pub channel: Channel,
    pub link: Option<L>,
    pub app: P,
    pub transport: T,
    pub opts: Options,
}

/// How the owner talks to a running driver: commands in, status out, and a shutdown signal
/// (ends the session at once, as `End::Cancelled`).
pub struct Control {
    pub commands: mpsc::Receiver<Command>,
    pub status: watch::Sender<Status>,
    pub shutdown: BoxFuture<()>,
}

/// Runs a session until it ends; returns how, and the link if it is still up (to close it).
pub async fn run<P, T, L>(
    parts: Parts<P, T, L>,
    control: Control,
) -> (Result<End, DriverError>, Option<L>)
where
    P: AppLayer,
    T: Transport<L>,
    L: Link,
{
    machine::Driver::new(parts, control).run().await
}

#[cfg(test)]
mod tests;
