//! The in-process implementation of [`Protection`]: for every endpoint this process
//! delivers to, a circuit breaker, a token bucket and a cap on attempts in flight.
//! Shielding receivers (never more than their limit, no hammering of a dead one) and
//! shielding everyone else (a slow endpoint holds at most its cap of workers).
//!
//! The scheduler asks [`Guards::allowance`] how many deliveries each endpoint may start
//! before it claims, so blocked endpoints cost no store work and no attempt; each claimed
//! delivery is then admitted, and its end feeds the breaker and the endpoint's
//! failing-since clock. This is the one place where, for the embedded and memory stores,
//! circuit changes and the disabling of an endpoint that has failed too long are decided;
//! the store records them with the attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::domain::{DisabledReason, Endpoint, EndpointId};
use crate::metrics::Metrics;
use crate::policy::breaker::{Breaker, BreakerChange, BreakerState};
use crate::policy::limiter::TokenBucket;
use crate::policy::protection::{
    Admission, Allowance, CircuitChange, CircuitStatus, Ended, EndpointEffects, EndpointPolicy,
    EndpointStatus, FailingClock, Protection, ProtectionConfig, StateUnavailable,
    is_endpoint_failure,
};

struct Guard {
    policy: EndpointPolicy,
    /// The endpoint version the policy was resolved from.
    updated_at: SystemTime,
    breaker: Breaker,
    bucket: Option<TokenBucket>,
    in_flight: u32,
    /// Since when every attempt has failed (as stored with the endpoint).
    failing_since: Option<SystemTime>,
}

