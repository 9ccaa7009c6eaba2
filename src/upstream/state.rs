//! [pure] Connection-slot lifecycle, reconnect backoff and stream placement for upstream pools.
//!
//! Nothing here reads the clock or a random source: callers pass `now` and a uniform random
//! number in `[0, 1)`, so the schedule is table-tested exactly. `pool.rs` owns the IO and calls
//! these functions under its lock.

use std::time::{Duration, Instant};

/// Reconnect delays: exponential from `initial` to `max`, with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// A connection that stayed up at least this long is considered healthy again: its loss
    /// restarts the schedule at `initial`. Shorter-lived ones keep growing the delay, so a bastion
    /// that accepts and then drops us at once is not hammered with StartSession calls.
    pub stable_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
        }
    }
}

impl BackoffPolicy {
    /// The delay after the `failures`-th consecutive failure (1 = first), given `unit` uniform
    /// in `[0, 1)`. "Equal jitter": half of the exponential step is fixed, so a failing slot
    /// never spins, and half is random, so the slots of a pool (and several daemons) that lost
    /// their bastion together do not retry in lockstep.
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        let step = self
            .initial
            .saturating_mul(1u32 << exp)
            .min(self.max)
            .max(Duration::from_millis(1));
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let half = step / 2;
        half + half.mul_f64(unit)
    }
}

/// Where a connection slot is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started (lazy pool not used yet).
    Idle,
    /// StartSession, SSH handshake and authentication in progress.
    Connecting,
    /// Authenticated and usable.
    Up,
    /// Waiting to retry after a failure.
    Waiting { until: Instant },
    /// Gave up: every target failed with an error that will not fix itself (credentials,
    /// an unknown instance, keys refused). Only a new pool (`connect`, `reload`) tries again.
    Failed,
    /// Shut down for good.
    Stopped,
}

impl Phase {
    /// Short name for status output.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Connecting => "connecting",
            Self::Up => "up",
            Self::Waiting { .. } => "backoff",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }
}

/// One connection slot of a pool: which target it uses and how its retries are going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub phase: Phase,
    /// Index into the pool's targets that the next (or current) connection uses.
    pub target: usize,
    targets: usize,
    /// Consecutive failures since the last stable connection.
    pub failures: u32,
    /// Consecutive failures that will not fix themselves; one per target means every target
    /// refused us for good.
    permanent: u32,
    up_since: Option<Instant>,
    /// Successful connects over the slot's life (the first one is not a reconnect).
    pub connects: u64,
    pub last_error: Option<String>,
    /// When `last_error` happened.
    pub failed_at: Option<Instant>,
}

impl Slot {
    /// Slot `index` of a pool over `targets` instances starts on target `index % targets`, so
    /// the pool's connections are spread round-robin over the instances.
    pub fn new(index: usize, targets: usize) -> Self {
        let targets = targets.max(1);
        Self {
            phase: Phase::Idle,
            target: index % targets,
            targets,
            failures: 0,
            permanent: 0,
            up_since: None,
            connects: 0,
            last_error: None,
            failed_at: None,
        }
    }

    pub fn on_connecting(&mut self) {
        self.phase = Phase::Connecting;
    }

    pub fn on_up(&mut self, now: Instant) {
        self.phase = Phase::Up;
        self.permanent = 0;
        self.up_since = Some(now);
        self.connects += 1;
    }

    /// A connect attempt failed: fail over to the next target and wait before retrying.
    /// Returns the delay.
    pub fn on_connect_failed(
        &mut self,
        now: Instant,
        error: String,
        policy: &BackoffPolicy,
        unit: f64,
    ) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.permanent = 0;
        self.fail_over(now, error, policy, unit)
    }

    /// A connect attempt failed in a way retrying cannot fix. The slot still tries each of its
    /// other targets once (the error may belong to one instance); once every target has failed
    /// so in a row, it gives up (`None`), so a bad key or a missing profile costs one attempt
    /// per target, not one every few seconds.
    pub fn on_permanent_failure(
        &mut self,
        now: Instant,
        error: String,
        policy: &BackoffPolicy,
        unit: f64,
    ) -> Option<Duration> {
        self.failures = self.failures.saturating_add(1);
        self.permanent = self.permanent.saturating_add(1);
        if (self.permanent as usize) < self.targets {
            return Some(self.fail_over(now, error, policy, unit));
        }
        self.up_since = None;
        self.last_error = Some(error);
        self.failed_at = Some(now);
        self.phase = Phase::Failed;
        None
    }

    /// A connection that was up died. A long-lived one restarts the backoff schedule.
    pub fn on_lost(
        &mut self,
        now: Instant,
        error: String,
        policy: &BackoffPolicy,
        unit: f64,
    ) -> Duration {
        let lived = self
            .up_since
            .map(|t| now.saturating_duration_since(t))
            .unwrap_or_default();
        self.failures = if lived >= policy.stable_after {
            1
        } else {
            self.failures.saturating_add(1)
        };
        self.fail_over(now, error, policy, unit)
    }

    fn fail_over(
        &mut self,
        now: Instant,
        error: String,
        policy: &BackoffPolicy,
        unit: f64,
    ) -> Duration {
        self.up_since = None;
        self.target = (self.target + 1) % self.targets;
        self.last_error = Some(error);
        self.failed_at = Some(now);
        let delay = policy.delay(self.failures, unit);
        self.phase = Phase::Waiting { until: now + delay };
        delay
    }

    pub fn on_stopped(&mut self) {
        self.phase = Phase::Stopped;
        self.up_since = None;
    }

    pub fn is_up(&self) -> bool {
        self.phase == Phase::Up
    }

    /// When the live connection came up (`None` when it is not up).
    pub fn up_since(&self) -> Option<Instant> {
        self.up_since
    }

    /// New connections after lost ones: every connect but the first.
    pub fn reconnects(&self) -> u64 {
        self.connects.saturating_sub(1)
    }
}

