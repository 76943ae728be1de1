//! Endpoint protection as policy: the server's settings and an endpoint's overrides
//! resolved into one [`EndpointPolicy`], the [`HostCeiling`] every destination host has
//! over all endpoints pointing at it, the live [`EndpointStatus`] the API shows, and the
//! [`Protection`] seam through which the scheduler asks for room and reports the end of
//! every attempt.
//!
//! Two implementations sit behind the seam: the in-process guards of `delivery::guard`
//! (each process keeps its own breakers and buckets, and decides circuit changes and the
//! disabling of an endpoint that has failed too long), and the Redis store's shared
//! protection (every instance shares one breaker and bucket per endpoint, applied by the
//! store's scripts, which decide those changes there, atomically, for all instances).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::time::Instant;

use super::bounds::OverrideBounds;
use super::breaker::{BreakerPolicy, BreakerPolicyError};
use super::limiter::{RateLimit, RateLimitError};
use crate::domain::{
    AttemptRecord, Destination, DisabledReason, Endpoint, EndpointId, ProtectionOverride,
    RateLimitOverride,
};

/// The server's protection settings, which endpoints may override within `bounds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProtectionConfig {
    pub breaker: BreakerPolicy,
    /// `None`: no limit unless an endpoint sets one.
    pub rate_limit: Option<RateLimit>,
    /// Window of an endpoint limit that names none.
    pub rate_limit_window: Duration,
    pub max_in_flight: u32,
    /// An endpoint that has only failed for this long is disabled.
    pub auto_disable_after: Duration,
    /// What endpoints' overrides (of these settings and of the retry policy) may ask for.
    pub bounds: OverrideBounds,
    /// The ceiling of each destination host, over all endpoints pointing at it.
    pub host: HostCeiling,
}

/// What one destination host receives at most, from every endpoint pointing at it
/// together: no set of endpoints can send a host more than this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCeiling {
    /// Attempts in flight to the host at once.
    pub max_in_flight: u32,
    /// Requests to the host per window; `None`: no rate ceiling.
    pub rate_limit: Option<RateLimit>,
}

/// An endpoint's protection, defaults and overrides resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointPolicy {
    pub breaker: BreakerPolicy,
    pub rate_limit: Option<RateLimit>,
    pub max_in_flight: u32,
}

/// An override that cannot work; callers name the field by the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtectionError {
    #[error(transparent)]
    Breaker(#[from] BreakerPolicyError),
    #[error(transparent)]
    RateLimit(#[from] RateLimitError),
    #[error("max_in_flight must be at least 1")]
    NoInFlight,
}

impl ProtectionConfig {
    /// The policy of an endpoint with these overrides.
    ///
    /// # Errors
    /// When an override is out of range; the bounds are not checked here.
    pub fn resolve(&self, o: &ProtectionOverride) -> Result<EndpointPolicy, ProtectionError> {
        let breaker = BreakerPolicy::try_new(
            o.failure_threshold
                .unwrap_or(self.breaker.failure_threshold()),
            o.breaker_timeout.unwrap_or(self.breaker.open_for()),
        )?;
        let rate_limit = match o.rate_limit {
            RateLimitOverride::Default => self.rate_limit,
            RateLimitOverride::Unlimited => None,
            RateLimitOverride::Custom {
                limit,
                window,
                burst,
            } => Some(RateLimit::try_new(
                limit,
                window.unwrap_or(self.rate_limit_window),
                burst.unwrap_or(limit),
            )?),
        };
        let max_in_flight = o.max_in_flight.unwrap_or(self.max_in_flight);
        if max_in_flight == 0 {
            return Err(ProtectionError::NoInFlight);
        }
        Ok(EndpointPolicy {
            breaker,
            rate_limit,
            max_in_flight,
        })
    }

    /// The policy of a stored endpoint, its overrides clamped to today's bounds; an
    /// override invalid against today's defaults (they may have changed since it was
    /// stored) falls back to the defaults.
    pub fn resolve_or_default(&self, endpoint: &Endpoint) -> EndpointPolicy {
        let bounded = self
            .bounds
            .clamp_protection(&endpoint.protection, self.rate_limit_window);
        self.resolve(&bounded).unwrap_or_else(|e| {
            tracing::warn!(endpoint = %endpoint.id, error = %e, "endpoint protection override no longer valid; using the defaults");
            self.resolve(&ProtectionOverride::default()).expect("the defaults are valid")
        })
    }
}

/// The live protection state of one endpoint, as `GetEndpoint` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointStatus {
    pub circuit: CircuitStatus,
    pub consecutive_failures: u32,
    pub in_flight: u32,
    /// Requests started in the last rate-limit window, and the limit (`None`: unlimited).
    pub rate_used: u32,
    pub rate_limit: Option<RateLimit>,
}

impl EndpointStatus {
    /// An endpoint nothing was attempted to yet.
    pub fn idle(policy: &EndpointPolicy) -> Self {
        Self {
            circuit: CircuitStatus::Closed,
            consecutive_failures: 0,
            in_flight: 0,
            rate_used: 0,
            rate_limit: policy.rate_limit,
        }
    }
}

