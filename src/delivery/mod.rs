//! The delivery core: the scheduler that claims due deliveries and the workers that
//! attempt them.
//!
//! Layout: the scheduler (this file) leases due work from the store in batches, bounded by
//! `max_workers` concurrent attempts and by each endpoint's room (`guard`: `breaker`,
//! `limiter`, in-flight cap), and sleeps until the next due time or a wake-up; `http`
//! sends one signed attempt and classifies it; `retry` schedules the next one; `signer`
//! computes Standard Webhooks signatures. Nothing here knows of gRPC: callers
//! hand work over through the store and nudge the scheduler with [`Dispatcher::waker`].

pub mod breaker;
pub mod guard;
pub mod http;
pub mod limiter;
pub mod retry;
pub mod signer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::breaker::BreakerChange;
use self::guard::{Guards, ProtectionConfig, Ticket};
use self::http::{Verdict, WebhookClient, WebhookRequest};
use self::retry::RetryPolicy;
use crate::domain::{DisabledReason, EndpointId, StatusEvent, StatusKind};
use crate::metrics::{AttemptStatus, Metrics};
use crate::storage::{Claim, ClaimRequest, Outcome, Store, Transition};
use crate::telemetry::{self, ErrorChain};

/// The most deliveries leased in one claim.
const CLAIM_BATCH: usize = 256;
/// The longest the scheduler sleeps without looking at the store.
const MAX_IDLE: Duration = Duration::from_secs(5);
/// Pause after a failed claim, so a broken store does not spin the scheduler.
const STORE_RETRY: Duration = Duration::from_millis(500);

/// Settings of the delivery core.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Attempts in flight at once, across all endpoints.
    pub max_workers: usize,
    /// Limit on one HTTP attempt, from connect to the last byte read.
    pub request_timeout: Duration,
    /// The server-wide retry schedule; endpoints may override parts of it.
    pub retry: RetryPolicy,
    /// Breakers, rate limits, in-flight caps and auto-disable; endpoints may override.
    pub protection: ProtectionConfig,
}

impl DeliveryConfig {
    /// How long a claimed delivery stays reserved: well past the request timeout, so
    /// a live worker always finishes before its lease can expire.
    pub fn lease(&self) -> Duration {
        self.request_timeout * 2 + Duration::from_secs(10)
    }
}

/// What the health report needs to know of the delivery core.
#[derive(Debug, Default)]
pub struct Liveness {
    /// The scheduler ended (stopped, or panicked).
    ended: AtomicBool,
    /// Attempts in a row, over all endpoints, that got no HTTP answer at all.
    unanswered: AtomicU32,
}

/// Attempts in a row without any HTTP answer after which the HTTP client itself (or the
/// network under it) is suspect rather than the endpoints.
const UNANSWERED_SUSPECT: u32 = 50;

impl Liveness {
    /// False once the scheduler ended, by a stop or a panic.
    pub fn running(&self) -> bool {
        !self.ended.load(Ordering::Relaxed)
    }

    /// Attempts in a row that got no HTTP answer, when that many point at the client.
    pub fn client_suspect(&self) -> Option<u32> {
        let n = self.unanswered.load(Ordering::Relaxed);
        (n >= UNANSWERED_SUSPECT).then_some(n)
    }
}

/// Marks the scheduler ended when dropped, also by a panic.
struct RunningGuard(Arc<Liveness>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.ended.store(true, Ordering::Relaxed);
    }
}

