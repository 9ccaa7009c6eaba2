//! Resuming a dropped link: when the next attempt is due, the attempt in flight, and the budget
//! that decides when to give up. Backoff doubles from 100 ms to 5 s, with jitter.

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::error::{ReconnectError, ResumeError};
use super::{BoxFuture, Link, Transport};

pub(super) struct Resume<L> {
    pending: Option<BoxFuture<Result<L, ReconnectError>>>,
    due: Option<Instant>,
    attempts: u32,
    lost_since: Option<Instant>,
}

impl<L: Link> Resume<L> {
    pub(super) fn new() -> Self {
        Self {
            pending: None,
            due: None,
            attempts: 0,
            lost_since: None,
        }
    }

    /// The link dropped at `now`: try at once, with a fresh budget.
    pub(super) fn on_lost(&mut self, now: Instant) {
        self.lost_since = Some(now);
        self.attempts = 0;
        self.due = Some(now);
    }

    /// When the next attempt should start (None while one is in flight).
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.due.filter(|_| self.pending.is_none())
    }

    /// Starts an attempt if one is due.
    pub(super) fn start_if_due<T: Transport<L>>(&mut self, now: Instant, transport: &mut T) {
        if self.deadline().is_some_and(|t| t <= now) {
            self.due = None;
            self.pending = Some(transport.reconnect(self.attempts));
            self.attempts += 1;
        }
    }

    /// The outcome of the attempt in flight.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<L, ReconnectError>> {
        let Some(f) = self.pending.as_mut() else {
            return Poll::Pending;
        };
        let r = std::task::ready!(f.as_mut().poll(cx));
        self.pending = None;
        Poll::Ready(r)
    }

    pub(super) fn on_success(&mut self) {
        self.lost_since = None;
    }

    /// An attempt failed: schedule the next one, or give up (fatal cause, budget spent).
    pub(super) fn on_failure(
        &mut self,
        now: Instant,
        err: ReconnectError,
        budget: Duration,
    ) -> Result<Duration, ResumeError> {
        if err.is_fatal() {
            return Err(ResumeError::Fatal(err));
        }
        let elapsed = self
            .lost_since
            .map(|t| now.saturating_duration_since(t))
            .unwrap_or_default();
        if elapsed >= budget {
            return Err(ResumeError::BudgetExhausted {
                attempts: self.attempts,
                elapsed,
                last: err,
            });
        }
        let wait = backoff(self.attempts);
        self.due = Some(now + wait);
        Ok(wait)
    }
}

fn backoff(attempt: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
    let jitter = rand::random::<u64>() % (base / 2 + 1);
    Duration::from_millis(base / 2 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_from_50ms_and_stays_under_5s() {
        for attempt in 0..20 {
            let d = backoff(attempt);
            let base = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
            assert!(d >= Duration::from_millis(base / 2), "{attempt}: {d:?}");
            assert!(d <= Duration::from_millis(base), "{attempt}: {d:?}");
        }
    }
}
