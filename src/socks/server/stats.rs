//! The SOCKS server's counters: kept with relaxed atomics by the connection tasks, copied out
//! as a [`StatsSnapshot`] for tests and `session-proxy status`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::Reply;
use crate::relay::RelayCounters;

/// Counters for tests and `session-proxy status`. Updated with relaxed atomics; read a
/// consistent-enough copy with [`ServerStats::snapshot`].
#[derive(Debug, Default)]
pub struct ServerStats {
    pub(super) accepted: AtomicU64,
    active: AtomicU64,
    pub(super) handshake_failures: AtomicU64,
    pub(super) auth_failures: AtomicU64,
    pub(super) over_cap: AtomicU64,
    replies: [AtomicU64; 9],
    pub(super) bytes: RelayCounters,
}

/// Plain copy of [`ServerStats`]; also what `session-proxy status` reports (summed over the
/// listeners with [`StatsSnapshot::add`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StatsSnapshot {
    pub accepted: u64,
    pub active: u64,
    /// Handshakes that ended without a request: malformed, timed out, closed early or bad auth.
    pub handshake_failures: u64,
    /// Subset of `handshake_failures`: credentials rejected.
    pub auth_failures: u64,
    /// Clients turned away at the connection cap (`max_connections`): answered REP 0x01, or
    /// closed at once when too many were being answered already.
    pub over_cap: u64,
    /// Replies sent, indexed by reply code (`[0]` = succeeded, the rest are rejections).
    pub replies: [u64; 9],
    pub bytes_client_to_upstream: u64,
    pub bytes_upstream_to_client: u64,
}

impl StatsSnapshot {
    /// Adds `other`'s counters to these (for totals over several listeners).
    pub fn add(&mut self, other: &Self) {
        self.accepted += other.accepted;
        self.active += other.active;
        self.handshake_failures += other.handshake_failures;
        self.auth_failures += other.auth_failures;
        self.over_cap += other.over_cap;
        for (mine, theirs) in self.replies.iter_mut().zip(other.replies) {
            *mine += theirs;
        }
        self.bytes_client_to_upstream += other.bytes_client_to_upstream;
        self.bytes_upstream_to_client += other.bytes_upstream_to_client;
    }

    pub fn replies_with(&self, reply: Reply) -> u64 {
        self.replies
            .get(usize::from(reply.code()))
            .copied()
            .unwrap_or(0)
    }
}

impl ServerStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            accepted: load(&self.accepted),
            active: load(&self.active),
            handshake_failures: load(&self.handshake_failures),
            auth_failures: load(&self.auth_failures),
            over_cap: load(&self.over_cap),
            replies: std::array::from_fn(|i| self.replies.get(i).map_or(0, load)),
            bytes_client_to_upstream: self.bytes.a_to_b(),
            bytes_upstream_to_client: self.bytes.b_to_a(),
        }
    }

    pub(super) fn record_reply(&self, reply: Reply) {
        if let Some(c) = self.replies.get(usize::from(reply.code())) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Keeps `active` right even when a connection task is aborted at shutdown.
pub(super) struct ActiveGuard(Arc<ServerStats>);

impl ActiveGuard {
    pub(super) fn new(stats: &Arc<ServerStats>) -> Self {
        stats.active.fetch_add(1, Ordering::Relaxed);
        Self(stats.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}
