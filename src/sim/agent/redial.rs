//! The agent's basic LocalPortForwarding (A `port_basic.go`, reference §7.2): one destination
//! connection at a time. DisconnectToPort closes it, and so does the destination closing; the
//! client is not told. The next bytes from the client dial again before they are written.

use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

use super::dial;
use super::shim::Target;
use crate::relay::poll_read_into;
use crate::sim::registry::DialTarget;
use crate::ssm::driver::{AppLayer, BoxFuture, Outgoing};
use crate::ssm::payload::Flag;

pub(in crate::sim::agent) struct Redial {
    target: DialTarget,
    written: Arc<AtomicU64>,
    rate: Option<u64>,
    conn: Option<Target<TcpStream>>,
    dialing: Option<BoxFuture<io::Result<TcpStream>>>,
}

impl Redial {
    pub(super) fn new(target: DialTarget, written: Arc<AtomicU64>, rate: Option<u64>) -> Self {
        Self {
            target,
            written,
            rate,
            conn: None,
            dialing: None,
        }
    }

    /// Dials if no connection is up; ready once one is.
    fn poll_connected(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.conn.is_some() {
            return Poll::Ready(Ok(()));
        }
        let target = self.target.clone();
        let f = self
            .dialing
            .get_or_insert_with(|| Box::pin(async move { dial(target).await }));
        let r = ready!(f.as_mut().poll(cx));
        self.dialing = None;
        let s = r?;
        self.conn = Some(Target::new(s, self.written.clone(), self.rate));
        Poll::Ready(Ok(()))
    }
}

impl AppLayer for Redial {
    /// Output only while a connection is up; when the destination closes, the connection is
    /// dropped and the session waits for the client's next bytes.
    fn poll_outgoing(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<Outgoing>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Pending;
        };
        match ready!(poll_read_into(conn, cx, buf)) {
            Ok(n) if n > 0 => Poll::Ready(Ok(Outgoing::Data(n))),
            Ok(_) | Err(_) => {
                self.conn = None;
                Poll::Pending
            }
        }
    }

    fn poll_deliver(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_connected(cx))?;
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Pending;
        };
        match ready!(std::pin::Pin::new(conn).poll_write(cx, data)) {
            Ok(n) if n > 0 => Poll::Ready(Ok(n)),
            // A broken destination is dropped; the bytes are lost, as with the real agent.
            // Counted as written, so the acknowledge gate lets their acknowledges go.
            Ok(_) | Err(_) => {
                self.conn = None;
                self.written
                    .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
                Poll::Ready(Ok(data.len()))
            }
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(conn) = self.conn.as_mut() {
            let _ = ready!(std::pin::Pin::new(conn).poll_flush(cx));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(conn) = self.conn.as_mut() {
            let _ = ready!(std::pin::Pin::new(conn).poll_shutdown(cx));
        }
        Poll::Ready(Ok(()))
    }

    fn on_flag(&mut self, flag: Flag) -> bool {
        if flag != Flag::DisconnectToPort {
            return false;
        }
        self.conn = None;
        self.dialing = None;
        true
    }
}
