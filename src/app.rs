//! Wires the store, the dispatcher and the gRPC server together; the only place where
//! long-lived tasks are spawned.
//!
//! [`Application::build`] shares out the open-file limit it finds (descriptors kept for
//! deliveries and the store, the rest for gRPC connections), opens the store, picks the
//! endpoint protection that goes with it (in process, or shared through Redis) and binds
//! the listeners (so tests bind `127.0.0.1:0` and read the real port); both ports accept
//! through a gate of connection slots. [`Application::run_until`] serves until the
//! given future resolves, then follows the shutdown protocol: health NOT_SERVING, stop
//! accepting, end status streams, stop claiming deliveries, let attempts in flight finish
//! and be recorded, close the store (its writer thread or its readers). Every phase
//! shares one deadline, the grace period from the moment shutdown starts; every
//! long-lived task is tracked and ended by then. A store that fails for good (the
//! embedded store's writer gone) starts the same shutdown with a short deadline, since
//! nothing more can be recorded, and ends it with [`AppError::StoreFailed`]: the process
//! exits with [`EXIT_STORE_FAILED`] for an orchestrator to restart it.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_web::GrpcWebLayer;

use crate::admin::dashboard::Dashboard;
use crate::admin::{self, AdminState};
use crate::analytics::minute_of;
use crate::auth::IssuedToken;
use crate::auth::jwt::{JwtSetupError, JwtVerifier};
use crate::config::{Config, StorageConfig};
use crate::connections::{
    self, ADMIN_MAX_CONNECTIONS, Budget, BudgetError, ConnectionsConfig, FirstRequest, Gate,
    Listener, Port, Protocol, Reserve,
};
use crate::delivery::Dispatcher;
use crate::delivery::guard::Guards;
use crate::delivery::http::{ClientError, WebhookClient};
use crate::egress::EgressPolicy;
use crate::grpc::layer::{CatchPanicLayer, GrpcMetricsLayer, RequestIdLayer};
use crate::grpc::pb::webhook_service_server::WebhookServiceServer;
use crate::grpc::web::CorsOrigins;
use crate::grpc::{WebhookApi, pb};
use crate::health::{Health, Overall};
use crate::metrics::Metrics;
use crate::policy::protection::Protection;
use crate::service::{AuthSettings, Parts, Service, ServiceError};
use crate::storage::redis::RedisOpenError;
use crate::storage::{Condition, Failure, RedisStore, SqliteStore, Store, sqlite::OpenError};
use crate::telemetry::ErrorChain;
use crate::tls::{TlsAcceptor, TlsError};

/// How often expired idempotency keys are forgotten.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(600);
/// Messages one retention batch deletes at most: a store transition of a few
/// milliseconds, which is all a publish may find queued before it.
const SWEEP_BATCH: usize = 16;
/// How often the gRPC health status is checked against the health report.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// Endpoint records sealed again under a new master key per store write.
const RESEAL_BATCH: usize = 16;
/// Pause between two batches of re-encryption, so user requests keep the store's attention.
const RESEAL_PAUSE: Duration = Duration::from_millis(20);
/// How often records written under an older key by another instance are looked for.
const RESEAL_INTERVAL: Duration = Duration::from_secs(30);
/// The name `grpc.health.v1` knows the API by.
const SERVICE_NAME: &str = "herald.v1.WebhookService";
/// The health service a liveness probe asks: SERVING while the gRPC server answers,
/// whatever the store does (a restart would not bring a store back sooner).
pub const LIVENESS_SERVICE: &str = "liveness";
/// The longest shutdown after the store failed: attempts in flight cannot be recorded
/// (they are made again after the restart), so only answers already on their way wait.
const STORE_FAILED_GRACE: Duration = Duration::from_secs(1);
/// The exit status of a process whose store failed for good (`EX_IOERR` in sysexits).
pub const EXIT_STORE_FAILED: u8 = 74;

