//! [pure] What `session-proxy status` reports about an upstream pool and each of its
//! connections. Declared once: the pool builds it ([`super::Pool::snapshot`]), the control
//! protocol carries it as is, and `status` renders it, so a counter added here shows up
//! everywhere without a copy to keep in step.
//!
//! Fields that older masters did not send are `#[serde(default)]`, so a newer `status` still
//! reads an older master's report (the control protocol's compatibility rule).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::state::{self, PoolState, Slot};

/// One connection slot of a pool: an SSH connection carried by its own SSM session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnStatus {
    pub slot: usize,
    /// `idle`, `connecting`, `up`, `backoff` or `stopped`.
    pub phase: String,
    /// The instance the slot is connected to, or will try next.
    pub instance: Option<String>,
    /// The SSM session carrying the live connection.
    pub session_id: Option<String>,
    /// Seconds since the live connection came up.
    pub uptime_secs: Option<u64>,
    pub open_streams: usize,
    /// Streams opened on this slot over its life.
    pub streams_total: u64,
    /// Bytes from destinations to clients.
    pub bytes_in: u64,
    /// Bytes from clients to destinations.
    pub bytes_out: u64,
    /// Successful connects over the slot's life (the first one is not a reconnect).
    pub connects: u64,
    /// New SSM sessions after a lost one: `connects - 1`.
    pub reconnects: u64,
    /// Data-channel resumes (ResumeSession after a dropped WebSocket) of the live session.
    pub resumes: u64,
    /// Data-channel messages sent again (timeout or resume) by the live session.
    pub retransmits: u64,
    /// Consecutive failures since the last stable connection.
    pub failures: u32,
    pub last_error: Option<String>,
    /// When `last_error` happened, in seconds since the Unix epoch.
    pub last_error_at: Option<u64>,
}

/// One upstream pool, for `session-proxy status` and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolStatus {
    pub name: String,
    pub state: PoolState,
    /// Instances with a live connection.
    pub instances: Vec<String>,
    pub connections_up: usize,
    pub connections_total: usize,
    /// SSM sessions of the live connections.
    #[serde(default)]
    pub session_ids: Vec<String>,
    /// Seconds since the oldest live connection came up.
    #[serde(default)]
    pub uptime_secs: Option<u64>,
    pub open_streams: usize,
    /// Streams opened over the pool's life.
    #[serde(default)]
    pub streams_total: u64,
    /// Bytes from destinations to clients, over the pool's life.
    pub bytes_in: u64,
    /// Bytes from clients to destinations, over the pool's life.
    pub bytes_out: u64,
    /// New SSM sessions after lost ones, over the pool's life.
    #[serde(default)]
    pub reconnects: u64,
    /// Data-channel resumes, over the pool's life.
    #[serde(default)]
    pub resumes: u64,
    /// Data-channel retransmissions, over the pool's life.
    #[serde(default)]
    pub retransmits: u64,
    pub last_error: Option<String>,
    /// When `last_error` happened, in seconds since the Unix epoch.
    #[serde(default)]
    pub last_error_at: Option<u64>,
    #[serde(default)]
    pub connections: Vec<ConnStatus>,
    /// `ssh` or `ssm-port` (older masters only ran `ssh`).
    #[serde(default = "ssh_kind")]
    pub kind: String,
    /// An `ssm-port` upstream's live destinations, in `host:port` order; for such an upstream
    /// `connections_*` and `session_ids` count the port sessions of all of them.
    #[serde(default)]
    pub destinations: Vec<DestinationStatus>,
}

fn ssh_kind() -> String {
    "ssh".to_owned()
}

/// One destination of an `ssm-port` upstream: the port sessions carrying its streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationStatus {
    /// `host:port` as the instance dials it.
    pub destination: String,
    /// The instance the sessions go through.
    pub instance: String,
    pub sessions_up: usize,
    pub sessions_total: usize,
    pub session_ids: Vec<String>,
    pub open_streams: usize,
    pub streams_total: u64,
    /// Bytes from the destination to clients.
    pub bytes_in: u64,
    /// Bytes from clients to the destination.
    pub bytes_out: u64,
    /// Seconds since the last stream ended, while none is open (the sessions close at
    /// `idle_timeout_secs`).
    #[serde(default)]
    pub idle_secs: Option<u64>,
    pub last_error: Option<String>,
}

