//! The data-channel state machine (`ssm::channel::Channel`) driven by a sequence of operations:
//! raw frames, well-formed stream/ack/control messages from the peer, application writes and
//! reads, clock advances, timeouts and reconnects, with small caps so they are reached.
//!
//! Pinned after every operation: buffers stay under their caps, bytes read plus bytes ready
//! equal bytes delivered, `write` never takes more than offered or than `send_capacity`,
//! `handle_frame` fails exactly on undecodable frames, and every frame the core emits decodes
//! (data messages no larger than `chunk_size`).
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use session_proxy::ssm::channel::{agent_request, client_response, Channel, Config, Role};
use session_proxy::ssm::message::{Message, MessageType, PayloadType};
use session_proxy::ssm::payload::{Acknowledge, ChannelClosed, Flag, HandshakeRequest};

#[derive(Arbitrary, Debug)]
struct Input {
    agent: bool,
    require_handshake: bool,
    chunk_size: u8,
    send_buffer: u16,
    reorder_buffer: u16,
    ready_buffer: u16,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Any bytes as a WebSocket message.
    Raw(Vec<u8>),
    /// A well-formed stream message from the peer.
    Stream {
        seq: u8,
        kind: Kind,
    },
    /// The peer acknowledges our message `seq`.
    Ack {
        seq: u8,
    },
    Closed(String),
    Pause,
    Start,
    Write {
        len: u16,
        fill: u8,
    },
    Read(u16),
    ReadChunk,
    Advance(u16),
    Timeout,
    Disconnect,
    Reconnect,
    CloseWrite,
    SendFlag(u32),
}

/// Payload of a well-formed stream message.
#[derive(Arbitrary, Debug)]
enum Kind {
    Output(Vec<u8>),
    /// A HandshakeRequest as the agent sends it (the client answers).
    HandshakeRequest,
    /// The HandshakeResponse the client would send to this agent's request.
    HandshakeResponse,
    HandshakeComplete(Vec<u8>),
    Flag(u32),
    Other {
        ptype: u32,
        payload: Vec<u8>,
    },
}

/// Control messages our side sends outside `send_buffer` (the agent's HandshakeRequest and
/// HandshakeComplete) are a few hundred bytes; data obeys `send_buffer` exactly.
const CONTROL_SLACK: usize = 1024;

struct Harness {
    ch: Channel,
    cfg: Config,
    now: Instant,
    read_total: u64,
    max_payload_fed: usize,
    flags_sent: usize,
    /// Client role: bytes of the HandshakeResponses owed for every HandshakeRequest fed (known
    /// gap 1 below).
    handshake_owed: usize,
}

/// With `--features strict-caps` the caps are checked as designed. By default one known gap
/// (seen in the code while writing these checks, reported with issue 11) is allowed for, so a
/// run keeps looking for other bugs instead of stopping at it:
/// 1. the client answers every in-order HandshakeRequest, however many the peer sends, and the
///    answers bypass `send_buffer`.
///
/// The second gap (an in-order message that is not Output released the whole reorder buffer
/// into the ready queue, past its cap) is fixed: early messages now move to the ready queue only
/// while it is under its cap, and the rest follow as the application reads.
const STRICT: bool = cfg!(feature = "strict-caps");

fuzz_target!(|input: Input| {
    let mut h = Harness::new(&input);
    for op in &input.ops {
        h.apply(op);
        h.check();
    }
});