/// Where an endpoint's circuit stands: the one form the API, health and metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitStatus {
    Closed,
    Open { until: SystemTime },
    HalfOpen,
}

impl CircuitStatus {
    pub fn is_closed(self) -> bool {
        self == Self::Closed
    }

    /// Sorts circuits open ones first, then by endpoint.
    pub fn sort(circuits: &mut [(EndpointId, Self)]) {
        circuits.sort_by(|a, b| {
            a.1.is_closed()
                .cmp(&b.1.is_closed())
                .then_with(|| a.0.cmp(&b.0))
        });
    }
}

/// Whether an attempt counts against the endpoint's breaker: no answer, a server error,
/// or a request to slow down. Other answers, 4xx included, show a live endpoint.
pub fn is_endpoint_failure(record: &AttemptRecord) -> bool {
    record.transport_error.is_some() || matches!(record.status_code, Some(408 | 429 | 500..=599))
}

/// Per-endpoint room for the next claim.
#[derive(Debug, Clone, Default)]
pub struct Allowance {
    /// Endpoints with known limits, with how many deliveries each may start now.
    pub per_endpoint: HashMap<EndpointId, usize>,
    /// Room of an endpoint not listed.
    pub unknown: usize,
    /// Room that endpoints pointing at one host share, on top of their own.
    pub hosts: SharedRoom,
}

/// Room shared by groups of endpoints (those pointing at one destination host): a claim
/// takes at most a group's room over all of its endpoints together.
#[derive(Debug, Clone, Default)]
pub struct SharedRoom {
    /// The group of each listed endpoint, as an index into `room`; an endpoint not
    /// listed shares nothing.
    pub group_of: HashMap<EndpointId, usize>,
    /// How many deliveries each group may start now.
    pub room: Vec<usize>,
}

/// How an admitted attempt ended.
#[derive(Debug, Clone, Copy)]
pub struct Ended<'a> {
    pub record: &'a AttemptRecord,
    /// The endpoint took the webhook (2xx).
    pub delivered: bool,
}

/// Leave for one attempt to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The attempt is the half-open breaker's probe.
    pub probe: bool,
    /// The host whose slot the attempt holds (the endpoint's URL may change before the
    /// attempt ends).
    pub destination: Destination,
}

/// A circuit change, as the status stream reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitChange {
    Opened { until: SystemTime },
    Closed,
}

/// What becomes of an endpoint's failing-since clock after an attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailingClock {
    #[default]
    Unchanged,
    /// The first failure after a success (or ever).
    Started(SystemTime),
    /// A success after failures.
    Cleared,
}

/// What the end of an attempt means for its endpoint: decided by the protection (or, for
/// a gone endpoint, by the delivery core), applied by the store with the attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointEffects {
    pub circuit: Option<CircuitChange>,
    pub failing: FailingClock,
    pub disable: Option<DisabledReason>,
}

/// The protection's state could not be read (its backend is unreachable).
#[derive(Debug, thiserror::Error)]
#[error("endpoint protection state is unavailable")]
pub struct StateUnavailable(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The seam between the scheduler and endpoint protection.
#[async_trait]
pub trait Protection: Send + Sync + 'static {
    /// How many deliveries each endpoint may start now, asked before a claim so blocked
    /// endpoints cost no store work.
    fn allowance(&self, now: Instant) -> Allowance;

    /// The earliest time an endpoint held back by its breaker, its rate limit or its
    /// host's rate ceiling opens up.
    fn next_unblock(&self, now: Instant) -> Option<Instant>;

    /// Lets one attempt to `endpoint` start, or says no (the delivery goes back to wait):
    /// the endpoint or its host has no room.
    fn admit(&self, endpoint: &Endpoint, now: Instant) -> Option<Admission>;

    /// Ends an admitted attempt (`None`: it never reached an outcome, the process is
    /// stopping) and says what that means for the endpoint.
    fn finish(
        &self,
        endpoint: &EndpointId,
        admission: &Admission,
        ended: Option<Ended<'_>>,
        now: SystemTime,
    ) -> EndpointEffects;

    /// Attempts this process has in flight, over all endpoints.
    fn in_flight(&self) -> u64;

    /// Forgets a deleted endpoint.
    fn forget(&self, endpoint: &EndpointId);

    /// The live state of an endpoint.
    ///
    /// # Errors
    /// When the shared state cannot be read.
    async fn status(&self, endpoint: &Endpoint) -> Result<EndpointStatus, StateUnavailable>;

    /// The circuit of every endpoint it knows, open ones first.
    ///
    /// # Errors
    /// When the shared state cannot be read.
    async fn circuits(&self) -> Result<Vec<(EndpointId, CircuitStatus)>, StateUnavailable>;
}

