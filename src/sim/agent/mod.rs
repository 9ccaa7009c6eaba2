//! The simulated agent: the protocol core in the agent role, driven by the same driver as the
//! client, bridging the session to a TCP connection it opens after the handshake (§7.1), or to
//! a command it runs in a pty for a shell session ([`work`] picks which).
//!
//! Like the real agent (reference §12) it acknowledges a client message only once it has
//! written the message to the target ([`gate`], [`shim`]), so its acknowledges come at the
//! target's pace; `write_rate` sets that pace and `ack_race_every` imitates the real agent's
//! send/ack race.

mod chunk;
mod exec;
mod gate;
mod port;
mod redial;
mod shell;
mod shim;
mod work;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::sim::destination::DialError;
use crate::sim::kms::AgentKeys;
use crate::sim::memlink::MemLink;
use crate::sim::registry::{DialTarget, SessionSpec};
use crate::ssm::channel::{Channel, Config, KmsOffer, Role};
use crate::ssm::driver::{
    self, BoxFuture, Chosen, Control, End, Options, Parts, ReconnectError, Status, Transport,
};
use crate::ssm::kms::KeyProvider;
use shim::GatedLink;
use work::AgentWork;

/// Agent behaviour knobs (from `sim` flags).
#[derive(Debug, Clone)]
pub struct AgentKnobs {
    /// `--pace-ms`: sleep per chunk read from the target (the real agent: 1 ms).
    pub pace: Option<Duration>,
    /// `--chunk`: bytes per output message (the real agent: 1024).
    pub chunk: usize,
    /// `--legacy-agent`: skip the handshake, as agents before 2.3 did.
    pub legacy: bool,
    /// `--agent-version`: overrides the instance's version in the HandshakeRequest.
    pub agent_version: Option<String>,
    /// `--write-rate`: bytes per second the agent writes to its target at most. The real agent
    /// writes each client message to its target before acknowledging it; a rate of about
    /// 7 MB/s reproduces its 90–157 ms late acknowledges during an upload burst.
    pub write_rate: Option<u64>,
    /// `--ack-race-every N`: the first acknowledge of every Nth agent message is lost, as in the
    /// real agent's send/ack race; the message is then resent until a duplicate is acknowledged.
    pub ack_race_every: Option<u32>,
    /// `--kms-key-id`: shell sessions (never Port) are KMS-encrypted with this key (§5).
    pub kms_key_id: Option<String>,
    /// `--shell-command`: what a Standard_Stream session runs in its pty (the real agent: `sh`);
    /// run through `sh -c` when it has arguments.
    pub shell_command: String,
}

impl Default for AgentKnobs {
    fn default() -> Self {
        Self {
            pace: None,
            chunk: 1024,
            legacy: false,
            agent_version: None,
            write_rate: None,
            ack_race_every: None,
            kms_key_id: None,
            shell_command: "sh".to_owned(),
        }
    }
}

/// The agent's link, its acknowledges gated on what the target took.
type AgentLink = GatedLink<MemLink>;

/// The agent's link to the service never drops (only the client's WebSocket does).
struct NoReconnect;

impl Transport<AgentLink> for NoReconnect {
    fn reconnect(&mut self, _attempt: u32) -> BoxFuture<Result<AgentLink, ReconnectError>> {
        Box::pin(async { Err(ReconnectError::LinkClosed) })
    }
}

/// Dials the session's destination as the agent does: IMDS is refused with the agent's own
/// text (as `PermissionDenied`, so [`run`] can hand that text to `channel_closed` unchanged).
async fn dial(target: DialTarget) -> std::io::Result<TcpStream> {
    target.connect().await.map_err(|e| match e {
        DialError::Denied(text) => std::io::Error::new(std::io::ErrorKind::PermissionDenied, text),
        other => std::io::Error::other(other),
    })
}

/// Runs one agent session until the target closes, the client terminates, or the service
/// ends it. Returns the text the service puts in `channel_closed`'s Output.
pub async fn run(
    spec: &SessionSpec,
    knobs: &AgentKnobs,
    link: MemLink,
    status: watch::Sender<Status>,
) -> String {
    let mut cfg = Config::new(Role::Agent);
    cfg.session_type = spec.session_type.clone();
    cfg.properties = spec.properties.clone();
    cfg.agent_version = knobs
        .agent_version
        .clone()
        .unwrap_or_else(|| spec.agent_version.clone());
    // As the real agent: encryption is on for every session type but Port, and forces the
    // handshake even where the session type would skip it.
    cfg.kms = knobs
        .kms_key_id
        .clone()
        .filter(|_| spec.session_type != "Port")
        .map(kms_offer);
    let kms = cfg.kms.is_some();
    let handshake = kms || (!knobs.legacy && needs_handshake(&spec.session_type, false));
    cfg.require_handshake = handshake;
    cfg.chunk_size = knobs.chunk.max(1);
    cfg.id_seed = rand::random();
    cfg.unix_ms_at_start = driver::unix_ms();
    let written = Arc::new(AtomicU64::new(0));
    let work = AgentWork::new(&spec.run, knobs, &cfg.agent_version, written.clone());
    let ch = Channel::new(cfg, Instant::now());
    let link = GatedLink::new(link, handshake, knobs.ack_race_every, written);
    let opts = Options {
        pace: knobs.pace.map(|p| (p, knobs.chunk.max(1))),
        // The real agent waits 2 s for its output to be acknowledged once the target closes;
        // on a loaded test machine that can cut a transfer short, so the simulator waits longer.
        drain_timeout: Duration::from_secs(10),
        keys: Some(KeyProvider::new(AgentKeys {
            kms: spec.kms.clone(),
            session_id: spec.session_id.clone(),
            instance_id: spec.instance_id.clone(),
        })),
        ..Options::default()
    };
    let (_cmd_tx, cmd_rx) = mpsc::channel(1);
    let mut terminated = spec.terminated.clone();
    let parts = Parts {
        channel: ch,
        link: Some(link),
        app: Chosen(work),
        transport: NoReconnect,
        opts,
    };
    let control = Control {
        commands: cmd_rx,
        status,
        shutdown: Box::pin(async move {
            let _ = terminated.wait_for(|t| *t).await;
        }),
    };
    let (end, _) = driver::run(parts, control).await;
    match end {
        Ok(End::TargetClosed | End::AppClosed) => String::new(),
        Ok(End::PeerTerminated(_)) | Ok(End::Cancelled) => String::new(),
        Ok(End::ChannelClosed { output }) => output,
        // A refused destination closes the channel with the agent's own words.
        Err(driver::DriverError::AppConnect(e))
            if e.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            e.to_string()
        }
        Err(e) => crate::ssm::api::display_chain(&e),
    }
}

/// A KMS offer with fresh random challenges for `key_id`.
fn kms_offer(key_id: String) -> KmsOffer {
    let (a, b): ([u8; 32], [u8; 32]) = (rand::random(), rand::random());
    let mut proof = [0u8; 64];
    let (first, second) = proof.split_at_mut(32);
    first.copy_from_slice(&a);
    second.copy_from_slice(&b);
    KmsOffer {
        key_id,
        challenge: rand::random(),
        proof,
    }
}

/// Whether the agent opens a session with a handshake, as the real agent decides: Port and
/// NonInteractiveCommands sessions always; Standard_Stream and InteractiveCommands only when
/// the session is KMS-encrypted (the handshake carries the KMS action).
pub fn needs_handshake(session_type: &str, kms: bool) -> bool {
    kms || !matches!(session_type, "Standard_Stream" | "InteractiveCommands")
}
