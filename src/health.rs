//! The health report (healthy / degraded / unhealthy, with each check), shared by the
//! `GetHealth` RPC, the admin port's `/healthz`, and the gRPC health service, which a
//! watcher keeps NOT_SERVING while the report is unhealthy.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::delivery::Liveness;
use crate::domain::EndpointId;
use crate::policy::pace::WorkerUse;
use crate::policy::protection::{CircuitStatus, Protection};
use crate::storage::{Condition, Store};
use crate::telemetry::ErrorChain;

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overall {
    Healthy,
    /// Serving, with something to look at: a full disk, a high backlog, open circuits or
    /// saturated workers.
    Degraded,
    /// Not able to serve: storage failing or shutting down.
    Unhealthy,
}

impl Overall {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// One check of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub overall: Overall,
    pub checks: Vec<Check>,
    /// The sizing profile in use, why, and its sizes.
    pub profile: String,
}

/// What the report looks at.
pub struct Health {
    pub store: Arc<dyn Store>,
    pub protection: Arc<dyn Protection>,
    pub liveness: Arc<Liveness>,
    /// Attempts that may be in flight at once.
    pub max_workers: usize,
    /// Fired when shutdown starts.
    pub stopping: CancellationToken,
    /// The backlog limit; above 80 % of it the service is degraded.
    pub max_queue_size: u64,
    /// Whether calls need a credential; without, the service is degraded.
    pub authentication: bool,
    /// The sizing profile in use, as the report shows it.
    pub profile: String,
}

impl Health {
    /// Every endpoint's circuit, open ones first; none when the shared state cannot be
    /// read (the storage check reports that).
    pub async fn circuits(&self) -> Vec<(EndpointId, CircuitStatus)> {
        self.protection.circuits().await.unwrap_or_default()
    }

    /// The report. A full disk degrades the service rather than failing it: the embedded
    /// store is one instance, with no other to send traffic to, and it still reads and
    /// recovers by itself; a store that failed for good makes it unhealthy.
    pub async fn report(&self) -> Report {
        let condition = self.store.condition().borrow().clone();
        let storage = match condition.failure() {
            Some(why) => Err(ErrorChain(&**why).to_string()),
            None => self.store.probe().await.map_err(|e| e.to_string()),
        };
        let backlog = self.store.backlog();
        let circuits = self.circuits().await;
        let in_flight = self.protection.in_flight();
        let workers = self.liveness.workers();
        let workers_running = self.liveness.running();
        let unanswered = self.liveness.client_suspect();
        let open = circuits.iter().filter(|(_, c)| !c.is_closed()).count();
        let backlog_ok = backlog.saturating_mul(5) < self.max_queue_size.saturating_mul(4);
        let stopping = self.stopping.is_cancelled();
        let checks = vec![
            Check {
                name: "storage",
                ok: storage.is_ok(),
                detail: match &storage {
                    Ok(_) => "answering".to_owned(),
                    Err(e) => e.clone(),
                },
            },
            Check {
                name: "disk",
                ok: !matches!(condition, Condition::Full { .. }),
                detail: match &condition {
                    Condition::Full { dir } => format!(
                        "the disk of the data directory {} is full: publishes and changes are refused, deliveries wait, until space is freed",
                        dir.display()
                    ),
                    _ => "room to write".to_owned(),
                },
            },
            Check {
                name: "serving",
                ok: !stopping,
                detail: if stopping {
                    "shutting down"
                } else {
                    "accepting requests"
                }
                .to_owned(),
            },
            Check {
                name: "workers",
                ok: workers_running,
                detail: if workers_running {
                    format!("{in_flight} of {} attempts in flight", self.max_workers)
                } else {
                    "the delivery scheduler is not running".to_owned()
                },
            },
            Check {
                name: "worker_pool",
                ok: !workers.saturated() && !workers.slow_share_full(),
                detail: worker_pool(&workers),
            },
            Check {
                name: "http_client",
                ok: unanswered.is_none(),
                detail: match unanswered {
                    None => "endpoints answer".to_owned(),
                    Some(n) => format!(
                        "the last {n} attempts, to every endpoint, got no HTTP answer: check the network and the client's DNS and TLS"
                    ),
                },
            },
            Check {
                name: "backlog",
                ok: backlog_ok,
                detail: format!(
                    "{backlog} unfinished deliveries, limit {}",
                    self.max_queue_size
                ),
            },
            Check {
                name: "circuits",
                ok: open == 0,
                detail: format!("{open} endpoint circuits not closed"),
            },
            Check {
                name: "authentication",
                ok: self.authentication,
                detail: if self.authentication {
                    "every call needs a credential"
                } else {
                    "OFF (WEBHOOK_AUTH=off): anyone who reaches the gRPC port acts as an admin"
                }
                .to_owned(),
            },
        ];
        let overall = if storage.is_err() || stopping || !workers_running {
            Overall::Unhealthy
        } else if checks.iter().all(|c| c.ok) {
            Overall::Healthy
        } else {
            Overall::Degraded
        };
        Report {
            overall,
            checks,
            profile: self.profile.clone(),
        }
    }
}

