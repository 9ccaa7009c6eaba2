//! Outgoing side: data waiting to be sequenced, and sent-but-unacknowledged messages.
//!
//! Data is sequenced only when it may be transmitted (after the handshake, while not paused),
//! so a HandshakeResponse always takes the next sequence number ahead of queued data (§4.2).
//! The total of pending and unacknowledged payload bytes is capped: `write` accepts less (or
//! nothing) when the cap is reached, which pushes back on the writer. Nothing is ever evicted.
//!
//! Loss is found two ways, so that a late acknowledge is not mistaken for a loss:
//! - **ack gap** ([`SendBuffer::lost_by_ack_gap`]): a message is lost once a message transmitted
//!   after it (by [`REORDER_THRESHOLD`] or more transmissions) has been acknowledged (RACK-style,
//!   counted in transmissions, not time). A peer that is merely slow acknowledges in order, so
//!   this never fires on it, while a real loss is repaired about one round trip after it.
//! - **timer**: only when no acknowledge at all has come for a whole RTO (a lost tail, a dead
//!   link, or a peer that stalled). The first expiry resends only the oldest message
//!   ([`SendBuffer::resend_oldest`]), a probe: a peer that merely stalled answers it and then
//!   the originals, and costs one spurious resend. If the timer expires again with no original
//!   acknowledged in between, everything sent more than an RTO ago is presumed lost and resent
//!   ([`SendBuffer::overdue`]), as TCP does after an RTO, so a tail of several losses costs a
//!   few RTOs, not one each. A peer that acknowledges late but steadily never lets it fire.
//!
//! - **resend deadline** ([`SendBuffer::resent_deadline`]): a resend that no original was sent
//!   after cannot be caught by the ack gap, so it has its own timer from when it was sent,
//!   not from the last acknowledge (acknowledges of earlier messages say nothing about it).
//!   While such a lost tail is repaired, the channel times by how fast the peer answered the
//!   last resend, not by the RTO that late acknowledges during the burst inflated.
//!
//! As with RTT samples (Karn), the acknowledge of a resent message says nothing about which
//! transmission it answers, so it does not move the ack-gap mark: a late acknowledge of a
//! message the timer resent must not make every message sent before the resend look lost.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::ssm::message::PayloadType;

/// A message counts as lost once one transmitted this many transmissions after it is
/// acknowledged. The service relays over TCP and the agent handles messages in order, so an
/// acknowledge never overtakes an earlier one unless that one was lost: no margin is needed
/// (TCP's three duplicate acks allow for reordering in the network). With 1, a loss just before
/// a pause in the data is found by the next message's acknowledge instead of the timer.
pub(crate) const REORDER_THRESHOLD: u64 = 1;

/// One transmitted stream message kept until acknowledged; retransmissions send `frame` as is.
#[derive(Debug)]
pub(crate) struct Unacked {
    pub(crate) frame: Bytes,
    pub(crate) payload_len: usize,
    pub(crate) last_sent: Instant,
    pub(crate) retransmits: u32,
    /// Number of this message's latest transmission among all (re)transmissions, in order.
    pub(crate) tx: u64,
}

impl Unacked {
    /// Marks the message as transmitted again now, as transmission number `tx`.
    fn resent(&mut self, now: Instant, tx: u64) -> Bytes {
        self.last_sent = now;
        self.retransmits += 1;
        self.tx = tx;
        self.frame.clone()
    }
}

/// What an acknowledge answered, with the time since that message's latest transmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answered {
    /// A message sent once: the time is an RTT sample.
    Original(Duration),
    /// A resent message: the acknowledge may answer any of its transmissions.
    Resent(Duration),
}

#[derive(Debug, Default)]
pub(crate) struct SendBuffer {
    /// Chunks written by the application, not yet sequenced.
    pending: VecDeque<(PayloadType, Bytes)>,
    pending_bytes: usize,
    /// Indexed by `seq - base_seq`; `None` once acknowledged (acks are per message, §6.2).
    unacked: VecDeque<Option<Unacked>>,
    base_seq: i64,
    unacked_bytes: usize,
    unacked_count: usize,
    /// Next sequence number to assign; never reset, not even across reconnects (§6.1).
    pub(crate) next_seq: i64,
    /// Transmissions so far, first sends and resends alike; numbers [`Unacked::tx`].
    tx_count: u64,
    /// Latest first transmission (by number) that has been acknowledged.
    acked_tx: Option<u64>,
    /// Number of the latest first transmission.
    last_original_tx: u64,
    /// Latest transmission (by number) of a resent message that has been acknowledged; which
    /// of its transmissions the acknowledge answers is unknown (Karn), so only the timer's
    /// probe confirmation trusts it ([`SendBuffer::sent_before_answered_resend`]).
    acked_resend_tx: Option<u64>,
    /// When an acknowledge last removed a message (the RTO timer restarts from there).
    last_progress: Option<Instant>,
    /// Resends in the order made: (when, sequence, transmission number). Entries whose message
    /// was acknowledged or resent since are stale and dropped from the front; each resend has
    /// its own deadline ([`SendBuffer::resent_deadline`]).
    resends: VecDeque<(Instant, i64, u64)>,
}

