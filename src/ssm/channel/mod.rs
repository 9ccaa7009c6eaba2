//! The data-channel state machine, sans-IO, for both ends (client and agent).
//!
//! Shape (after quinn-proto): the caller feeds [`Channel::handle_frame`] with each received
//! WebSocket message, [`Channel::write`] with application bytes and [`Channel::handle_timeout`]
//! when [`Channel::poll_timeout`] passes; after any of these it drains
//! [`Channel::poll_transmit`] (frames to send) and [`Channel::poll_event`] until `None`, and
//! reads delivered bytes with [`Channel::read`]. The channel never reads a clock, sleeps or
//! spawns: time comes in as `now`.
//!
//! Reliability follows reference §6 (per-message acks, RTO from RTT, reorder buffer,
//! re-acknowledged duplicates) with deliberate departures:
//! - pacing is a bounded in-flight window instead of a 1 ms sleep per message;
//! - a message is resent as soon as messages sent after it are acknowledged (an ack gap), so
//!   one loss does not stall a full window for seconds;
//! - the timer fires only once no acknowledge has come for a whole RTO (at least 100 ms,
//!   backed off while nothing comes), instead of looking for overdue messages on every tick.
//!   An agent that acknowledges late because it writes each message to its target first
//!   (reference §12) therefore causes no resends: its acknowledges keep coming, just late.
//!   Loss detection is in `send`.

mod cipher;
mod handshake;
mod incoming;
mod kms;
mod recv;
mod retransmit;
mod rtt;
mod send;
mod stats;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_kms;
#[cfg(test)]
mod tests_recv;
#[cfg(test)]
mod tests_retransmit;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use uuid::Uuid;

pub use cipher::{CipherError, DataKey, SessionCipher, DATA_KEY_LEN, OVERHEAD};
pub use handshake::{agent_judge, agent_request, client_response, HandshakeFailure, SessionInfo};
pub use kms::{EncryptionFailure, KeyRequest, KmsOffer, ENCRYPTED_MESSAGE, KMS_ACTION};
pub use stats::Stats;

use crate::ssm::message::{self, flags, DecodeError, Message, MessageType, PayloadType};
use crate::ssm::payload::{Acknowledge, ChannelClosed, Flag, HandshakeRequest};
use recv::RecvBuffer;
use rtt::RttEstimator;
use send::SendBuffer;

/// ClientVersion we report. Below 1.1.70 the agent never switches a port session to smux
/// multiplexing (§4.3, §7), so SSH and port sessions stay plain byte streams.
pub const CLIENT_VERSION: &str = "1.1.0.0";

/// Room for a whole acknowledge frame (header, and the JSON with the longest message type
/// name, a UUID and a 20-digit sequence number), so that writing one never reallocates.
const ACK_FRAME_CAPACITY: usize = message::HEADER_SIZE + 224;

/// Which end of the data channel this core plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Agent,
}

/// Tunables. Defaults suit a client talking to the real service.
#[derive(Debug, Clone)]
pub struct Config {
    pub role: Role,
    /// Largest payload per outgoing stream message (the official ends use 1024).
    pub chunk_size: usize,
    /// Cap on written-but-unacknowledged payload bytes; `write` accepts no more past it.
    pub send_buffer: usize,
    /// Cap on bytes held for messages that arrived ahead of a gap.
    pub reorder_buffer: usize,
    /// Cap on delivered bytes the application has not read yet.
    pub ready_buffer: usize,
    /// Client role: the ClientVersion reported in the HandshakeResponse.
    pub client_version: String,
    /// Agent role: the AgentVersion reported in the HandshakeRequest.
    pub agent_version: String,
    /// Agent role: SessionType and document properties offered in the handshake.
    pub session_type: String,
    pub properties: serde_json::Value,
    /// Agent role: false imitates agents (and shells) that skip the handshake.
    pub require_handshake: bool,
    /// Agent role: how long to wait for the HandshakeResponse (15 s in the agent), and then
    /// for each KMS step.
    pub handshake_timeout: Duration,
    /// Agent role: encrypt the session with this KMS key (forces the handshake, §5).
    pub kms: Option<KmsOffer>,
    /// Seed for message ids; any value works, a random one in production.
    pub id_seed: u64,
    /// Unix time in ms corresponding to the `now` given to [`Channel::new`] (for CreatedDate).
    pub unix_ms_at_start: u64,
}

