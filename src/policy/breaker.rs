//! A circuit breaker for one endpoint: closed → open after N consecutive failures →
//! after the open period, one half-open probe → closed on success, open again on failure.
//!
//! A pure state machine over `tokio::time::Instant`, so its timing is tested on tokio's
//! paused clock. It decides only whether an attempt may start; what counts as a failure is
//! the caller's call.

use std::time::Duration;

use tokio::time::Instant;

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    failure_threshold: u32,
    open_for: Duration,
}

/// Why a breaker policy was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakerPolicyError {
    #[error("failure_threshold must be between 1 and 10000, got {0}")]
    Threshold(u32),
    #[error("timeout must be between 1ms and 1 day, got {0:?}")]
    Timeout(Duration),
}

impl BreakerPolicy {
    /// # Errors
    /// When the threshold is 0 or above 10,000, or the open period is not within
    /// 1 ms ..= 1 day.
    pub fn try_new(failure_threshold: u32, open_for: Duration) -> Result<Self, BreakerPolicyError> {
        if !(1..=10_000).contains(&failure_threshold) {
            return Err(BreakerPolicyError::Threshold(failure_threshold));
        }
        if open_for < Duration::from_millis(1) || open_for > Duration::from_secs(24 * 3600) {
            return Err(BreakerPolicyError::Timeout(open_for));
        }
        Ok(Self {
            failure_threshold,
            open_for,
        })
    }

    pub fn failure_threshold(&self) -> u32 {
        self.failure_threshold
    }

    pub fn open_for(&self) -> Duration {
        self.open_for
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Attempts flow; `failures` consecutive ones have failed.
    Closed { failures: u32 },
    /// No attempt until `until`; then one probe.
    Open { until: Instant },
    /// The probe is under way; nothing else starts until it ends.
    HalfOpen,
}

/// A change worth telling operators about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerChange {
    Opened { until: Instant },
    Closed,
}

