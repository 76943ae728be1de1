//! The delivery core: the scheduler that claims due deliveries and the workers that
//! attempt them.
//!
//! Layout: the scheduler (this file) leases due work from the store in batches, bounded by
//! `max_workers` concurrent attempts, by each endpoint's room and by the room of each
//! destination host, shared by its endpoints (asked of the [`Protection`]: `guard` in
//! process, or the Redis store's shared one), and by the share of the workers that
//! endpoints not answering in time may hold (its own [`Pacing`], the same on every
//! store), and sleeps until the next due time or a wake-up; `http` sends one signed
//! attempt and classifies it; the retry policy (`policy::retry`) schedules the next one;
//! `signer` computes Standard Webhooks signatures. Nothing here knows of gRPC: callers hand work over through the
//! store and nudge the scheduler with [`Dispatcher::waker`].

pub mod guard;
pub mod http;
pub mod signer;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::http::{Verdict, WebhookClient, WebhookRequest};
use crate::analytics::FailureKind;
use crate::domain::{DisabledReason, EndpointId, TransportError};
use crate::metrics::{AttemptStatus, Metrics};
use crate::policy::pace::{End, PaceConfig, Pacing, WorkerUse};
use crate::policy::protection::{
    Admission, Ended, EndpointEffects, Protection, ProtectionConfig, is_endpoint_failure,
};
use crate::policy::retry::RetryPolicy;
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
    /// What endpoints that do not answer in time may hold of the workers.
    pub pace: PaceConfig,
}

impl DeliveryConfig {
    /// How long a claimed delivery stays reserved: well past the request timeout, so
    /// a live worker always finishes before its lease can expire.
    pub fn lease(&self) -> Duration {
        self.request_timeout * 2 + Duration::from_secs(10)
    }
}

/// What the health report needs to know of the delivery core: whether the scheduler
/// runs, whether the HTTP client gets answers, and how the workers are used.
#[derive(Debug)]
pub struct Liveness {
    /// The scheduler ended (stopped, or panicked).
    ended: AtomicBool,
    /// Attempts in a row, over all endpoints, that got no HTTP answer at all.
    unanswered: AtomicU32,
    /// The attempts in flight and how each endpoint answers: the scheduler's, read by
    /// the health report.
    pacing: Mutex<Pacing>,
}

/// Attempts in a row without any HTTP answer after which the HTTP client itself (or the
/// network under it) is suspect rather than the endpoints.
const UNANSWERED_SUSPECT: u32 = 50;

impl Liveness {
    fn new(pacing: Pacing) -> Self {
        Self {
            ended: AtomicBool::new(false),
            unanswered: AtomicU32::new(0),
            pacing: Mutex::new(pacing),
        }
    }

    fn pacing(&self) -> MutexGuard<'_, Pacing> {
        self.pacing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How the workers are used now.
    pub fn workers(&self) -> WorkerUse {
        self.pacing().usage(Instant::now())
    }

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

/// One admitted attempt's hold on its endpoint's protection and on the workers' pacing;
/// when dropped without an outcome (shutdown), both are told the attempt never ended.
struct Ticket {
    protection: Arc<dyn Protection>,
    liveness: Arc<Liveness>,
    endpoint: EndpointId,
    admission: Admission,
    started: Instant,
    open: bool,
}

impl Ticket {
    fn new(
        protection: Arc<dyn Protection>,
        liveness: Arc<Liveness>,
        endpoint: EndpointId,
        admission: Admission,
    ) -> Self {
        let started = Instant::now();
        liveness.pacing().start(&endpoint, started);
        Self {
            protection,
            liveness,
            endpoint,
            admission,
            started,
            open: true,
        }
    }