impl SendBuffer {
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.pending_bytes + self.unacked_bytes
    }

    pub(crate) fn unacked_bytes(&self) -> usize {
        self.unacked_bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.unacked_count == 0
    }

    fn next_tx(&mut self) -> u64 {
        self.tx_count += 1;
        self.tx_count
    }

    /// When the oldest unacknowledged message is due for a resend by timer: `rto` after its
    /// last transmission or after the last acknowledge, whichever is later. `None` when
    /// nothing is unacknowledged.
    pub(crate) fn rto_deadline(&self, rto: Duration) -> Option<Instant> {
        let oldest = self.unacked.iter().flatten().next()?;
        let base = match self.last_progress {
            Some(p) => p.max(oldest.last_sent),
            None => oldest.last_sent,
        };
        Some(base + rto)
    }

    pub(crate) fn push_pending(&mut self, ptype: PayloadType, chunk: Bytes) {
        self.pending_bytes += chunk.len();
        self.pending.push_back((ptype, chunk));
    }

    pub(crate) fn pop_pending(&mut self) -> Option<(PayloadType, Bytes)> {
        let item = self.pending.pop_front()?;
        self.pending_bytes -= item.1.len();
        Some(item)
    }

    /// Records a message just transmitted with sequence `next_seq`, which is then advanced.
    pub(crate) fn push_unacked(&mut self, frame: Bytes, payload_len: usize, now: Instant) -> i64 {
        let seq = self.next_seq;
        if self.unacked_count == 0 {
            self.unacked.clear();
            self.resends.clear();
            self.base_seq = seq;
        }
        let tx = self.next_tx();
        self.last_original_tx = tx;
        self.unacked.push_back(Some(Unacked {
            frame,
            payload_len,
            last_sent: now,
            retransmits: 0,
            tx,
        }));
        self.unacked_bytes += payload_len;
        self.unacked_count += 1;
        self.next_seq += 1;
        seq
    }

    /// Removes the message acknowledged as `seq`; returns the time since its last transmission,
    /// which is an RTT sample only when it was sent once (Karn).
    pub(crate) fn on_ack(&mut self, seq: i64, now: Instant) -> Option<Answered> {
        let idx = usize::try_from(seq.checked_sub(self.base_seq)?).ok()?;
        let entry = self.unacked.get_mut(idx)?.take()?;
        self.unacked_bytes -= entry.payload_len;
        self.unacked_count -= 1;
        if entry.retransmits == 0 {
            self.acked_tx = self.acked_tx.max(Some(entry.tx));
        } else {
            self.acked_resend_tx = self.acked_resend_tx.max(Some(entry.tx));
        }
        self.last_progress = Some(now);
        while matches!(self.unacked.front(), Some(None)) {
            self.unacked.pop_front();
            self.base_seq += 1;
        }
        self.prune_resends();
        let age = now.saturating_duration_since(entry.last_sent);
        Some(if entry.retransmits == 0 {
            Answered::Original(age)
        } else {
            Answered::Resent(age)
        })
    }

    /// Messages that a later transmission overtook in acknowledgement (see the module docs),
    /// oldest first, at most `limit`, marked as sent again now.
    pub(crate) fn lost_by_ack_gap(&mut self, now: Instant, limit: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        let Some(acked) = self.acked_tx else {
            return out;
        };
        let mut tx = self.tx_count;
        for (seq, e) in seqs(self.base_seq, &mut self.unacked) {
            if out.len() >= limit {
                break;
            }
            if e.tx.saturating_add(REORDER_THRESHOLD) <= acked {
                tx += 1;
                out.push(e.resent(now, tx));
                self.resends.push_back((now, seq, tx));
            } else if e.retransmits == 0 {
                // First transmissions are numbered in sequence order: none further on is older.
                break;
            }
        }
        self.tx_count = tx;
        self.prune_resends();
        out
    }

    /// Messages last transmitted before the latest acknowledged resend, oldest first, at most
    /// `limit`, marked as sent again now. Used once a resend was answered and no original
    /// followed: the peer handles messages in order, so what was sent before the answered
    /// transmission and is still unacknowledged is lost, however recently it was resent.
    pub(crate) fn sent_before_answered_resend(&mut self, now: Instant, limit: usize) -> Vec<Bytes> {
        let Some(mark) = self.acked_resend_tx else {
            return Vec::new();
        };
        let mut tx = self.tx_count;
        let mut out = Vec::new();
        for (seq, e) in seqs(self.base_seq, &mut self.unacked) {
            if out.len() >= limit {
                break;
            }
            if e.tx < mark {
                tx += 1;
                out.push(e.resent(now, tx));
                self.resends.push_back((now, seq, tx));
            }
        }
        self.tx_count = tx;
        self.prune_resends();
        out
    }

    /// The oldest unacknowledged message, marked as sent again now (the timer's probe).
    pub(crate) fn resend_oldest(&mut self, now: Instant) -> Option<Bytes> {
        let tx = self.tx_count + 1;
        let (seq, e) = seqs(self.base_seq, &mut self.unacked).next()?;
        let frame = e.resent(now, tx);
        self.tx_count = tx;
        self.resends.push_back((now, seq, tx));
        self.prune_resends();
        Some(frame)
    }

    /// Messages whose last transmission is `rto` or more ago, oldest first, at most `limit`,
    /// marked as sent again now (the RTO timer fired).
    pub(crate) fn overdue(&mut self, now: Instant, rto: Duration, limit: usize) -> Vec<Bytes> {
        let mut tx = self.tx_count;
        let mut out = Vec::new();
        for (seq, e) in seqs(self.base_seq, &mut self.unacked) {
            if out.len() >= limit {
                break;
            }
            if now.saturating_duration_since(e.last_sent) >= rto {
                tx += 1;
                out.push(e.resent(now, tx));
                self.resends.push_back((now, seq, tx));
            }
        }
        self.tx_count = tx;
        self.prune_resends();
        out
    }

    /// Every unacknowledged frame, oldest first, marked as sent now (after a reconnect).
    pub(crate) fn all_unacked(&mut self, now: Instant) -> Vec<Bytes> {
        let mut tx = self.tx_count;
        let mut out = Vec::new();
        for (seq, e) in seqs(self.base_seq, &mut self.unacked) {
            tx += 1;
            out.push(e.resent(now, tx));
            self.resends.push_back((now, seq, tx));
        }
        self.tx_count = tx;
        self.prune_resends();
        out
    }

    /// When the oldest resend that no original was sent after is due again: `wait` after it,
    /// whatever else is acknowledged meanwhile. A resend that is lost too is found by the ack
    /// gap once an original sent after it is acknowledged; at the end of a transfer there is
    /// none, and the timer would otherwise wait for silence, measured from the last acknowledge.
    pub(crate) fn resent_deadline(&self, wait: Duration) -> Option<Instant> {
        let from = self
            .resends
            .partition_point(|&(_, _, tx)| tx < self.last_original_tx);
        let mut live = self.resends.iter().skip(from);
        let (at, _, _) = live.find(|&&(_, seq, tx)| self.entry(seq).is_some_and(|e| e.tx == tx))?;
        Some(*at + wait)
    }

    /// Those resends (see [`SendBuffer::resent_deadline`]) made `wait` or more ago and still
    /// unanswered, oldest first, at most `limit`, marked as sent again now.
    pub(crate) fn resends_overdue(
        &mut self,
        now: Instant,
        wait: Duration,
        limit: usize,
    ) -> Vec<Bytes> {
        let mut due = Vec::new();
        let last_original = self.last_original_tx;
        let (base, unacked) = (self.base_seq, &self.unacked);
        self.resends.retain(|&(at, seq, tx)| {
            let live = entry(base, unacked, seq).is_some_and(|e| e.tx == tx);
            let take = live && tx > last_original && at + wait <= now && due.len() < limit;
            if take {
                due.push(seq);
            }
            live && !take
        });
        let mut tx = self.tx_count;
        let mut out = Vec::new();
        for seq in due {
            if let Some(e) = self.entry_mut(seq) {
                tx += 1;
                out.push(e.resent(now, tx));
                self.resends.push_back((now, seq, tx));
            }
        }
        self.tx_count = tx;
        out
    }

    fn entry(&self, seq: i64) -> Option<&Unacked> {
        entry(self.base_seq, &self.unacked, seq)
    }

    fn entry_mut(&mut self, seq: i64) -> Option<&mut Unacked> {
        let idx = usize::try_from(seq.checked_sub(self.base_seq)?).ok()?;
        self.unacked.get_mut(idx)?.as_mut()
    }

    /// Drops stale entries (acknowledged, or resent again since) from the front of `resends`,
    /// and compacts it should stale entries pile up behind a live one.
    fn prune_resends(&mut self) {
        while let Some(&(_, seq, tx)) = self.resends.front() {
            if self.entry_mut(seq).is_some_and(|e| e.tx == tx) {
                break;
            }
            self.resends.pop_front();
        }
        if self.resends.len() > 2 * self.unacked_count + 64 {
            let (base, unacked) = (self.base_seq, &self.unacked);
            self.resends
                .retain(|&(_, seq, tx)| entry(base, unacked, seq).is_some_and(|e| e.tx == tx));
        }
    }
}

/// The unacknowledged message `seq`, if any.
fn entry(base: i64, unacked: &VecDeque<Option<Unacked>>, seq: i64) -> Option<&Unacked> {
    let idx = usize::try_from(seq.checked_sub(base)?).ok()?;
    unacked.get(idx)?.as_ref()
}

/// The unacknowledged messages with their sequence numbers, oldest first.
fn seqs(
    base: i64,
    unacked: &mut VecDeque<Option<Unacked>>,
) -> impl Iterator<Item = (i64, &mut Unacked)> {
    unacked
        .iter_mut()
        .enumerate()
        .filter_map(move |(i, e)| Some((base + i as i64, e.as_mut()?)))
}
