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
    /// Latest transmission (by number) that has been acknowledged.
    acked_tx: Option<u64>,
    /// When an acknowledge last removed a message (the RTO timer restarts from there).
    last_progress: Option<Instant>,
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
            self.base_seq = seq;
        }
        let tx = self.next_tx();
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

    /// Removes the message acknowledged as `seq`; returns the RTT sample when it was sent once.
    pub(crate) fn on_ack(&mut self, seq: i64, now: Instant) -> Option<Option<Duration>> {
        let idx = usize::try_from(seq.checked_sub(self.base_seq)?).ok()?;
        let entry = self.unacked.get_mut(idx)?.take()?;
        self.unacked_bytes -= entry.payload_len;
        self.unacked_count -= 1;
        if entry.retransmits == 0 {
            self.acked_tx = self.acked_tx.max(Some(entry.tx));
        }
        self.last_progress = Some(now);
        while matches!(self.unacked.front(), Some(None)) {
            self.unacked.pop_front();
            self.base_seq += 1;
        }
        let sample =
            (entry.retransmits == 0).then(|| now.saturating_duration_since(entry.last_sent));
        Some(sample)
    }

    /// Messages that a later transmission overtook in acknowledgement (see the module docs),
    /// oldest first, at most `limit`, marked as sent again now.
    pub(crate) fn lost_by_ack_gap(&mut self, now: Instant, limit: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        let Some(acked) = self.acked_tx else {
            return out;
        };
        let mut tx = self.tx_count;
        for e in self.unacked.iter_mut().flatten() {
            if out.len() >= limit {
                break;
            }
            if e.tx.saturating_add(REORDER_THRESHOLD) <= acked {
                tx += 1;
                out.push(e.resent(now, tx));
            } else if e.retransmits == 0 {
                // First transmissions are numbered in sequence order: none further on is older.
                break;
            }
        }
        self.tx_count = tx;
        out
    }

    /// The oldest unacknowledged message, marked as sent again now (the timer's probe).
    pub(crate) fn resend_oldest(&mut self, now: Instant) -> Option<Bytes> {
        let tx = self.tx_count + 1;
        let frame = self.unacked.iter_mut().flatten().next()?.resent(now, tx);
        self.tx_count = tx;
        Some(frame)
    }

    /// Messages whose last transmission is `rto` or more ago, oldest first, at most `limit`,
    /// marked as sent again now (the RTO timer fired).
    pub(crate) fn overdue(&mut self, now: Instant, rto: Duration, limit: usize) -> Vec<Bytes> {
        let mut tx = self.tx_count;
        let mut out = Vec::new();
        for e in self.unacked.iter_mut().flatten() {
            if out.len() >= limit {
                break;
            }
            if now.saturating_duration_since(e.last_sent) >= rto {
                tx += 1;
                out.push(e.resent(now, tx));
            }
        }
        self.tx_count = tx;
        out
    }

    /// Every unacknowledged frame, oldest first, marked as sent now (after a reconnect).
    pub(crate) fn all_unacked(&mut self, now: Instant) -> Vec<Bytes> {
        let mut tx = self.tx_count;
        let out = self
            .unacked
            .iter_mut()
            .flatten()
            .map(|e| {
                tx += 1;
                e.resent(now, tx)
            })
            .collect();
        self.tx_count = tx;
        out
    }
}
