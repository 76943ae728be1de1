//! The in-process implementation of [`Protection`]: for every endpoint this process
//! delivers to, a circuit breaker, a token bucket and a cap on attempts in flight; for
//! every destination host, a cap on attempts in flight and a token bucket shared by all
//! the endpoints pointing at it. Shielding receivers (never more than their limit, no
//! hammering of a dead one, no host flooded by many endpoints at once) and shielding
//! everyone else (a slow endpoint holds at most its cap of workers).
//!
//! The scheduler asks [`Guards::allowance`] how many deliveries each endpoint, and each
//! host's endpoints together, may start before it claims, so blocked endpoints cost no
//! store work and no attempt; each claimed delivery is then admitted, and its end frees
//! its host's slot and feeds the breaker and the endpoint's failing-since clock. A host's
//! guard lives while an endpoint points at it, an attempt to it is in flight, or its
//! bucket is refilling. This is the one place where, for the embedded and memory stores,
//! circuit changes and the disabling of an endpoint that has failed too long are decided;
//! the store records them with the attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::domain::{Destination, DisabledReason, Endpoint, EndpointId};
use crate::metrics::Metrics;
use crate::policy::breaker::{Breaker, BreakerChange, BreakerState};
use crate::policy::limiter::TokenBucket;
use crate::policy::protection::{
    Admission, Allowance, CircuitChange, CircuitStatus, Ended, EndpointEffects, EndpointPolicy,
    EndpointStatus, FailingClock, HostCeiling, Protection, ProtectionConfig, SharedRoom,
    StateUnavailable, is_endpoint_failure,
};

