//! Outgoing side: data waiting to be sequenced, and sent-but-unacknowledged messages.
//!
//! Data is sequenced only when it may be transmitted (after the handshake, while not paused),
//! so a HandshakeResponse always takes the next sequence number ahead of queued data (§4.2).
//! The total of pending and unacknowledged payload bytes is capped: `write` accepts less (or
//! nothing) when the cap is reached, which pushes back on the writer. Nothing is ever evicted.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::ssm::message::PayloadType;

/// One transmitted stream message kept until acknowledged; retransmissions send `frame` as is.
#[derive(Debug)]
pub(crate) struct Unacked {
    pub(crate) frame: Bytes,
    pub(crate) payload_len: usize,
    pub(crate) last_sent: Instant,
    pub(crate) retransmits: u32,
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
        self.unacked.push_back(Some(Unacked {
            frame,
            payload_len,
            last_sent: now,
            retransmits: 0,
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
        while matches!(self.unacked.front(), Some(None)) {
            self.unacked.pop_front();
            self.base_seq += 1;
        }
        let sample =
            (entry.retransmits == 0).then(|| now.saturating_duration_since(entry.last_sent));
        Some(sample)
    }

    /// Messages whose last transmission is older than `rto`, oldest first, at most `limit`.
    pub(crate) fn overdue(&mut self, now: Instant, rto: Duration, limit: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        for e in self.unacked.iter_mut().flatten() {
            if out.len() >= limit {
                break;
            }
            if now.saturating_duration_since(e.last_sent) >= rto {
                e.last_sent = now;
                e.retransmits += 1;
                out.push(e.frame.clone());
            }
        }
        out
    }

    /// Every unacknowledged frame, oldest first, marked as sent now (after a reconnect).
    pub(crate) fn all_unacked(&mut self, now: Instant) -> Vec<Bytes> {
        self.unacked
            .iter_mut()
            .flatten()
            .map(|e| {
                e.last_sent = now;
                e.retransmits += 1;
                e.frame.clone()
            })
            .collect()
    }
}
