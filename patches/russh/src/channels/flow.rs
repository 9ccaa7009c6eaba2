//! Receive-side flow control for one channel (session-proxy patch, see `patches/russh/README.md`).
//!
//! Upstream russh hands every `CHANNEL_DATA` to the channel's bounded queue with an awaited
//! send and tops the peer's window back up as soon as data arrives. One application that stops
//! reading therefore fills its queue, parks the whole session loop (every other channel,
//! keepalives, rekeying) and, before that, lets the peer send without limit.
//!
//! With this patch the session loop never waits on a channel: it counts the bytes it hands to
//! the application here, and only re-opens the peer's window for bytes the application has
//! taken. A reader that stops reading stops its own sender once the window is used up, and the
//! bytes held for it stay below the window size.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Shared between the session loop (which delivers) and the channel's read half (which takes).
#[derive(Debug, Default)]
pub(crate) struct ChannelFlow {
    /// Data bytes delivered to the channel and not yet taken by the application.
    queued: AtomicUsize,
    /// Set by the session loop while it withholds window or holds a backlog for this channel;
    /// the next take wakes the loop so it can deliver more and re-open the window.
    waker: Mutex<Option<Arc<Notify>>>,
}

impl ChannelFlow {
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    pub(crate) fn delivered(&self, bytes: usize) {
        self.queued.fetch_add(bytes, Ordering::AcqRel);
    }

    /// The application took `bytes` off the channel's queue.
    pub(crate) fn taken(&self, bytes: usize) {
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(bytes))
            });
        let waker = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(waker) = waker {
            waker.notify_one();
        }
    }

    /// Asks for `wake` to be notified at the application's next take.
    pub(crate) fn arm(&self, wake: &Arc<Notify>) {
        *self.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(wake.clone());
    }
}