struct Guard {
    policy: EndpointPolicy,
    /// The endpoint version the policy and destination were taken from.
    updated_at: SystemTime,
    /// The host the endpoint's URL points at.
    destination: Destination,
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
            destination: endpoint.destination(),
            breaker: Breaker::new(policy.breaker),
            bucket: policy.rate_limit.map(|l| TokenBucket::new(l, now)),
            in_flight: 0,
            failing_since: endpoint.failing_since,
        }
    }

    fn apply(&mut self, policy: EndpointPolicy, endpoint: &Endpoint, now: Instant) {
        self.updated_at = endpoint.updated_at;
        self.destination = endpoint.destination();
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

/// One destination host's ceiling, shared by every endpoint pointing at it.
struct HostGuard {
    in_flight: u32,
    bucket: Option<TokenBucket>,
}

impl HostGuard {
    fn new(ceiling: HostCeiling, now: Instant) -> Self {
        Self {
            in_flight: 0,
            bucket: ceiling.rate_limit.map(|l| TokenBucket::new(l, now)),
        }
    }

    /// Attempts the host may take now, from all its endpoints together.
    fn room(&mut self, ceiling: HostCeiling, now: Instant) -> usize {
        let room = ceiling.max_in_flight.saturating_sub(self.in_flight) as usize;
        let tokens = self
            .bucket
            .as_mut()
            .map_or(usize::MAX, |b| b.available(now) as usize);
        room.min(tokens)
    }

    fn start(&mut self, now: Instant) {
        self.in_flight += 1;
        if let Some(bucket) = self.bucket.as_mut() {
            bucket.try_take(now);
        }
    }

    /// When the host's rate ceiling lets an attempt through again, if it holds one back.
    fn unblocks_at(&mut self, now: Instant) -> Option<Instant> {
        let next = self.bucket.as_mut()?.tokens_at(1, now);
        (next > now).then_some(next)
    }

    /// Whether forgetting the guard would change nothing: no attempt in flight, and a
    /// full bucket (a new guard starts full).
    fn idle(&mut self, now: Instant) -> bool {
        self.in_flight == 0
            && self
                .bucket
                .as_mut()
                .is_none_or(|b| b.available(now) >= b.policy().burst())
    }
}

/// The guards of every endpoint this process has delivered to, and of their hosts.
#[derive(Default)]
struct State {
    endpoints: HashMap<EndpointId, Guard>,
    hosts: HashMap<Destination, HostGuard>,
}

/// The protection state of every endpoint this process has delivered to.
pub struct Guards {
    config: ProtectionConfig,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
}

impl Guards {
    pub fn new(config: ProtectionConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            config,
            metrics,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn status_now(&self, endpoint: &Endpoint) -> EndpointStatus {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(guard) = state.endpoints.get_mut(&endpoint.id) else {
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
        let mut state = self.lock();
        let State { endpoints, hosts } = &mut *state;
        let mut groups: HashMap<Destination, usize> = HashMap::new();
        let mut shared = SharedRoom::default();
        let mut per_endpoint = HashMap::with_capacity(endpoints.len());
        for (id, guard) in endpoints.iter_mut() {
            let group = match groups.get(&guard.destination) {
                Some(&group) => group,
                None => {
                    let room = hosts
                        .entry(guard.destination.clone())
                        .or_insert_with(|| HostGuard::new(self.config.host, now))
                        .room(self.config.host, now);
                    shared.room.push(room);
                    groups.insert(guard.destination.clone(), shared.room.len() - 1);
                    shared.room.len() - 1
                }
            };
            shared.group_of.insert(id.clone(), group);
            per_endpoint.insert(id.clone(), guard.allowance(now));
        }
        // Hosts no endpoint points at any more are forgotten once nothing of theirs is
        // left to count: memory stays bounded by the endpoints and the work in flight.
        hosts.retain(|d, h| groups.contains_key(d) || !h.idle(now));
        // An endpoint not yet known gets one delivery, which any policy admits (caps and
        // bursts are at least 1, a new breaker is closed); its own limits and its host's
        // apply from then on.
        Allowance {
            per_endpoint,
            unknown: 1,
            hosts: shared,
        }
    }

    fn next_unblock(&self, now: Instant) -> Option<Instant> {
        let mut state = self.lock();
        let State { endpoints, hosts } = &mut *state;
        let endpoints = endpoints.values_mut().filter_map(|g| g.unblocks_at(now));
        let hosts = hosts.values_mut().filter_map(|h| h.unblocks_at(now));
        endpoints.chain(hosts).min()
    }

    fn admit(&self, endpoint: &Endpoint, now: Instant) -> Option<Admission> {
        let policy = self.config.resolve_or_default(endpoint);
        let mut state = self.lock();
        let State { endpoints, hosts } = &mut *state;
        let guard = endpoints
            .entry(endpoint.id.clone())
            .or_insert_with(|| Guard::new(policy, endpoint, now));
        if guard.updated_at != endpoint.updated_at {
            guard.apply(policy, endpoint, now);
        }
        if guard.allowance(now) == 0 {
            return None;
        }
        let host = hosts
            .entry(guard.destination.clone())
            .or_insert_with(|| HostGuard::new(self.config.host, now));
        if host.room(self.config.host, now) == 0 {
            self.metrics.host_ceiling_waits(1);
            return None;
        }
        let probe = guard.breaker.try_start(now)?;
        host.start(now);
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
        Some(Admission {
            probe,
            destination: guard.destination.clone(),
        })
    }

    fn finish(
        &self,
        endpoint: &EndpointId,
        admission: &Admission,
        ended: Option<Ended<'_>>,
        now: SystemTime,
    ) -> EndpointEffects {
        let instant = Instant::now();
        let mut state = self.lock();
        if let Some(host) = state.hosts.get_mut(&admission.destination) {
            host.in_flight = host.in_flight.saturating_sub(1);
        }
        let Some(guard) = state.endpoints.get_mut(endpoint) else {
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
        self.lock()
            .endpoints
            .values()
            .map(|g| u64::from(g.in_flight))
            .sum()
    }

    fn forget(&self, endpoint: &EndpointId) {
        self.lock().endpoints.remove(endpoint);
    }

    async fn status(&self, endpoint: &Endpoint) -> Result<EndpointStatus, StateUnavailable> {
        Ok(self.status_now(endpoint))
    }

    async fn circuits(&self) -> Result<Vec<(EndpointId, CircuitStatus)>, StateUnavailable> {
        let (now, at) = (Instant::now(), SystemTime::now());
        let mut circuits: Vec<_> = self
            .lock()
            .endpoints
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
        endpoint_at("e", "http://127.0.0.1/", protection)
    }

    fn endpoint_at(id: &str, url: &str, protection: ProtectionOverride) -> Endpoint {
        Endpoint {
            tenant: crate::domain::TenantId::default(),
            id: EndpointId::parse(id).unwrap(),
            url: url::Url::parse(url).unwrap(),
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
        g.finish(&e.id, &a, Some(ended), at)
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
        guards.finish(&e.id, &a, None, SystemTime::now());
        assert_eq!(
            guards.allowance(now).per_endpoint[&e.id],
            1,
            "the third token"
        );
        let _c = guards.admit(&e, now).unwrap();
        guards.finish(&e.id, &b, None, SystemTime::now());
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

    /// No rate limit of its own and room for 100 in flight: only its host holds it back.
    fn unbounded() -> ProtectionOverride {
        ProtectionOverride {
            rate_limit: RateLimitOverride::Unlimited,
            max_in_flight: Some(100),
            ..Default::default()
        }
    }

    /// Room of the host group `e` belongs to.
    fn host_room(a: &Allowance, e: &Endpoint) -> usize {
        a.hosts.room[a.hosts.group_of[&e.id]]
    }

    #[tokio::test(start_paused = true)]
    async fn endpoints_on_one_host_share_its_room() {
        let guards = guards();
        let now = Instant::now();
        let a = endpoint_at("a", "http://sink.example/a", unbounded());
        let b = endpoint_at("b", "http://SINK.example:80/b", unbounded());
        let other = endpoint_at("c", "http://sink.example:8080/", unbounded());
        let first = guards.admit(&a, now).unwrap();
        let _second = guards.admit(&a, now).unwrap();
        let _third = guards.admit(&b, now).unwrap();
        assert!(
            guards.admit(&b, now).is_none(),
            "three in flight to the host"
        );
        assert!(guards.admit(&a, now).is_none());
        let allowance = guards.allowance(now);
        assert_eq!(
            allowance.hosts.group_of[&a.id],
            allowance.hosts.group_of[&b.id]
        );
        assert_eq!(host_room(&allowance, &a), 0);
        assert_eq!(allowance.per_endpoint[&b.id], 99, "the endpoint's own room");
        assert!(
            guards.admit(&other, now).is_some(),
            "another port is another host"
        );
        assert_eq!(host_room(&guards.allowance(now), &other), 2);
        guards.finish(&a.id, &first, None, SystemTime::now());
        assert_eq!(host_room(&guards.allowance(now), &b), 1);
        assert!(guards.admit(&b, now).is_some(), "a slot came back");
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_gives_back_the_slot_of_the_host_it_went_to() {
        let guards = guards();
        let now = Instant::now();
        let before = endpoint_at("e", "http://old.example/", unbounded());
        let neighbour = endpoint_at("n", "http://old.example/n", unbounded());
        let old_attempt = guards.admit(&before, now).unwrap();
        assert_eq!(old_attempt.destination.as_str(), "old.example:80");
        let mut after = before.clone();
        after.url = url::Url::parse("https://new.example/").unwrap();
        after.updated_at += Duration::from_secs(1);
        let new_attempt = guards.admit(&after, now).unwrap();
        assert_eq!(new_attempt.destination.as_str(), "new.example:443");
        let _n1 = guards.admit(&neighbour, now).unwrap();
        let _n2 = guards.admit(&neighbour, now).unwrap();
        assert!(
            guards.admit(&neighbour, now).is_none(),
            "the old attempt still holds a slot of the old host"
        );
        guards.finish(&after.id, &old_attempt, None, SystemTime::now());
        assert!(guards.admit(&neighbour, now).is_some());
        assert_eq!(
            host_room(&guards.allowance(now), &after),
            2,
            "one in flight to the new host"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_host_rate_ceiling_spans_its_endpoints() {
        let mut config = test_config();
        config.host.max_in_flight = 1_000;
        let guards = Guards::new(config, Arc::new(Metrics::new()));
        let now = Instant::now();
        let endpoints: Vec<_> = (0..10)
            .map(|i| {
                endpoint_at(
                    &format!("e{i}"),
                    &format!("http://sink.example/{i}"),
                    unbounded(),
                )
            })
            .collect();
        for e in &endpoints {
            for _ in 0..2 {
                guards.admit(e, now).unwrap();
            }
        }
        assert!(
            guards.admit(&endpoints[0], now).is_none(),
            "20 requests a second to the host, whichever endpoint"
        );
        assert_eq!(host_room(&guards.allowance(now), &endpoints[3]), 0);
        assert_eq!(
            guards.next_unblock(now),
            Some(now + Duration::from_millis(50))
        );
        tokio::time::advance(Duration::from_millis(50)).await;
        assert!(guards.admit(&endpoints[9], Instant::now()).is_some());
        assert!(guards.admit(&endpoints[5], Instant::now()).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_hosts_no_endpoint_points_at_are_forgotten() {
        let guards = guards();
        let e = endpoint_at("e", "http://gone.example/", unbounded());
        let attempt = guards.admit(&e, Instant::now()).unwrap();
        guards.forget(&e.id);
        guards.allowance(Instant::now());
        assert_eq!(
            guards.lock().hosts.len(),
            1,
            "an attempt is still in flight"
        );
        guards.finish(&e.id, &attempt, None, SystemTime::now());
        guards.allowance(Instant::now());
        assert_eq!(guards.lock().hosts.len(), 1, "its bucket is refilling");
        tokio::time::advance(Duration::from_secs(1)).await;
        guards.allowance(Instant::now());
        assert!(guards.lock().hosts.is_empty());
    }
}
