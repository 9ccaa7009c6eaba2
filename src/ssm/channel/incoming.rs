//! The receive path of [`Channel`]: sequencing of incoming stream messages (in order,
//! early, duplicate), acknowledgement, and what each payload type does once in order,
//! including both sides of the handshake (§4, §6.4).

use std::time::Instant;

use bytes::Bytes;

use super::kms::{self, KmsWait};
use super::{
    agent_judge, client_response, Channel, Event, HandshakeFailure, KeyRequest, Phase, Role,
    SessionInfo,
};
use crate::ssm::message::{Message, PayloadType};
use crate::ssm::payload::{Flag, HandshakeComplete, HandshakeRequest, HandshakeResponse};

impl Channel {
    pub(super) fn on_stream(&mut self, now: Instant, msg: Message) {
        let seq = msg.sequence_number;
        let expected = self.recv.expected;
        if seq < expected || self.recv.holds_early(seq) {
            self.stats.duplicates_received += 1;
            self.send_ack(now, &msg);
            return;
        }
        if seq > expected {
            if self.recv.store_early(msg.clone(), self.cfg.reorder_buffer) {
                self.stats.reordered += 1;
                self.stats.peak_reorder_bytes = self
                    .stats
                    .peak_reorder_bytes
                    .max(self.recv.reorder_bytes() as u64);
                self.send_ack(now, &msg);
            } else {
                self.stats.dropped_no_room += 1;
            }
            return;
        }
        // In order. Data beyond the ready cap is left unacknowledged: the peer resends it.
        if delivered_to_app(self.cfg.role, msg.payload_type)
            && self.recv.ready_bytes() >= self.cfg.ready_buffer
        {
            self.stats.dropped_no_room += 1;
            return;
        }
        self.send_ack(now, &msg);
        self.deliver(now, msg);
        self.release_early(now);
    }

    /// Delivers messages held in the reorder buffer that are now in order, while the ready
    /// queue is under its cap. The rest stay there (acknowledged when they came) and follow as
    /// the application reads, so no order of arrival can push the ready queue past its cap.
    pub(super) fn release_early(&mut self, now: Instant) {
        while self.recv.ready_bytes() < self.cfg.ready_buffer {
            let Some(early) = self.recv.take_next_early() else {
                break;
            };
            self.deliver(now, early);
        }
    }

    /// Processes the in-order message at `expected` (already acknowledged) and advances.
    fn deliver(&mut self, now: Instant, msg: Message) {
        self.recv.expected += 1;
        self.stats.messages_received += 1;
        let Some(msg) = self.open_incoming(msg) else {
            return;
        };
        match (self.cfg.role, msg.payload_type) {
            (Role::Client, PayloadType::HandshakeRequest) => self.on_handshake_request(now, &msg),
            (Role::Client, PayloadType::HandshakeComplete) => {
                let c = HandshakeComplete::from_bytes(&msg.payload).unwrap_or(HandshakeComplete {
                    handshake_time_to_complete: 0,
                    customer_message: String::new(),
                });
                let info = self.pending_session.take().unwrap_or_default();
                self.become_ready(info, c.customer_message);
                self.flush_pending(now);
            }
            (Role::Agent, PayloadType::HandshakeResponse) => self.on_handshake_response(now, &msg),
            (Role::Client, PayloadType::EncChallengeRequest) => {
                self.on_enc_challenge_request(now, &msg);
            }
            (Role::Agent, PayloadType::EncChallengeResponse) => {
                self.on_enc_challenge_response(now, &msg);
            }
            (_, PayloadType::Flag) => {
                if let Ok(f) = Flag::from_bytes(&msg.payload) {
                    self.events.push_back(Event::Flag(f));
                }
            }
            (_, PayloadType::Output) => self.on_output(now, msg),
            (role, t) if delivered_to_app(role, t) => self.on_typed(msg),
            // Parameter, payloads meant for the other role: unused.
            _ => {}
        }
    }

    fn on_output(&mut self, now: Instant, msg: Message) {
        match (self.cfg.role, self.phase) {
            (_, Phase::Ready) | (Role::Client, Phase::Responded) => {}
            // An agent that skips the handshake sends output first (§4.4).
            (Role::Client, _) => {
                self.become_ready(SessionInfo::default(), String::new());
                self.flush_pending(now);
            }
            // The agent acknowledges and discards client data before the handshake.
            (Role::Agent, _) => {
                self.stats.discarded_before_handshake += 1;
                return;
            }
        }
        self.push_ready(msg);
    }