/// Converts monotonic instants into what a report can carry: ages and wall-clock times. One
/// `Clock` per snapshot, so every field of a report is measured from the same moment.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    now: Instant,
    wall: SystemTime,
}

impl Clock {
    pub fn new(now: Instant, wall: SystemTime) -> Self {
        Self { now, wall }
    }

    /// The clocks as they read now.
    pub fn current() -> Self {
        Self::new(Instant::now(), SystemTime::now())
    }

    /// Whole seconds from `since` to now (0 for an instant in the future).
    pub fn age_secs(&self, since: Instant) -> u64 {
        self.now.saturating_duration_since(since).as_secs()
    }

    /// `at` as seconds since the Unix epoch.
    pub fn unix_secs(&self, at: Instant) -> u64 {
        let ago = self.now.saturating_duration_since(at);
        self.wall
            .checked_sub(ago)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or(Duration::ZERO)
            .as_secs()
    }
}

/// The log line for a pool whose slots went from `before` to `after`, when that changed the
/// pool's state: `upstream prod: connecting → up (2/2 connections up)`, with the last error when
/// the pool is left without a connection. `None` when the state stayed the same.
pub fn state_change(name: &str, before: &[Slot], after: &[Slot]) -> Option<(PoolState, String)> {
    let (from, to) = (state::pool_state(before), state::pool_state(after));
    if from == to {
        return None;
    }
    let up = after.iter().filter(|s| s.is_up()).count();
    let mut line = format!(
        "upstream {name}: {from} → {to} ({up}/{} connections up)",
        after.len()
    );
    if let (PoolState::Down, Some(e)) = (to, state::last_error(after)) {
        line.push_str(&format!("; last error: {e}"));
    }
    Some((to, line))
}

/// Logs [`state_change`]'s line, if any: a warning when the pool went down, else info (both
/// show at `serve`'s default level).
pub fn log_state_change(name: &str, before: &[Slot], after: &[Slot]) {
    match state_change(name, before, after) {
        Some((PoolState::Down, line)) => tracing::warn!("{line}"),
        Some((_, line)) => tracing::info!("{line}"),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_turns_instants_into_ages_and_unix_times_from_one_moment() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let c = Clock::new(now, wall);
        let earlier = now.checked_sub(Duration::from_secs(90)).unwrap();
        assert_eq!(c.age_secs(earlier), 90);
        assert_eq!(c.unix_secs(earlier), 1_000_000 - 90);
        assert_eq!(c.age_secs(now + Duration::from_secs(5)), 0, "future");
    }

    #[test]
    fn a_pool_state_change_is_one_line_naming_the_pool_and_why_it_went_down() {
        let now = Instant::now();
        let policy = state::BackoffPolicy::default();
        let connecting = {
            let mut s = Slot::new(0, 1);
            s.on_connecting();
            vec![s]
        };
        let mut up = connecting.clone();
        up[0].on_up(now);
        let (to, line) = state_change("prod", &connecting, &up).unwrap();
        assert_eq!(to, PoolState::Up);
        assert_eq!(line, "upstream prod: connecting → up (1/1 connections up)");
        assert_eq!(state_change("prod", &up, &up), None, "no change, no line");

        let mut down = connecting.clone();
        down[0].on_connect_failed(now, "TargetNotConnected i-1".into(), &policy, 0.0);
        let (to, line) = state_change("prod", &connecting, &down).unwrap();
        assert_eq!(to, PoolState::Down);
        assert_eq!(
            line,
            "upstream prod: connecting → down (0/1 connections up); last error: TargetNotConnected i-1"
        );
    }

    #[test]
    fn a_report_from_an_older_master_without_the_new_counters_still_reads() {
        let old = r#"{"name":"a","state":"up","instances":["i-1"],"connections_up":1,
            "connections_total":2,"open_streams":0,"bytes_in":1,"bytes_out":2,"last_error":null}"#;
        let s: PoolStatus = serde_json::from_str(old).unwrap();
        assert_eq!(
            (s.state, s.retransmits, s.connections.len()),
            (PoolState::Up, 0, 0)
        );
    }
}
