//! Endpoint protection: for every endpoint, a circuit breaker, a token bucket and a cap on
//! attempts in flight. Shielding receivers (never more than their limit, no hammering of a
//! dead one) and shielding everyone else (a slow endpoint holds at most its cap of workers).
//!
//! The scheduler asks [`Guards::allowance`] how many deliveries each endpoint may start
//! before it claims, so blocked endpoints cost no store work and no attempt; each claimed
//! delivery then takes a [`Ticket`], whose end feeds the breaker. State lives in memory,
//! per process — unless the store shares protection among processes (Redis): then the
//! store admits work and the guards only count this process's attempts in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::breaker::{Breaker, BreakerChange, BreakerPolicy, BreakerState};
use super::limiter::{RateLimit, TokenBucket};
use crate::domain::{AttemptRecord, Endpoint, EndpointId, ProtectionOverride, RateLimitOverride};
use crate::metrics::Metrics;

/// The server's protection settings, which endpoints may override.
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
}

/// An endpoint's protection, defaults and overrides resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointPolicy {
    pub breaker: BreakerPolicy,
    pub rate_limit: Option<RateLimit>,
    pub max_in_flight: u32,
}

/// An override that cannot work, with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProtectionError {
    /// Path below the endpoint, such as `rate_limit.burst`.
    pub field: &'static str,
    pub message: String,
}

/// Most attempts in flight one endpoint may be allowed.
const MAX_IN_FLIGHT: u32 = 10_000;

impl ProtectionConfig {
    /// The policy of an endpoint with these overrides.
    ///
    /// # Errors
    /// When an override is out of range.
    pub fn resolve(&self, o: &ProtectionOverride) -> Result<EndpointPolicy, ProtectionError> {
        let breaker = BreakerPolicy::try_new(
            o.failure_threshold
                .unwrap_or(self.breaker.failure_threshold()),
            o.breaker_timeout.unwrap_or(self.breaker.open_for()),
        )
        .map_err(|e| ProtectionError {
            field: match e.field() {
                "failure_threshold" => "circuit_breaker.failure_threshold",
                _ => "circuit_breaker.timeout",
            },
            message: e.to_string(),
        })?;
        let rate_limit = match o.rate_limit {
            RateLimitOverride::Default => self.rate_limit,
            RateLimitOverride::Unlimited => None,
            RateLimitOverride::Custom {
                limit,
                window,
                burst,
            } => {
                let limit = RateLimit::try_new(
                    limit,
                    window.unwrap_or(self.rate_limit_window),
                    burst.unwrap_or(limit),
                )
                .map_err(|e| ProtectionError {
                    field: match e.field() {
                        "limit" => "rate_limit.limit",
                        "window" => "rate_limit.window",
                        _ => "rate_limit.burst",
                    },
                    message: e.to_string(),
                })?;
                Some(limit)
            }
        };
        let max_in_flight = o.max_in_flight.unwrap_or(self.max_in_flight);
        if !(1..=MAX_IN_FLIGHT).contains(&max_in_flight) {
            return Err(ProtectionError {
                field: "max_in_flight",
                message: format!("must be between 1 and {MAX_IN_FLIGHT}, got {max_in_flight}"),
            });
        }
        Ok(EndpointPolicy {
            breaker,
            rate_limit,
            max_in_flight,
        })
    }
}