/// The breaker of one endpoint.
#[derive(Debug, Clone)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: BreakerState,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            state: BreakerState::Closed { failures: 0 },
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Applies a new policy; the state is kept.
    pub fn set_policy(&mut self, policy: BreakerPolicy) {
        self.policy = policy;
    }

    /// How many attempts may start at `now`: unlimited when closed, one probe once the
    /// open period is over, none otherwise.
    pub fn allowance(&self, now: Instant) -> Option<usize> {
        match self.state {
            BreakerState::Closed { .. } => None,
            BreakerState::Open { until } if now >= until => Some(1),
            BreakerState::Open { .. } | BreakerState::HalfOpen => Some(0),
        }
    }

    /// When attempts may start again, if the breaker holds them back at `now`.
    pub fn blocked_until(&self, now: Instant) -> Option<Instant> {
        match self.state {
            BreakerState::Open { until } if now < until => Some(until),
            _ => None,
        }
    }

    /// Asks to start an attempt. `Some(is_probe)` when it may start.
    pub fn try_start(&mut self, now: Instant) -> Option<bool> {
        match self.state {
            BreakerState::Closed { .. } => Some(false),
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen;
                Some(true)
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen => None,
        }
    }

    /// Records the end of an attempt started with `try_start`. Results of attempts that
    /// started before the breaker opened are ignored while it is open or probing.
    pub fn record(
        &mut self,
        succeeded: bool,
        was_probe: bool,
        now: Instant,
    ) -> Option<BreakerChange> {
        match (self.state, was_probe) {
            (BreakerState::HalfOpen, true) if succeeded => {
                self.state = BreakerState::Closed { failures: 0 };
                Some(BreakerChange::Closed)
            }
            (BreakerState::HalfOpen, true) => self.open(now),
            (BreakerState::Closed { .. }, _) if succeeded => {
                self.state = BreakerState::Closed { failures: 0 };
                None
            }
            (BreakerState::Closed { failures }, _) => {
                let failures = failures + 1;
                if failures >= self.policy.failure_threshold {
                    self.open(now)
                } else {
                    self.state = BreakerState::Closed { failures };
                    None
                }
            }
            (BreakerState::Open { .. } | BreakerState::HalfOpen, _) => None,
        }
    }

    fn open(&mut self, now: Instant) -> Option<BreakerChange> {
        let until = now + self.policy.open_for;
        self.state = BreakerState::Open { until };
        Some(BreakerChange::Opened { until })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerPolicy::try_new(3, Duration::from_secs(10)).unwrap())
    }

    #[test]
    fn policy_rejects_nonsense() {
        assert_eq!(
            BreakerPolicy::try_new(0, Duration::from_secs(1)),
            Err(BreakerPolicyError::Threshold(0))
        );
        assert_eq!(
            BreakerPolicy::try_new(1, Duration::ZERO),
            Err(BreakerPolicyError::Timeout(Duration::ZERO))
        );
        assert!(matches!(
            BreakerPolicy::try_new(1, Duration::from_secs(2 * 24 * 3600)),
            Err(BreakerPolicyError::Timeout(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_only() {
        let mut b = breaker();
        let now = Instant::now();
        assert_eq!(b.record(false, false, now), None);
        assert_eq!(b.record(false, false, now), None);
        assert_eq!(
            b.record(true, false, now),
            None,
            "a success resets the count"
        );
        assert_eq!(b.record(false, false, now), None);
        assert_eq!(b.record(false, false, now), None);
        assert_eq!(
            b.record(false, false, now),
            Some(BreakerChange::Opened {
                until: now + Duration::from_secs(10)
            })
        );
        assert_eq!(b.allowance(now), Some(0));
        assert_eq!(b.try_start(now), None);
    }

    #[tokio::test(start_paused = true)]
    async fn one_probe_after_the_timeout_then_closed_on_success() {
        let mut b = breaker();
        for _ in 0..3 {
            b.record(false, false, Instant::now());
        }
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert_eq!(
            b.try_start(Instant::now()),
            None,
            "still open just before the timeout"
        );
        assert_eq!(
            b.blocked_until(Instant::now()),
            Some(Instant::now() + Duration::from_millis(1))
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(b.allowance(Instant::now()), Some(1));
        assert_eq!(b.try_start(Instant::now()), Some(true), "the probe");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(
            b.try_start(Instant::now()),
            None,
            "only one probe at a time"
        );
        assert_eq!(b.allowance(Instant::now()), Some(0));
        assert_eq!(
            b.record(true, true, Instant::now()),
            Some(BreakerChange::Closed)
        );
        assert_eq!(b.allowance(Instant::now()), None);
        assert_eq!(b.try_start(Instant::now()), Some(false));
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probe_reopens_for_a_full_timeout() {
        let mut b = breaker();
        for _ in 0..3 {
            b.record(false, false, Instant::now());
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.try_start(Instant::now()), Some(true));
        tokio::time::advance(Duration::from_secs(2)).await;
        let until = Instant::now() + Duration::from_secs(10);
        assert_eq!(
            b.record(false, true, Instant::now()),
            Some(BreakerChange::Opened { until })
        );
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert_eq!(
            b.try_start(Instant::now()),
            None,
            "no second probe within the timeout"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(b.try_start(Instant::now()), Some(true));
    }

    #[tokio::test(start_paused = true)]
    async fn late_results_do_not_move_an_open_breaker() {
        let mut b = breaker();
        for _ in 0..3 {
            b.record(false, false, Instant::now());
        }
        let state = b.state();
        assert_eq!(b.record(true, false, Instant::now()), None);
        assert_eq!(b.record(false, false, Instant::now()), None);
        assert_eq!(b.state(), state);
        tokio::time::advance(Duration::from_secs(10)).await;
        b.try_start(Instant::now());
        assert_eq!(
            b.record(true, false, Instant::now()),
            None,
            "only the probe decides"
        );
        assert_eq!(b.state(), BreakerState::HalfOpen);
    }
}
