//! A stream of an `ssm-port` upstream, and the counters it feeds for `status`: open streams,
//! streams and bytes per destination and for the whole upstream.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

use super::{lock, Dest};

/// Open streams, streams and bytes, of one destination or of the whole upstream.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) open: AtomicUsize,
    pub(super) streams_total: AtomicU64,
    pub(super) bytes_in: AtomicU64,
    pub(super) bytes_out: AtomicU64,
}

/// Counts a stream (or an open in progress) on its destination and the upstream, so the
/// destination is not closed under it.
pub(super) struct Lease {
    pub(super) dest: Arc<Dest>,
    totals: Arc<Counters>,
}

impl Lease {
    pub(super) fn new(dest: Arc<Dest>, totals: Arc<Counters>) -> Self {
        dest.counters.open.fetch_add(1, Ordering::AcqRel);
        totals.open.fetch_add(1, Ordering::Relaxed);
        Self { dest, totals }
    }

    pub(super) fn opened(&self) {
        self.dest
            .counters
            .streams_total
            .fetch_add(1, Ordering::Relaxed);
        self.totals.streams_total.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        *lock(&self.dest.idle_since) = Instant::now();
        self.dest.counters.open.fetch_sub(1, Ordering::AcqRel);
        self.totals.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The client's end of a port stream; the other end is carried by the session.
pub struct PortStream {
    pub(super) pipe: DuplexStream,
    pub(super) lease: Lease,
}

impl AsyncRead for PortStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.pipe).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before) as u64;
        if n > 0 {
            let l = &self.lease;
            l.dest.counters.bytes_in.fetch_add(n, Ordering::Relaxed);
            l.totals.bytes_in.fetch_add(n, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for PortStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.pipe).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            let l = &self.lease;
            l.dest
                .counters
                .bytes_out
                .fetch_add(n as u64, Ordering::Relaxed);
            l.totals.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.pipe).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.pipe).poll_shutdown(cx)
    }
}