/// The pool as a whole, for status displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolState {
    /// Lazy pool, not used yet.
    Idle,
    /// First connections in progress, nothing failed yet.
    Connecting,
    /// Every slot is up.
    Up,
    /// Some slots up, some not.
    Degraded,
    /// No slot up and at least one has failed.
    Down,
    Stopped,
}

impl PoolState {
    /// The name `status` shows (the same as the JSON form).
    pub fn label(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Connecting => "connecting",
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Down => "down",
            Self::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for PoolState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Summarises the slots of a pool.
pub fn pool_state(slots: &[Slot]) -> PoolState {
    if slots.is_empty() || slots.iter().all(|s| s.phase == Phase::Stopped) {
        return PoolState::Stopped;
    }
    if slots.iter().all(|s| s.phase == Phase::Idle) {
        return PoolState::Idle;
    }
    let up = slots.iter().filter(|s| s.is_up()).count();
    if up == slots.len() {
        PoolState::Up
    } else if up > 0 {
        PoolState::Degraded
    } else if slots.iter().all(|s| s.failures == 0) {
        PoolState::Connecting
    } else {
        PoolState::Down
    }
}

/// The most recent error of any slot.
pub fn last_error(slots: &[Slot]) -> Option<&str> {
    last_failure(slots).map(|(_, e)| e)
}

/// The most recent error of any slot, with when it happened.
pub fn last_failure(slots: &[Slot]) -> Option<(Instant, &str)> {
    slots
        .iter()
        .filter_map(|s| Some((s.failed_at?, s.last_error.as_deref()?)))
        .max_by_key(|&(at, _)| at)
}

/// True when no slot is up and every slot has failed at least twice in a row: opening a
/// stream should fail at once with the last error rather than wait. One failure is not enough,
/// since a pool whose bastion restarted loses every connection once and usually comes back on
/// the first retry.
pub fn failing_persistently(slots: &[Slot]) -> bool {
    !slots.is_empty() && slots.iter().all(|s| !s.is_up() && s.failures >= 2)
}

/// True when every slot gave up ([`Phase::Failed`]): nothing will connect until the pool is
/// rebuilt, so waiting for it is pointless.
pub fn gave_up(slots: &[Slot]) -> bool {
    !slots.is_empty() && slots.iter().all(|s| s.phase == Phase::Failed)
}

/// What stream placement needs to know about a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnView {
    pub healthy: bool,
    pub open_streams: usize,
}

/// The healthy connection with the fewest open streams; ties go to the lowest index.
pub fn pick(conns: &[ConnView]) -> Option<usize> {
    pick_from(conns, 0)
}

/// Like [`pick`], but ties go to the first index at or after `start` (cyclically). Passing a
/// rotating `start` spreads short-lived streams, which rarely overlap, over every connection
/// instead of always landing on the first.
pub fn pick_from(conns: &[ConnView], start: usize) -> Option<usize> {
    let n = conns.len();
    if n == 0 {
        return None;
    }
    (0..n)
        .map(|k| (start + k) % n)
        .filter_map(|i| {
            conns
                .get(i)
                .filter(|c| c.healthy)
                .map(|c| (i, c.open_streams))
        })
        .min_by_key(|&(_, streams)| streams)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_doubles_from_half_a_second_to_thirty_seconds_with_jitter_in_the_upper_half() {
        let p = BackoffPolicy::default();
        // (failures, unit, expected)
        let cases = [
            (1, 0.0, ms(250)),
            (1, 0.999_999, ms(500)),
            (2, 0.0, ms(500)),
            (2, 0.5, ms(750)),
            (3, 0.0, ms(1000)),
            (4, 1.0, ms(4000)),
            (6, 0.0, ms(8_000)),
            (7, 0.0, ms(15_000)), // 32 s capped at 30 s
            (8, 0.0, ms(15_000)),
            (8, 1.0, ms(30_000)),
            (1000, 1.0, ms(30_000)),
            (0, 0.0, ms(250)),
        ];
        for (failures, unit, want) in cases {
            let got = p.delay(failures, unit);
            assert!(
                got.abs_diff(want) <= ms(1),
                "failures={failures} unit={unit}: {got:?} != {want:?}"
            );
        }
    }

    #[test]
    fn backoff_tolerates_bad_randomness() {
        let p = BackoffPolicy::default();
        assert_eq!(p.delay(1, f64::NAN), ms(250));
        assert_eq!(p.delay(1, -3.0), ms(250));
        assert_eq!(p.delay(1, 7.0), ms(500));
    }

    #[test]
    fn slots_start_round_robin_over_targets_and_fail_over_to_the_next() {
        let starts: Vec<usize> = (0..5).map(|i| Slot::new(i, 3).target).collect();
        assert_eq!(starts, [0, 1, 2, 0, 1]);
        let p = BackoffPolicy::default();
        let now = Instant::now();
        let mut s = Slot::new(2, 3);
        s.on_connecting();
        s.on_connect_failed(now, "boom".into(), &p, 0.0);
        assert_eq!(s.target, 0);
        assert_eq!(s.last_error.as_deref(), Some("boom"));
        s.on_connect_failed(now, "boom".into(), &p, 0.0);
        assert_eq!(s.target, 1);
        // A single target fails over to itself.
        let mut one = Slot::new(3, 1);
        one.on_connect_failed(now, "x".into(), &p, 0.0);
        assert_eq!(one.target, 0);
    }

    #[test]
    fn consecutive_failures_grow_the_delay_and_a_stable_connection_resets_it() {
        let p = BackoffPolicy::default();
        let t0 = Instant::now();
        let mut s = Slot::new(0, 1);
        let d: Vec<Duration> = (0..4)
            .map(|_| s.on_connect_failed(t0, "e".into(), &p, 0.0))
            .collect();
        assert_eq!(d, [ms(250), ms(500), ms(1000), ms(2000)]);
        assert_eq!(
            s.phase,
            Phase::Waiting {
                until: t0 + ms(2000)
            }
        );
        // Up briefly, then lost: still backing off.
        s.on_up(t0);
        assert!(s.is_up());
        assert_eq!(s.on_lost(t0 + ms(100), "lost".into(), &p, 0.0), ms(4000));
        // Up for longer than `stable_after`, then lost: back to the first step.
        s.on_up(t0);
        assert_eq!(
            s.on_lost(t0 + p.stable_after, "lost".into(), &p, 0.0),
            ms(250)
        );
        assert_eq!(s.connects, 2);
    }

    fn slot(phase: Phase, failures: u32) -> Slot {
        Slot {
            phase,
            failures,
            ..Slot::new(0, 1)
        }
    }

    #[test]
    fn pool_state_summarises_slots() {
        let w = Phase::Waiting {
            until: Instant::now(),
        };
        let cases = [
            (vec![], PoolState::Stopped),
            (
                vec![slot(Phase::Idle, 0), slot(Phase::Idle, 0)],
                PoolState::Idle,
            ),
            (
                vec![slot(Phase::Connecting, 0), slot(Phase::Idle, 0)],
                PoolState::Connecting,
            ),
            (vec![slot(Phase::Up, 0), slot(Phase::Up, 0)], PoolState::Up),
            (vec![slot(Phase::Up, 0), slot(w, 1)], PoolState::Degraded),
            (
                vec![slot(Phase::Connecting, 2), slot(w, 1)],
                PoolState::Down,
            ),
            (
                vec![slot(Phase::Stopped, 0), slot(Phase::Stopped, 3)],
                PoolState::Stopped,
            ),
        ];
        for (slots, want) in cases {
            assert_eq!(pool_state(&slots), want, "{slots:?}");
        }
    }

    #[test]
    fn pool_state_labels_are_its_json_names() {
        use PoolState::*;
        for st in [Idle, Connecting, Up, Degraded, Down, Stopped] {
            let json = serde_json::to_value(st).unwrap();
            assert_eq!(json, st.label(), "{st:?}");
            assert_eq!(serde_json::from_value::<PoolState>(json).unwrap(), st);
        }
    }

    #[test]
    fn up_since_and_reconnects_follow_the_slot_life() {
        let p = BackoffPolicy::default();
        let t0 = Instant::now();
        let mut s = Slot::new(0, 1);
        assert_eq!((s.up_since(), s.reconnects()), (None, 0));
        s.on_up(t0);
        assert_eq!((s.up_since(), s.reconnects()), (Some(t0), 0));
        s.on_lost(t0 + ms(10), "lost".into(), &p, 0.0);
        assert_eq!(s.up_since(), None);
        s.on_up(t0 + ms(20));
        assert_eq!((s.up_since(), s.reconnects()), (Some(t0 + ms(20)), 1));
    }

    #[test]
    fn last_error_is_the_most_recent_failure_of_any_slot() {
        let p = BackoffPolicy::default();
        let t0 = Instant::now();
        let mut a = Slot::new(0, 2);
        let mut b = Slot::new(1, 2);
        assert_eq!(last_error(&[a.clone(), b.clone()]), None);
        b.on_connect_failed(t0 + ms(5), "newer".into(), &p, 0.0);
        a.on_connect_failed(t0, "older".into(), &p, 0.0);
        assert_eq!(last_error(&[a.clone(), b.clone()]), Some("newer"));
        assert_eq!(last_failure(&[a, b]), Some((t0 + ms(5), "newer")));
    }

    #[test]
    fn only_repeated_failures_of_every_slot_count_as_persistent() {
        let cases = [
            (vec![], false),
            (
                vec![slot(Phase::Connecting, 2), slot(Phase::Connecting, 3)],
                true,
            ),
            (
                vec![slot(Phase::Connecting, 2), slot(Phase::Connecting, 1)],
                false,
            ),
            (vec![slot(Phase::Up, 2), slot(Phase::Connecting, 3)], false),
            (vec![slot(Phase::Idle, 0)], false),
        ];
        for (slots, want) in cases {
            assert_eq!(failing_persistently(&slots), want, "{slots:?}");
        }
    }

    #[test]
    fn a_permanent_error_tries_each_target_once_then_gives_up() {
        let p = BackoffPolicy::default();
        let t0 = Instant::now();
        let mut s = Slot::new(0, 2);
        assert_eq!(
            s.on_permanent_failure(t0, "no".into(), &p, 0.0),
            Some(ms(250))
        );
        assert_eq!(s.target, 1);
        assert_eq!(s.on_permanent_failure(t0, "no".into(), &p, 0.0), None);
        assert_eq!(s.phase, Phase::Failed);
        assert_eq!(s.phase.label(), "failed");
        assert_eq!(s.last_error.as_deref(), Some("no"));
        assert!(gave_up(&[s.clone()]));
        // A transient failure in between restarts the count: target 0 may have been down.
        let mut t = Slot::new(0, 2);
        t.on_permanent_failure(t0, "no".into(), &p, 0.0);
        t.on_connect_failed(t0, "net".into(), &p, 0.0);
        assert!(t.on_permanent_failure(t0, "no".into(), &p, 0.0).is_some());
        // One target: the first permanent error is the last.
        let mut one = Slot::new(0, 1);
        assert_eq!(one.on_permanent_failure(t0, "no".into(), &p, 0.0), None);
        assert!(!gave_up(&[one, Slot::new(1, 1)]));
        assert!(!gave_up(&[]));
    }

    fn c(healthy: bool, open_streams: usize) -> ConnView {
        ConnView {
            healthy,
            open_streams,
        }
    }

    #[test]
    fn pick_chooses_the_least_loaded_healthy_connection() {
        let cases: [(&[ConnView], Option<usize>); 6] = [
            (&[], None),
            (&[c(false, 0), c(false, 0)], None),
            (&[c(true, 3), c(true, 1), c(true, 2)], Some(1)),
            (&[c(false, 0), c(true, 5)], Some(1)),
            (&[c(true, 2), c(true, 2)], Some(0)),
            (&[c(true, 1), c(false, 0), c(true, 1)], Some(0)),
        ];
        for (conns, want) in cases {
            assert_eq!(pick(conns), want, "{conns:?}");
        }
    }

    #[test]
    fn pick_from_breaks_ties_round_robin_from_the_cursor() {
        let conns = [c(true, 0), c(false, 0), c(true, 0)];
        assert_eq!(pick_from(&conns, 0), Some(0));
        assert_eq!(pick_from(&conns, 1), Some(2));
        assert_eq!(pick_from(&conns, 2), Some(2));
        assert_eq!(pick_from(&conns, 3), Some(0));
        // Load still wins over the cursor.
        assert_eq!(pick_from(&[c(true, 0), c(true, 1)], 1), Some(0));
    }
}