impl Guard {
    fn new(policy: EndpointPolicy, endpoint: &Endpoint, now: Instant) -> Self {
        Self {
            policy,
            updated_at: endpoint.updated_at,
            breaker: Breaker::new(policy.breaker),
            bucket: policy.rate_limit.map(|l| TokenBucket::new(l, now)),
            in_flight: 0,
            failing_since: endpoint.failing_since,
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
        let next = bucket.tokens_at(1, now);
        (next > now).then_some(next)
    }

    /// The circuit as the API shows it, at `now` (`at` is the same instant on the wall
    /// clock).
    fn circuit(&self, now: Instant, at: SystemTime) -> CircuitStatus {
        match self.breaker.state() {
            BreakerState::Closed { .. } => CircuitStatus::Closed,
            BreakerState::Open { until } => CircuitStatus::Open {
                until: at + until.saturating_duration_since(now),
            },
            BreakerState::HalfOpen => CircuitStatus::HalfOpen,
        }
    }

    /// Moves the failing-since clock with an attempt's result; says when the endpoint has
    /// failed for `disable_after` and must be disabled.
    fn track_failing(
        &mut self,
        succeeded: bool,
        disable_after: std::time::Duration,
        now: SystemTime,
    ) -> (FailingClock, Option<DisabledReason>) {
        match (succeeded, self.failing_since) {
            (true, None) => (FailingClock::Unchanged, None),
            (true, Some(_)) => {
                self.failing_since = None;
                (FailingClock::Cleared, None)
            }
            (false, None) => {
                self.failing_since = Some(now);
                (FailingClock::Started(now), None)
            }
            (false, Some(since)) => {
                let failing_for = now.duration_since(since).unwrap_or_default();
                let disable = (failing_for >= disable_after).then_some(DisabledReason::Failing);
                (FailingClock::Unchanged, disable)
            }
        }
    }
}

/// The protection state of every endpoint this process has delivered to.
pub struct Guards {
    config: ProtectionConfig,
    metrics: Arc<Metrics>,
    endpoints: Mutex<HashMap<EndpointId, Guard>>,
}

impl Guards {
    pub fn new(config: ProtectionConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            config,
            metrics,
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<EndpointId, Guard>> {
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn status_now(&self, endpoint: &Endpoint) -> EndpointStatus {
        let now = Instant::now();
        let mut guards = self.lock();
        let Some(guard) = guards.get_mut(&endpoint.id) else {
            return EndpointStatus::idle(&self.config.resolve_or_default(endpoint));
        };
        let consecutive_failures = match guard.breaker.state() {
            BreakerState::Closed { failures } => failures,
            BreakerState::Open { .. } | BreakerState::HalfOpen => {
                guard.policy.breaker.failure_threshold()
            }
        };
        EndpointStatus {
            circuit: guard.circuit(now, SystemTime::now()),
            consecutive_failures,
            in_flight: guard.in_flight,
            rate_used: guard.bucket.as_mut().map_or(0, |b| b.used_in_window(now)),
            rate_limit: guard.policy.rate_limit,
        }
    }
}

#[async_trait]
impl Protection for Guards {
    fn allowance(&self, now: Instant) -> Allowance {
        let per_endpoint = self
            .lock()
            .iter_mut()
            .map(|(id, g)| (id.clone(), g.allowance(now)))
            .collect();
        // An endpoint not yet known gets one delivery, which any policy admits (caps and
        // bursts are at least 1, a new breaker is closed); its own limits apply from then on.
        Allowance {
            per_endpoint,
            unknown: 1,
        }
    }

    fn next_unblock(&self, now: Instant) -> Option<Instant> {
        self.lock()
            .values_mut()
            .filter_map(|g| g.unblocks_at(now))
            .min()
    }

    fn admit(&self, endpoint: &Endpoint, now: Instant) -> Option<Admission> {
        let policy = self.config.resolve_or_default(endpoint);
        let mut guards = self.lock();
        let guard = guards
            .entry(endpoint.id.clone())
            .or_insert_with(|| Guard::new(policy, endpoint, now));
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
        Some(Admission { probe })
    }

    fn finish(
        &self,
        endpoint: &EndpointId,
        admission: Admission,
        ended: Option<Ended<'_>>,
        now: SystemTime,
    ) -> EndpointEffects {
        let instant = Instant::now();
        let mut guards = self.lock();
        let Some(guard) = guards.get_mut(endpoint) else {
            return EndpointEffects::default();
        };
        guard.in_flight = guard.in_flight.saturating_sub(1);
        let Some(Ended { record, delivered }) = ended else {
            // No outcome (shutdown): a probe is given back as a failure, and the rest of
            // the breaker's state ends with the process.
            if admission.probe {
                guard.breaker.record(false, true, instant);
            }
            return EndpointEffects::default();
        };
        let answered = !is_endpoint_failure(record);
        let circuit = match guard.breaker.record(answered, admission.probe, instant) {
            Some(BreakerChange::Opened { until }) => {
                let open_for = until.saturating_duration_since(instant);
                tracing::warn!(endpoint = %endpoint, open_for_ms = open_for.as_millis() as u64, "circuit opened");
                Some(CircuitChange::Opened {
                    until: now + open_for,
                })
            }
            Some(BreakerChange::Closed) => {
                tracing::info!(endpoint = %endpoint, "circuit closed");
                Some(CircuitChange::Closed)
            }
            None => None,
        };
        let (failing, disable) =
            guard.track_failing(delivered, self.config.auto_disable_after, now);
        EndpointEffects {
            circuit,
            failing,
            disable,
        }
    }

    fn in_flight(&self) -> u64 {
        self.lock().values().map(|g| u64::from(g.in_flight)).sum()
    }

    fn forget(&self, endpoint: &EndpointId) {
        self.lock().remove(endpoint);
    }

    async fn status(&self, endpoint: &Endpoint) -> Result<EndpointStatus, StateUnavailable> {
        Ok(self.status_now(endpoint))
    }

    async fn circuits(&self) -> Result<Vec<(EndpointId, CircuitStatus)>, StateUnavailable> {
        let (now, at) = (Instant::now(), SystemTime::now());
        let mut circuits: Vec<_> = self
            .lock()
            .iter()
            .map(|(id, g)| (id.clone(), g.circuit(now, at)))
            .collect();
        CircuitStatus::sort(&mut circuits);
        Ok(circuits)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{
        AttemptRecord, ProtectionOverride, RateLimitOverride, Secret, SigningSecrets,
    };
    use crate::policy::protection::test_config;

    fn guards() -> Guards {
        Guards::new(test_config(), Arc::new(Metrics::new()))
    }

    fn endpoint(protection: ProtectionOverride) -> Endpoint {
        Endpoint {
            tenant: crate::domain::TenantId::default(),
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

    fn answer(status: u16) -> AttemptRecord {
        AttemptRecord {
            started_at: SystemTime::now(),
            latency: Duration::ZERO,
            status_code: Some(status),
            transport_error: None,
            error: String::new(),
            response_excerpt: String::new(),
        }
    }

    /// Ends an attempt to `e` with an HTTP answer of `status`.
    fn end(g: &Guards, e: &Endpoint, a: Admission, status: u16, at: SystemTime) -> EndpointEffects {
        let record = answer(status);
        let ended = Ended {
            record: &record,
            delivered: (200..300).contains(&status),
        };
        g.finish(&e.id, a, Some(ended), at)
    }

    #[tokio::test(start_paused = true)]
    async fn caps_in_flight_and_spends_tokens() {
        let guards = guards();
        let e = endpoint(ProtectionOverride::default());
        let now = Instant::now();
        let a = guards.admit(&e, now).unwrap();
        let b = guards.admit(&e, now).unwrap();
        assert!(guards.admit(&e, now).is_none(), "two in flight at most");
        assert_eq!(guards.allowance(now).per_endpoint[&e.id], 0);
        assert_eq!(guards.in_flight(), 2);
        guards.finish(&e.id, a, None, SystemTime::now());
        assert_eq!(
            guards.allowance(now).per_endpoint[&e.id],
            1,
            "the third token"
        );
        let _c = guards.admit(&e, now).unwrap();
        guards.finish(&e.id, b, None, SystemTime::now());
        assert!(guards.admit(&e, now).is_none(), "no token left");
        assert_eq!(
            guards.next_unblock(now),
            Some(now + Duration::from_millis(100))
        );
        assert_eq!(guards.status(&e).await.unwrap().rate_used, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_open_the_breaker_and_a_probe_closes_it() {
        let guards = guards();
        let e = endpoint(ProtectionOverride {
            rate_limit: RateLimitOverride::Unlimited,
            ..Default::default()
        });
        let at = SystemTime::now();
        let first = guards.admit(&e, Instant::now()).unwrap();
        assert_eq!(end(&guards, &e, first, 503, at).circuit, None);
        let second = guards.admit(&e, Instant::now()).unwrap();
        assert_eq!(
            end(&guards, &e, second, 503, at).circuit,
            Some(CircuitChange::Opened {
                until: at + Duration::from_secs(5)
            })
        );
        assert!(matches!(
            guards.status(&e).await.unwrap().circuit,
            CircuitStatus::Open { .. }
        ));
        assert!(matches!(
            guards.circuits().await.unwrap().as_slice(),
            [(id, CircuitStatus::Open { .. })] if *id == e.id
        ));
        assert!(guards.admit(&e, Instant::now()).is_none());
        assert_eq!(
            guards.next_unblock(Instant::now()),
            Some(Instant::now() + Duration::from_secs(5))
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        let probe = guards.admit(&e, Instant::now()).unwrap();
        assert!(probe.probe);
        assert_eq!(
            guards.status(&e).await.unwrap().circuit,
            CircuitStatus::HalfOpen
        );
        assert!(
            guards.admit(&e, Instant::now()).is_none(),
            "one probe at a time"
        );
        assert_eq!(
            end(&guards, &e, probe, 200, at).circuit,
            Some(CircuitChange::Closed)
        );
        assert_eq!(
            guards.status(&e).await.unwrap().circuit,
            CircuitStatus::Closed
        );
        assert_eq!(
            guards.circuits().await.unwrap(),
            vec![(e.id.clone(), CircuitStatus::Closed)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_endpoint_failing_too_long_is_disabled_and_a_success_clears_the_clock() {
        let guards = guards();
        let e = endpoint(ProtectionOverride {
            rate_limit: RateLimitOverride::Unlimited,
            failure_threshold: Some(10_000),
            ..Default::default()
        });
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let attempt = |status, at| {
            let a = guards.admit(&e, Instant::now()).unwrap();
            end(&guards, &e, a, status, at)
        };
        assert_eq!(attempt(500, t0).failing, FailingClock::Started(t0));
        let later = attempt(500, t0 + Duration::from_secs(59));
        assert_eq!(
            (later.failing, later.disable),
            (FailingClock::Unchanged, None)
        );
        assert_eq!(
            attempt(500, t0 + Duration::from_secs(60)).disable,
            Some(DisabledReason::Failing)
        );
        assert_eq!(
            attempt(200, t0 + Duration::from_secs(61)).failing,
            FailingClock::Cleared
        );
        assert_eq!(
            attempt(404, t0 + Duration::from_secs(62)).failing,
            FailingClock::Started(t0 + Duration::from_secs(62)),
            "any answer but 2xx is a failed delivery"
        );
    }
}
