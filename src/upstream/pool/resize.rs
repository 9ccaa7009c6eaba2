//! [shell] Resizing a running pool in place, for a `reload` that changes only `pool_size`.
//!
//! Growing adds slots and starts their tasks. Shrinking makes the slots at or past the new size
//! surplus: they take no new streams (`reserve` skips them), a connection keeps carrying the
//! streams already on it until the last one ends, and then the slot closes its connection
//! (SSH disconnect, TerminateSession) and its task ends. The pool itself, its lifetime counters
//! and the connections that stay are untouched. A surplus slot that is still draining when the
//! pool grows again simply stays.
//!
//! The size lives in a `watch` next to the slots and changes only under the slots lock, and a
//! slot task decides to retire under the same lock, so a resize and a retiring task always agree
//! on whether a slot index needs a new task.

use std::num::NonZeroUsize;
use std::sync::atomic::Ordering;

use super::slot::run_slot;
use super::{lock, Inner, Pool, SlotEntry};
use crate::upstream::state::Slot;
use crate::upstream::stream::Conn;

impl SlotEntry {
    pub(super) fn new(index: usize, targets: usize) -> Self {
        Self {
            slot: Slot::new(index, targets),
            retired: false,
            conn: None,
            instance: None,
            failure: None,
        }
    }
}

impl Pool {
    /// Sets the number of connections, adding slots or retiring the surplus ones once their
    /// streams have ended (see the module doc). Must run inside a tokio runtime.
    pub fn resize(&self, size: NonZeroUsize) {
        let mut tasks = lock(&self.tasks);
        let mut slots = lock(&self.inner.slots);
        let old = self.inner.size.send_replace(size);
        // A pool that was never started (lazy) or is stopped has no task to hand slots to;
        // `start` spawns one per slot of the size in force.
        let running = tasks.as_mut().filter(|_| !*self.inner.stop.borrow());
        let targets = self.inner.cfg.targets.len();
        let mut spawned = Vec::new();
        for i in 0..size.get() {
            match slots.get_mut(i) {
                Some(e) if !e.retired => continue,
                Some(e) => *e = SlotEntry::new(i, targets),
                None => slots.push(SlotEntry::new(i, targets)),
            }
            spawned.push(i);
        }
        match running {
            Some(tasks) => {
                for &i in &spawned {
                    tasks.push(tokio::spawn(run_slot(self.inner.clone(), i)));
                }
                let gone = trim_retired(&mut slots, size.get());
                self.inner.keep_reconnects(gone);
            }
            None => {
                let gone = slots.get(size.get()..).map_or(0, reconnects);
                self.inner.keep_reconnects(gone);
                slots.truncate(size.get());
            }
        }
        drop(slots);
        drop(tasks);
        self.inner.bump();
        tracing::info!(upstream = %self.inner.cfg.name, "pool resized from {old} to {size} connections");
    }
}

impl Inner {
    pub(super) fn size(&self) -> NonZeroUsize {
        *self.size.borrow()
    }

    /// The slots in service (surplus ones, draining after a resize, take no new streams).
    pub(super) fn slot_copies(&self) -> Vec<Slot> {
        let slots = lock(&self.slots);
        slots
            .iter()
            .take(self.size().get())
            .map(|e| e.slot.clone())
            .collect()
    }

    /// Resolves once slot `index` is surplus (the pool shrank to `index` or fewer slots).
    pub(super) async fn surplus(&self, index: usize) {
        let mut rx = self.size.subscribe();
        if rx.wait_for(|s| s.get() <= index).await.is_err() {
            // The sender lives as long as `self`; nothing left to wait for.
            std::future::pending::<()>().await;
        }
    }

    /// Called by slot `index`'s task between connections: when the slot is surplus, marks it
    /// retired (its task must then return without touching the entry again) and trims the
    /// retired tail.
    pub(super) fn retire_if_surplus(&self, index: usize) -> bool {
        let mut slots = lock(&self.slots);
        let size = self.size().get();
        if index < size {
            return false;
        }
        if let Some(e) = slots.get_mut(index) {
            e.slot.on_stopped();
            e.conn = None;
            e.retired = true;
        }
        let gone = trim_retired(&mut slots, size);
        drop(slots);
        self.keep_reconnects(gone);
        self.bump();
        tracing::info!(upstream = %self.cfg.name, "connection {index} retired (pool shrank)");
        true
    }

