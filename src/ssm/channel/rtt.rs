//! RTT / RTO estimation with the reference constants (§6.3): initial RTO 200 ms, SRTT 100 ms,
//! RTTVAR 0, gains 1/8 and 1/4, a 10 ms clock-granularity term, and a 1 s cap.

use std::time::Duration;

pub(crate) const INITIAL_RTO: Duration = Duration::from_millis(200);
pub(crate) const INITIAL_SRTT: Duration = Duration::from_millis(100);
pub(crate) const CLOCK_GRANULARITY: Duration = Duration::from_millis(10);
pub(crate) const MAX_RTO: Duration = Duration::from_secs(1);

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
    fn rto_is_capped_at_one_second() {
        let mut e = RttEstimator::default();
        for _ in 0..50 {
            e.on_sample(Duration::from_secs(10));
        }
        assert_eq!(e.rto(), MAX_RTO);
    }
}
