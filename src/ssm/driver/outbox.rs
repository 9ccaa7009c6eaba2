//! Messages waiting for a link's sink. Shared by the driver and the simulator's relay.
//!
//! Acknowledgements may be held back for a moment ([`Outbox::push_ack`]): at the real agent's
//! pace a message arrives alone about every millisecond, and sending each one's ack in its own
//! write was a large share of the client's CPU per message. Held acks go out together as soon
//! as anything else is queued, once the oldest has waited [`ACK_HOLD`], or once
//! [`MAX_HELD_ACKS`] are waiting. The peer's RTT samples grow by at most `ACK_HOLD`, far below
//! its RTO margin (SRTT + at least 10 ms, reference §6.3), so no resend is provoked.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Sink;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Longest an acknowledgement is held back to share a write with later ones.
pub(crate) const ACK_HOLD: Duration = Duration::from_millis(2);

/// Held acknowledgements that are sent at once, whatever their age.
pub(crate) const MAX_HELD_ACKS: usize = 32;

/// Messages waiting for a sink, plus whether the sink holds unflushed ones. Pumping is
/// cancel-safe (a message leaves the queue only when the sink takes it), so it can be polled
/// next to the reader; the dirty flag keeps the pump armed until the flush completes.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    q: VecDeque<WsMessage>,
    dirty: bool,
    /// Something other than a held acknowledgement is queued: pump now.
    urgent: bool,
    /// When the oldest held acknowledgement was queued.
    held_since: Option<Instant>,
}

impl Outbox {
    /// Queues a message to be sent at once (with any held acknowledgements).
    pub(crate) fn push(&mut self, m: WsMessage) {
        self.q.push_back(m);
        self.urgent = true;
    }

    /// Queues an acknowledgement that may wait up to [`ACK_HOLD`] for company.
    pub(crate) fn push_ack(&mut self, m: WsMessage, now: Instant) {
        self.q.push_back(m);
        self.held_since.get_or_insert(now);
    }

    /// Sends held acknowledgements now: a batched read ended, and its acks already share a
    /// write (holding them on would only cost a wake-up of its own, see `batch`).
    pub(crate) fn release_held(&mut self) {
        if !self.q.is_empty() {
            self.urgent = true;
        }
    }

    /// Nothing queued and nothing left unflushed.
    pub(crate) fn is_idle(&self) -> bool {
        self.q.is_empty() && !self.dirty
    }

    /// Whether the queue should be pumped now rather than held.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        !self.is_idle()
            && (self.urgent
                || self.dirty
                || self.q.len() >= MAX_HELD_ACKS
                || self.hold_deadline().is_some_and(|t| t <= now))
    }

    /// When held acknowledgements must go out, if any are held.
    pub(crate) fn hold_deadline(&self) -> Option<Instant> {
        self.held_since.map(|t| t + ACK_HOLD)
    }

    /// Forgets everything (the sink is gone).
    pub(crate) fn clear(&mut self) {
        self.q.clear();
        self.dirty = false;
        self.urgent = false;
        self.held_since = None;
    }

    /// Moves queued messages into `sink` and flushes; ready once all of them are flushed.
    pub(crate) fn poll_pump<S>(
        &mut self,
        cx: &mut Context<'_>,
        sink: &mut S,
    ) -> Poll<Result<(), S::Error>>
    where
        S: Sink<WsMessage> + Unpin,
    {
        loop {
            let Some(m) = self.q.pop_front() else {
                let r = Pin::new(&mut *sink).poll_flush(cx);
                if r.is_ready() {
                    self.dirty = false;
                }
                return r;
            };
            match Pin::new(&mut *sink).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                other => {
                    // Not taken: it stays first in line.
                    self.q.push_front(m);
                    return other;
                }
            }
            self.dirty = true;
            if let Err(e) = Pin::new(&mut *sink).start_send(m) {
                return Poll::Ready(Err(e));
            }
            // All of it is in the sink (`dirty` keeps the pump armed until the flush); what is
            // pushed from now on starts a new hold.
            if self.q.is_empty() {
                self.urgent = false;
                self.held_since = None;
            }
        }
    }

    /// Sends everything queued and flushes.
    pub(crate) async fn pump<S>(&mut self, sink: &mut S) -> Result<(), S::Error>
    where
        S: Sink<WsMessage> + Unpin,
    {
        poll_fn(|cx| self.poll_pump(cx, sink)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn ack() -> WsMessage {
        WsMessage::Binary(Bytes::from_static(b"ack"))
    }

    #[test]
    fn held_acks_wait_for_their_deadline_or_for_anything_else() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut o = Outbox::default();
        assert!(!o.is_due(t0), "nothing queued");
        o.push_ack(ack(), t0);
        o.push_ack(ack(), t0 + ms);
        assert!(!o.is_due(t0 + ms));
        assert_eq!(o.hold_deadline(), Some(t0 + ACK_HOLD), "the oldest sets it");
        assert!(o.is_due(t0 + ACK_HOLD));
        // Data (or a ping, or a flag) takes the held acks along at once.
        o.push(WsMessage::Binary(Bytes::from_static(b"data")));
        assert!(o.is_due(t0));
    }

    #[test]
    fn released_acks_are_due_at_once_and_an_empty_outbox_stays_idle() {
        let t0 = Instant::now();
        let mut o = Outbox::default();
        o.release_held();
        assert!(!o.is_due(t0) && o.is_idle());
        o.push_ack(ack(), t0);
        assert!(!o.is_due(t0));
        o.release_held();
        assert!(o.is_due(t0));
    }

    #[test]
    fn a_full_batch_of_held_acks_goes_out_without_waiting() {
        let t0 = Instant::now();
        let mut o = Outbox::default();
        for _ in 0..MAX_HELD_ACKS {
            assert!(!o.is_due(t0));
            o.push_ack(ack(), t0);
        }
        assert!(o.is_due(t0));
    }

    #[tokio::test]
    async fn a_pump_sends_everything_in_order_and_the_next_ack_starts_a_new_hold() {
        let t0 = Instant::now();
        let (mut sink, mut sent) = futures_channel::mpsc::unbounded::<WsMessage>();
        let mut o = Outbox::default();
        o.push_ack(ack(), t0);
        o.push_ack(ack(), t0);
        o.push(WsMessage::Ping(Bytes::from_static(b"p")));
        o.pump(&mut sink).await.unwrap();
        assert!(o.is_idle());
        assert_eq!(o.hold_deadline(), None);
        let got: Vec<_> = std::iter::from_fn(|| sent.try_recv().ok()).collect();
        assert_eq!(
            got,
            vec![ack(), ack(), WsMessage::Ping(Bytes::from_static(b"p"))]
        );

        let t1 = t0 + Duration::from_millis(50);
        o.push_ack(ack(), t1);
        assert!(!o.is_due(t1), "held again, not urgent from the last batch");
        assert_eq!(o.hold_deadline(), Some(t1 + ACK_HOLD));
    }
}
