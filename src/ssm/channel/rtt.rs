//! RTT / RTO estimation with the reference constants (§6.3): initial RTO 200 ms, SRTT 100 ms,
//! RTTVAR 0, gains 1/8 and 1/4, a 10 ms clock-granularity term, and a 1 s cap.
//!
//! The timer adds two things the reference lacks ([`RttEstimator::timer_rto`]): a floor of one
//! resend tick, because on a fast link the RTO converges to SRTT + 10 ms and an agent that
//! writes each message to its target before acknowledging it is often later than that
//! (reference §12); and exponential backoff while no acknowledge comes at all.

use std::time::Duration;

pub(crate) const INITIAL_RTO: Duration = Duration::from_millis(200);
pub(crate) const INITIAL_SRTT: Duration = Duration::from_millis(100);
pub(crate) const CLOCK_GRANULARITY: Duration = Duration::from_millis(10);
pub(crate) const MAX_RTO: Duration = Duration::from_secs(1);
/// Floor of the resend timer: the reference's resend tick, so a timer resend comes no sooner
/// than it did when every overdue message was looked for on a 100 ms tick.
pub(crate) const MIN_TIMER_RTO: Duration = Duration::from_millis(100);
/// Doublings of the timer while no acknowledge comes (the cap is reached well before).
const MAX_BACKOFF: u32 = 6;

#[derive(Debug, Clone)]
pub(crate) struct RttEstimator {
    srtt: Duration,
    rttvar: Duration,
    rto: Duration,
}

impl Default for RttEstimator {
    fn default() -> Self {
        Self {
            srtt: INITIAL_SRTT,
            rttvar: Duration::ZERO,
            rto: INITIAL_RTO,
        }
    }
}

impl RttEstimator {
    /// Feeds one sample (time from a message's only transmission to its acknowledge).
    pub(crate) fn on_sample(&mut self, r: Duration) {
        let delta = self.srtt.abs_diff(r);
        self.rttvar = (self.rttvar * 3 + delta) / 4;
        self.srtt = (self.srtt * 7 + r) / 8;
        self.rto = (self.srtt + CLOCK_GRANULARITY.max(self.rttvar * 4)).min(MAX_RTO);
    }

    pub(crate) fn rto(&self) -> Duration {
        self.rto
    }

    /// The resend timer after `backoff` timer resends without an acknowledge in between:
    /// the RTO, at least [`MIN_TIMER_RTO`], doubled per backoff, at most [`MAX_RTO`].
    pub(crate) fn timer_rto(&self, backoff: u32) -> Duration {
        (self.rto.max(MIN_TIMER_RTO) * (1 << backoff.min(MAX_BACKOFF))).min(MAX_RTO)
    }

    #[cfg(test)]
    pub(crate) fn srtt(&self) -> Duration {
        self.srtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_reference_constants() {
        let e = RttEstimator::default();
        assert_eq!(e.rto(), Duration::from_millis(200));
        assert_eq!(e.srtt(), Duration::from_millis(100));
    }

    #[test]
    fn converges_towards_samples_with_granularity_floor() {
        let mut e = RttEstimator::default();
        for _ in 0..200 {
            e.on_sample(Duration::from_millis(1));
        }
        assert!(e.srtt() < Duration::from_millis(2));
        assert!(e.rto() >= e.srtt() + CLOCK_GRANULARITY);
        assert!(e.rto() < Duration::from_millis(15));
    }

    #[test]
    fn timer_has_a_floor_of_one_tick_and_backs_off_to_the_cap() {
        let mut e = RttEstimator::default();
        for _ in 0..200 {
            e.on_sample(Duration::from_millis(1));
        }
        assert_eq!(e.timer_rto(0), MIN_TIMER_RTO);
        assert_eq!(e.timer_rto(1), MIN_TIMER_RTO * 2);
        assert_eq!(e.timer_rto(2), MIN_TIMER_RTO * 4);
        assert_eq!(e.timer_rto(40), MAX_RTO);
    }

    #[test]
    fn rto_is_capped_at_one_second() {
        let mut e = RttEstimator::default();
        for _ in 0..50 {
            e.on_sample(Duration::from_secs(10));
        }
        assert_eq!(e.rto(), MAX_RTO);
    }
}