    /// StdErr/ExitCode at a client, Size at an agent: delivered in stream order with the data,
    /// except that the agent discards a Size sent before the handshake, as it does all data.
    fn on_typed(&mut self, msg: Message) {
        if self.cfg.role == Role::Agent && self.phase != Phase::Ready {
            self.stats.discarded_before_handshake += 1;
            return;
        }
        self.push_ready(msg);
    }

    fn push_ready(&mut self, msg: Message) {
        if msg.payload.is_empty() {
            return;
        }
        if msg.payload_type == PayloadType::Output {
            self.stats.bytes_delivered += msg.payload.len() as u64;
        }
        self.recv.push_ready(msg.payload_type, msg.payload);
        self.stats.peak_ready_bytes = self
            .stats
            .peak_ready_bytes
            .max(self.recv.ready_bytes() as u64);
        self.events.push_back(Event::Readable);
    }

    fn on_handshake_request(&mut self, now: Instant, msg: &Message) {
        // One handshake per session: a repeated request is ignored, or a hostile peer could
        // make us queue answers past the send-buffer cap (they jump the queue, uncounted).
        if self.phase != Phase::Handshaking {
            self.stats.decode_errors += 1;
            return;
        }
        let Ok(req) = HandshakeRequest::from_bytes(&msg.payload) else {
            self.stats.decode_errors += 1;
            return;
        };
        let (resp, info) = client_response(&req, &self.cfg.client_version);
        self.pending_session = Some(info);
        self.phase = Phase::Responded;
        // KMSEncryption: the response waits for GenerateDataKey (`provide_key` sends it).
        if let Some(request) = kms::generate_request(&req) {
            let challenge = match &request {
                KeyRequest::Generate { challenge, .. } => challenge.clone(),
                KeyRequest::Decrypt { .. } => None,
            };
            self.kms_wait = Some(KmsWait::Generate {
                response: resp,
                challenge,
            });
            self.events.push_back(Event::KeyNeeded(request));
            return;
        }
        // The response jumps the queue: it must take the next sequence number (§4.2).
        self.transmit_stream(
            now,
            PayloadType::HandshakeResponse,
            Bytes::from(resp.to_bytes()),
        );
    }

    fn on_handshake_response(&mut self, now: Instant, msg: &Message) {
        if self.phase != Phase::Handshaking || self.kms_wait.is_some() {
            return;
        }
        self.handshake_deadline = None;
        let verdict = match (
            HandshakeResponse::from_bytes(&msg.payload),
            &self.agent_request,
        ) {
            (Ok(resp), Some(req)) => agent_judge(req, &resp).map(|()| resp),
            (Err(e), _) => Err(e.to_string()),
            (Ok(_), None) => Err("unexpected HandshakeResponse".into()),
        };
        match verdict {
            Ok(resp) if self.cfg.kms.is_some() => self.start_kms_decrypt(now, resp),
            Ok(resp) => self.complete_handshake(now, resp.client_version, ""),
            Err(reason) => {
                self.phase = Phase::Failed;
                self.events
                    .push_back(Event::HandshakeFailed(HandshakeFailure::Refused(reason)));
            }
        }
    }
}

impl Channel {
    /// Agent: HandshakeComplete with `customer_message`; data may flow.
    pub(super) fn complete_handshake(
        &mut self,
        now: Instant,
        client_version: String,
        customer_message: &str,
    ) {
        let elapsed = self
            .handshake_started
            .map(|s| now.saturating_duration_since(s))
            .unwrap_or_default();
        let done = HandshakeComplete {
            handshake_time_to_complete: i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX),
            customer_message: customer_message.to_owned(),
        };
        self.transmit_stream(
            now,
            PayloadType::HandshakeComplete,
            Bytes::from(done.to_bytes()),
        );
        let info = SessionInfo {
            agent_version: client_version,
            session_type: Some(self.cfg.session_type.clone()),
            properties: self.cfg.properties.clone(),
            customer_message: String::new(),
        };
        self.become_ready(info, customer_message.to_owned());
        self.flush_pending(now);
    }
}

/// Payload types the application reads (§2.4, §8): Output both ways; StdErr and ExitCode from
/// an agent (NonInteractiveCommands with separate output); Size from a client (its terminal).
fn delivered_to_app(role: Role, t: PayloadType) -> bool {
    matches!(
        (role, t),
        (_, PayloadType::Output)
            | (Role::Client, PayloadType::StdErr | PayloadType::ExitCode)
            | (Role::Agent, PayloadType::Size)
    )
}
