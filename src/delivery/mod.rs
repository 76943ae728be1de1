//! The delivery core: the scheduler that claims due deliveries and the workers that
//! attempt them.
//!
//! Layout: `scheduler` (this file) leases due work from the store in batches, bounded by
//! `max_workers` concurrent attempts, and sleeps until the next due time or a wake-up;
//! `http` sends one signed attempt and classifies it; `retry` schedules the next one;
//! `signer` computes Standard Webhooks signatures. Nothing here knows of gRPC: callers
//! hand work over through the store and nudge the scheduler with [`Dispatcher::waker`].

pub mod breaker;
pub mod http;
pub mod limiter;
pub mod retry;
pub mod signer;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::http::{Verdict, WebhookClient, WebhookRequest};
use self::retry::RetryPolicy;
use crate::domain::DisabledReason;
use crate::storage::{Claim, Store, Transition};

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
}

impl DeliveryConfig {
    /// How long a claimed delivery stays reserved: well past the request timeout, so
    /// a live worker always finishes before its lease can expire.
    pub fn lease(&self) -> Duration {
        self.request_timeout * 2 + Duration::from_secs(10)
    }
}

/// Runs deliveries until stopped.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    client: WebhookClient,
    config: DeliveryConfig,
    wake: Arc<Notify>,
}

impl Dispatcher {
    pub fn new(store: Arc<dyn Store>, client: WebhookClient, config: DeliveryConfig) -> Self {
        Self {
            store,
            client,
            config,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Notify it when new work may be due now (a publish, a retry by hand, an endpoint
    /// enabled), so the scheduler does not wait for its next timer.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Claims and attempts deliveries until `stop` fires, then waits for the attempts in
    /// flight to finish and be recorded. The caller bounds that wait.
    pub async fn run(self, stop: CancellationToken) {
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
            let claims = match this
                .store
                .claim_due(SystemTime::now(), permits.len(), this.config.lease())
                .await
            {
                Ok(claims) => claims,
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim due deliveries");
                    drop(permits);
                    tokio::select! { () = tokio::time::sleep(STORE_RETRY) => {}, () = stop.cancelled() => break }
                    continue;
                }
            };
            if claims.is_empty() {
                drop(permits);
                if !this.idle(&stop).await {
                    break;
                }
                continue;
            }
            for (claim, permit) in claims.into_iter().zip(permits) {
                let this = this.clone();
                attempts.spawn(async move {
                    this.attempt(claim).await;
                    drop(permit);
                });
            }
        }
        tracing::info!(
            in_flight = attempts.len(),
            "delivery stopped claiming; finishing attempts in flight"
        );
        attempts.close();
        attempts.wait().await;
    }

    /// Waits until the next delivery is due, a wake-up, or `stop`; false on `stop`.
    async fn idle(&self, stop: &CancellationToken) -> bool {
        let wait = match self.store.next_due().await {
            Ok(Some(at)) => at
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .clamp(Duration::from_millis(1), MAX_IDLE),
            Ok(None) => MAX_IDLE,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the next due time");
                STORE_RETRY
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = self.wake.notified() => true,
            () = stop.cancelled() => false,
        }
    }

    async fn attempt(&self, claim: Claim) {
        let Claim {
            lease,
            message,
            endpoint,
            attempt_number,
            attempts_in_round,
        } = claim;
        let result = self
            .client
            .send(WebhookRequest {
                url: &endpoint.url,
                message_id: message.id.as_str(),
                event_type: message.event_type.as_str(),
                content_type: &message.content_type,
                body: message.payload.clone(),
                secrets: endpoint.secrets.valid_at(SystemTime::now()).collect(),
                headers: &endpoint.headers,
                timeout: self.config.request_timeout,
            })
            .await;
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
        if let Err(e) = self
            .store
            .complete(lease, result.record, transition, SystemTime::now())
            .await
        {
            // The lease will expire and the delivery be attempted again: at least once.
            tracing::error!(error = %e, message = %message.id, endpoint = %endpoint.id, "cannot record attempt");
        }
        if matches!(transition, Transition::RetryAt(_)) {
            self.wake.notify_one();
        }
    }
}
