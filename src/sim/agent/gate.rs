//! When the simulated agent may let an acknowledge go: as the real agent does (reference §12),
//! only once the acknowledged message's bytes have been written to the target. The real agent
//! handles each client message in turn, writing it to the target and then acknowledging it, so
//! during an upload burst its acknowledges trail the data by whatever the target takes.
//!
//! Sans-IO: [`AckGate`] is told which client messages came in ([`AckGate::on_incoming`]), how
//! many bytes the target took ([`AckGate::on_written`]), and which acknowledges the channel
//! wants to send ([`AckGate::on_ack`]); it says which acknowledges to hold and which to release.
//! Messages that arrive early, duplicates of messages already written, and anything it cannot
//! place are acknowledged at once, as the real agent does with early and duplicate messages.

use std::collections::{BTreeMap, VecDeque};

/// Client messages further ahead than this are not tracked (their acks go out at once), so a
/// hostile sequence number cannot grow the gate's maps.
const MAX_AHEAD: i64 = 1 << 16;
/// At most this many in-order messages wait for the target; beyond that, acks go out at once.
const MAX_WAITING: usize = 1 << 16;

/// What a client message carries toward the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carries {
    /// Output data of this many bytes.
    Data(u64),
    /// The HandshakeResponse: data after it reaches the target (before it, the agent discards).
    HandshakeResponse,
    /// Anything else (flags, sizes): nothing for the target.
    Nothing,
}

/// The gate of one session, generic over the held item (a WebSocket message in the shell).
#[derive(Debug)]
pub(crate) struct AckGate<T> {
    /// Client messages seen ahead of `next`, by sequence number: bytes for the target.
    ahead: BTreeMap<i64, u64>,
    /// Next sequence number whose place in the target's byte stream is not known yet.
    next: i64,
    /// Target bytes carried by messages below `next`.
    total: u64,
    /// Sequence numbers at or above this carry data to the target (set by the handshake).
    data_from: Option<i64>,
    /// In-order data messages whose bytes the target has not fully taken: seq → end offset.
    waiting: BTreeMap<i64, u64>,
    /// Bytes the target has taken.
    written: u64,
    /// Acknowledges held back, with the target offset that releases each.
    held: VecDeque<(u64, T)>,
}

impl<T> AckGate<T> {
    /// `handshake`: false for agents that skip it, whose every message carries data.
    pub(crate) fn new(handshake: bool) -> Self {
        Self {
            ahead: BTreeMap::new(),
            next: 0,
            total: 0,
            data_from: (!handshake).then_some(0),
            waiting: BTreeMap::new(),
            written: 0,
            held: VecDeque::new(),
        }
    }

    /// A client stream message came in (before the channel handles it).
    pub(crate) fn on_incoming(&mut self, seq: i64, carries: Carries) {
        if seq < self.next || seq >= self.next.saturating_add(MAX_AHEAD) {
            return;
        }
        let bytes = match carries {
            Carries::Data(n) if self.data_from.is_some_and(|from| seq >= from) => n,
            Carries::HandshakeResponse => {
                self.data_from.get_or_insert(seq.saturating_add(1));
                0
            }
            Carries::Data(_) | Carries::Nothing => 0,
        };
        self.ahead.entry(seq).or_insert(bytes);
        while let Some(n) = self.ahead.remove(&self.next) {
            self.total += n;
            if n > 0 && self.waiting.len() < MAX_WAITING {
                self.waiting.insert(self.next, self.total);
            }
            self.next += 1;
        }
    }

    /// The channel wants to acknowledge `seq`: `Some(item)` back means send it now, `None`
    /// means the gate holds it until the target has taken the message's bytes.
    pub(crate) fn on_ack(&mut self, seq: i64, item: T) -> Option<T> {
        match self.waiting.get(&seq) {
            Some(&end) if end > self.written => {
                // Kept in offset order, so the front is always the next to go.
                let at = self.held.partition_point(|(e, _)| *e <= end);
                self.held.insert(at, (end, item));
                None
            }
            _ => Some(item),
        }
    }

