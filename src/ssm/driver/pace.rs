//! Optional read pacing of the application side (the simulator's `--pace-ms`, imitating the
//! agent's 1 KiB-then-sleep-1 ms loop). Reads are scheduled on a fixed grid so timer
//! granularity does not lower the average rate.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub(super) struct Pacer {
    every: Duration,
    chunk: usize,
    next_read_at: Option<Instant>,
}

impl Pacer {
    pub(super) fn new(every: Duration, chunk: usize) -> Self {
        Self {
            every,
            chunk: chunk.max(1),
            next_read_at: None,
        }
    }

    /// The most a read may take.
    pub(super) fn cap(&self, cap: usize) -> usize {
        cap.min(self.chunk)
    }

    /// When the next read is allowed, if that is still ahead of `now`.
    pub(super) fn wait_until(&self, now: Instant) -> Option<Instant> {
        self.next_read_at.filter(|t| *t > now)
    }

    /// A read happened at `now`: schedule the next one on the grid, never banking more than a
    /// few periods of idle credit.
    pub(super) fn on_read(&mut self, now: Instant) {
        let grid = self.next_read_at.unwrap_or(now) + self.every;
        let floor = now.checked_sub(self.every * 4).unwrap_or(now);
        self.next_read_at = Some(grid.max(floor));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_follow_a_fixed_grid_without_banking_idle_time() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut p = Pacer::new(ms, 1024);
        assert_eq!(p.cap(65536), 1024);
        assert_eq!(p.wait_until(t0), None);
        p.on_read(t0);
        assert_eq!(p.wait_until(t0), Some(t0 + ms));
        // A late read keeps the grid (t0+2ms), not "late + 1 ms".
        p.on_read(t0 + ms + ms / 2);
        assert_eq!(p.next_read_at, Some(t0 + 2 * ms));
        // After a long idle spell the schedule restarts at most 4 periods behind.
        let late = t0 + Duration::from_secs(1);
        p.on_read(late);
        assert_eq!(p.next_read_at, Some(late - 4 * ms));
    }
}
