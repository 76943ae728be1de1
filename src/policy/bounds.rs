//! The server's bounds on an endpoint's overrides, so that no endpoint can be made into
//! a flood cannon: a highest rate, a floor under the waits before an endpoint is tried
//! again (retry delays, the breaker's open period), and ceilings on retries, attempts in
//! flight and the breaker's failure threshold (above it a breaker is as good as off).
//!
//! Registration and updates refuse an override past a bound ([`OverrideBounds::check_retry`],
//! [`OverrideBounds::check_protection`]); an override stored before the bounds were
//! lowered is clamped to them when it is used ([`OverrideBounds::clamp_retry`],
//! [`OverrideBounds::clamp_protection`]), so none is ever exceeded. Whether an override
//! makes sense at all (a zero window, a multiplier below 1) is for each policy's
//! `try_new` to say; these are the operator's limits on top.

use std::time::Duration;

use crate::domain::{ProtectionOverride, RateLimitOverride, RetryOverride};

/// The most and least an endpoint's overrides may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverrideBounds {
    /// Highest rate of an endpoint's limit, in requests per second, and its largest
    /// burst; `None`: no bound, and an endpoint may turn its limit off.
    pub max_rate: Option<u32>,
    /// Shortest wait before an endpoint is tried again that it may set: its retry delays
    /// (initial and cap) and its breaker's open period.
    pub min_delay: Duration,
    pub max_retries: u32,
    pub max_in_flight: u32,
    pub max_failure_threshold: u32,
}

/// An override past a bound; callers name the field by the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutOfBounds {
    #[error("at most {max} retries are allowed, got {got}")]
    Retries { got: u32, max: u32 },
    #[error("must be at least {min:?}, got {got:?}")]
    InitialDelay { got: Duration, min: Duration },
    #[error("must be at least {min:?}, got {got:?}")]
    MaxDelay { got: Duration, min: Duration },
    #[error("0 (no limit) is not allowed: at most {max} requests per second")]
    Unlimited { max: u32 },
    #[error("{limit} per {window:?} is more than the {max} requests per second allowed")]
    Rate {
        limit: u32,
        window: Duration,
        max: u32,
    },
    #[error("a burst of at most {max} is allowed, got {got} (with no burst set, the limit)")]
    Burst { got: u32, max: u32 },
    #[error("at most {max} is allowed, got {got}")]
    FailureThreshold { got: u32, max: u32 },
    #[error("must be at least {min:?}, got {got:?}")]
    BreakerTimeout { got: Duration, min: Duration },
    #[error("at most {max} is allowed, got {got}")]
    MaxInFlight { got: u32, max: u32 },
}

/// The window a rate is clamped to: a bound is requests per second.
const SECOND: Duration = Duration::from_secs(1);

impl OverrideBounds {
    /// Whether `limit` per `window` is faster than `max` per second.
    fn too_fast(limit: u32, window: Duration, max: u32) -> bool {
        u128::from(limit) * SECOND.as_nanos() > u128::from(max) * window.as_nanos()
    }

    /// What a retry override sets past a bound; what it leaves unset is the server's.
    pub fn check_retry(&self, o: &RetryOverride) -> Vec<OutOfBounds> {
        let mut out = Vec::new();
        if let Some(got) = o.max_retries.filter(|n| *n > self.max_retries) {
            out.push(OutOfBounds::Retries {
                got,
                max: self.max_retries,
            });
        }
        let min = self.min_delay;
        if let Some(got) = o.initial_delay.filter(|d| *d < min) {
            out.push(OutOfBounds::InitialDelay { got, min });
        }
        if let Some(got) = o.max_delay.filter(|d| *d < min) {
            out.push(OutOfBounds::MaxDelay { got, min });
        }
        out
    }

