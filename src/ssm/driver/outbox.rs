//! Messages waiting for a link's sink. Shared by the driver and the simulator's relay.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Sink;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Messages waiting for a sink, plus whether the sink holds unflushed ones. Pumping is
/// cancel-safe (a message leaves the queue only when the sink takes it), so it can be polled
/// next to the reader; the dirty flag keeps the pump armed until the flush completes.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    q: VecDeque<WsMessage>,
    dirty: bool,
}

impl Outbox {
    pub(crate) fn push(&mut self, m: WsMessage) {
        self.q.push_back(m);
    }

    /// Nothing queued and nothing left unflushed.
    pub(crate) fn is_idle(&self) -> bool {
        self.q.is_empty() && !self.dirty
    }

    /// Forgets everything (the sink is gone).
    pub(crate) fn clear(&mut self) {
        self.q.clear();
        self.dirty = false;
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