impl Harness {
    fn new(input: &Input) -> Self {
        let mut cfg = Config::new(if input.agent {
            Role::Agent
        } else {
            Role::Client
        });
        cfg.chunk_size = usize::from(input.chunk_size).max(1);
        cfg.send_buffer = usize::from(input.send_buffer % 8192);
        cfg.reorder_buffer = usize::from(input.reorder_buffer % 8192);
        cfg.ready_buffer = usize::from(input.ready_buffer % 8192);
        cfg.require_handshake = input.require_handshake;
        let now = Instant::now();
        let mut h = Self {
            ch: Channel::new(cfg.clone(), now),
            cfg,
            now,
            read_total: 0,
            max_payload_fed: 0,
            flags_sent: 0,
            handshake_owed: 0,
        };
        h.drain();
        h.check();
        h
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        match op {
            Op::Raw(bytes) => self.feed(bytes),
            Op::Stream { seq, kind } => {
                let msg = self.stream_message(i64::from(*seq), kind);
                self.feed(&msg.to_bytes());
            }
            Op::Ack { seq } => {
                let msg = self.ack_message(i64::from(*seq));
                self.feed(&msg.to_bytes());
            }
            Op::Closed(output) => {
                let payload = ChannelClosed {
                    output: output.clone(),
                    ..ChannelClosed::default()
                };
                let msg = self.message(MessageType::ChannelClosed, 0, PayloadType::Undefined);
                let msg = Message {
                    payload: Bytes::from(payload.to_bytes()),
                    ..msg
                };
                self.feed(&msg.to_bytes());
            }
            Op::Pause => self.feed_control(MessageType::PausePublication),
            Op::Start => self.feed_control(MessageType::StartPublication),
            Op::Write { len, fill } => self.write(usize::from(*len), *fill),
            Op::Read(n) => {
                let mut buf = vec![0u8; usize::from(*n)];
                let got = self.ch.read(&mut buf);
                assert!(got <= buf.len(), "read reported more than the buffer holds");
                self.read_total += got as u64;
            }
            Op::ReadChunk => {
                if let Some(chunk) = self.ch.read_chunk() {
                    self.read_total += chunk.len() as u64;
                }
            }
            Op::Advance(ms) => self.now += Duration::from_millis(u64::from(*ms)),
            Op::Timeout => self.ch.handle_timeout(now),
            Op::Disconnect => self.ch.on_disconnect(),
            Op::Reconnect => self.ch.on_reconnect(now),
            Op::CloseWrite => self.ch.close_write(),
            Op::SendFlag(v) => {
                self.flags_sent += 1;
                self.ch.send_flag(now, Flag::Unknown(*v));
            }
        }
        self.drain();
    }

    fn feed(&mut self, frame: &[u8]) {
        let before = self.ch.stats().decode_errors;
        let decodes = Message::decode(frame);
        if let Ok(m) = &decodes {
            self.max_payload_fed = self.max_payload_fed.max(m.payload.len());
            self.handshake_owed += self.response_len(m);
        }
        let res = self.ch.handle_frame(self.now, frame);
        assert_eq!(
            res.is_ok(),
            decodes.is_ok(),
            "handle_frame disagrees with decode"
        );
        if res.is_err() {
            assert_eq!(
                self.ch.stats().decode_errors,
                before + 1,
                "decode error not counted"
            );
        }
    }

    /// Size of the HandshakeResponse a client answers `m` with, 0 if it answers nothing.
    fn response_len(&self, m: &Message) -> usize {
        let answered = self.cfg.role == Role::Client
            && m.message_type == MessageType::OutputStreamData
            && m.payload_type == PayloadType::HandshakeRequest;
        match HandshakeRequest::from_bytes(&m.payload) {
            Ok(req) if answered => client_response(&req, &self.cfg.client_version)
                .0
                .to_bytes()
                .len(),
            _ => 0,
        }
    }

    fn feed_control(&mut self, t: MessageType) {
        let msg = self.message(t, 0, PayloadType::Undefined);
        self.feed(&msg.to_bytes());
    }

    fn write(&mut self, len: usize, fill: u8) {
        let data = vec![fill; len];
        let cap = self.ch.send_capacity();
        let took = self.ch.write(self.now, &data);
        assert!(took <= len, "write took {took} of {len} bytes");
        assert!(took <= cap, "write took {took} bytes with capacity {cap}");
    }