impl Config {
    pub fn new(role: Role) -> Self {
        Self {
            role,
            chunk_size: 1024,
            send_buffer: 1 << 20,
            reorder_buffer: 4 << 20,
            ready_buffer: 4 << 20,
            client_version: CLIENT_VERSION.to_owned(),
            agent_version: "3.3.0.0".to_owned(),
            session_type: "Port".to_owned(),
            properties: serde_json::json!({"portNumber": "22"}),
            require_handshake: true,
            handshake_timeout: Duration::from_secs(15),
            kms: None,
            id_seed: 0x5e55_1011,
            unix_ms_at_start: 1_700_000_000_000,
        }
    }
}

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The handshake finished (or the agent skipped it); data may flow. `session` is what the
    /// agent offered (empty when it sent no HandshakeRequest).
    Ready {
        session: SessionInfo,
        customer_message: String,
    },
    /// Agent role: the client's HandshakeResponse refused an action, or it never came.
    HandshakeFailed(HandshakeFailure),
    /// The handshake waits for this KMS call; answer with [`Channel::provide_key`].
    KeyNeeded(KeyRequest),
    /// Client role: the encrypted session cannot go on (a payload did not decrypt).
    EncryptionFailed(EncryptionFailure),
    /// New bytes are available from [`Channel::read`].
    Readable,
    /// A Flag payload from the peer (TerminateSession, DisconnectToPort, ConnectToPortError).
    Flag(Flag),
    /// The service closed the channel; `output` carries its reason text, if any.
    Closed { output: String },
    /// Everything written was acknowledged (after the write side was closed).
    Flushed,
}

/// Handshake progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Client: waiting for HandshakeRequest or first output. Agent: waiting for the response.
    Handshaking,
    /// Client: responded, waiting for HandshakeComplete.
    Responded,
    Ready,
    Failed,
}

/// The data-channel state machine. See the module docs for the calling contract.
#[derive(Debug)]
pub struct Channel {
    cfg: Config,
    start: Instant,
    /// The latest `now` given to us: reads take no time argument, yet may release held early
    /// messages (a handshake message among them needs a time to answer with).
    latest: Instant,
    phase: Phase,
    send: SendBuffer,
    recv: RecvBuffer,
    rtt: RttEstimator,
    outbox: VecDeque<Bytes>,
    events: VecDeque<Event>,
    stats: Stats,
    paused: bool,
    connected: bool,
    closed: bool,
    write_closed: bool,
    flushed_reported: bool,
    /// Timer resends since the last acknowledge (each doubles the timer).
    rto_backoff: u32,
    /// The timer's probe was acknowledged and no original since: unless originals follow
    /// at once (the peer had only stalled), what was sent before the probe is lost.
    probe_answered: bool,
    /// Round trip of the latest answered resend while no original has been acknowledged since
    /// (a lost tail being repaired): the peer's queue has drained, so the RTO, grown by late
    /// acknowledges during the burst, overstates how long an answer takes now.
    resend_answer_rtt: Option<Duration>,
    handshake_deadline: Option<Instant>,
    agent_request: Option<HandshakeRequest>,
    id_state: u64,
    handshake_started: Option<Instant>,
    pending_session: Option<SessionInfo>,
    /// The KMS step the handshake waits for, if any.
    kms_wait: Option<kms::KmsWait>,
    /// Set once the KMS data key is agreed: payloads are sealed and opened from then on.
    cipher: Option<SessionCipher>,
}