impl ProtectionConfig {
    /// The policy of a stored endpoint; an override invalid against today's defaults
    /// (they may have changed since it was stored) falls back to the defaults.
    pub fn resolve_or_default(&self, endpoint: &Endpoint) -> EndpointPolicy {
        self.resolve(&endpoint.protection).unwrap_or_else(|e| {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitStatus {
    Closed,
    Open { until: SystemTime },
    HalfOpen,
}

struct Guard {
    policy: EndpointPolicy,
    /// The endpoint version the policy was resolved from.
    updated_at: SystemTime,
    breaker: Breaker,
    bucket: Option<TokenBucket>,
    in_flight: u32,
}

impl Guard {
    fn new(policy: EndpointPolicy, updated_at: SystemTime, now: Instant) -> Self {
        Self {
            policy,
            updated_at,
            breaker: Breaker::new(policy.breaker),
            bucket: policy.rate_limit.map(|l| TokenBucket::new(l, now)),
            in_flight: 0,
        }
    }

    fn apply(&mut self, policy: EndpointPolicy, updated_at: SystemTime, now: Instant) {
        self.updated_at = updated_at;
        if policy == self.policy {
            return;
        }
        self.breaker.set_policy(policy.breaker);
        self.bucket = match (self.bucket.take(), policy.rate_limit) {
            (Some(mut bucket), Some(limit)) => {
                bucket.set_policy(limit, now);
                Some(bucket)
            }
            (None, Some(limit)) => Some(TokenBucket::new(limit, now)),
            (_, None) => None,
        };
        self.policy = policy;
    }

    fn allowance(&mut self, now: Instant) -> usize {
        let room = self.policy.max_in_flight.saturating_sub(self.in_flight) as usize;
        let tokens = self
            .bucket
            .as_mut()
            .map_or(usize::MAX, |b| b.available(now) as usize);
        let breaker = self.breaker.allowance(now).unwrap_or(usize::MAX);
        room.min(tokens).min(breaker)
    }

    /// When this endpoint can start an attempt again, if it is blocked by time (not by
    /// its attempts in flight, whose end wakes the scheduler anyway).
    fn unblocks_at(&mut self, now: Instant) -> Option<Instant> {
        if let Some(until) = self.breaker.blocked_until(now) {
            return Some(until);
        }
        let bucket = self.bucket.as_mut()?;
        let next = bucket.next_token_at(now);
        (next > now).then_some(next)
    }
}

/// The protection state of every endpoint this process has delivered to.
pub struct Guards {
    config: ProtectionConfig,
    /// The store applies protection for every process; these guards only count.
    shared: bool,
    metrics: Arc<Metrics>,
    endpoints: Mutex<HashMap<EndpointId, Guard>>,
}

/// Per-endpoint room for the next claim.
#[derive(Debug, Clone, Default)]
pub struct Allowance {
    /// Endpoints this process knows, with how many deliveries each may start now.
    pub per_endpoint: HashMap<EndpointId, usize>,
    /// Room of an endpoint not yet known: one delivery, which any policy admits (caps and
    /// bursts are at least 1, a new breaker is closed); its own limits apply from then on.
    pub unknown: usize,
}

impl Guards {
    pub fn new(config: ProtectionConfig, metrics: Arc<Metrics>, shared: bool) -> Self {
        Self {
            config,
            shared,
            metrics,
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &ProtectionConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<EndpointId, Guard>> {
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn allowance(&self, now: Instant) -> Allowance {
        if self.shared {
            return Allowance {
                per_endpoint: HashMap::new(),
                unknown: usize::MAX,
            };
        }
        let per_endpoint = self
            .lock()
            .iter_mut()
            .map(|(id, g)| (id.clone(), g.allowance(now)))
            .collect();
        Allowance {
            per_endpoint,
            unknown: 1,
        }
    }

    /// The earliest time an endpoint blocked by its breaker or its rate limit opens up.
    pub fn next_unblock(&self, now: Instant) -> Option<Instant> {
        self.lock()
            .values_mut()
            .filter_map(|g| g.unblocks_at(now))
            .min()
    }

    /// Lets one attempt to `endpoint` start, or says no (the delivery goes back to wait).
    pub fn admit(self: &Arc<Self>, endpoint: &Endpoint, now: Instant) -> Option<Ticket> {
        let policy = self.config.resolve_or_default(endpoint);
        let mut guards = self.lock();
        let guard = guards
            .entry(endpoint.id.clone())
            .or_insert_with(|| Guard::new(policy, endpoint.updated_at, now));
        if self.shared {
            guard.in_flight += 1;
            return Some(Ticket {
                guards: self.clone(),
                endpoint: endpoint.id.clone(),
                probe: false,
                open: true,
            });
        }
        if guard.updated_at != endpoint.updated_at {
            guard.apply(policy, endpoint.updated_at, now);
        }
        if guard.allowance(now) == 0 {
            return None;
        }
        let probe = guard.breaker.try_start(now)?;
        if let Some(bucket) = guard.bucket.as_mut() {
            bucket.try_take(now);
            if bucket.available(now) == 0 {
                self.metrics.rate_limit_hit(endpoint.id.as_str());
            }
        }
        guard.in_flight += 1;
        if probe {
            tracing::info!(endpoint = %endpoint.id, "circuit half-open: sending one probe");
        }
        Some(Ticket {
            guards: self.clone(),
            endpoint: endpoint.id.clone(),
            probe,
            open: true,
        })
    }

    /// The live state of an endpoint (idle defaults for one not delivered to yet).
    pub fn status(&self, endpoint: &Endpoint) -> EndpointStatus {
        let now = Instant::now();
        let mut guards = self.lock();
        let Some(guard) = guards.get_mut(&endpoint.id) else {
            let policy = self.config.resolve_or_default(endpoint);
            return EndpointStatus {
                circuit: CircuitStatus::Closed,
                consecutive_failures: 0,
                in_flight: 0,
                rate_used: 0,
                rate_limit: policy.rate_limit,
            };
        };
        let (circuit, consecutive_failures) = match guard.breaker.state() {
            BreakerState::Closed { failures } => (CircuitStatus::Closed, failures),
            BreakerState::Open { until } => (
                CircuitStatus::Open {
                    until: SystemTime::now() + until.saturating_duration_since(now),
                },
                guard.policy.breaker.failure_threshold(),
            ),
            BreakerState::HalfOpen => (
                CircuitStatus::HalfOpen,
                guard.policy.breaker.failure_threshold(),
            ),
        };
        EndpointStatus {
            circuit,
            consecutive_failures,
            in_flight: guard.in_flight,
            rate_used: guard.bucket.as_mut().map_or(0, |b| b.used_in_window(now)),
            rate_limit: guard.policy.rate_limit,
        }
    }

    /// Attempts in flight over all endpoints, and each endpoint's circuit state as a gauge
    /// value (0 closed, 1 open, 2 half-open), open ones first.
    pub fn snapshot(&self) -> (u64, Vec<(String, i64)>) {
        let guards = self.lock();
        let in_flight = guards.values().map(|g| u64::from(g.in_flight)).sum();
        let mut circuits: Vec<(String, i64)> = guards
            .iter()
            .map(|(id, g)| {
                let state = match g.breaker.state() {
                    BreakerState::Closed { .. } => 0,
                    BreakerState::Open { .. } => 1,
                    BreakerState::HalfOpen => 2,
                };
                (id.to_string(), state)
            })
            .collect();
        circuits.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        (in_flight, circuits)
    }

    /// Forgets a deleted endpoint.
    pub fn forget(&self, endpoint: &EndpointId) {
        self.lock().remove(endpoint);
    }

    fn finish(
        &self,
        endpoint: &EndpointId,
        probe: bool,
        outcome: Option<bool>,
    ) -> Option<BreakerChange> {
        let now = Instant::now();
        let mut guards = self.lock();
        let guard = guards.get_mut(endpoint)?;
        guard.in_flight = guard.in_flight.saturating_sub(1);
        if self.shared {
            return None;
        }
        let change = match outcome {
            Some(succeeded) => guard.breaker.record(succeeded, probe, now),
            // The attempt never reached an outcome (shutdown): a probe is given back.
            None if probe => guard.breaker.record(false, true, now),
            None => None,
        };
        match change {
            Some(BreakerChange::Opened { until }) => {
                tracing::warn!(endpoint = %endpoint, open_for_ms = until.saturating_duration_since(now).as_millis() as u64, "circuit opened")
            }
            Some(BreakerChange::Closed) => tracing::info!(endpoint = %endpoint, "circuit closed"),
            None => {}
        }
        change
    }
}

/// Whether an attempt counts against the endpoint's breaker: no answer, a server error,
/// or a request to slow down. Other answers, 4xx included, show a live endpoint.
pub fn is_endpoint_failure(record: &AttemptRecord) -> bool {
    record.transport_error.is_some() || matches!(record.status_code, Some(408 | 429 | 500..=599))
}

/// One attempt's hold on its endpoint's protection: its place in flight and, for a probe,
/// the half-open breaker. Give its outcome with [`Ticket::finish`].
pub struct Ticket {
    guards: Arc<Guards>,
    endpoint: EndpointId,
    probe: bool,
    open: bool,
}

impl Ticket {
    /// Ends the attempt with its record; returns the breaker's change, if any.
    pub fn finish(mut self, record: &AttemptRecord) -> Option<BreakerChange> {
        self.open = false;
        self.guards.finish(
            &self.endpoint,
            self.probe,
            Some(!is_endpoint_failure(record)),
        )
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.open {
            // No outcome: the process is stopping, and the breaker's state ends with it.
            let _ = self.guards.finish(&self.endpoint, self.probe, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EndpointId, Secret, SigningSecrets};

    fn config() -> ProtectionConfig {
        ProtectionConfig {
            breaker: BreakerPolicy::try_new(2, Duration::from_secs(5)).unwrap(),
            rate_limit: Some(RateLimit::try_new(10, Duration::from_secs(1), 3).unwrap()),
            rate_limit_window: Duration::from_secs(1),
            max_in_flight: 2,
            auto_disable_after: Duration::from_secs(60),
        }
    }

    fn endpoint(protection: ProtectionOverride) -> Endpoint {
        Endpoint {
            id: EndpointId::parse("e").unwrap(),
            url: url::Url::parse("http://127.0.0.1/").unwrap(),
            description: String::new(),
            event_types: vec![],
            channels: vec![],
            headers: vec![],
            retry: Default::default(),
            protection,
            disabled: None,
            failing_since: None,
            secrets: SigningSecrets::new(Secret::generate()),
            created_at: SystemTime::UNIX_EPOCH,
            updated_at: SystemTime::UNIX_EPOCH,
        }
    }

    fn failure() -> AttemptRecord {
        AttemptRecord {
            started_at: SystemTime::now(),
            latency: Duration::ZERO,
            status_code: Some(503),
            transport_error: None,
            error: String::new(),
            response_excerpt: String::new(),
        }
    }

    #[test]
    fn overrides_resolve_and_bad_ones_name_their_field() {
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
        let bad = |o: ProtectionOverride| c.resolve(&o).unwrap_err().field;
        assert_eq!(
            bad(ProtectionOverride {
                max_in_flight: Some(0),
                ..Default::default()
            }),
            "max_in_flight"
        );
        assert_eq!(
            bad(ProtectionOverride {
                failure_threshold: Some(0),
                ..Default::default()
            }),
            "circuit_breaker.failure_threshold"
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
            "rate_limit.window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn caps_in_flight_and_spends_tokens() {
        let guards = Arc::new(Guards::new(config(), Arc::new(Metrics::new()), false));
        let e = endpoint(ProtectionOverride::default());
        let now = Instant::now();
        let a = guards.admit(&e, now).unwrap();
        let _b = guards.admit(&e, now).unwrap();
        assert!(guards.admit(&e, now).is_none(), "two in flight at most");
        assert_eq!(guards.allowance(now).per_endpoint[&e.id], 0);
        drop(a);
        assert_eq!(
            guards.allowance(now).per_endpoint[&e.id],
            1,
            "the third token"
        );
        let _c = guards.admit(&e, now).unwrap();
        drop(_b);
        assert!(guards.admit(&e, now).is_none(), "no token left");
        assert_eq!(
            guards.next_unblock(now),
            Some(now + Duration::from_millis(100))
        );
        assert_eq!(guards.status(&e).rate_used, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_open_the_breaker_and_a_probe_closes_it() {
        let guards = Arc::new(Guards::new(config(), Arc::new(Metrics::new()), false));
        let e = endpoint(ProtectionOverride {
            rate_limit: RateLimitOverride::Unlimited,
            ..Default::default()
        });
        for _ in 0..2 {
            guards.admit(&e, Instant::now()).unwrap().finish(&failure());
        }
        assert!(matches!(
            guards.status(&e).circuit,
            CircuitStatus::Open { .. }
        ));
        assert!(guards.admit(&e, Instant::now()).is_none());
        assert_eq!(
            guards.next_unblock(Instant::now()),
            Some(Instant::now() + Duration::from_secs(5))
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        let probe = guards.admit(&e, Instant::now()).unwrap();
        assert_eq!(guards.status(&e).circuit, CircuitStatus::HalfOpen);
        assert!(
            guards.admit(&e, Instant::now()).is_none(),
            "one probe at a time"
        );
        probe.finish(&AttemptRecord {
            status_code: Some(200),
            ..failure()
        });
        assert_eq!(guards.status(&e).circuit, CircuitStatus::Closed);
    }

    #[test]
    fn only_dead_or_struggling_endpoints_count_as_failing() {
        let with = |status: Option<u16>| AttemptRecord {
            status_code: status,
            ..failure()
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
