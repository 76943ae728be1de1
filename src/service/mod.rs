//! Every use case of Herald, transport-free: publishing (with backlog admission),
//! endpoints (ids, secrets, times, live status), redelivery (messages, attempts, retry,
//! replay, recovery), watching the status stream, analytics and health.
//!
//! [`Service`] is one cloneable handle. It takes domain commands (parsed by a transport)
//! and answers domain values or a [`ServiceError`]; it checks what depends on the
//! server's settings (payload limit, overrides against the defaults, analytics windows)
//! and nudges the scheduler whenever work may have become due. A transport (`grpc`
//! today) converts requests into commands and answers back, and holds no rule of its
//! own: a second transport calls the same handle and nothing else. What it does not own:
//! durable state (`storage`), attempts (`delivery`), protection state (`policy`).

mod access;
mod analytics;
mod endpoints;
mod error;
mod keys;
mod publish;
mod redelivery;
mod tenants;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use self::access::{AuthSettings, Caller, Principal, Tenancy, TenantScope};
pub use self::analytics::{Analytics, AnalyticsQuery};
pub use self::endpoints::{EndpointView, NewEndpoint};
pub use self::error::{FieldViolation, ServiceError, Violations};
pub use self::keys::NewApiKey;
pub use self::publish::Accepted;
pub use self::publish::Publish;
pub use self::redelivery::AttemptsQuery;
pub use self::tenants::TenantDeleted;
pub use self::watch::WatchQuery;
use crate::auth::Scope;
use crate::delivery::DeliveryConfig;
use crate::egress::EgressPolicy;
use crate::health::{Health, Report};
use crate::policy::protection::{Protection, ProtectionConfig};
use crate::policy::retry::RetryPolicy;
use crate::storage::Store;

/// Settings of the use cases.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Unfinished deliveries beyond which publishing is refused.
    pub max_queue_size: u64,
    /// Default grace period of a secret rotation.
    pub secret_rotation_grace: Duration,
    pub max_payload_bytes: usize,
    /// Idle time after which a status stream sends a heartbeat.
    pub stream_heartbeat: Duration,
    /// Endpoints one tenant may have.
    pub max_endpoints_per_tenant: u64,
    /// How long settled messages are kept (at most); a publish may ask for less.
    pub retention: Duration,
    /// Payload bytes the store may hold; publishes past it are refused.
    pub max_stored_bytes: u64,
    /// Status streams one credential may hold open at once.
    pub max_streams_per_credential: u32,
}

/// A page of a list, and where the next one starts (`None`: this is the last).
#[derive(Debug, Clone)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// Cuts items fetched with one too many back to `limit`; the cursor of the next page
    /// is the key of the last item kept.
    fn cut(mut items: Vec<T>, limit: usize, key: impl FnOnce(&T) -> C) -> Self {
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(key)
        } else {
            None
        };
        Self { items, next }
    }
}

/// The use cases, over the store, the protection and the scheduler's wake-up.
#[derive(Clone)]
pub struct Service(Arc<Inner>);

struct Inner {
    store: Arc<dyn Store>,
    auth: access::Authenticator,
    protection: Arc<dyn Protection>,
    /// Tells the scheduler that deliveries may be due now.
    wake: Arc<Notify>,
    health: Arc<Health>,
    /// Fires at shutdown: open watches end so they do not hold the server open.
    stopping: CancellationToken,
    config: ServiceConfig,
    /// The server's retry policy, against which endpoint overrides are checked.
    retry: RetryPolicy,
    /// The server's protection defaults, against which endpoint overrides are checked.
    protection_defaults: ProtectionConfig,
    /// Where endpoint URLs may point.
    egress: Arc<EgressPolicy>,
    /// The status streams open, per credential.
    watchers: Arc<watch::Watchers>,
}

/// What the service works with.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub protection: Arc<dyn Protection>,
    /// The scheduler's wake-up.
    pub wake: Arc<Notify>,
    pub health: Arc<Health>,
    /// Fires at shutdown.
    pub stopping: CancellationToken,
    /// The rules endpoint URLs are checked against.
    pub egress: Arc<EgressPolicy>,
    pub auth: AuthSettings,
}

impl Service {
    /// The use cases over `parts`, with the delivery core's policies to check endpoint
    /// overrides against.
    pub fn new(parts: Parts, config: ServiceConfig, delivery: &DeliveryConfig) -> Self {
        let Parts {
            store,
            protection,
            wake,
            health,
            stopping,
            egress,
            auth,
        } = parts;
        Self(Arc::new(Inner {
            store,
            auth: access::Authenticator::new(auth),
            protection,
            wake,
            health,
            stopping,
            watchers: Arc::new(watch::Watchers::new(config.max_streams_per_credential)),
            config,
            retry: delivery.retry,
            protection_defaults: delivery.protection,
            egress,
        }))
    }

    /// Work may be due now: the scheduler need not wait for its timer.
    fn work_queued(&self) {
        self.0.wake.notify_one();
    }

    /// The health report: each check, and the verdict.
    ///
    /// # Errors
    /// A caller without the `read` scope.
    pub async fn health(&self, caller: &Caller) -> Result<Report, ServiceError> {
        caller.require(Scope::Read)?;
        Ok(self.0.health.report().await)
    }
}