    /// Ends the attempt; returns what it means for the endpoint.
    fn finish(mut self, ended: Ended<'_>, now: SystemTime) -> EndpointEffects {
        self.open = false;
        let end = if ended.record.transport_error == Some(TransportError::Timeout) {
            End::TimedOut
        } else {
            End::Finished
        };
        self.liveness
            .pacing()
            .end(&self.endpoint, self.started, end, Instant::now());
        self.protection
            .finish(&self.endpoint, &self.admission, Some(ended), now)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.open {
            self.liveness.pacing().end(
                &self.endpoint,
                self.started,
                End::Abandoned,
                Instant::now(),
            );
            self.protection
                .finish(&self.endpoint, &self.admission, None, SystemTime::now());
        }
    }
}

/// Runs deliveries until stopped.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    client: WebhookClient,
    config: DeliveryConfig,
    protection: Arc<dyn Protection>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    liveness: Arc<Liveness>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        protection: Arc<dyn Protection>,
        client: WebhookClient,
        config: DeliveryConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let pacing = Pacing::new(config.pace, config.max_workers);
        Self {
            store,
            client,
            config,
            protection,
            metrics,
            wake: Arc::new(Notify::new()),
            liveness: Arc::new(Liveness::new(pacing)),
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

    /// Claims and attempts deliveries until `stop` fires, then waits for the attempts in
    /// flight to finish and be recorded. The caller bounds that wait.
    pub async fn run(self, stop: CancellationToken) {
        let _running = RunningGuard(self.liveness.clone());
        let this = Arc::new(self);
        let workers = Arc::new(Semaphore::new(this.config.max_workers));
        let attempts = TaskTracker::new();
        // Whether the last claim failed: a failing store is logged once, not every pause.
        let mut claims_failing = false;
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
            let allowance = this.protection.allowance(Instant::now());
            let request = ClaimRequest {
                now: SystemTime::now(),
                lease: this.config.lease(),
                limit: permits.len(),
                per_endpoint: allowance.per_endpoint,
                unknown: allowance.unknown,
                hosts: allowance.hosts,
                pace: this.liveness.pacing().room(Instant::now()),
            };
            let batch = match this.store.claim_due(request).await {
                Ok(batch) => {
                    if std::mem::take(&mut claims_failing) {
                        tracing::info!("claiming due deliveries again");
                    }
                    batch
                }
                Err(e) => {
                    if !std::mem::replace(&mut claims_failing, true) {
                        tracing::error!(error = %ErrorChain(&e), retry_ms = STORE_RETRY.as_millis(), "cannot claim due deliveries; trying again until the store answers");
                    }
                    drop(permits);
                    tokio::select! { () = tokio::time::sleep(STORE_RETRY) => {}, () = stop.cancelled() => break }
                    continue;
                }
            };
            for endpoint in &batch.rate_limited {
                this.metrics.rate_limit_hit(endpoint.as_str());
            }
            this.metrics.host_ceiling_waits(batch.host_waits);
            let mut started = 0;
            let mut refused = Vec::new();
            for claim in batch.claims {
                // Room was reserved before the claim; only a change of the endpoint's
                // limits in between, or an endpoint the protection did not know yet on a
                // full host, can refuse it now.
                let Some(admission) = this.protection.admit(&claim.endpoint, Instant::now()) else {
                    refused.push(claim.lease);
                    continue;
                };
                let ticket = Ticket::new(
                    this.protection.clone(),
                    this.liveness.clone(),
                    claim.endpoint.id.clone(),
                    admission,
                );
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
        let unblock = self.protection.next_unblock(now);
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
        match result.record.transport_error {
            // A refusal of the egress policy says nothing of the client or the network.
            Some(TransportError::Blocked) => {}
            Some(_) => {
                self.liveness.unanswered.fetch_add(1, Ordering::Relaxed);
            }
            None => self.liveness.unanswered.store(0, Ordering::Relaxed),
        }
        let delivered = matches!(result.verdict, Verdict::Delivered);
        let mut effects = ticket.finish(
            Ended {
                record: &result.record,
                delivered,
            },
            SystemTime::now(),
        );
        let transition = match result.verdict {
            Verdict::Delivered => Transition::Succeeded,
            Verdict::Gone => {
                effects.disable = Some(DisabledReason::Gone);
                Transition::Failed
            }
            Verdict::Retryable { retry_after } => {
                // Overrides were validated against this default when stored, and are
                // clamped to today's bounds, which may have been lowered since.
                let bounded = self.config.protection.bounds.clamp_retry(&endpoint.retry);
                let policy = self
                    .config
                    .retry
                    .with_override(&bounded)
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
            Transition::Failed => AttemptStatus::Exhausted,
        };
        self.metrics.attempt(
            status,
            message.event_type.as_str(),
            attempt_number,
            result.record.latency,
            FailureKind::of(&result.record),
        );
        let outcome = Outcome {
            event_type: message.event_type.clone(),
            endpoint_failure: is_endpoint_failure(&result.record),
            record: result.record,
            transition,
            endpoint: effects,
        };
        if let Err(e) = self.store.complete(lease, outcome, SystemTime::now()).await {
            // The lease will expire and the delivery be attempted again: at least once.
            tracing::error!(error = %ErrorChain(&e), message = %message.id, endpoint = %endpoint.id, "cannot record attempt");
        }
        // A retry may now be due before the scheduler's timer, and the endpoint has room.
        self.wake.notify_one();
    }
}
