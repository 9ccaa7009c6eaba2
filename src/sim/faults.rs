//! Seeded fault plan for the simulator's service relay: per-direction drop / duplicate /
//! reorder / delay rates, and WebSocket kills after N bytes or every N seconds (the service's
//! hourly recycle, close code 1000). Pure: decisions come from a seeded PRNG, so a failing run
//! replays from its printed seed.

use std::time::Duration;

/// Fault rates for one direction (0.0 ..= 1.0 each).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct DirFaults {
    pub drop: f64,
    pub duplicate: f64,
    pub reorder: f64,
    /// Extra delay added to every frame.
    pub delay: Duration,
}

/// The whole plan, as configured by `sim` flags.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct FaultPlan {
    pub seed: u64,
    pub to_agent: DirFaults,
    pub to_client: DirFaults,
    /// Close the client's WebSocket after this many frame bytes have crossed it (each time).
    pub kill_after_bytes: Option<u64>,
    /// Close the client's WebSocket this often.
    pub kill_every: Option<Duration>,
}

impl FaultPlan {
    pub fn is_quiet(&self) -> bool {
        self.to_agent == DirFaults::default()
            && self.to_client == DirFaults::default()
            && self.kill_after_bytes.is_none()
            && self.kill_every.is_none()
    }
}

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// 0 = dropped, 1 = delivered, 2 = delivered twice.
    pub copies: u8,
    /// Delay before delivery (reordering is a random extra delay).
    pub delay: Duration,
}

/// Counters of injected faults, reported in the simulator's stats.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FaultCounts {
    pub dropped: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub kills: u64,
}

/// Per-session PRNG state applying a [`FaultPlan`].
#[derive(Debug, Clone)]
pub struct Faults {
    state: u64,
    pub counts: FaultCounts,
}

impl Faults {
    pub fn new(seed: u64, salt: u64) -> Self {
        Self {
            state: (seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1,
            counts: FaultCounts::default(),
        }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }

    pub fn decide(&mut self, f: &DirFaults) -> Verdict {
        if self.chance(f.drop) {
            self.counts.dropped += 1;
            return Verdict {
                copies: 0,
                delay: Duration::ZERO,
            };
        }
        let copies = if self.chance(f.duplicate) {
            self.counts.duplicated += 1;
            2
        } else {
            1
        };
        let mut delay = f.delay;
        if self.chance(f.reorder) {
            self.counts.reordered += 1;
            delay += Duration::from_micros(1_000 + self.next() % 20_000);
        }
        Verdict { copies, delay }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_decisions() {
        let f = DirFaults {
            drop: 0.2,
            duplicate: 0.2,
            reorder: 0.2,
            delay: Duration::ZERO,
        };
        let mut a = Faults::new(42, 1);
        let mut b = Faults::new(42, 1);
        for _ in 0..1000 {
            assert_eq!(a.decide(&f), b.decide(&f));
        }
    }

    #[test]
    fn rates_are_roughly_honoured() {
        let f = DirFaults {
            drop: 0.1,
            duplicate: 0.1,
            reorder: 0.1,
            delay: Duration::ZERO,
        };
        let mut a = Faults::new(7, 0);
        for _ in 0..100_000 {
            a.decide(&f);
        }
        for n in [a.counts.dropped, a.counts.duplicated, a.counts.reordered] {
            assert!((7_000..13_000).contains(&n), "{n}");
        }
    }

    #[test]
    fn quiet_plan_never_faults() {
        let mut a = Faults::new(1, 2);
        for _ in 0..1000 {
            assert_eq!(
                a.decide(&DirFaults::default()),
                Verdict {
                    copies: 1,
                    delay: Duration::ZERO
                }
            );
        }
    }
}