    /// What a protection override sets past a bound; a limit that names no window has
    /// the server's, `default_window`.
    pub fn check_protection(
        &self,
        o: &ProtectionOverride,
        default_window: Duration,
    ) -> Vec<OutOfBounds> {
        let mut out = Vec::new();
        match (o.rate_limit, self.max_rate) {
            (_, None) | (RateLimitOverride::Default, _) => {}
            (RateLimitOverride::Unlimited, Some(max)) => out.push(OutOfBounds::Unlimited { max }),
            (
                RateLimitOverride::Custom {
                    limit,
                    window,
                    burst,
                },
                Some(max),
            ) => {
                let window = window.unwrap_or(default_window);
                let burst = burst.unwrap_or(limit);
                if Self::too_fast(limit, window, max) {
                    out.push(OutOfBounds::Rate { limit, window, max });
                } else if burst > max {
                    out.push(OutOfBounds::Burst { got: burst, max });
                }
            }
        }
        if let Some(got) = o
            .failure_threshold
            .filter(|n| *n > self.max_failure_threshold)
        {
            out.push(OutOfBounds::FailureThreshold {
                got,
                max: self.max_failure_threshold,
            });
        }
        if let Some(got) = o.breaker_timeout.filter(|d| *d < self.min_delay) {
            out.push(OutOfBounds::BreakerTimeout {
                got,
                min: self.min_delay,
            });
        }
        if let Some(got) = o.max_in_flight.filter(|n| *n > self.max_in_flight) {
            out.push(OutOfBounds::MaxInFlight {
                got,
                max: self.max_in_flight,
            });
        }
        out
    }

    /// The retry override brought within the bounds.
    pub fn clamp_retry(&self, o: &RetryOverride) -> RetryOverride {
        RetryOverride {
            max_retries: o.max_retries.map(|n| n.min(self.max_retries)),
            initial_delay: o.initial_delay.map(|d| d.max(self.min_delay)),
            max_delay: o.max_delay.map(|d| d.max(self.min_delay)),
            ..o.clone()
        }
    }

