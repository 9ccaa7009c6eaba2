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

/// Overrides the retry period of credentials that need a human (seconds), so tests need
/// not wait the default 30 s.
pub const CREDENTIALS_RETRY_ENV: &str = "SESSION_PROXY_CREDENTIALS_RETRY_SECS";

/// The retry period for credentials that need a human: `env` seconds if a positive number,
/// else 30 s (slow: each attempt may run `credential_process` or an SSO round trip).
pub fn credentials_retry(env: Option<&str>) -> Duration {
    env.and_then(|v| v.trim().parse().ok())
        .filter(|&secs| secs > 0)
        .map_or(Duration::from_secs(30), Duration::from_secs)
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
    /// The credentials need a human (SSO login, MFA, a failing `credential_process`, expired
    /// keys). Unlike `Failed` the slot keeps trying, on a slow schedule and whenever a client
    /// asks for a stream, so the upstream comes back by itself once the user has logged in.
    CredentialsExpired { until: Instant },
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
            Self::CredentialsExpired { .. } => "credentials expired",
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

    /// A connect attempt failed on credentials a human must renew: no failover (every target
    /// shares the credentials), retry after `retry` (slow: each attempt may run an SSO or
    /// `credential_process` round trip). Returns the delay.
    pub fn on_credentials_expired(
        &mut self,
        now: Instant,
        error: String,
        retry: Duration,
    ) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.permanent = 0;
        self.up_since = None;
        self.last_error = Some(error);
        self.failed_at = Some(now);
        self.phase = Phase::CredentialsExpired { until: now + retry };
        retry
    }

    /// True while the slot waits for credentials to work again.
    pub fn awaits_credentials(&self) -> bool {
        matches!(self.phase, Phase::CredentialsExpired { .. })
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
    /// No slot up, and the credentials need a human (`last_error` names the command).
    CredentialsExpired,
    Stopped,
}

impl PoolState {
    /// The name `status` shows (the JSON form, but with a space in "credentials expired").
    pub fn label(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Connecting => "connecting",
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Down => "down",
            Self::CredentialsExpired => "credentials expired",
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
    } else if slots.iter().any(Slot::awaits_credentials) {
        PoolState::CredentialsExpired
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

/// True when every slot waits for credentials: a client asking for a stream is refused at
/// once with the command to run, rather than waiting for a login that takes a human.
pub fn awaiting_credentials(slots: &[Slot]) -> bool {
    !slots.is_empty() && slots.iter().all(Slot::awaits_credentials)
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
mod tests;
