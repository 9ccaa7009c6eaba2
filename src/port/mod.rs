//! Port sessions (reference §7): the application layer a port-forwarding data channel carries.
//!
//! Local connections (a `forward` listener's, a SOCKS client's) are handed to an [`Opener`];
//! the session's [`PortLayer`] carries them as smux streams ([`mux`], §7.3) or, for agents at or
//! below 3.0.196.0, one at a time ([`basic`], §7.2). Which of the two is decided as the plugin
//! does it, from the HandshakeRequest, once the handshake is done. The simulator's agent uses
//! [`mux::MuxLayer`] in the server role.

pub mod basic;
mod local;
pub mod mux;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::ssm::channel::SessionInfo;
use crate::ssm::driver::{AppLayer, Choose, Chosen};
use crate::ssm::payload::version_greater;

pub use self::basic::BasicLayer;
pub use self::mux::MuxLayer;

/// ClientVersion a port session reports: at least 1.1.70 makes the agent multiplex with smux,
/// and above 1.2.331.0 it turns its smux keepalive off (§4.3), so we need send no NOPs.
pub const MUX_CLIENT_VERSION: &str = "1.2.650.0";

/// Agents above this multiplex LocalPortForwarding sessions (the plugin's gate, §4.3).
pub const MUX_AGENT_VERSION: &str = "3.0.196.0";

/// Agents above this have their smux keepalive off given our ClientVersion; older ones close
/// a session that hears nothing for 30 s, so we send NOPs to them (§7.3).
const NO_KEEPALIVE_AGENT_VERSION: &str = "3.1.1511.0";

/// A local connection (a TCP or Unix socket, a SOCKS client, a test's pipe).
pub use crate::relay::BoxedStream as BoxIo;

/// How opening a stream for a local connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// The destination answered, or nothing refused it within the confirmation time (smux
    /// has no open acknowledge: a successful dial is silent, §7.3).
    Connected,
    /// The instance could not connect to the destination (ConnectToPortError).
    Refused,
    /// The session ended before the stream was confirmed.
    SessionEnded,
}

/// A local connection waiting to be carried.
struct OpenRequest {
    io: BoxIo,
    reply: Option<oneshot::Sender<Opened>>,
}

/// Counters of one port session, shared with status displays.
#[derive(Debug, Default)]
pub struct PortStats {
    pub streams_opened: AtomicU64,
    pub streams_open: AtomicU64,
    pub refused: AtomicU64,
    /// Bytes from local connections to the destination.
    pub bytes_up: AtomicU64,
    /// Bytes from the destination to local connections.
    pub bytes_down: AtomicU64,
}

impl PortStats {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A stream the session opened by itself (the agent's side), counted at once.
    fn stream_started(&self) {
        self.streams_opened.fetch_add(1, Ordering::Relaxed);
        self.streams_open.fetch_add(1, Ordering::Relaxed);
    }

    /// A queued local connection became a stream; it was counted open when queued.
    fn stream_accepted(&self) {
        self.streams_opened.fetch_add(1, Ordering::Relaxed);
    }

    fn stream_ended(&self) {
        let _ = self
            .streams_open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

/// Hands local connections to a running port session. Cheap to clone.
#[derive(Clone)]
pub struct Opener {
    tx: mpsc::Sender<OpenRequest>,
    stats: Arc<PortStats>,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// Queues `io` as a new stream. The receiver says how opening ended; dropping it is fine
    /// (a `forward` listener does not wait). Err gives `io` back: the session is gone.
    ///
    /// The stream counts as open from now on, not from when the session's task takes it: a
    /// burst of connections picking the least-loaded session must see each other.
    pub async fn open(&self, io: BoxIo) -> Result<oneshot::Receiver<Opened>, BoxIo> {
        let (reply, rx) = oneshot::channel();
        let req = OpenRequest {
            io,
            reply: Some(reply),
        };
        self.stats.streams_open.fetch_add(1, Ordering::Relaxed);
        match self.tx.send(req).await {
            Ok(()) => Ok(rx),
            Err(mpsc::error::SendError(req)) => {
                self.stats.stream_ended();
                Err(req.io)
            }
        }
    }

    /// The session's layer is gone (the session ended).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves once the session's layer is gone.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }

    pub fn stats(&self) -> &Arc<PortStats> {
        &self.stats
    }
}

/// Tunables of a client port layer.
#[derive(Debug, Clone, Copy)]
pub struct PortConfig {
    /// smux limits (keepalive is decided from the agent's version).
    pub smux: crate::smux::Config,
    /// How long a new stream waits for a ConnectToPortError before it counts as connected.
    pub confirm_after: Duration,
    /// Local connections queued for the layer at most.
    pub backlog: usize,
}

impl Default for PortConfig {
    fn default() -> Self {
        Self {
            smux: crate::smux::Config::default(),
            confirm_after: Duration::from_millis(250),
            backlog: 1024,
        }
    }
}

/// Which way the agent carries a LocalPortForwarding session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// smux streams, many connections at once (§7.3).
    Mux,
    /// One connection at a time, DisconnectToPort between them (§7.2).
    Basic,
}

impl Mode {
    /// The plugin's choice (§7): mux for a LocalPortForwarding session on an agent above
    /// 3.0.196.0, basic otherwise. The agent makes the same choice from our ClientVersion.
    pub fn for_session(info: &SessionInfo) -> Self {
        let local = info
            .properties
            .get("type")
            .and_then(serde_json::Value::as_str)
            == Some("LocalPortForwarding");
        if local && version_greater(&info.agent_version, MUX_AGENT_VERSION) {
            Self::Mux
        } else {
            Self::Basic
        }
    }
}

/// The client's port layer: undecided until the handshake names the agent, then mux or basic.
pub struct PortLayer {
    state: State,
}

enum State {
    Deciding {
        rx: mpsc::Receiver<OpenRequest>,
        stats: Arc<PortStats>,
        cfg: PortConfig,
    },
    Mux(Box<MuxLayer>),
    Basic(BasicLayer),
    /// Only while switching.
    Gone,
}

impl PortLayer {
    /// A client layer and the opener that feeds it.
    pub fn client(cfg: PortConfig) -> (Chosen<Self>, Opener) {
        let (tx, rx) = mpsc::channel(cfg.backlog.max(1));
        let stats = Arc::new(PortStats::default());
        let opener = Opener {
            tx,
            stats: stats.clone(),
        };
        let state = State::Deciding { rx, stats, cfg };
        (Chosen(Self { state }), opener)
    }
}

impl Choose for PortLayer {
    fn choose(&mut self, session: &SessionInfo) {
        let State::Deciding { rx, stats, cfg } = std::mem::replace(&mut self.state, State::Gone)
        else {
            return;
        };
        let mode = Mode::for_session(session);
        tracing::debug!(?mode, agent = %session.agent_version, "port session mode");
        self.state = match mode {
            Mode::Mux => {
                let mut smux = cfg.smux;
                let quiet = version_greater(&session.agent_version, NO_KEEPALIVE_AGENT_VERSION);
                smux.keepalive = (!quiet).then_some(crate::smux::KEEPALIVE_INTERVAL);
                let layer = MuxLayer::client(smux, rx, stats, cfg.confirm_after);
                State::Mux(Box::new(layer))
            }
            Mode::Basic => State::Basic(BasicLayer::new(rx, stats)),
        };
    }

    fn chosen(&mut self) -> io::Result<&mut dyn AppLayer> {
        match &mut self.state {
            State::Mux(m) => Ok(m.as_mut()),
            State::Basic(b) => Ok(b),
            State::Deciding { .. } | State::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

#[cfg(test)]
mod tests;