    /// The protection override brought within the bounds: a limit too fast (or none)
    /// becomes the highest rate allowed, per second.
    pub fn clamp_protection(
        &self,
        o: &ProtectionOverride,
        default_window: Duration,
    ) -> ProtectionOverride {
        let fastest = |max: u32, burst: u32| RateLimitOverride::Custom {
            limit: max,
            window: Some(SECOND),
            burst: Some(burst.min(max)),
        };
        let rate_limit = match (o.rate_limit, self.max_rate) {
            (RateLimitOverride::Unlimited, Some(max)) => fastest(max, max),
            (
                RateLimitOverride::Custom {
                    limit,
                    window,
                    burst,
                },
                Some(max),
            ) => {
                let effective = burst.unwrap_or(limit);
                if Self::too_fast(limit, window.unwrap_or(default_window), max) {
                    fastest(max, effective)
                } else {
                    RateLimitOverride::Custom {
                        limit,
                        window,
                        burst: if effective > max { Some(max) } else { burst },
                    }
                }
            }
            (rate_limit, _) => rate_limit,
        };
        ProtectionOverride {
            rate_limit,
            failure_threshold: o
                .failure_threshold
                .map(|n| n.min(self.max_failure_threshold)),
            breaker_timeout: o.breaker_timeout.map(|d| d.max(self.min_delay)),
            max_in_flight: o.max_in_flight.map(|n| n.min(self.max_in_flight)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(1);

    fn bounds() -> OverrideBounds {
        OverrideBounds {
            max_rate: Some(100),
            min_delay: Duration::from_secs(1),
            max_retries: 20,
            max_in_flight: 64,
            max_failure_threshold: 100,
        }
    }

    fn custom(limit: u32, window: Option<Duration>, burst: Option<u32>) -> ProtectionOverride {
        ProtectionOverride {
            rate_limit: RateLimitOverride::Custom {
                limit,
                window,
                burst,
            },
            ..Default::default()
        }
    }

    /// Every protection override of the tests, within the bounds and past them.
    fn protection_cases() -> Vec<ProtectionOverride> {
        let secs = |s| Some(Duration::from_secs(s));
        vec![
            ProtectionOverride::default(),
            ProtectionOverride {
                rate_limit: RateLimitOverride::Unlimited,
                ..Default::default()
            },
            custom(100, None, None),
            custom(101, None, None),
            custom(1000, secs(10), None),
            custom(1000, secs(10), Some(100)),
            custom(1001, secs(10), Some(5)),
            custom(10, Some(Duration::from_millis(50)), None),
            custom(5, Some(Duration::from_millis(50)), Some(1000)),
            ProtectionOverride {
                failure_threshold: Some(101),
                breaker_timeout: Some(Duration::from_millis(1)),
                max_in_flight: Some(65),
                ..Default::default()
            },
            ProtectionOverride {
                failure_threshold: Some(100),
                breaker_timeout: secs(1),
                max_in_flight: Some(64),
                ..Default::default()
            },
        ]
    }

    #[test]
    fn retry_overrides_stay_within_the_bounds() {
        let b = bounds();
        let at = RetryOverride {
            max_retries: Some(20),
            initial_delay: Some(Duration::from_secs(1)),
            max_delay: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        assert!(b.check_retry(&at).is_empty());
        assert!(b.check_retry(&RetryOverride::default()).is_empty());
        let past = RetryOverride {
            max_retries: Some(21),
            initial_delay: Some(Duration::from_millis(999)),
            max_delay: Some(Duration::ZERO),
            ..Default::default()
        };
        assert_eq!(
            b.check_retry(&past),
            [
                OutOfBounds::Retries { got: 21, max: 20 },
                OutOfBounds::InitialDelay {
                    got: Duration::from_millis(999),
                    min: Duration::from_secs(1)
                },
                OutOfBounds::MaxDelay {
                    got: Duration::ZERO,
                    min: Duration::from_secs(1)
                },
            ]
        );
        assert_eq!(b.clamp_retry(&past), at);
        assert_eq!(b.clamp_retry(&at), at);
    }

    #[test]
    fn rates_are_bounded_per_second_and_bursts_by_the_same_figure() {
        let b = bounds();
        let check = |o: &ProtectionOverride| b.check_protection(o, WINDOW);
        let ms = Duration::from_millis;
        assert_eq!(
            check(&ProtectionOverride {
                rate_limit: RateLimitOverride::Unlimited,
                ..Default::default()
            }),
            [OutOfBounds::Unlimited { max: 100 }]
        );
        assert!(check(&custom(100, None, None)).is_empty());
        assert_eq!(
            check(&custom(101, None, None)),
            [OutOfBounds::Rate {
                limit: 101,
                window: WINDOW,
                max: 100
            }]
        );
        // 10 per 50 ms is 200 per second.
        assert_eq!(
            check(&custom(10, Some(ms(50)), None)),
            [OutOfBounds::Rate {
                limit: 10,
                window: ms(50),
                max: 100
            }]
        );
        // 1000 per 10 s is 100 per second, but its burst (the limit) is 1000.
        assert_eq!(
            check(&custom(1000, Some(ms(10_000)), None)),
            [OutOfBounds::Burst {
                got: 1000,
                max: 100
            }]
        );
        assert!(check(&custom(1000, Some(ms(10_000)), Some(100))).is_empty());
        // The server's window applies to a limit that names none.
        assert!(
            b.check_protection(&custom(200, None, Some(100)), Duration::from_secs(2))
                .is_empty()
        );
        let unbounded = OverrideBounds {
            max_rate: None,
            ..b
        };
        assert!(
            unbounded
                .check_protection(
                    &ProtectionOverride {
                        rate_limit: RateLimitOverride::Unlimited,
                        ..Default::default()
                    },
                    WINDOW
                )
                .is_empty()
        );
    }

    #[test]
    fn breaker_and_in_flight_overrides_stay_within_the_bounds() {
        let b = bounds();
        let past = ProtectionOverride {
            failure_threshold: Some(101),
            breaker_timeout: Some(Duration::from_millis(1)),
            max_in_flight: Some(65),
            ..Default::default()
        };
        assert_eq!(
            b.check_protection(&past, WINDOW),
            [
                OutOfBounds::FailureThreshold { got: 101, max: 100 },
                OutOfBounds::BreakerTimeout {
                    got: Duration::from_millis(1),
                    min: Duration::from_secs(1)
                },
                OutOfBounds::MaxInFlight { got: 65, max: 64 },
            ]
        );
        assert_eq!(
            b.clamp_protection(&past, WINDOW),
            ProtectionOverride {
                failure_threshold: Some(100),
                breaker_timeout: Some(Duration::from_secs(1)),
                max_in_flight: Some(64),
                ..Default::default()
            }
        );
    }

    #[test]
    fn clamped_overrides_are_within_the_bounds_and_those_within_are_kept() {
        let b = bounds();
        for o in protection_cases() {
            let clamped = b.clamp_protection(&o, WINDOW);
            assert!(
                b.check_protection(&clamped, WINDOW).is_empty(),
                "{o:?} clamped to {clamped:?}"
            );
            if b.check_protection(&o, WINDOW).is_empty() {
                assert_eq!(clamped, o, "within the bounds, kept as it is");
            }
        }
        assert_eq!(
            b.clamp_protection(
                &ProtectionOverride {
                    rate_limit: RateLimitOverride::Unlimited,
                    ..Default::default()
                },
                WINDOW
            )
            .rate_limit,
            RateLimitOverride::Custom {
                limit: 100,
                window: Some(WINDOW),
                burst: Some(100)
            }
        );
    }
}