/// How the workers are used, and why deliveries wait for them when they do.
fn worker_pool(w: &WorkerUse) -> String {
    let slow = "slow endpoints (no answer within WEBHOOK_SLOW_AFTER)";
    if w.saturated() && w.slow > 0 {
        format!(
            "{} of {} workers busy, {} of them held by {slow}: due deliveries wait for a worker",
            w.busy, w.workers, w.slow
        )
    } else if w.saturated() {
        format!(
            "{} of {} workers busy with endpoints answering in time: due deliveries wait for a worker (WEBHOOK_MAX_WORKERS)",
            w.busy, w.workers
        )
    } else if w.slow_share_full() {
        format!(
            "{slow} hold {} workers, their whole share (WEBHOOK_SLOW_WORKER_SHARE): their due deliveries wait; endpoints answering in time are served",
            w.slow
        )
    } else {
        format!(
            "{} of {} workers busy, {} held by slow endpoints (share {})",
            w.busy, w.workers, w.slow, w.slow_share
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::delivery::guard::Guards;
    use crate::delivery::http::WebhookClient;
    use crate::delivery::{DeliveryConfig, Dispatcher};
    use crate::egress::{EgressConfig, EgressPolicy};
    use crate::metrics::Metrics;
    use crate::policy::breaker::BreakerPolicy;
    use crate::policy::protection::ProtectionConfig;
    use crate::policy::retry::RetryPolicy;
    use crate::storage::{SqliteStore, StoreOptions};

    #[tokio::test]
    async fn a_stopped_scheduler_makes_the_service_unhealthy() {
        let delivery = DeliveryConfig {
            max_workers: 4,
            request_timeout: Duration::from_secs(1),
            retry: RetryPolicy::try_new(
                1,
                Duration::from_millis(1),
                Duration::from_millis(1),
                1.0,
                crate::domain::Jitter::Full,
            )
            .unwrap(),
            protection: ProtectionConfig {
                breaker: BreakerPolicy::try_new(5, Duration::from_secs(1)).unwrap(),
                rate_limit: None,
                rate_limit_window: Duration::from_secs(1),
                max_in_flight: 4,
                auto_disable_after: Duration::from_secs(60),
                bounds: crate::policy::protection::test_config().bounds,
                host: crate::policy::protection::HostCeiling {
                    max_in_flight: 4,
                    rate_limit: None,
                },
            },
            pace: crate::policy::pace::PaceConfig {
                slow_after: Duration::from_secs(1),
                slow_share: 50,
            },
        };
        let options = StoreOptions {
            idempotency_ttl: Duration::from_secs(60),
            status_retention: 100,
            status_buffer: 100,
            retention: Duration::from_secs(60),
            keyring: Arc::default(),
            readers: 1,
        };
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_memory(options).unwrap());
        let _ = rustls::crypto::ring::default_provider().install_default();
        let metrics = Arc::new(Metrics::new());
        let protection: Arc<dyn Protection> =
            Arc::new(Guards::new(delivery.protection, metrics.clone()));
        let dispatcher = Dispatcher::new(
            store.clone(),
            protection.clone(),
            WebhookClient::new(
                false,
                &EgressConfig::default(),
                Arc::new(EgressPolicy::new(&EgressConfig::default(), Vec::new())),
                &crate::profile::Kind::Server.sizing(),
            )
            .unwrap(),
            delivery.clone(),
            metrics,
        );
        let health = Health {
            store,
            protection,
            liveness: dispatcher.liveness(),
            max_workers: delivery.max_workers,
            stopping: CancellationToken::new(),
            max_queue_size: 100,
            authentication: true,
            profile: "server".to_owned(),
        };
        let workers = |r: &Report| r.checks.iter().find(|c| c.name == "workers").cloned();
        let before = health.report().await;
        assert_eq!(before.overall, Overall::Healthy);
        assert!(workers(&before).unwrap().ok);

        let stop = CancellationToken::new();
        stop.cancel();
        dispatcher.run(stop).await;
        let after = health.report().await;
        assert_eq!(after.overall, Overall::Unhealthy);
        let check = workers(&after).unwrap();
        assert!(
            !check.ok && check.detail.contains("not running"),
            "{check:?}"
        );
    }
}
