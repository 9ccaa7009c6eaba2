//! When [`Channel`] resends, and what an acknowledge does to that: the ack-gap check on each
//! acknowledge and the resend timer with its probe (the rules are in `send`'s module docs).
//! Split from `mod.rs` so the channel's public face stays one screenful per concern.

use std::time::Instant;

use super::Channel;
use crate::ssm::message::Message;
use crate::ssm::payload::Acknowledge;

/// At most this many messages are resent per acknowledge or timer expiry, so that one event
/// cannot flood the link.
const MAX_RESENDS: usize = 256;

/// Once the timer's probe is answered, originals must follow within this fraction of the RTO
/// (a stalled peer sends them right after) or the rest is taken as lost.
const PROBE_CONFIRM_DIVISOR: u32 = 4;

impl Channel {
    pub(super) fn on_ack(&mut self, now: Instant, msg: &Message) {
        let Ok(ack) = Acknowledge::from_bytes(&msg.payload) else {
            self.stats.decode_errors += 1;
            return;
        };
        self.stats.acks_received += 1;
        if let Some(sample) = self.send.on_ack(ack.sequence_number, now) {
            if let Some(r) = sample {
                // An original transmission got through: the link works, the timer starts over.
                // (The acknowledge of a resent message may be the probe's: it does not.)
                self.rto_backoff = 0;
                self.probe_answered = false;
                self.rtt.on_sample(r);
                let ms = u64::try_from(r.as_millis()).unwrap_or(u64::MAX);
                self.stats.peak_rtt_ms = self.stats.peak_rtt_ms.max(ms);
            }
            if sample.is_none() && self.rto_backoff > 0 {
                self.probe_answered = true;
            }
            if self.connected && !self.paused {
                let lost = self.send.lost_by_ack_gap(now, MAX_RESENDS);
                self.stats.retransmits += lost.len() as u64;
                self.outbox.extend(lost);
            }
        }
        self.flush_pending(now);
        self.check_flushed();
    }

    /// When the timer resends what is overdue (see `send`); never while nothing could
    /// be sent (disconnected or paused: the agent does not resend while paused either).
    pub(super) fn resend_deadline(&self) -> Option<Instant> {
        if !self.connected || self.paused {
            return None;
        }
        let wait = if self.probe_answered {
            self.rtt.timer_rto(0) / PROBE_CONFIRM_DIVISOR
        } else {
            self.rtt.timer_rto(self.rto_backoff)
        };
        self.send.rto_deadline(wait)
    }

    /// The resend timer expired. First expiry: probe with the oldest message; again (or once
    /// the probe is answered alone): go back to everything an RTO old.
    pub(super) fn on_resend_timer(&mut self, now: Instant) {
        let frames = if self.rto_backoff == 0 {
            self.send.resend_oldest(now).into_iter().collect()
        } else {
            let rto = self.rtt.timer_rto(0);
            self.send.overdue(now, rto, MAX_RESENDS)
        };
        self.rto_backoff = self.rto_backoff.saturating_add(1);
        self.probe_answered = false;
        self.stats.retransmits += frames.len() as u64;
        self.stats.timeout_retransmits += frames.len() as u64;
        self.outbox.extend(frames);
    }
}
