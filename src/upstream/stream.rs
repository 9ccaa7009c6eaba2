//! Streams handed out by a pool, and the per-connection accounting they feed: open and total
//! streams and bytes each way, counted on the connection and in the pool's lifetime totals.
//! A connection also keeps its SSM session's live driver status (resumes, retransmits), which
//! the pool folds into its totals when the connection ends.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use crate::ssh::{SshConnection, SshStream};
use crate::ssm::driver::Status;

/// A live connection, shared by its slot task and the streams opened on it.
pub(super) struct Conn {
    pub(super) ssh: SshConnection,
    pub(super) session_id: String,
    pub(super) open_streams: AtomicUsize,
    pub(super) streams_total: AtomicU64,
    pub(super) bytes_in: AtomicU64,
    pub(super) bytes_out: AtomicU64,
    /// The SSM session driver's live view (resumes, channel counters).
    pub(super) session: watch::Receiver<Status>,
    /// Set when a stream open failed as if the connection were gone, before the slot task
    /// notices, so `pick` skips it.
    pub(super) suspect: AtomicBool,
    /// Woken as each stream on this connection ends, so a draining slot learns when the last
    /// one is gone (see `pool::resize`).
    pub(super) released: tokio::sync::Notify,
}

impl Conn {
    pub(super) fn new(
        ssh: SshConnection,
        session_id: String,
        session: watch::Receiver<Status>,
    ) -> Self {
        Self {
            ssh,
            session_id,
            open_streams: AtomicUsize::new(0),
            streams_total: AtomicU64::new(0),
            session,
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            suspect: AtomicBool::new(false),
            released: tokio::sync::Notify::new(),
        }
    }

    pub(super) fn healthy(&self) -> bool {
        !self.suspect.load(Ordering::Relaxed) && !self.ssh.is_closed()
    }

    /// `(resumes, retransmits)` of the SSM session so far.
    pub(super) fn session_counters(&self) -> (u64, u64) {
        let st = self.session.borrow();
        (u64::from(st.reconnects), st.stats.retransmits)
    }
}

/// A pool's lifetime counters. Resumes and retransmits of live sessions are read from the
/// sessions themselves; these hold the ones of sessions that already ended.
#[derive(Default)]
pub(super) struct Totals {
    pub(super) open_streams: AtomicUsize,
    pub(super) streams_total: AtomicU64,
    pub(super) bytes_in: AtomicU64,
    pub(super) bytes_out: AtomicU64,
    pub(super) ended_resumes: AtomicU64,
    pub(super) ended_retransmits: AtomicU64,
    /// Reconnects of the slots a resize removed.
    pub(super) ended_reconnects: AtomicU64,
}

impl Totals {
    /// Keeps an ending connection's session counters in the pool's lifetime totals.
    pub(super) fn retire(&self, conn: &Conn) {
        let (resumes, retransmits) = conn.session_counters();
        self.ended_resumes.fetch_add(resumes, Ordering::Relaxed);
        self.ended_retransmits
            .fetch_add(retransmits, Ordering::Relaxed);
    }
}

/// Counts a stream on its connection and in the pool totals for as long as it lives.
pub(super) struct Lease {
    pub(super) conn: Arc<Conn>,
    totals: Arc<Totals>,
}

impl Lease {
    pub(super) fn new(conn: Arc<Conn>, totals: Arc<Totals>) -> Self {
        conn.open_streams.fetch_add(1, Ordering::Relaxed);
        totals.open_streams.fetch_add(1, Ordering::Relaxed);
        Self { conn, totals }
    }

    /// Counts the stream in the lifetime totals, once the bastion has accepted it (a lease is
    /// taken before opening, and an open that fails should not count).
    pub(super) fn opened(&self) {
        self.conn.streams_total.fetch_add(1, Ordering::Relaxed);
        self.totals.streams_total.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.conn.open_streams.fetch_sub(1, Ordering::AcqRel);
        self.totals.open_streams.fetch_sub(1, Ordering::Relaxed);
        self.conn.released.notify_waiters();
    }
}

/// A stream through an upstream, counting its bytes for the upstream's status: a
/// `direct-tcpip` channel of an SSH pool, or a stream of an `ssm-port` upstream's port session.
pub struct UpstreamStream {
    carrier: Carrier,
}

/// One per open stream and never moved once relaying, so the SSH variant's size costs
/// nothing worth a second allocation per stream.
#[allow(clippy::large_enum_variant)]
enum Carrier {
    Ssh { stream: SshStream, lease: Lease },
    Port(super::port_pool::PortStream),
}

impl std::fmt::Debug for UpstreamStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamStream")
            .field("instance", &self.instance())
            .field("session_id", &self.session_id())
            .finish_non_exhaustive()
    }
}

impl UpstreamStream {
    pub(super) fn ssh(stream: SshStream, lease: Lease) -> Self {
        Self {
            carrier: Carrier::Ssh { stream, lease },
        }
    }

    pub(super) fn port(stream: super::port_pool::PortStream) -> Self {
        Self {
            carrier: Carrier::Port(stream),
        }
    }

    /// The instance (bastion) an SSH stream goes through.
    pub fn instance(&self) -> Option<&str> {
        match &self.carrier {
            Carrier::Ssh { lease, .. } => Some(lease.conn.ssh.instance()),
            Carrier::Port(_) => None,
        }
    }

    /// The SSM session carrying an SSH stream.
    pub fn session_id(&self) -> Option<&str> {
        match &self.carrier {
            Carrier::Ssh { lease, .. } => Some(&lease.conn.session_id),
            Carrier::Port(_) => None,
        }
    }
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let (stream, lease) = match &mut self.carrier {
            Carrier::Ssh { stream, lease } => (stream, lease),
            Carrier::Port(p) => return Pin::new(p).poll_read(cx, buf),
        };
        let before = buf.filled().len();
        let r = Pin::new(stream).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before) as u64;
        if n > 0 {
            lease.conn.bytes_in.fetch_add(n, Ordering::Relaxed);
            lease.totals.bytes_in.fetch_add(n, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let (stream, lease) = match &mut self.carrier {
            Carrier::Ssh { stream, lease } => (stream, lease),
            Carrier::Port(p) => return Pin::new(p).poll_write(cx, buf),
        };
        let r = Pin::new(stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            let n = n as u64;
            lease.conn.bytes_out.fetch_add(n, Ordering::Relaxed);
            lease.totals.bytes_out.fetch_add(n, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.carrier {
            Carrier::Ssh { stream, .. } => Pin::new(stream).poll_flush(cx),
            Carrier::Port(p) => Pin::new(p).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.carrier {
            Carrier::Ssh { stream, .. } => Pin::new(stream).poll_shutdown(cx),
            Carrier::Port(p) => Pin::new(p).poll_shutdown(cx),
        }
    }
}