/// Runs deliveries until stopped.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    client: WebhookClient,
    config: DeliveryConfig,
    guards: Arc<Guards>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    liveness: Arc<Liveness>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        client: WebhookClient,
        config: DeliveryConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let guards = Arc::new(Guards::new(
            config.protection,
            metrics.clone(),
            store.shares_protection(),
        ));
        Self {
            store,
            client,
            config,
            guards,
            metrics,
            wake: Arc::new(Notify::new()),
            liveness: Arc::default(),
        }
    }

    /// Whether the scheduler runs and the HTTP client gets answers, for the health report.
    pub fn liveness(&self) -> Arc<Liveness> {
        self.liveness.clone()
    }

    /// Notify it when new work may be due now (a publish, a retry by hand, an endpoint
    /// enabled), so the scheduler does not wait for its next timer.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// The live protection state of every endpoint, for the API to show.
    pub fn guards(&self) -> Arc<Guards> {
        self.guards.clone()
    }

    /// Claims and attempts deliveries until `stop` fires, then waits for the attempts in
    /// flight to finish and be recorded. The caller bounds that wait.
    pub async fn run(self, stop: CancellationToken) {
        let _running = RunningGuard(self.liveness.clone());
        let this = Arc::new(self);
        let workers = Arc::new(Semaphore::new(this.config.max_workers));
        let attempts = TaskTracker::new();
        loop {
            let first = tokio::select! {
                permit = workers.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                () = stop.cancelled() => break,
            };
            let mut permits = vec![first];
            while permits.len() < CLAIM_BATCH {
                match workers.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let allowance = this.guards.allowance(Instant::now());
            let request = ClaimRequest {
                now: SystemTime::now(),
                lease: this.config.lease(),
                limit: permits.len(),
                per_endpoint: allowance.per_endpoint,
                unknown: allowance.unknown,
            };
            let batch = match this.store.claim_due(request).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!(error = %ErrorChain(&e), "cannot claim due deliveries");
                    drop(permits);
                    tokio::select! { () = tokio::time::sleep(STORE_RETRY) => {}, () = stop.cancelled() => break }
                    continue;
                }
            };
            for endpoint in &batch.rate_limited {
                this.metrics.rate_limit_hit(endpoint.as_str());
            }
            let mut started = 0;
            let mut refused = Vec::new();
            for claim in batch.claims {
                // Room was reserved before the claim; only a change of the endpoint's
                // limits in between can refuse it now.
                let Some(ticket) = this.guards.admit(&claim.endpoint, Instant::now()) else {
                    refused.push(claim.lease);
                    continue;
                };
                let permit = permits.pop().expect("no more claims than permits");
                let this = this.clone();
                started += 1;
                let (workers, max) = (workers.clone(), this.config.max_workers);
                attempts.spawn(async move {
                    this.attempt(claim, ticket).await;
                    drop(permit);
                    this.metrics
                        .set_worker_utilization(max - workers.available_permits(), max);
                });
            }
            this.metrics.set_worker_utilization(
                this.config.max_workers - workers.available_permits() - permits.len(),
                this.config.max_workers,
            );
            if !refused.is_empty()
                && let Err(e) = this.store.release(refused, SystemTime::now()).await
            {
                tracing::error!(error = %ErrorChain(&e), "cannot release refused deliveries; they are due again when their lease expires");
            }
            drop(permits);
            if started == 0 && !this.idle(batch.next_due, &stop).await {
                break;
            }
        }
        tracing::info!(
            in_flight = attempts.len(),
            "delivery stopped claiming; finishing attempts in flight"
        );
        attempts.close();
        attempts.wait().await;
    }

    /// Waits until more work is due (from the store's view, or an endpoint's breaker or
    /// rate limit opening up), a wake-up, or `stop`; false on `stop`.
    async fn idle(&self, next_due: Option<SystemTime>, stop: &CancellationToken) -> bool {
        let now = Instant::now();
        let due = next_due.map(|at| now + at.duration_since(SystemTime::now()).unwrap_or_default());
        let unblock = self.guards.next_unblock(now);
        let until = [due, unblock]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + MAX_IDLE);
        let wait = until
            .saturating_duration_since(now)
            .clamp(Duration::from_millis(1), MAX_IDLE);
        let remote = self.store.remote_work();
        let remote_work = async {
            match &remote {
                Some(work) => work.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = self.wake.notified() => true,
            () = remote_work => true,
            () = stop.cancelled() => false,
        }
    }

    /// Puts a circuit change on the status stream.
    async fn record_circuit_change(&self, endpoint: &EndpointId, change: BreakerChange) {
        let now = SystemTime::now();
        let event = match change {
            BreakerChange::Opened { until } => StatusEvent {
                next_attempt_at: Some(now + until.saturating_duration_since(Instant::now())),
                ..StatusEvent::new(StatusKind::CircuitOpened, now)
            },
            BreakerChange::Closed => StatusEvent::new(StatusKind::CircuitClosed, now),
        };
        let event = StatusEvent {
            endpoint_id: Some(endpoint.clone()),
            ..event
        };
        if let Err(e) = self.store.record_event(event).await {
            tracing::warn!(error = %ErrorChain(&e), endpoint = %endpoint, "cannot record a circuit change");
        }
    }

    async fn attempt(&self, claim: Claim, ticket: Ticket) {
        let Claim {
            lease,
            message,
            endpoint,
            attempt_number,
            attempts_in_round,
        } = claim;
        let span = tracing::info_span!(
            "webhook.deliver",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            endpoint.id = %endpoint.id,
            message.id = %message.id,
            event_type = %message.event_type.as_str(),
            attempt = attempt_number,
            http.response.status_code = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        let trace = telemetry::continue_trace(&span, message.trace.as_ref());
        let result = tracing::Instrument::instrument(
            self.client.send(WebhookRequest {
                url: &endpoint.url,
                message_id: message.id.as_str(),
                event_type: message.event_type.as_str(),
                content_type: &message.content_type,
                body: message.payload.clone(),
                secrets: endpoint.secrets.valid_at(SystemTime::now()).collect(),
                headers: &endpoint.headers,
                trace: trace.as_ref(),
                timeout: self.config.request_timeout,
            }),
            span.clone(),
        )
        .await;
        if let Some(code) = result.record.status_code {
            span.record("http.response.status_code", code);
        }
        span.record("duration_ms", result.record.latency.as_secs_f64() * 1000.0);
        if !result.record.error.is_empty() {
            span.record("error", result.record.error.as_str());
            span.record("otel.status_code", "ERROR");
        }
        if result.record.transport_error.is_some() {
            self.liveness.unanswered.fetch_add(1, Ordering::Relaxed);
        } else {
            self.liveness.unanswered.store(0, Ordering::Relaxed);
        }
        if let Some(change) = ticket.finish(&result.record) {
            self.record_circuit_change(&endpoint.id, change).await;
        }
        let transition = match result.verdict {
            Verdict::Delivered => Transition::Succeeded,
            Verdict::Gone => Transition::FailedAndDisable(DisabledReason::Gone),
            Verdict::Retryable { retry_after } => {
                // Overrides were validated against this default when stored.
                let policy = self
                    .config
                    .retry
                    .with_override(&endpoint.retry)
                    .unwrap_or(self.config.retry);
                match policy.next_delay(attempts_in_round + 1, retry_after, &mut rand::rng()) {
                    Some(delay) => Transition::RetryAt(SystemTime::now() + delay),
                    None => Transition::Failed,
                }
            }
        };
        tracing::debug!(
            message = %message.id, endpoint = %endpoint.id, attempt = attempt_number,
            status = result.record.status_code, error = %result.record.error, ?transition, "attempt finished"
        );
        let status = match transition {
            Transition::Succeeded => AttemptStatus::Succeeded,
            Transition::RetryAt(_) => AttemptStatus::Failed,
            Transition::Failed | Transition::FailedAndDisable(_) => AttemptStatus::Exhausted,
        };
        self.metrics.attempt(
            status,
            message.event_type.as_str(),
            attempt_number,
            result.record.latency,
        );
        let outcome = Outcome {
            event_type: message.event_type.clone(),
            record: result.record,
            transition,
            disable_after_failing: self.config.protection.auto_disable_after,
        };
        if let Err(e) = self.store.complete(lease, outcome, SystemTime::now()).await {
            // The lease will expire and the delivery be attempted again: at least once.
            tracing::error!(error = %ErrorChain(&e), message = %message.id, endpoint = %endpoint.id, "cannot record attempt");
        }
        // A retry may now be due before the scheduler's timer, and the endpoint has room.
        self.wake.notify_one();
    }
}
