//! The health report (healthy / degraded / unhealthy, with each check), shared by the
//! `GetHealth` RPC, the admin port's `/healthz`, and the gRPC health service, which a
//! watcher keeps NOT_SERVING while the report is unhealthy.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::delivery::guard::Guards;
use crate::storage::Store;

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overall {
    Healthy,
    /// Serving, with something to look at: a high backlog or open circuits.
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
}

/// What the report looks at.
pub struct Health {
    pub store: Arc<dyn Store>,
    pub guards: Arc<Guards>,
    /// Fired when shutdown starts.
    pub stopping: CancellationToken,
    /// The backlog limit; above 80 % of it the service is degraded.
    pub max_queue_size: u64,
}

impl Health {
    /// Every endpoint's circuit state, open ones first: from the store when it keeps the
    /// breakers for all processes, else from this process's guards.
    pub async fn circuits(&self) -> Vec<(String, i64)> {
        match self.store.circuits().await {
            Ok(Some(circuits)) => circuits,
            Ok(None) | Err(_) => self.guards.snapshot().1,
        }
    }

    pub async fn report(&self) -> Report {
        let storage = self.store.pending(None, None).await;
        let backlog = self.store.backlog();
        let circuits = self.circuits().await;
        let open = circuits.iter().filter(|(_, state)| *state != 0).count();
        let backlog_ok = backlog.saturating_mul(5) < self.max_queue_size.saturating_mul(4);
        let stopping = self.stopping.is_cancelled();
        let checks = vec![
            Check {
                name: "storage",
                ok: storage.is_ok(),
                detail: match &storage {
                    Ok(_) => "answering".to_owned(),
                    Err(e) => e.to_string(),
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
        ];
        let overall = if storage.is_err() || stopping {
            Overall::Unhealthy
        } else if checks.iter().all(|c| c.ok) {
            Overall::Healthy
        } else {
            Overall::Degraded
        };
        Report { overall, checks }
    }
}
