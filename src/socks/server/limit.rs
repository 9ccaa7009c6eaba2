//! A listener's connection cap and tunnel idle timeout ([`Limits`], the config's per-listener
//! `max_connections` and `idle_timeout_secs`), held live in [`Slots`] so `reload` can change them
//! for the connections that come after.
//!
//! The cap is a counter rather than a semaphore: a client over the cap is refused at once (REP
//! 0x01) instead of waiting for a permit, and `reload` can move the cap without forgetting
//! permits. Reaching the cap is worth one warning, not one per refused client: [`Slots`]
//! remembers that it warned until the load has fallen back to half the cap.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `max_connections:` when not given.
pub const DEFAULT_MAX_CONNECTIONS: NonZeroUsize = match NonZeroUsize::new(1024) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

/// The per-listener limits a config can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Live SOCKS connections (handshaking or relaying); clients over it get REP 0x01 at once.
    pub max_connections: NonZeroUsize,
    /// Close a tunnel after this long with no byte either way (`None`: never).
    pub idle_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: None,
        }
    }
}

/// The live limits of one server and its count of connections holding a [`Slot`].
#[derive(Debug)]
pub(super) struct Slots {
    max: AtomicUsize,
    /// Idle timeout in milliseconds; 0 = off.
    idle_ms: AtomicU64,
    live: AtomicUsize,
    /// Set when the cap was reached and logged; cleared once the load falls to half the cap.
    warned: AtomicBool,
}

/// What a refused [`Slots::try_take`] tells the accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Full {
    pub(super) max: usize,
    /// True for the first refusal since the cap was last reached: the one to log.
    pub(super) first: bool,
}

impl Slots {
    pub(super) fn new(limits: Limits) -> Arc<Self> {
        let slots = Arc::new(Self {
            max: AtomicUsize::new(0),
            idle_ms: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            warned: AtomicBool::new(false),
        });
        slots.set(limits);
        slots
    }

    /// New limits, for connections accepted from now on.
    pub(super) fn set(&self, limits: Limits) {
        self.max
            .store(limits.max_connections.get(), Ordering::Relaxed);
        let ms = limits.idle_timeout.map_or(0, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        self.idle_ms.store(ms, Ordering::Relaxed);
    }

    pub(super) fn limits(&self) -> Limits {
        Limits {
            max_connections: NonZeroUsize::new(self.max.load(Ordering::Relaxed))
                .unwrap_or(NonZeroUsize::MIN),
            idle_timeout: self.idle_timeout(),
        }
    }

    pub(super) fn idle_timeout(&self) -> Option<Duration> {
        match self.idle_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// A slot if fewer than the cap are live.
    pub(super) fn try_take(self: &Arc<Self>) -> Result<Slot, Full> {
        let max = self.max.load(Ordering::Relaxed);
        let taken = self
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(Slot(self.clone())),
            Err(_) => Err(Full {
                max,
                first: !self.warned.swap(true, Ordering::Relaxed),
            }),
        }
    }

    #[cfg(test)]
    pub(super) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

/// One live connection's place under the cap; freed on drop (also when the task is aborted).
#[derive(Debug)]
pub(super) struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        let left = self.0.live.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        if left <= self.0.max.load(Ordering::Relaxed) / 2 {
            self.0.warned.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> Limits {
        Limits {
            max_connections: NonZeroUsize::new(max).unwrap(),
            idle_timeout: None,
        }
    }

    #[test]
    fn slots_refuse_past_the_cap_and_free_on_drop() {
        let slots = Slots::new(limits(2));
        let a = slots.try_take().unwrap();
        let _b = slots.try_take().unwrap();
        assert_eq!(slots.try_take().unwrap_err().max, 2);
        drop(a);
        assert!(slots.try_take().is_ok());
    }

    #[test]
    fn only_the_first_refusal_of_an_episode_is_marked_for_the_log() {
        let slots = Slots::new(limits(4));
        let held: Vec<_> = (0..4).map(|_| slots.try_take().unwrap()).collect();
        let firsts: Vec<bool> = (0..5)
            .map(|_| slots.try_take().unwrap_err().first)
            .collect();
        assert_eq!(firsts, [true, false, false, false, false]);
        let mut held = held.into_iter();
        drop(held.next()); // 3 live: still above half the cap, the episode goes on
        let _again = slots.try_take().unwrap();
        assert!(!slots.try_take().unwrap_err().first);
        drop(held.next());
        drop(held.next()); // 2 live of 4: back to half, so the next time counts again
        let _c = slots.try_take().unwrap();
        let _d = slots.try_take().unwrap();
        assert!(slots.try_take().unwrap_err().first);
    }

    #[test]
    fn new_limits_apply_to_the_next_take_without_touching_live_slots() {
        let slots = Slots::new(limits(3));
        let held: Vec<_> = (0..3).map(|_| slots.try_take().unwrap()).collect();
        slots.set(Limits {
            max_connections: NonZeroUsize::new(1).unwrap(),
            idle_timeout: Some(Duration::from_secs(30)),
        });
        assert_eq!(slots.live(), 3);
        assert!(slots.try_take().is_err());
        drop(held);
        let _one = slots.try_take().unwrap();
        assert!(slots.try_take().is_err());
        assert_eq!(slots.idle_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(slots.limits().max_connections.get(), 1);
    }
}