impl Channel {
    /// Creates a channel. In the agent role the HandshakeRequest (sequence 0) is queued at once
    /// unless `require_handshake` is false.
    pub fn new(cfg: Config, now: Instant) -> Self {
        let mut ch = Self {
            id_state: cfg.id_seed,
            cfg,
            start: now,
            latest: now,
            phase: Phase::Handshaking,
            send: SendBuffer::default(),
            recv: RecvBuffer::default(),
            rtt: RttEstimator::default(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            paused: false,
            connected: true,
            closed: false,
            write_closed: false,
            flushed_reported: false,
            rto_backoff: 0,
            probe_answered: false,
            resend_answer_rtt: None,
            handshake_deadline: None,
            agent_request: None,
            handshake_started: None,
            pending_session: None,
            kms_wait: None,
            cipher: None,
        };
        if ch.cfg.role == Role::Agent {
            if ch.cfg.require_handshake || ch.cfg.kms.is_some() {
                let kms = ch.cfg.kms.as_ref().map(kms::offer_parameters);
                let req = agent_request(
                    &ch.cfg.agent_version,
                    &ch.cfg.session_type,
                    &ch.cfg.properties,
                    kms,
                );
                ch.transmit_stream(
                    now,
                    PayloadType::HandshakeRequest,
                    Bytes::from(req.to_bytes()),
                );
                ch.agent_request = Some(req);
                ch.handshake_deadline = Some(now + ch.cfg.handshake_timeout);
                ch.handshake_started = Some(now);
            } else {
                ch.become_ready(SessionInfo::default(), String::new());
            }
        }
        ch
    }

    pub fn role(&self) -> Role {
        self.cfg.role
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Current retransmission timeout.
    pub fn rto(&self) -> Duration {
        self.rtt.rto()
    }

    /// Bytes `write` would accept right now.
    pub fn send_capacity(&self) -> usize {
        if self.write_closed || self.closed {
            return 0;
        }
        self.cfg
            .send_buffer
            .saturating_sub(self.send.buffered_bytes())
    }

    /// True when everything written has been acknowledged by the peer.
    pub fn is_flushed(&self) -> bool {
        self.send.is_empty()
    }

    pub fn unacked_bytes(&self) -> usize {
        self.send.unacked_bytes()
    }

    pub fn buffered_send_bytes(&self) -> usize {
        self.send.buffered_bytes()
    }

    pub fn reorder_bytes(&self) -> usize {
        self.recv.reorder_bytes()
    }

    pub fn ready_bytes(&self) -> usize {
        self.recv.ready_bytes()
    }

    /// Accepts up to [`send_capacity`](Self::send_capacity) bytes of stream data, split into
    /// `chunk_size` messages. Returns how many bytes were taken (0 means "try again later").
    pub fn write(&mut self, now: Instant, data: &[u8]) -> usize {
        let n = data.len().min(self.send_capacity());
        let Some(accepted) = data.get(..n) else {
            return 0;
        };
        for chunk in accepted.chunks(self.cfg.chunk_size.max(1)) {
            self.send
                .push_pending(PayloadType::Output, Bytes::copy_from_slice(chunk));
        }
        self.stats.peak_send_buffer_bytes = self
            .stats
            .peak_send_buffer_bytes
            .max(self.send.buffered_bytes() as u64);
        self.flush_pending(now);
        n
    }

    /// Sends a Flag message (sequenced and acknowledged like data, §7.5).
    pub fn send_flag(&mut self, now: Instant, flag: Flag) {
        self.send
            .push_pending(PayloadType::Flag, Bytes::copy_from_slice(&flag.to_bytes()));
        self.flush_pending(now);
    }

    /// Sends a stream message of any payload type (e.g. Size for terminals).
    pub fn send_payload(&mut self, now: Instant, ptype: PayloadType, payload: Bytes) {
        if payload.is_empty() {
            return;
        }
        self.send.push_pending(ptype, payload);
        self.flush_pending(now);
    }

    /// The application will write no more. [`Event::Flushed`] follows once all is acknowledged.
    pub fn close_write(&mut self) {
        self.write_closed = true;
        self.check_flushed();
    }

    /// Copies delivered bytes into `buf`; returns 0 when none are ready. The bytes are of one
    /// payload type; [`read_typed`](Self::read_typed) says which.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        self.read_typed(buf).map_or(0, |(_, n)| n)
    }

    /// Copies delivered bytes of one payload type into `buf`: Output, or at a client StdErr
    /// and ExitCode (§8), at an agent Size. None when nothing is ready.
    pub fn read_typed(&mut self, buf: &mut [u8]) -> Option<(PayloadType, usize)> {
        let got = self.recv.read_into(buf);
        self.release_early(self.latest);
        got
    }

    /// Next frame to put on the WebSocket (binary message).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.outbox.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let resend = self.resend_deadline();
        match (resend, self.handshake_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs timers: retransmission of overdue messages and the agent's handshake deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.latest = self.latest.max(now);
        if let Some(d) = self.handshake_deadline {
            if now >= d && self.phase != Phase::Ready {
                self.handshake_deadline = None;
                self.phase = Phase::Failed;
                self.events
                    .push_back(Event::HandshakeFailed(HandshakeFailure::TimedOut));
            }
        }
        if self.resend_deadline().is_some_and(|d| now >= d) {
            self.on_resend_timer(now);
        }
    }

    /// The transport went away: nothing can be sent until [`on_reconnect`](Self::on_reconnect).
    /// Frames not yet taken from `poll_transmit` are discarded (they are retransmitted later).
    pub fn on_disconnect(&mut self) {
        self.connected = false;
        self.outbox.clear();
    }

    /// A new WebSocket is open (resume): clear pause, resend everything unacknowledged at once,
    /// and send anything that was held back. Sequence state is kept (§9.3).
    pub fn on_reconnect(&mut self, now: Instant) {
        self.connected = true;
        self.paused = false;
        self.outbox.clear();
        self.rto_backoff = 0;
        self.probe_answered = false;
        self.resend_answer_rtt = None;
        let frames = self.send.all_unacked(now);
        self.stats.retransmits += frames.len() as u64;
        self.outbox.extend(frames);
        self.flush_pending(now);
    }

    /// Handles one received WebSocket message. Undecodable frames are dropped unacknowledged
    /// (as both official ends do) and reported; the channel stays usable.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> Result<(), DecodeError> {
        let msg = match Message::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                self.stats.decode_errors += 1;
                return Err(e);
            }
        };
        self.handle_message(now, msg);
        Ok(())
    }

    /// Handles one decoded message.
    pub fn handle_message(&mut self, now: Instant, msg: Message) {
        self.latest = self.latest.max(now);
        match &msg.message_type {
            MessageType::Acknowledge => {
                self.paused = false;
                self.on_ack(now, &msg);
            }
            t if *t == self.incoming_stream_type() => {
                self.paused = false;
                self.on_stream(now, msg);
            }
            MessageType::ChannelClosed => {
                let output = ChannelClosed::from_bytes(&msg.payload)
                    .map(|c| c.output)
                    .unwrap_or_default();
                if !self.closed {
                    self.closed = true;
                    self.events.push_back(Event::Closed { output });
                }
            }
            MessageType::PausePublication => self.paused = true,
            MessageType::StartPublication => {
                self.paused = false;
                self.flush_pending(now);
            }
            // Our own stream type echoed back, agent_session_state, unknown types: ignore.
            _ => {}
        }
    }

    fn incoming_stream_type(&self) -> MessageType {
        match self.cfg.role {
            Role::Client => MessageType::OutputStreamData,
            Role::Agent => MessageType::InputStreamData,
        }
    }

    fn outgoing_stream_type(&self) -> MessageType {
        match self.cfg.role {
            Role::Client => MessageType::InputStreamData,
            Role::Agent => MessageType::OutputStreamData,
        }
    }

    fn become_ready(&mut self, mut session: SessionInfo, customer_message: String) {
        if self.phase == Phase::Ready {
            return;
        }
        session.customer_message.clone_from(&customer_message);
        self.phase = Phase::Ready;
        self.events.push_back(Event::Ready {
            session,
            customer_message,
        });
    }

    fn check_flushed(&mut self) {
        if self.write_closed && !self.flushed_reported && self.send.is_empty() {
            self.flushed_reported = true;
            self.events.push_back(Event::Flushed);
        }
    }

    /// Sequences and transmits pending data while allowed.
    fn flush_pending(&mut self, now: Instant) {
        if self.phase != Phase::Ready || self.paused || !self.connected {
            return;
        }
        while let Some((ptype, chunk)) = self.send.pop_pending() {
            if let Some(chunk) = self.seal_outgoing(ptype, chunk) {
                self.transmit_stream(now, ptype, chunk);
            }
        }
    }

    /// Assigns the next sequence number, encodes, queues for sending and keeps for resends.
    fn transmit_stream(&mut self, now: Instant, ptype: PayloadType, payload: Bytes) {
        let seq = self.send.next_seq;
        let flags = if self.cfg.role == Role::Agent && seq == 0 {
            flags::SYN
        } else {
            0
        };
        let msg = Message {
            message_type: self.outgoing_stream_type(),
            schema_version: 1,
            created_date: self.created_ms(now),
            sequence_number: seq,
            flags,
            message_id: self.next_id(),
            payload_type: ptype,
            payload,
        };
        let frame = Bytes::from(msg.to_bytes());
        let len = msg.payload.len();
        self.send.push_unacked(frame.clone(), len, now);
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += len as u64;
        self.stats.peak_send_buffer_bytes = self
            .stats
            .peak_send_buffer_bytes
            .max(self.send.buffered_bytes() as u64);
        if self.connected && !self.paused {
            self.outbox.push_back(frame);
        }
    }

    fn send_ack(&mut self, now: Instant, of: &Message) {
        let header = Message {
            message_type: MessageType::Acknowledge,
            schema_version: 1,
            created_date: self.created_ms(now),
            sequence_number: 0,
            flags: flags::SYN_FIN,
            message_id: self.next_id(),
            payload_type: PayloadType::Undefined,
            payload: Bytes::new(),
        };
        self.stats.acks_sent += 1;
        if self.connected {
            let mut id = Uuid::encode_buffer();
            let id = of.message_id.hyphenated().encode_lower(&mut id);
            let mut frame = Vec::with_capacity(ACK_FRAME_CAPACITY);
            header.encode_with(&mut frame, |out| {
                let kind = of.message_type.as_str();
                Acknowledge::write(out, kind, id, of.sequence_number, true);
            });
            self.outbox.push_back(Bytes::from(frame));
        }
    }

    fn created_ms(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.start).as_millis() as u64;
        self.cfg.unix_ms_at_start.max(1).saturating_add(since)
    }

    /// Deterministic v4-shaped ids from a splitmix64 stream (unique per channel, no OS RNG).
    fn next_id(&mut self) -> Uuid {
        let mut next = || {
            self.id_state = self.id_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.id_state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let v = (u128::from(next()) << 64) | u128::from(next());
        uuid::Builder::from_random_bytes(v.to_be_bytes()).into_uuid()
    }
}
