//! When [`Channel`] resends, and what an acknowledge does to that: the ack-gap check on each
//! acknowledge and the resend timer with its probe (the rules are in `send`'s module docs).
//! Split from `mod.rs` so the channel's public face stays one screenful per concern.

use std::time::{Duration, Instant};

use super::rtt::MIN_TIMER_RTO;
use super::send::Answered;
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
        if let Some(answered) = self.send.on_ack(ack.sequence_number, now) {
            match answered {
                Answered::Original(r) => {
                    // An original transmission got through: the link works, the timer starts
                    // over. (The acknowledge of a resent message may be the probe's: it does not.)
                    self.rto_backoff = 0;
                    self.probe_answered = false;
                    self.resend_answer_rtt = None;
                    self.rtt.on_sample(r);
                    let ms = u64::try_from(r.as_millis()).unwrap_or(u64::MAX);
                    self.stats.peak_rtt_ms = self.stats.peak_rtt_ms.max(ms);
                }
                Answered::Resent(age) => {
                    if self.rto_backoff > 0 || self.resend_answer_rtt.is_some() {
                        self.probe_answered = true;
                        self.resend_answer_rtt = Some(age);
                    }
                }
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
        let resent = self.send.resent_deadline(self.timer_wait(self.rto_backoff));
        match (self.silence_deadline(), resent) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the timer acts on silence: nothing acknowledged for a timer (or, once a resend
    /// was answered alone, for a fraction of one).
    fn silence_deadline(&self) -> Option<Instant> {
        let wait = if self.probe_answered {
            self.rtt.timer_rto(0) / PROBE_CONFIRM_DIVISOR
        } else {
            self.timer_wait(self.rto_backoff)
        };
        self.send.rto_deadline(wait)
    }

    /// The timer after `backoff` expiries with no answer. While a lost tail is being repaired
    /// (a resend was answered, no original since), twice the round trip of that answer,
    /// at least [`MIN_TIMER_RTO`]: the peer has just shown how fast it answers now.
    fn timer_wait(&self, backoff: u32) -> Duration {
        let rto = self.rtt.timer_rto(backoff);
        match self.resend_answer_rtt {
            Some(r) => (r * 2)
                .max(MIN_TIMER_RTO)
                .saturating_mul(1 << backoff.min(6))
                .min(rto),
            None => rto,
        }
    }

    /// The timer expired. An answered resend with no original after it: resend what was sent
    /// before it. Otherwise, first expiry: probe with the oldest message; again: go back to
    /// everything a timer old (while repairing a tail, at once: the peer answers).
    pub(super) fn on_resend_timer(&mut self, now: Instant) {
        // Silence first: its resends include any overdue resend, which then is not due twice.
        if self.silence_deadline().is_some_and(|d| now >= d) {
            self.on_silence(now);
        }
        let wait = self.timer_wait(self.rto_backoff);
        let again = self.send.resends_overdue(now, wait, MAX_RESENDS);
        if !again.is_empty() {
            // A resend went unanswered for a whole timer: back off, as for silence.
            self.rto_backoff = self.rto_backoff.saturating_add(1);
        }
        self.stats.retransmits += again.len() as u64;
        self.stats.timeout_retransmits += again.len() as u64;
        self.outbox.extend(again);
    }

    fn on_silence(&mut self, now: Instant) {
        let frames = if self.probe_answered {
            // The link works and no original followed the answer: no doubling on a link that
            // answers.
            self.rto_backoff = 0;
            self.send.sent_before_answered_resend(now, MAX_RESENDS)
        } else if self.rto_backoff == 0 && self.resend_answer_rtt.is_none() {
            self.rto_backoff = 1;
            self.send.resend_oldest(now).into_iter().collect()
        } else {
            let wait = self.timer_wait(0);
            self.rto_backoff = self.rto_backoff.saturating_add(1);
            self.send.overdue(now, wait, MAX_RESENDS)
        };
        self.probe_answered = false;
        self.stats.retransmits += frames.len() as u64;
        self.stats.timeout_retransmits += frames.len() as u64;
        self.outbox.extend(frames);
    }
}
