//! Basic port forwarding (§7.2), for agents at or below 3.0.196.0: the session carries one
//! local connection at a time. When it ends we send DisconnectToPort, and the agent closes its
//! destination and dials again when the next connection's first bytes arrive. Connections
//! that come meanwhile wait in the opener's queue, in order.

use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;

use super::local::Local;
use super::{OpenRequest, Opened, PortStats};
use crate::ssm::driver::{AppLayer, Outgoing};
use crate::ssm::message::PayloadType;
use crate::ssm::payload::Flag;

pub struct BasicLayer {
    /// None once every opener is gone.
    rx: Option<mpsc::Receiver<OpenRequest>>,
    current: Option<Local>,
    /// The last connection ended: tell the agent before anything else goes out.
    disconnect: bool,
    stats: Arc<PortStats>,
}

impl BasicLayer {
    pub(super) fn new(rx: mpsc::Receiver<OpenRequest>, stats: Arc<PortStats>) -> Self {
        Self {
            rx: Some(rx),
            current: None,
            disconnect: false,
            stats,
        }
    }

    /// The current connection ended (either way): DisconnectToPort, then the next one.
    fn end_current(&mut self) {
        if self.current.take().is_some() {
            self.stats.stream_ended();
            self.disconnect = true;
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Local>> {
        let Some(rx) = self.rx.as_mut() else {
            return Poll::Ready(None);
        };
        let req = std::task::ready!(rx.poll_recv(cx));
        let Some(req) = req else {
            self.rx = None;
            return Poll::Ready(None);
        };
        // Basic mode has no per-connection refusal: the agent dials when data arrives.
        if let Some(tx) = req.reply {
            let _ = tx.send(Opened::Connected);
        }
        self.stats.stream_accepted();
        Poll::Ready(Some(Local::new(req.io)))
    }
}

fn disconnect_flag() -> Outgoing {
    let flag = Bytes::copy_from_slice(&Flag::DisconnectToPort.to_bytes());
    Outgoing::Payload(PayloadType::Flag, flag)
}

impl AppLayer for BasicLayer {
    fn poll_outgoing(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<Outgoing>> {
        if std::mem::take(&mut self.disconnect) {
            return Poll::Ready(Ok(disconnect_flag()));
        }
        if self.current.is_none() {
            match std::task::ready!(self.poll_next(cx)) {
                Some(local) => self.current = Some(local),
                None => return Poll::Ready(Ok(Outgoing::End)),
            }
        }
        let Some(local) = self.current.as_mut() else {
            return Poll::Pending;
        };
        match std::task::ready!(local.poll_read(cx, buf)) {
            Ok(n) if n > 0 => {
                PortStats::add(&self.stats.bytes_up, n);
                Poll::Ready(Ok(Outgoing::Data(n)))
            }
            Ok(_) | Err(_) => {
                self.end_current();
                self.disconnect = false;
                Poll::Ready(Ok(disconnect_flag()))
            }
        }
    }

    /// Output that arrives between connections belonged to the last one: it is dropped.
    fn poll_deliver(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let Some(local) = self.current.as_mut() else {
            return Poll::Ready(Ok(data.len()));
        };
        let Some(io) = local.io_mut() else {
            return Poll::Ready(Ok(data.len()));
        };
        match std::task::ready!(std::pin::Pin::new(io).poll_write(cx, data)) {
            Ok(n) if n > 0 => {
                PortStats::add(&self.stats.bytes_down, n);
                Poll::Ready(Ok(n))
            }
            Ok(_) | Err(_) => {
                self.end_current();
                Poll::Ready(Ok(data.len()))
            }
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(io) = self.current.as_mut().and_then(Local::io_mut) {
            let _ = std::task::ready!(std::pin::Pin::new(io).poll_flush(cx));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(local) = self.current.as_mut() {
            let _ = std::task::ready!(local.poll_shutdown(cx));
        }
        Poll::Ready(Ok(()))
    }
}
