//! When to try again: exponential backoff with jitter, capped, and `Retry-After`.
//!
//! This module only schedules. Whether an attempt may be retried at all is decided by
//! the HTTP layer's classification (`delivery::http`'s verdict), never here.

use std::time::{Duration, SystemTime};

use rand::Rng;

use crate::domain::{Jitter, RetryOverride};

/// A validated retry schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    max_retries: u32,
    initial_delay: Duration,
    max_delay: Duration,
    multiplier: f64,
    jitter: Jitter,
}

/// Why a retry policy was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("max_retries must be at most {max}, got {got}")]
    TooManyRetries { got: u32, max: u32 },
    #[error("initial_delay must be at least 1ms")]
    ZeroInitialDelay,
    #[error(
        "max_delay ({max_delay:?}) must be at least initial_delay ({initial_delay:?}) and at most 30 days"
    )]
    MaxDelay {
        initial_delay: Duration,
        max_delay: Duration,
    },
    #[error("multiplier must be between 1 and 100, got {0}")]
    Multiplier(f64),
}

impl RetryPolicy {
    pub const MAX_RETRIES: u32 = 100;
    const LONGEST_DELAY: Duration = Duration::from_secs(30 * 24 * 3600);

    /// # Errors
    /// When a value is out of range: more than 100 retries, a zero initial delay, a cap
    /// below the initial delay or above 30 days, a multiplier outside `[1, 100]`.
    pub fn try_new(
        max_retries: u32,
        initial_delay: Duration,
        max_delay: Duration,
        multiplier: f64,
        jitter: Jitter,
    ) -> Result<Self, PolicyError> {
        if max_retries > Self::MAX_RETRIES {
            return Err(PolicyError::TooManyRetries {
                got: max_retries,
                max: Self::MAX_RETRIES,
            });
        }
        if initial_delay < Duration::from_millis(1) {
            return Err(PolicyError::ZeroInitialDelay);
        }
        if max_delay < initial_delay || max_delay > Self::LONGEST_DELAY {
            return Err(PolicyError::MaxDelay {
                initial_delay,
                max_delay,
            });
        }
        if !(1.0..=100.0).contains(&multiplier) {
            return Err(PolicyError::Multiplier(multiplier));
        }
        Ok(Self {
            max_retries,
            initial_delay,
            max_delay,
            multiplier,
            jitter,
        })
    }