    /// The target took `n` more bytes.
    pub(crate) fn on_written(&mut self, n: u64) {
        self.written += n;
        let written = self.written;
        self.waiting.retain(|_, end| *end > written);
    }

    /// The next held acknowledge the target's progress has released, if any.
    pub(crate) fn pop_released(&mut self) -> Option<T> {
        if self.has_released() {
            self.held.pop_front().map(|(_, item)| item)
        } else {
            None
        }
    }

    /// True when [`pop_released`](Self::pop_released) has something.
    pub(crate) fn has_released(&self) -> bool {
        self.held
            .front()
            .is_some_and(|(end, _)| *end <= self.written)
    }

    /// Acknowledges held back right now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> AckGate<i64> {
        let mut g = AckGate::new(true);
        g.on_incoming(0, Carries::HandshakeResponse);
        g
    }

    #[test]
    fn data_is_acknowledged_only_once_the_target_took_all_of_it() {
        let mut g = gate();
        g.on_incoming(1, Carries::Data(1024));
        g.on_incoming(2, Carries::Data(1024));
        assert_eq!(g.on_ack(0, 0), Some(0), "the handshake is not held");
        assert_eq!(g.on_ack(1, 1), None);
        assert_eq!(g.on_ack(2, 2), None);
        g.on_written(1000);
        assert_eq!(g.pop_released(), None, "24 bytes of seq 1 still unwritten");
        g.on_written(24);
        assert_eq!(g.pop_released(), Some(1));
        assert_eq!(g.pop_released(), None);
        g.on_written(1024);
        assert_eq!(g.pop_released(), Some(2));
        assert_eq!(g.held(), 0);
    }

    #[test]
    fn early_messages_are_acknowledged_at_once_and_placed_when_the_gap_fills() {
        let mut g = gate();
        g.on_incoming(2, Carries::Data(100));
        assert_eq!(g.on_ack(2, 2), Some(2), "early: acknowledged on arrival");
        g.on_incoming(1, Carries::Data(50));
        assert_eq!(g.on_ack(1, 1), None);
        g.on_written(50);
        assert_eq!(g.pop_released(), Some(1));
        // A duplicate of 2 before its bytes are written waits like the original would.
        assert_eq!(g.on_ack(2, 22), None);
        g.on_written(100);
        assert_eq!(g.pop_released(), Some(22));
    }

    #[test]
    fn a_duplicate_of_written_data_is_acknowledged_at_once() {
        let mut g = gate();
        g.on_incoming(1, Carries::Data(10));
        g.on_written(10);
        g.on_incoming(1, Carries::Data(10));
        assert_eq!(g.on_ack(1, 1), Some(1));
    }

    #[test]
    fn data_before_the_handshake_response_is_not_counted() {
        // The agent discards it; counting it would hold every later ack forever.
        let mut g = AckGate::new(true);
        g.on_incoming(0, Carries::Data(500));
        g.on_incoming(1, Carries::HandshakeResponse);
        g.on_incoming(2, Carries::Data(10));
        assert_eq!(g.on_ack(2, 2), None);
        g.on_written(10);
        assert_eq!(g.pop_released(), Some(2));
    }

    #[test]
    fn without_a_handshake_everything_counts() {
        let mut g = AckGate::new(false);
        g.on_incoming(0, Carries::Data(10));
        assert_eq!(g.on_ack(0, 0), None);
        g.on_written(10);
        assert_eq!(g.pop_released(), Some(0));
    }

    #[test]
    fn a_far_future_sequence_number_is_not_tracked() {
        let mut g = gate();
        g.on_incoming(i64::MAX, Carries::Data(10));
        assert_eq!(g.on_ack(i64::MAX, 1), Some(1));
        g.on_incoming(1, Carries::Data(10));
        assert_eq!(g.on_ack(1, 1), None, "tracking goes on");
    }
}
