//! What the simulated agent carries on a session, chosen as the real agent chooses it once the
//! handshake is done (A `port.go` `GetSession`, reference §7):
//! - a LocalPortForwarding session from a client at or above 1.1.70, on an agent above
//!   3.0.196.0 (older agents had no mux): a smux server, dialling per stream;
//! - any other LocalPortForwarding session: basic forwarding, dialling on the first bytes after
//!   each DisconnectToPort ([`Redial`]);
//! - anything else (SSH): one connection dialled at once, whose end ends the session.

use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::net::TcpStream;

use super::shim::Target;
use super::{dial, redial::Redial};
use crate::port::{BoxIo, MuxLayer};
use crate::sim::registry::DialTarget;
use crate::smux;
use crate::ssm::channel::SessionInfo;
use crate::ssm::driver::{AppLayer, ByteStream, Choose};
use crate::ssm::payload::{version_at_least, version_greater};

/// Client versions from which the agent multiplexes LocalPortForwarding (§4.3).
const MUX_CLIENT: &str = "1.1.70";
/// Agents above this have a smux server at all.
const MUX_AGENT: &str = "3.0.196.0";
/// Clients above this get no smux keepalive from the agent.
const QUIET_CLIENT: &str = "1.2.331.0";

/// The agent's destination and write accounting, until the handshake picks a mode.
pub(super) struct Plan {
    pub(super) target: DialTarget,
    pub(super) agent_version: String,
    /// Bytes the destination took (the acknowledge gate waits for them).
    pub(super) written: Arc<AtomicU64>,
    pub(super) rate: Option<u64>,
}

pub(super) enum AgentPort {
    Deciding(Plan),
    Ssh(ByteStream<Target<TcpStream>>),
    Mux(Box<MuxLayer>),
    Basic(Redial),
    /// The destination is one the agent refuses (IMDS): the session ends with this text.
    Denied(String),
    Gone,
}

impl AgentPort {
    fn pick(plan: Plan, client: &SessionInfo) -> Self {
        let local =
            client.properties.get("type").and_then(|t| t.as_str()) == Some("LocalPortForwarding");
        let Plan {
            target,
            agent_version,
            written,
            rate,
        } = plan;
        if let Some(text) = target.denied() {
            return Self::Denied(text);
        }
        if !local {
            let w = written.clone();
            let connect = async move { Ok(Target::new(dial(target).await?, w, rate)) };
            return Self::Ssh(ByteStream::connect(Box::pin(connect)));
        }
        let mux = version_at_least(&client.agent_version, MUX_CLIENT)
            && version_greater(&agent_version, MUX_AGENT);
        if !mux {
            return Self::Basic(Redial::new(target, written, rate));
        }
        let quiet = version_greater(&client.agent_version, QUIET_CLIENT);
        let cfg = smux::Config {
            keepalive: (!quiet).then_some(smux::KEEPALIVE_INTERVAL),
            ..smux::Config::default()
        };
        let dialer: crate::port::mux::Dial = Box::new(move || {
            let t = target.clone();
            Box::pin(async move { Ok(Box::new(dial(t).await?) as BoxIo) })
        });
        // The smux session's intake is what the destination "took": the real agent's smux
        // server reads each message off the data channel before acknowledging it.
        Self::Mux(Box::new(MuxLayer::server(cfg, dialer, written)))
    }
}

impl Choose for AgentPort {
    fn choose(&mut self, session: &SessionInfo) {
        if let Self::Deciding(plan) = std::mem::replace(self, Self::Gone) {
            *self = Self::pick(plan, session);
        }
    }

    fn chosen(&mut self) -> io::Result<&mut dyn AppLayer> {
        match self {
            Self::Ssh(s) => Ok(s),
            Self::Mux(m) => Ok(m.as_mut()),
            Self::Basic(b) => Ok(b),
            Self::Denied(text) => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                text.clone(),
            )),
            Self::Deciding(_) | Self::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}
