//! An in-process message link (two bounded channels) between the simulator's service relay and
//! its agent. It carries the same `Message`s as a WebSocket, so the agent runs the very same
//! driver as the client.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_channel::mpsc;
use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite::Message;

use crate::ssm::driver::Link;

/// The other end hung up.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("in-process link closed")]
pub struct LinkClosed;

/// One end of an in-process link.
#[derive(Debug)]
pub struct MemLink {
    tx: mpsc::Sender<Message>,
    rx: mpsc::Receiver<Message>,
}

/// Two connected ends; each has room for `capacity` messages in flight per direction.
pub fn pair(capacity: usize) -> (MemLink, MemLink) {
    let (a_tx, b_rx) = mpsc::channel(capacity);
    let (b_tx, a_rx) = mpsc::channel(capacity);
    (
        MemLink { tx: a_tx, rx: a_rx },
        MemLink { tx: b_tx, rx: b_rx },
    )
}

impl Stream for MemLink {
    type Item = Result<Message, LinkClosed>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.rx).poll_next(cx).map(|m| m.map(Ok))
    }
}

impl Sink<Message> for MemLink {
    type Error = LinkClosed;
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), LinkClosed>> {
        self.tx.poll_ready(cx).map_err(|_| LinkClosed)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), LinkClosed> {
        self.tx.start_send(item).map_err(|_| LinkClosed)
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), LinkClosed>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), LinkClosed>> {
        self.tx.close_channel();
        Poll::Ready(Ok(()))
    }
}

impl Link for MemLink {
    type Err = LinkClosed;
}