/// Settings for tests: breaker at 2 failures for 5 s, 10 requests a second with a burst
/// of 3, 2 in flight, disabled after a minute of failures; overrides bounded only by
/// what each policy accepts; each host takes 3 in flight and 20 requests a second.
#[cfg(test)]
pub(crate) fn test_config() -> ProtectionConfig {
    ProtectionConfig {
        breaker: BreakerPolicy::try_new(2, Duration::from_secs(5)).unwrap(),
        rate_limit: Some(RateLimit::try_new(10, Duration::from_secs(1), 3).unwrap()),
        rate_limit_window: Duration::from_secs(1),
        max_in_flight: 2,
        auto_disable_after: Duration::from_secs(60),
        bounds: OverrideBounds {
            max_rate: None,
            min_delay: Duration::ZERO,
            max_retries: super::retry::RetryPolicy::MAX_RETRIES,
            max_in_flight: u32::MAX,
            max_failure_threshold: u32::MAX,
        },
        host: HostCeiling {
            max_in_flight: 3,
            rate_limit: Some(RateLimit::try_new(20, Duration::from_secs(1), 20).unwrap()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ProtectionConfig {
        test_config()
    }

    #[test]
    fn overrides_resolve_and_bad_ones_say_which() {
        let c = config();
        let custom = ProtectionOverride {
            rate_limit: RateLimitOverride::Custom {
                limit: 5,
                window: None,
                burst: None,
            },
            max_in_flight: Some(7),
            ..Default::default()
        };
        let p = c.resolve(&custom).unwrap();
        assert_eq!(
            p.rate_limit,
            Some(RateLimit::try_new(5, Duration::from_secs(1), 5).unwrap())
        );
        assert_eq!(p.max_in_flight, 7);
        assert_eq!(
            c.resolve(&ProtectionOverride {
                rate_limit: RateLimitOverride::Unlimited,
                ..Default::default()
            })
            .unwrap()
            .rate_limit,
            None
        );
        let bad = |o: ProtectionOverride| c.resolve(&o).unwrap_err();
        assert_eq!(
            bad(ProtectionOverride {
                max_in_flight: Some(0),
                ..Default::default()
            }),
            ProtectionError::NoInFlight
        );
        assert_eq!(
            bad(ProtectionOverride {
                failure_threshold: Some(0),
                ..Default::default()
            }),
            ProtectionError::Breaker(BreakerPolicyError::Threshold(0))
        );
        assert_eq!(
            bad(ProtectionOverride {
                rate_limit: RateLimitOverride::Custom {
                    limit: 1,
                    window: Some(Duration::ZERO),
                    burst: None
                },
                ..Default::default()
            }),
            ProtectionError::RateLimit(RateLimitError::Window(Duration::ZERO))
        );
    }

    #[test]
    fn stored_overrides_past_todays_bounds_are_clamped_to_them() {
        use crate::domain::{Secret, SigningSecrets, TenantId};
        let c = ProtectionConfig {
            bounds: OverrideBounds {
                max_rate: Some(50),
                min_delay: Duration::from_secs(1),
                max_retries: 20,
                max_in_flight: 4,
                max_failure_threshold: 10,
            },
            ..config()
        };
        let endpoint = Endpoint {
            tenant: TenantId::default(),
            id: EndpointId::parse("e").unwrap(),
            url: url::Url::parse("https://example.com/").unwrap(),
            description: String::new(),
            event_types: vec![],
            channels: vec![],
            headers: vec![],
            retry: Default::default(),
            // Stored while the bounds were looser.
            protection: ProtectionOverride {
                rate_limit: RateLimitOverride::Unlimited,
                failure_threshold: Some(10_000),
                breaker_timeout: Some(Duration::from_millis(1)),
                max_in_flight: Some(1000),
            },
            disabled: None,
            failing_since: None,
            secrets: SigningSecrets::new(Secret::generate()),
            created_at: SystemTime::UNIX_EPOCH,
            updated_at: SystemTime::UNIX_EPOCH,
        };
        let p = c.resolve_or_default(&endpoint);
        assert_eq!(
            p,
            EndpointPolicy {
                breaker: BreakerPolicy::try_new(10, Duration::from_secs(1)).unwrap(),
                rate_limit: Some(RateLimit::try_new(50, Duration::from_secs(1), 50).unwrap()),
                max_in_flight: 4,
            }
        );
    }

    #[test]
    fn only_dead_or_struggling_endpoints_count_as_failing() {
        let with = |status: Option<u16>| AttemptRecord {
            started_at: SystemTime::now(),
            latency: Duration::ZERO,
            status_code: status,
            transport_error: None,
            error: String::new(),
            response_excerpt: String::new(),
        };
        assert!(is_endpoint_failure(&with(Some(500))));
        assert!(is_endpoint_failure(&with(Some(429))));
        assert!(!is_endpoint_failure(&with(Some(400))));
        assert!(!is_endpoint_failure(&with(Some(200))));
        assert!(is_endpoint_failure(&AttemptRecord {
            transport_error: Some(crate::domain::TransportError::Timeout),
            ..with(None)
        }));
    }
}