    /// Takes every queued frame and checks it is one the peer can decode.
    fn drain(&mut self) {
        let ours = match self.cfg.role {
            Role::Client => MessageType::InputStreamData,
            Role::Agent => MessageType::OutputStreamData,
        };
        while let Some(frame) = self.ch.poll_transmit() {
            let msg = match Message::decode(&frame) {
                Ok(m) => m,
                Err(e) => panic!("channel emitted an undecodable frame: {e}"),
            };
            if msg.message_type == ours && msg.payload_type == PayloadType::Output {
                assert!(
                    msg.payload.len() <= self.cfg.chunk_size,
                    "data message of {} bytes over chunk_size {}",
                    msg.payload.len(),
                    self.cfg.chunk_size
                );
            }
        }
        while self.ch.poll_event().is_some() {}
    }

    fn check(&self) {
        let c = &self.cfg;
        let ch = &self.ch;
        assert!(
            ch.reorder_bytes() <= c.reorder_buffer,
            "reorder buffer over cap"
        );
        // In-order data is refused once `ready_buffer` is reached, and early data moves in only
        // below it: the one message let in below the cap may top it.
        let ready_cap = c.ready_buffer + self.max_payload_fed;
        assert!(
            ch.ready_bytes() <= ready_cap,
            "ready buffer over cap: {} > {ready_cap}",
            ch.ready_bytes()
        );
        let owed = if STRICT { 0 } else { self.handshake_owed };
        let slack = CONTROL_SLACK + 4 * self.flags_sent + owed;
        assert!(
            ch.buffered_send_bytes() <= c.send_buffer + slack,
            "send buffer over cap: {} > {} + {slack}",
            ch.buffered_send_bytes(),
            c.send_buffer
        );
        assert!(ch.unacked_bytes() <= ch.buffered_send_bytes());
        assert_eq!(
            self.read_total + ch.ready_bytes() as u64,
            ch.stats().bytes_delivered,
            "bytes read + ready != bytes delivered"
        );
    }

    fn message(&self, t: MessageType, seq: i64, ptype: PayloadType) -> Message {
        Message {
            message_type: t,
            schema_version: 1,
            created_date: 1_700_000_000_000,
            sequence_number: seq,
            flags: 0,
            message_id: uuid_for(seq),
            payload_type: ptype,
            payload: Bytes::new(),
        }
    }

    /// The stream type the peer sends us.
    fn incoming_type(&self) -> MessageType {
        match self.cfg.role {
            Role::Client => MessageType::OutputStreamData,
            Role::Agent => MessageType::InputStreamData,
        }
    }

    fn stream_message(&self, seq: i64, kind: &Kind) -> Message {
        let t = self.incoming_type();
        let request = || {
            agent_request(
                &self.cfg.agent_version,
                &self.cfg.session_type,
                &self.cfg.properties,
            )
        };
        let (ptype, payload) = match kind {
            Kind::Output(p) => (PayloadType::Output, p.clone()),
            Kind::HandshakeRequest => (PayloadType::HandshakeRequest, request().to_bytes()),
            Kind::HandshakeResponse => {
                let (resp, _) = client_response(&request(), &self.cfg.client_version);
                (PayloadType::HandshakeResponse, resp.to_bytes())
            }
            Kind::HandshakeComplete(p) => (PayloadType::HandshakeComplete, p.clone()),
            Kind::Flag(v) => (PayloadType::Flag, Flag::Unknown(*v).to_bytes().to_vec()),
            Kind::Other { ptype, payload } => (PayloadType::from_u32(*ptype), payload.clone()),
        };
        Message {
            payload: Bytes::from(payload),
            ..self.message(t, seq, ptype)
        }
    }

    fn ack_message(&self, seq: i64) -> Message {
        let acked = match self.cfg.role {
            Role::Client => MessageType::InputStreamData,
            Role::Agent => MessageType::OutputStreamData,
        };
        let ack = Acknowledge {
            message_type: acked.as_str().to_owned(),
            message_id: uuid_for(seq).hyphenated().to_string(),
            sequence_number: seq,
            is_sequential: true,
        };
        Message {
            payload: Bytes::from(ack.to_bytes()),
            ..self.message(MessageType::Acknowledge, 0, PayloadType::Undefined)
        }
    }
}

fn uuid_for(seq: i64) -> uuid::Uuid {
    uuid::Uuid::from_u64_pair(0x5eed, seq as u64)
}