    /// Keeps the reconnects of slots that are gone in the pool's lifetime count.
    fn keep_reconnects(&self, n: u64) {
        self.totals.ended_reconnects.fetch_add(n, Ordering::Relaxed);
    }
}

fn reconnects(slots: &[SlotEntry]) -> u64 {
    slots.iter().map(|e| e.slot.reconnects()).sum()
}

/// Drops retired entries from the end, never below `size` entries; a retired entry in the
/// middle (a later one still draining) waits for the next call. Returns the reconnects of the
/// dropped slots, which the pool keeps counting.
fn trim_retired(slots: &mut Vec<SlotEntry>, size: usize) -> u64 {
    let mut gone = 0;
    while slots.len() > size && slots.last().is_some_and(|e| e.retired) {
        gone += slots.pop().map_or(0, |e| e.slot.reconnects());
    }
    gone
}

/// Resolves once slot `index` is surplus and `conn` carries no stream any more; a pool that
/// grows back over `index` in the meantime keeps the connection.
pub(super) async fn surplus_drained(inner: &Inner, conn: &Conn, index: usize) {
    loop {
        inner.surplus(index).await;
        let mut size = inner.size.subscribe();
        tokio::select! {
            () = streams_ended(conn) => {
                if inner.size().get() <= index {
                    return;
                }
            }
            _ = size.wait_for(|s| s.get() > index) => {}
        }
    }
}

/// Resolves once no stream is open on `conn` (each stream's lease wakes it as it ends).
async fn streams_ended(conn: &Conn) {
    loop {
        let released = conn.released.notified();
        tokio::pin!(released);
        released.as_mut().enable();
        if conn.open_streams.load(Ordering::Acquire) == 0 {
            return;
        }
        released.await;
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{HostKeyPolicy, SshUpstream, Target, Upstream, UpstreamKind};
    use crate::upstream::PoolOptions;

    fn n(v: usize) -> NonZeroUsize {
        NonZeroUsize::new(v).unwrap_or(NonZeroUsize::MIN)
    }

    fn lazy(pool_size: usize) -> Upstream {
        Upstream {
            name: "prod".into(),
            targets: vec![Target::InstanceId("i-0123456789abcdef0".into())],
            profile: None,
            region: Some("eu-west-1".into()),
            credentials: None,
            kind: UpstreamKind::Ssh(SshUpstream {
                user: "ubuntu".into(),
                identity_files: vec!["/home/u/.ssh/id_ed25519".into()],
                ssh_agent: false,
                instance_connect: false,
                port: 22,
                pool_size: n(pool_size),
                host_key_policy: HostKeyPolicy::Strict,
                lazy: true,
                keepalive: None,
            }),
        }
    }

    #[tokio::test]
    async fn an_idle_pool_takes_the_new_size_at_once_and_reports_it_in_its_config() {
        let pool = Pool::new(lazy(2), PoolOptions::new(Path::new("/nonexistent/state"))).unwrap();
        pool.resize(n(4));
        assert_eq!(pool.snapshot().connections_total, 4);
        assert_eq!(pool.pool_size(), n(4));
        pool.resize(n(1));
        assert_eq!(pool.snapshot().connections_total, 1);
        assert_eq!(pool.config(), lazy(1));
    }

    #[test]
    fn only_a_retired_tail_is_trimmed_never_below_the_size_and_hands_back_its_reconnects() {
        let entry = |i, retired| {
            let mut e = SlotEntry {
                retired,
                ..SlotEntry::new(i, 1)
            };
            // Slot i connected i + 1 times: i reconnects.
            e.slot.connects = i as u64 + 1;
            e
        };
        let mut slots = vec![
            entry(0, false),
            entry(1, true),
            entry(2, false),
            entry(3, true),
        ];
        assert_eq!(trim_retired(&mut slots, 1), 3);
        assert_eq!(slots.len(), 3, "slot 2 still drains, so slot 1 waits");
        if let Some(e) = slots.get_mut(2) {
            e.retired = true;
        }
        assert_eq!(
            trim_retired(&mut slots, 1),
            2 + 1,
            "their reconnects are handed back"
        );
        assert_eq!(slots.len(), 1);
        let mut slots = vec![entry(0, true), entry(1, true)];
        assert_eq!(trim_retired(&mut slots, 1), 1);
        assert_eq!(slots.len(), 1);
    }
}
