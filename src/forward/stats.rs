//! What a forward counts and how `status` reports it. The counters live at the forward's accept
//! loop, not in its carrier: every accepted connection is wrapped in a [`Counted`] stream, so
//! connections and bytes are counted the same way whether they ride the forward's own SSM port
//! sessions or an upstream of the master, and totals survive a session being replaced.
//!
//! [`ForwardStatus`] is declared once: the master builds it, the control protocol carries it
//! as is, and `status` renders it. Fields added later must be `#[serde(default)]`.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::relay::BoxedStream;

/// A forward's counters, shared by its accept loop, its connections and `status`.
#[derive(Debug, Default)]
pub struct ForwardStats {
    open: AtomicU64,
    total: AtomicU64,
    /// Bytes from local clients to the destination.
    bytes_out: AtomicU64,
    /// Bytes from the destination to local clients.
    bytes_in: AtomicU64,
    last_error: Mutex<Option<(String, u64)>>,
}

/// A point-in-time copy of [`ForwardStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub open: u64,
    pub total: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<u64>,
}

impl ForwardStats {
    /// Remembers why a connection failed, with the wall-clock time, for `status`.
    pub fn set_error(&self, why: impl Into<String>) {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some((why.into(), at));
    }

    /// Connections open right now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let err = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        StatsSnapshot {
            open: self.open(),
            total: self.total.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            last_error_at: err.as_ref().map(|e| e.1),
            last_error: err.map(|e| e.0),
        }
    }
}

/// An accepted connection that counts its bytes into its forward's [`ForwardStats`], and
/// counts as open until it is dropped (whoever carries it drops it when the stream ends).
pub struct Counted {
    inner: BoxedStream,
    stats: Arc<ForwardStats>,
}

impl Counted {
    pub fn new(inner: BoxedStream, stats: Arc<ForwardStats>) -> Self {
        stats.open.fetch_add(1, Ordering::Relaxed);
        stats.total.fetch_add(1, Ordering::Relaxed);
        Self { inner, stats }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let _ = self
            .stats
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        self.stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.stats.bytes_in.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Where a forward of the master is, as `status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardState {
    /// Listening, with a session (or an upstream) ready to carry connections.
    Up,
    /// Listening; its sessions or its upstream are still coming up.
    Connecting,
    /// Listening, but connections cannot be carried: see the last error.
    Failed,
    /// Taken down by `disconnect`; `connect` starts it again.
    Stopped,
}

impl std::fmt::Display for ForwardState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Up => "up",
            Self::Connecting => "connecting",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        })
    }
}

/// One forward of the master, for `session-proxy status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardStatus {
    /// What `connect`/`disconnect` call it: the configured listen address (`unix:PATH` for
    /// a socket).
    pub name: String,
    /// The bound address (the real port for a configured port 0); none while stopped.
    pub listen: Option<String>,
    /// The destination as the instance sees it.
    pub to: String,
    /// `upstream NAME` or `instance ID`.
    pub via: String,
    pub state: ForwardState,
    /// SSM sessions up and configured (a forward via an upstream has none of its own).
    pub sessions_up: usize,
    pub sessions_total: usize,
    #[serde(default)]
    pub session_ids: Vec<String>,
    pub open_connections: u64,
    pub connections_total: u64,
    /// Bytes from the destination to local clients.
    pub bytes_in: u64,
    /// Bytes from local clients to the destination.
    pub bytes_out: u64,
    pub last_error: Option<String>,
    /// When `last_error` happened, in seconds since the Unix epoch.
    pub last_error_at: Option<u64>,
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_counted_connection_counts_bytes_both_ways_and_is_open_until_dropped() {
        let stats = Arc::new(ForwardStats::default());
        let (a, mut b) = tokio::io::duplex(64);
        let mut c = Counted::new(Box::new(a), stats.clone());
        assert_eq!((stats.open(), stats.snapshot().total), (1, 1));
        c.write_all(b"hello").await.unwrap();
        b.write_all(b"abc").await.unwrap();
        let mut got = [0u8; 3];
        c.read_exact(&mut got).await.unwrap();
        let s = stats.snapshot();
        assert_eq!((s.bytes_in, s.bytes_out), (5, 3));
        drop(c);
        assert_eq!((stats.open(), stats.snapshot().total), (0, 1));
    }
}