    /// This policy with an endpoint's overrides applied.
    ///
    /// # Errors
    /// When the combination is invalid (for example an override of `initial_delay` above
    /// the default `max_delay`).
    pub fn with_override(&self, o: &RetryOverride) -> Result<Self, PolicyError> {
        Self::try_new(
            o.max_retries.unwrap_or(self.max_retries),
            o.initial_delay.unwrap_or(self.initial_delay),
            o.max_delay.unwrap_or(self.max_delay),
            o.multiplier.unwrap_or(self.multiplier),
            o.jitter.unwrap_or(self.jitter),
        )
    }

    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The backoff before retry number `retry` (1-based), before jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_delay.as_secs_f64() * self.multiplier.powi(exponent);
        if secs.is_finite() && secs < self.max_delay.as_secs_f64() {
            Duration::from_secs_f64(secs)
        } else {
            self.max_delay
        }
    }

    /// The delay before retry number `retry`, jittered, or `None` once retries are
    /// exhausted. A `Retry-After` from the endpoint replaces the backoff, clamped to the cap.
    pub fn next_delay(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        if retry > self.max_retries {
            return None;
        }
        if let Some(wait) = retry_after {
            return Some(wait.min(self.max_delay));
        }
        let backoff = self.backoff(retry);
        let jittered = match self.jitter {
            Jitter::Full => backoff.mul_f64(rng.random_range(0.0..=1.0)),
            Jitter::Proportional => backoff.mul_f64(rng.random_range(0.8..=1.2)),
        };
        Some(jittered.min(self.max_delay))
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
/// A date in the past means "now"; anything unparseable is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn policy(jitter: Jitter) -> RetryPolicy {
        RetryPolicy::try_new(
            5,
            Duration::from_secs(1),
            Duration::from_secs(10),
            3.0,
            jitter,
        )
        .unwrap()
    }

    #[test]
    fn constructor_rejects_nonsense() {
        let ok = |r, i, m, x| RetryPolicy::try_new(r, i, m, x, Jitter::Full);
        assert!(matches!(
            ok(101, Duration::from_secs(1), Duration::from_secs(2), 2.0),
            Err(PolicyError::TooManyRetries { .. })
        ));
        assert!(matches!(
            ok(1, Duration::ZERO, Duration::from_secs(2), 2.0),
            Err(PolicyError::ZeroInitialDelay)
        ));
        assert!(matches!(
            ok(1, Duration::from_secs(3), Duration::from_secs(2), 2.0),
            Err(PolicyError::MaxDelay { .. })
        ));
        assert!(matches!(
            ok(1, Duration::from_secs(1), Duration::from_secs(2), 0.5),
            Err(PolicyError::Multiplier(_))
        ));
        assert!(matches!(
            ok(1, Duration::from_secs(1), Duration::from_secs(2), f64::NAN),
            Err(PolicyError::Multiplier(_))
        ));
        assert!(ok(0, Duration::from_millis(1), Duration::from_millis(1), 1.0).is_ok());
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        let p = policy(Jitter::Full);
        let secs: Vec<f64> = (1..=5).map(|r| p.backoff(r).as_secs_f64()).collect();
        assert_eq!(secs, vec![1.0, 3.0, 9.0, 10.0, 10.0]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_in_its_band() {
        let mut rng = StdRng::seed_from_u64(7);
        for retry in 1..=5 {
            let backoff = policy(Jitter::Full).backoff(retry);
            for _ in 0..200 {
                let full = policy(Jitter::Full)
                    .next_delay(retry, None, &mut rng)
                    .unwrap();
                assert!(full <= backoff);
                let prop = policy(Jitter::Proportional)
                    .next_delay(retry, None, &mut rng)
                    .unwrap();
                assert!(
                    prop >= backoff.mul_f64(0.8)
                        && prop <= backoff.mul_f64(1.2).min(Duration::from_secs(10)),
                    "{prop:?} vs {backoff:?}"
                );
            }
        }
    }

    #[test]
    fn retries_end_after_max_retries() {
        let mut rng = StdRng::seed_from_u64(1);
        let p = policy(Jitter::Proportional);
        assert!(p.next_delay(5, None, &mut rng).is_some());
        assert_eq!(p.next_delay(6, None, &mut rng), None);
        assert_eq!(
            p.next_delay(6, Some(Duration::from_secs(1)), &mut rng),
            None
        );
    }

    #[test]
    fn retry_after_replaces_backoff_and_is_clamped() {
        let mut rng = StdRng::seed_from_u64(1);
        let p = policy(Jitter::Proportional);
        assert_eq!(
            p.next_delay(1, Some(Duration::from_secs(4)), &mut rng),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            p.next_delay(1, Some(Duration::from_secs(3600)), &mut rng),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn overrides_apply_field_by_field() {
        let p = policy(Jitter::Full);
        let o = RetryOverride {
            max_retries: Some(2),
            initial_delay: Some(Duration::from_millis(5)),
            ..Default::default()
        };
        let merged = p.with_override(&o).unwrap();
        assert_eq!(merged.max_retries(), 2);
        assert_eq!(merged.backoff(1), Duration::from_millis(5));
        assert_eq!(merged.max_delay(), Duration::from_secs(10));
        let bad = RetryOverride {
            initial_delay: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        assert!(matches!(
            p.with_override(&bad),
            Err(PolicyError::MaxDelay { .. })
        ));
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