/// Why the application could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot open the store")]
    Store(#[from] OpenError),
    #[error("cannot open the Redis store")]
    Redis(#[from] RedisOpenError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the settings do not fit the open-file limit")]
    Budget(#[from] BudgetError),
    #[error("cannot bind the gRPC address {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the reflection service")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed")]
    Serve(#[from] tonic::transport::Error),
    #[error("cannot set up TLS (WEBHOOK_TLS_CERT, WEBHOOK_TLS_KEY, WEBHOOK_TLS_CLIENT_CA)")]
    Tls(#[from] TlsError),
    #[error("cannot set up JWT validation (WEBHOOK_JWT_*)")]
    Jwt(#[from] JwtSetupError),
    #[error("cannot create the first admin key")]
    FirstKey(#[source] ServiceError),
    #[error("cannot write the first admin key to {path}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Exit with [`EXIT_STORE_FAILED`] and let an orchestrator restart the process.
    #[error("the store failed and cannot go on; restart Herald")]
    StoreFailed(#[source] Failure),
}

/// A built, not yet running, Herald.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    admin_listener: TcpListener,
    admin_addr: SocketAddr,
    admin: Arc<AdminState>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    store: Arc<dyn Store>,
    dispatcher: Dispatcher,
    api: WebhookApi,
    storage: String,
    /// Fires when shutdown starts: stops claiming, ends status streams.
    stopping: CancellationToken,
    /// How long analytics rollups are kept.
    analytics_retention: Duration,
    /// How often expired messages are looked for.
    retention_sweep_interval: Duration,
    /// TLS for the gRPC port; `None`: h2c.
    tls: Option<TlsAcceptor>,
    shutdown_grace: Duration,
    /// gRPC connections open at once, as the open-file budget allows.
    max_connections: usize,
    /// The gRPC port's connection settings (its cap is `max_connections`).
    connections: ConnectionsConfig,
    /// The origins whose pages may call over gRPC-Web.
    cors: CorsOrigins,
    /// How long after start the periodic jobs first run (the profile's).
    periodic_jobs_after: Duration,
}

impl Application {
    /// Shares out the open-file limit, binds the gRPC and admin addresses (webhooks may
    /// never reach them), then opens the store.
    ///
    /// # Errors
    /// When the settings need more descriptors than the open-file limit allows, the
    /// store cannot open (locked, unreadable), the HTTP client cannot be built, or the
    /// address cannot be bound.
    pub async fn build(config: Config) -> Result<Self, AppError> {
        Self::assemble(config, None).await
    }

    /// Builds Herald over `store` instead of the store `config.storage` names: a backend
    /// of the [`Store`] trait kept outside Herald, or a wrapper around one of Herald's
    /// (to observe it, or to see how Herald bears its faults). Endpoint protection is kept
    /// in process, as for the embedded store.
    ///
    /// # Errors
    /// As [`Application::build`], but for opening the store.
    pub async fn build_with_store(config: Config, store: Arc<dyn Store>) -> Result<Self, AppError> {
        Self::assemble(config, Some(store)).await
    }

    async fn assemble(config: Config, given: Option<Arc<dyn Store>>) -> Result<Self, AppError> {
        // Several applications may share a process (tests); the first install wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let budget = budget(&config)?;
        // What the configuration names is read before anything is opened.
        let tls = config.tls.clone().map(TlsAcceptor::load).transpose()?;
        let jwt = match config.auth.jwt.clone() {
            Some(settings) => Some(Arc::new(JwtVerifier::new(settings).await?)),
            None => None,
        };
        let (listener, local_addr) = bind(config.grpc_addr).await?;
        let (admin_listener, admin_addr) = bind(config.admin_addr).await?;
        // Herald's own sockets are never a webhook's destination.
        let egress = Arc::new(EgressPolicy::new(
            &config.egress,
            vec![local_addr, admin_addr],
        ));
        let client = WebhookClient::new(
            config.legacy_signature_headers,
            &config.egress,
            egress.clone(),
            &config.profile.sizing,
        )?;
        let metrics = Arc::new(Metrics::new());
        let protection = config.delivery.protection;
        let local =
            || -> Arc<dyn Protection> { Arc::new(Guards::new(protection, metrics.clone())) };
        let (store, protection, storage): (Arc<dyn Store>, Arc<dyn Protection>, String) =
            match given {
                Some(store) => (store, local(), "given by the embedding program".to_owned()),
                None => match &config.storage {
                    StorageConfig::Embedded { data_dir } => (
                        Arc::new(SqliteStore::open_dir(data_dir, config.store.clone())?),
                        local(),
                        format!("embedded ({})", data_dir.display()),
                    ),
                    StorageConfig::Memory => {
                        tracing::warn!("storage is in memory: nothing survives a restart");
                        (
                            Arc::new(SqliteStore::open_memory(config.store.clone())?),
                            local(),
                            "memory".to_owned(),
                        )
                    }
                    StorageConfig::Redis(redis) => {
                        let store =
                            RedisStore::open(redis, config.store.clone(), protection).await?;
                        let shared = Arc::new(store.protection());
                        (
                            Arc::new(store),
                            shared,
                            format!(
                                "redis (prefix {}, instance {})",
                                redis.prefix, redis.instance_id
                            ),
                        )
                    }
                },
            };
        let dispatcher = Dispatcher::new(
            store.clone(),
            protection.clone(),
            client,
            config.delivery.clone(),
            metrics.clone(),
        );
        let stopping = CancellationToken::new();
        let health = Arc::new(Health {
            store: store.clone(),
            protection: protection.clone(),
            liveness: dispatcher.liveness(),
            max_workers: config.delivery.max_workers,
            stopping: stopping.clone(),
            max_queue_size: config.service.max_queue_size,
            authentication: config.auth.enabled,
            profile: config.profile.to_string(),
        });
        let service = Service::new(
            Parts {
                store: store.clone(),
                protection,
                wake: dispatcher.waker(),
                health: health.clone(),
                stopping: stopping.child_token(),
                egress,
                auth: AuthSettings {
                    enabled: config.auth.enabled,
                    admin_key: config.auth.admin_key,
                    jwt,
                },
            },
            config.service.clone(),
            &config.delivery,
        );
        warn_about_access(&config);
        warn_about_secrets(&config);
        tracing::info!(
            profile = config.profile.kind.name(),
            workers = config.delivery.max_workers,
            "sizing: {}",
            config.profile
        );
        count_records_to_reseal(store.as_ref(), &metrics).await;
        if let Some(token) = service
            .first_admin_key()
            .await
            .map_err(AppError::FirstKey)?
        {
            announce_first_key(&token, &config.storage)?;
        }
        let api = WebhookApi::new(service, metrics.clone());
        let admin = Arc::new(AdminState {
            metrics: config.enable_metrics.then(|| metrics.clone()),
            health: health.clone(),
            dashboard: Dashboard {
                grpc_port: local_addr.port(),
                tls: tls.is_some(),
            },
        });
        Ok(Self {
            listener,
            local_addr,
            admin_listener,
            admin_addr,
            admin,
            health,
            metrics,
            store,
            dispatcher,
            api,
            storage,
            stopping,
            analytics_retention: config.analytics_retention,
            retention_sweep_interval: config.retention_sweep_interval,
            tls,
            shutdown_grace: config.shutdown_grace,
            max_connections: budget.max_connections,
            connections: config.connections,
            cors: config.cors,
            periodic_jobs_after: config.profile.sizing.periodic_jobs_after,
        })
    }

    /// The bound gRPC address (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound admin HTTP address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully.
    ///
    /// # Errors
    /// When reflection cannot be built or the server fails.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<WebhookServiceServer<WebhookApi>>()
            .await;
        health
            .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
            .await;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let stopping = self.stopping;
        let tasks = TaskTracker::new();
        let trigger = stopping.clone();
        let condition = self.store.condition();
        let failed = store_failure(condition.clone());
        tasks.spawn(async move {
            tokio::select! {
                () = shutdown => trigger.cancel(),
                () = failed => trigger.cancel(),
                () = trigger.cancelled() => {}
            }
        });

        let delivery = tasks.spawn(self.dispatcher.run(stopping.child_token()));
        tasks.spawn(follow_health(
            self.health.clone(),
            health.clone(),
            stopping.child_token(),
        ));
        // The periodic jobs; the serverless profile starts them once a cold start has served.
        let periodic: [Pin<Box<dyn Future<Output = ()> + Send>>; 3] = [
            Box::pin(housekeeping(
                self.store.clone(),
                self.analytics_retention,
                stopping.child_token(),
            )),
            Box::pin(sweep_expired(
                self.store.clone(),
                self.metrics.clone(),
                self.retention_sweep_interval,
                stopping.child_token(),
            )),
            Box::pin(reseal_secrets(
                self.store.clone(),
                self.metrics.clone(),
                stopping.child_token(),
            )),
        ];
        for job in periodic {
            tasks.spawn(once_after(
                self.periodic_jobs_after,
                stopping.child_token(),
                job,
            ));
        }

        let drain = {
            let stopping = stopping.clone();
            let health = health.clone();
            async move {
                stopping.cancelled().await;
                tracing::info!(
                    "shutdown started: health NOT_SERVING, no new connections, finishing attempts in flight"
                );
                health
                    .set_not_serving::<WebhookServiceServer<WebhookApi>>()
                    .await;
                health
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
            }
        };
        let tls_enabled = self.tls.is_some();
        match &self.cors {
            CorsOrigins::Any => tracing::warn!(
                "WEBHOOK_CORS_ORIGINS=*: web pages of every origin may call the gRPC port (authentication is off)"
            ),
            CorsOrigins::Listed(origins) => {
                tracing::info!(
                    ?origins,
                    "web pages of these origins may call over gRPC-Web"
                );
            }
            CorsOrigins::None => {}
        }
        let router = Server::builder()
            .max_concurrent_streams(self.connections.max_streams_per_connection)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .max_connection_age(self.connections.max_age)
            .max_connection_age_grace(self.connections.max_age_grace)
            // gRPC-Web from browsers arrives over HTTP/1.1 too.
            .accept_http1(true)
            .layer(self.cors.layer())
            .layer(GrpcWebLayer::new())
            .layer(RequestIdLayer)
            .layer(GrpcMetricsLayer(self.metrics.clone()))
            .layer(CatchPanicLayer)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(WebhookServiceServer::new(self.api));
        let gate = |port, max, protocol| {
            Gate::new(
                port,
                max,
                self.connections.first_request_timeout,
                protocol,
                self.metrics.clone(),
            )
        };
        let grpc = Listener::new(
            self.listener,
            gate(Port::Grpc, self.max_connections, Protocol::Grpc),
        )
        .incoming();
        let server: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
            match self.tls {
                Some(tls) => Box::pin(
                    router.serve_with_incoming_shutdown(
                        tls.incoming(grpc)
                            .map(|tls| Ok::<_, std::convert::Infallible>(FirstRequest::new(tls))),
                        drain,
                    ),
                ),
                None => Box::pin(router.serve_with_incoming_shutdown(
                    grpc.map(|tcp| Ok::<_, std::convert::Infallible>(FirstRequest::new(tcp))),
                    drain,
                )),
            };

        let admin = tasks.spawn({
            let stopping = stopping.clone();
            let listener = Listener::new(
                self.admin_listener,
                gate(Port::Admin, ADMIN_MAX_CONNECTIONS, Protocol::Http1),
            );
            axum::serve(listener, admin::router(self.admin))
                .with_graceful_shutdown(async move { stopping.cancelled().await })
                .into_future()
        });
        tasks.close();

        tracing::info!(grpc = %self.local_addr, admin = %self.admin_addr, storage = %self.storage, tls = tls_enabled, "herald serving");
        // One deadline for every phase of the shutdown, set when it starts; a short one
        // when the store failed.
        let shutdown_grace = self.shutdown_grace;
        let grace = || match condition.borrow().failure() {
            Some(_) => shutdown_grace.min(STORE_FAILED_GRACE),
            None => shutdown_grace,
        };
        let deadline = async {
            stopping.cancelled().await;
            Instant::now() + grace()
        };
        let mut server = server;
        let (served, deadline) = tokio::select! {
            served = &mut server => {
                // The server ended by itself (it failed, or it drained before the timer).
                stopping.cancel();
                (served, Instant::now() + grace())
            }
            deadline = deadline => {
                // Draining: open connections may hold the server until the deadline.
                match tokio::time::timeout_at(deadline, &mut server).await {
                    Ok(served) => (served, deadline),
                    Err(_) => {
                        tracing::warn!(grace_secs = grace().as_secs(), "connections still open after the grace period; closing them");
                        (Ok(()), deadline)
                    }
                }
            }
        };
        if tokio::time::timeout_at(deadline, delivery).await.is_err() {
            tracing::warn!(
                grace_secs = grace().as_secs(),
                "attempts still in flight after the grace period; they will be retried at the next start"
            );
        }
        match tokio::time::timeout_at(deadline, admin).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %ErrorChain(&e), "the admin server failed"),
            Err(_) => tracing::warn!("the admin server did not stop within the grace period"),
            Ok(_) => {}
        }
        if tokio::time::timeout_at(deadline, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not stop within the grace period");
        }
        if tokio::time::timeout_at(deadline, self.store.close())
            .await
            .is_err()
        {
            tracing::warn!("the store did not close within the grace period");
        }
        tracing::info!("herald stopped");
        if let Some(why) = condition.borrow().failure() {
            return Err(AppError::StoreFailed(why.clone()));
        }
        served.map_err(AppError::from)
    }
}

/// Resolves once the store has failed for good, having said why; never for a store that
/// cannot fail so.
async fn store_failure(mut condition: watch::Receiver<Condition>) {
    let failure = match condition.wait_for(|c| c.failure().is_some()).await {
        Ok(failed) => failed.failure().cloned(),
        Err(_) => None,
    };
    match failure {
        Some(why) => tracing::error!(
            error = %ErrorChain(&*why),
            "the store failed and cannot go on: health NOT_SERVING, shutting down to be restarted"
        ),
        None => std::future::pending().await,
    }
}

/// Keeps `grpc.health.v1` in step with the health report: NOT_SERVING while unhealthy
/// (storage failing), SERVING again once it recovers. Until `stop`.
async fn follow_health(
    health: Arc<Health>,
    reporter: tonic_health::server::HealthReporter,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(HEALTH_INTERVAL);
    let mut serving = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let healthy = health.report().await.overall != Overall::Unhealthy;
        if healthy == serving || stop.is_cancelled() {
            continue;
        }
        serving = healthy;
        let status = if healthy {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        tracing::warn!(serving, "health changed");
        reporter.set_service_status("", status).await;
        reporter.set_service_status(SERVICE_NAME, status).await;
    }
}

/// Runs `job` once `delay` has passed, unless `stop` fires first.
async fn once_after(delay: Duration, stop: CancellationToken, job: impl Future<Output = ()>) {
    tokio::select! {
        () = tokio::time::sleep(delay) => job.await,
        () = stop.cancelled() => {}
    }
}

/// Every `interval`, until `stop`: deletes settled messages past their retention, a small
/// batch per store transition so publishes and deliveries queue behind one batch at most,
/// and after each batch a pause as long as it took, so that the sweep never holds the
/// store more than half the time.
async fn sweep_expired(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let mut messages = 0;
        loop {
            let started = Instant::now();
            match store.sweep(SystemTime::now(), SWEEP_BATCH).await {
                Ok(swept) => {
                    metrics.swept(&swept, started.elapsed());
                    messages += swept.messages;
                    if !swept.more {
                        break;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(started.elapsed()) => {}
                        () = stop.cancelled() => return,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "cannot delete expired messages");
                    break;
                }
            }
        }
        if messages > 0 {
            tracing::debug!(messages, "expired messages deleted");
        }
    }
}

/// Now and then, until `stop`: forgets expired idempotency keys and drops analytics
/// rollups older than `analytics_retention`.
async fn housekeeping(
    store: Arc<dyn Store>,
    analytics_retention: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let now = SystemTime::now();
        match store.purge_expired_keys(now).await {
            Ok(purged) => tracing::debug!(purged, "expired idempotency keys purged"),
            Err(e) => {
                tracing::warn!(error = %ErrorChain(&e), "cannot purge expired idempotency keys")
            }
        }
        match store
            .prune_rollups(minute_of(now - analytics_retention))
            .await
        {
            Ok(pruned) => tracing::debug!(pruned, "old analytics rollups pruned"),
            Err(e) => tracing::warn!(error = %ErrorChain(&e), "cannot prune analytics rollups"),
        }
    }
}

/// Shows, in the gauge and the log, how many endpoint records are to be sealed again.
async fn count_records_to_reseal(store: &dyn Store, metrics: &Metrics) {
    match store.reseal_endpoints(0).await {
        Ok(count) => {
            metrics.set_secrets_pending_reseal(count.remaining);
            if count.remaining > 0 {
                tracing::info!(
                    records = count.remaining,
                    "endpoint records are not encrypted under the current master key; re-encrypting them in the background"
                );
            }
        }
        Err(e) => {
            tracing::warn!(error = %ErrorChain(&e), "cannot count endpoint records to re-encrypt")
        }
    }
}

/// Until `stop`: seals endpoint records again under the current master key, a batch at a
/// time, keeping the gauge current; once none is left, looks again now and then for
/// records another instance wrote under an older key.
async fn reseal_secrets(store: Arc<dyn Store>, metrics: Arc<Metrics>, stop: CancellationToken) {
    let mut resealed = 0;
    loop {
        let pause = match store.reseal_endpoints(RESEAL_BATCH).await {
            Ok(batch) => {
                metrics.set_secrets_pending_reseal(batch.remaining);
                resealed += batch.resealed;
                if batch.remaining > 0 {
                    RESEAL_PAUSE
                } else {
                    if resealed > 0 {
                        tracing::info!(
                            records = resealed,
                            "every endpoint record is encrypted under the current master key"
                        );
                        resealed = 0;
                    }
                    RESEAL_INTERVAL
                }
            }
            Err(e) => {
                tracing::warn!(error = %ErrorChain(&e), "cannot re-encrypt endpoint records");
                RESEAL_INTERVAL
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Says when endpoint secrets are stored in clear: no master key, and a store on disk or
/// in Redis.
fn warn_about_secrets(config: &Config) {
    if config.store.keyring.current().is_none() && config.storage != StorageConfig::Memory {
        tracing::warn!(
            "endpoint signing secrets and custom header values are stored in clear: set WEBHOOK_MASTER_KEY (32 random bytes, base64) to encrypt them"
        );
    }
}

/// Says loudly when calls need no credential, and when credentials travel in clear.
fn warn_about_access(config: &Config) {
    if !config.auth.enabled {
        tracing::warn!(
            "AUTHENTICATION IS OFF (WEBHOOK_AUTH=off): anyone who reaches the gRPC port can read, change and delete everything; use this for local experiments only"
        );
    } else if config.tls.is_none() && !config.grpc_addr.ip().is_loopback() {
        tracing::warn!(
            grpc = %config.grpc_addr,
            "gRPC is served without TLS on a non-loopback address: credentials travel in clear unless a sidecar or mesh encrypts the traffic (set WEBHOOK_TLS_CERT and WEBHOOK_TLS_KEY)"
        );
    }
    let egress = &config.egress;
    if !egress.allow.is_empty() {
        let allowed = egress.allow.iter().map(ToString::to_string);
        tracing::warn!(
            allowed = %allowed.collect::<Vec<_>>().join(","),
            "webhooks may reach these non-public addresses (WEBHOOK_EGRESS_ALLOW_CIDRS)"
        );
    }
    if let Some(proxy) = &egress.proxy {
        tracing::warn!(
            proxy = %proxy.origin().ascii_serialization(),
            "webhooks go through a proxy, which resolves names and decides what they may reach (WEBHOOK_EGRESS_PROXY)"
        );
    }
}

/// Shows the generated first admin key once, on stderr, and on the embedded store also
/// writes it to `admin.key` (mode 0600) in the data directory.
fn announce_first_key(token: &IssuedToken, storage: &StorageConfig) -> Result<(), AppError> {
    let mut saved = String::new();
    if let StorageConfig::Embedded { data_dir } = storage {
        let path = data_dir.join("admin.key");
        write_secret(&path, token.expose()).map_err(|source| AppError::KeyFile {
            path: path.clone(),
            source,
        })?;
        saved = format!(" It is also in {} (mode 0600).", path.display());
    }
    eprintln!(
        "\nNo API key existed, so an admin key was created. It is shown only now:\n\n    {}\n\nSend it as `authorization: Bearer <key>`; create narrower keys with CreateApiKey.{saved}\n",
        token.expose()
    );
    tracing::warn!("an admin key was generated and printed to stderr once");
    Ok(())
}

/// Writes `secret` to a new file only its owner may read.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{secret}")?;
    file.sync_all()
}

/// The open-file limit shared out, before anything is opened: descriptors kept for the
/// delivery workers, the store, the admin port and the process, the rest (or what the
/// settings ask, if it fits) for gRPC connections.
fn budget(config: &Config) -> Result<Budget, BudgetError> {
    let store = match config.storage {
        StorageConfig::Redis(_) => RedisStore::MAX_DESCRIPTORS,
        StorageConfig::Embedded { .. } | StorageConfig::Memory => SqliteStore::MAX_DESCRIPTORS,
    };
    let reserve = Reserve::new(config.delivery.max_workers, store);
    let budget = Budget::plan(
        connections::open_file_limit(),
        reserve,
        config.connections.max_connections,
    )?;
    tracing::info!(
        open_file_limit = budget.limit,
        reserved = reserve.total(),
        max_connections = budget.max_connections,
        max_streams_per_connection = config.connections.max_streams_per_connection,
        "descriptors shared out: some kept for deliveries, the store and the admin port, the rest for gRPC connections"
    );
    Ok(budget)
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), AppError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| AppError::Bind { addr, source })?;
    Ok((listener, local))
}
