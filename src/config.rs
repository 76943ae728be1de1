//! Configuration: every setting is a CLI flag and an environment variable, with defaults
//! that work on a laptop. Parsed and validated in full before any port opens; an invalid
//! setting is an error naming both its flag and its variable.
//!
//! [`ServeArgs`] are the settings of `herald serve` (the binary's command line parses
//! them); [`ServeArgs::into_config`] turns them into one struct per subsystem
//! ([`Config`]). Tests start from [`ServeArgs::defaults`], which reads no environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, FromArgMatches, ValueEnum};

use crate::auth::SecretHash;
use crate::auth::jwt::{JwtKeys, JwtSettings};
use crate::connections::ConnectionsConfig;
use crate::delivery::DeliveryConfig;
use crate::domain::{Jitter, ProtectionOverride, RateLimitOverride, RetryOverride};
use crate::egress::{Allowed, EgressConfig};
use crate::grpc::response::MAX_PAYLOAD_BYTES;
use crate::grpc::web::CorsOrigins;
use crate::policy::bounds::{OutOfBounds, OverrideBounds};
use crate::policy::breaker::{BreakerPolicy, BreakerPolicyError};
use crate::policy::limiter::{RateLimit, RateLimitError};
use crate::policy::pace::PaceConfig;
use crate::policy::protection::{HostCeiling, ProtectionConfig, ProtectionError};
use crate::policy::retry::{PolicyError, RetryPolicy};
use crate::profile::{Profile, ProfileSetting};
use crate::service::ServiceConfig;
use crate::storage::StoreOptions;
use crate::storage::redis::RedisConfig;
use crate::storage::sealing::{Keyring, MasterKey};
use crate::telemetry::{LogFormat, TracingConfig};
use crate::tls::TlsFiles;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StorageType {
    /// Redis when REDIS_URL is set, the embedded store otherwise.
    Auto,
    /// Durable SQLite store in the data directory.
    Embedded,
    /// In memory: nothing survives a restart.
    Memory,
    /// Shared Redis (several instances).
    Redis,
}

/// Accepts whole seconds (`30`) or a unit (`250ms`, `5m`, `2h 30m`).
fn duration(value: &str) -> Result<Duration, String> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(value)
        .map_err(|e| format!("{e} (use seconds, or a unit such as 250ms, 30s, 5m, 24h)"))
}

/// Whether calls need a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Every call but health and reflection needs a credential.
    On,
    /// Anyone who reaches the port is an admin: for local experiments only.
    Off,
}

/// The admin port's address unless WEBHOOK_ADMIN_ADDR says otherwise; `herald health`
/// asks the same one.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:9464";

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the gRPC server (h2c).
    #[arg(long, env = "WEBHOOK_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,

    /// Address of the admin HTTP port (/metrics, /livez, /readyz, /healthz).
    #[arg(long, env = "WEBHOOK_ADMIN_ADDR", default_value = DEFAULT_ADMIN_ADDR)]
    pub admin_addr: SocketAddr,

    /// Serve Prometheus metrics on the admin port.
    #[arg(long, env = "ENABLE_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub enable_metrics: bool,

    /// Where deliveries are stored.
    #[arg(long, env = "WEBHOOK_STORAGE_TYPE", value_enum, default_value = "auto")]
    pub storage_type: StorageType,

    /// Directory of the embedded store.
    #[arg(long, env = "WEBHOOK_DATA_DIR", default_value = "./herald-data")]
    pub data_dir: PathBuf,

    /// Redis URL; with storage type auto, its presence selects Redis.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Redis password, when the URL carries none.
    #[arg(long, env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,

    /// Redis logical database, when the URL names none.
    #[arg(long, env = "REDIS_DB")]
    pub redis_db: Option<i64>,

    /// Prefix of every Redis key (wrapped in a hash tag: `{herald}:…`), so deployments
    /// and tests can share one Redis and a Redis Cluster keeps them in one slot.
    #[arg(long, env = "WEBHOOK_REDIS_PREFIX", default_value = "herald")]
    pub redis_prefix: String,

    /// Run on a Redis whose maxmemory-policy may evict keys (and so lose messages).
    #[arg(long, env = "WEBHOOK_REDIS_ALLOW_EVICTION", default_value_t = false, action = clap::ArgAction::Set)]
    pub redis_allow_eviction: bool,

    /// This instance's name among those sharing Redis (its consumer name); generated
    /// when unset.
    #[arg(long, env = "WEBHOOK_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Delivery attempts in flight at once [default: 256, or 32 in the serverless
    /// profile].
    #[arg(long, env = "WEBHOOK_MAX_WORKERS", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_workers: Option<u32>,

    /// Sizing: `server`, `serverless` (small pools, shorter idle timeouts, periodic jobs
    /// after a cold start has served), or `auto`: serverless when AWS_LAMBDA_FUNCTION_NAME,
    /// FUNCTION_APP, FUNCTIONS_WORKER_RUNTIME, FUNCTION_NAME or K_SERVICE is set.
    #[arg(long, env = "WEBHOOK_PROFILE", value_enum, default_value = "auto")]
    pub profile: ProfileSetting,

    /// An endpoint is slow while its last attempt took this long or more (or timed out),
    /// or one of its attempts has been in flight this long; slow endpoints share at most
    /// WEBHOOK_SLOW_WORKER_SHARE of the workers.
    #[arg(long, env = "WEBHOOK_SLOW_AFTER", default_value = "1s", value_parser = duration)]
    pub slow_after: Duration,

    /// Percent of WEBHOOK_MAX_WORKERS that slow endpoints may hold together (at least
    /// one worker); the rest is kept for endpoints that answer in time.
    #[arg(long, env = "WEBHOOK_SLOW_WORKER_SHARE", default_value_t = 50, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub slow_worker_share: u8,

    /// Unfinished deliveries beyond which Publish answers RESOURCE_EXHAUSTED.
    #[arg(long, env = "WEBHOOK_MAX_QUEUE_SIZE", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_queue_size: u64,

    /// Limit on one delivery attempt (seconds, or 500ms, 15s...).
    #[arg(long, env = "WEBHOOK_DEFAULT_TIMEOUT", default_value = "15s", value_parser = duration)]
    pub default_timeout: Duration,

    /// Retries after the first attempt.
    #[arg(long, env = "WEBHOOK_DEFAULT_RETRY_COUNT", default_value_t = 8)]
    pub default_retry_count: u32,

    /// Delay before the first retry.
    #[arg(long, env = "WEBHOOK_RETRY_INITIAL_DELAY", default_value = "5s", value_parser = duration)]
    pub retry_initial_delay: Duration,

    /// Growth of the delay from one retry to the next.
    #[arg(long, env = "WEBHOOK_RETRY_MULTIPLIER", default_value_t = 4.0)]
    pub retry_multiplier: f64,

    /// Longest delay between attempts, including a Retry-After asked by an endpoint.
    #[arg(long, env = "WEBHOOK_MAX_RETRY_DELAY", default_value = "24h", value_parser = duration)]
    pub max_retry_delay: Duration,

    /// Randomisation of retry delays.
    #[arg(
        long,
        env = "WEBHOOK_RETRY_JITTER",
        value_enum,
        default_value = "proportional"
    )]
    pub retry_jitter: Jitter,

    /// How long an idempotency key is remembered.
    #[arg(long, env = "WEBHOOK_IDEMPOTENCY_TTL", default_value = "24h", value_parser = duration)]
    pub idempotency_ttl: Duration,

    /// How long a rotated-out secret keeps signing, unless the rotation says otherwise.
    #[arg(long, env = "WEBHOOK_SECRET_ROTATION_GRACE", default_value = "24h", value_parser = duration)]
    pub secret_rotation_grace: Duration,

    /// Largest accepted payload, in bytes; at most 3 MiB (3145728), so that a Publish
    /// carrying it, and GetMessage answering it, fit in the 4 MiB a gRPC peer accepts.
    #[arg(long, env = "WEBHOOK_MAX_PAYLOAD_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PAYLOAD_BYTES)))]
    pub max_payload_bytes: u32,

    /// Also send X-Webhook-Id, X-Webhook-Timestamp and X-Webhook-Signature.
    #[arg(
        long,
        env = "WEBHOOK_LEGACY_SIGNATURE_HEADERS",
        default_value_t = false
    )]
    pub legacy_signature_headers: bool,

    /// Addresses webhooks may reach although they are not public: CIDR blocks
    /// (127.0.0.0/8), addresses, or exact sockets (127.0.0.1:9464, needed to reach one of
    /// Herald's own ports), comma-separated. Empty: only public addresses.
    #[arg(long, env = "WEBHOOK_EGRESS_ALLOW_CIDRS", value_delimiter = ',')]
    pub egress_allow_cidrs: Vec<Allowed>,

    /// Send every webhook through this proxy (http://, https://, socks5:// or socks5h://),
    /// which then resolves names and decides what may be reached.
    #[arg(long, env = "WEBHOOK_EGRESS_PROXY")]
    pub egress_proxy: Option<url::Url>,

    /// Refuse plain http endpoint URLs.
    #[arg(long, env = "WEBHOOK_REQUIRE_HTTPS", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_https: bool,

    /// CA certificates (PEM) trusted for https endpoints besides the system's, for private
    /// PKIs. Certificates are always verified.
    #[arg(long, env = "WEBHOOK_EGRESS_CA_FILE")]
    pub egress_ca_file: Option<PathBuf>,

    /// On SIGTERM/SIGINT, how long attempts in flight may take to finish.
    #[arg(long, env = "WEBHOOK_SHUTDOWN_GRACE", default_value = "30s", value_parser = duration)]
    pub shutdown_grace: Duration,

    /// Export traces over OTLP/gRPC.
    #[arg(long, env = "ENABLE_TRACING", default_value_t = false, action = clap::ArgAction::Set)]
    pub enable_tracing: bool,

    /// OTLP/gRPC collector to export traces to (default http://localhost:4317).
    #[arg(long, env = "OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// The standard OpenTelemetry name of the collector address; OTLP_ENDPOINT wins.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", hide = true)]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// Log line format.
    #[arg(long, env = "WEBHOOK_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Consecutive failed attempts that open an endpoint's circuit breaker.
    #[arg(long, env = "CIRCUIT_BREAKER_FAILURE_THRESHOLD", default_value_t = 5)]
    pub circuit_breaker_failure_threshold: u32,

    /// How long an open circuit breaker waits before its one probe.
    #[arg(long, env = "CIRCUIT_BREAKER_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub circuit_breaker_timeout: Duration,

    /// Requests per window each endpoint receives at most (0: no limit).
    #[arg(long, env = "WEBHOOK_RATE_LIMIT", default_value_t = 1000)]
    pub rate_limit: u32,

    /// The window of the rate limit.
    #[arg(long, env = "WEBHOOK_RATE_LIMIT_WINDOW", default_value = "1s", value_parser = duration)]
    pub rate_limit_window: Duration,

    /// Requests an idle endpoint may receive at once above its rate (0: the rate limit).
    #[arg(long, env = "WEBHOOK_RATE_LIMIT_BURST", default_value_t = 0)]
    pub rate_limit_burst: u32,

    /// Attempts in flight to one endpoint at once.
    #[arg(long, env = "WEBHOOK_ENDPOINT_MAX_IN_FLIGHT", default_value_t = 16)]
    pub endpoint_max_in_flight: u32,

    /// Highest rate, in requests per second, an endpoint's rate limit may be set to, and
    /// its largest burst (0: no bound; only then may an endpoint turn its limit off).
    #[arg(
        long,
        env = "WEBHOOK_ENDPOINT_MAX_RATE_LIMIT",
        default_value_t = 10_000
    )]
    pub endpoint_max_rate_limit: u32,

    /// Shortest retry delay (initial and maximum) and circuit-breaker open period an
    /// endpoint may set.
    #[arg(long, env = "WEBHOOK_RETRY_MIN_DELAY", default_value = "1s", value_parser = duration)]
    pub retry_min_delay: Duration,

    /// Most retries an endpoint may set.
    #[arg(long, env = "WEBHOOK_MAX_RETRY_COUNT", default_value_t = 20)]
    pub max_retry_count: u32,

    /// Most attempts in flight an endpoint may set.
    #[arg(
        long,
        env = "WEBHOOK_ENDPOINT_MAX_IN_FLIGHT_CEILING",
        default_value_t = 64
    )]
    pub endpoint_max_in_flight_ceiling: u32,

    /// Highest circuit-breaker failure threshold an endpoint may set.
    #[arg(long, env = "WEBHOOK_BREAKER_MAX_THRESHOLD", default_value_t = 100)]
    pub breaker_max_threshold: u32,

    /// How long a settled message (every delivery succeeded, failed or cancelled) is kept,
    /// with its deliveries, attempts and payload, counted from its publication; a publish
    /// may ask for less. Unsettled messages are kept however old.
    #[arg(long, env = "WEBHOOK_RETENTION", default_value = "30d", value_parser = duration)]
    pub retention: Duration,

    /// Bytes of payloads the store may hold (every message's, matched or not, until
    /// retention deletes it); a publish past it is refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "WEBHOOK_MAX_STORED_BYTES", default_value_t = 8 << 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_stored_bytes: u64,

    /// How often expired messages are looked for; each look deletes them in small batches.
    #[arg(long, env = "WEBHOOK_RETENTION_SWEEP_INTERVAL", default_value = "1m", value_parser = duration)]
    pub retention_sweep_interval: Duration,

    /// Days of per-minute analytics kept.
    #[arg(long, env = "WEBHOOK_ANALYTICS_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub analytics_retention_days: u32,

    /// Status events kept for watchers that reconnect with a cursor.
    #[arg(long, env = "WEBHOOK_STATUS_RETENTION", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub status_retention: u64,

    /// Live status events a stream consumer may fall behind before it is cut off.
    #[arg(long, env = "WEBHOOK_STREAM_BUFFER", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub stream_buffer: u32,

    /// How long an idle status stream waits before sending a heartbeat.
    #[arg(long, env = "WEBHOOK_STREAM_HEARTBEAT", default_value = "15s", value_parser = duration)]
    pub stream_heartbeat: Duration,

    /// Status streams (StreamDeliveryStatus) one credential may hold open at once; more
    /// are refused with RESOURCE_EXHAUSTED. With authentication off, every caller is
    /// the same anonymous credential.
    #[arg(long, env = "WEBHOOK_MAX_STREAMS_PER_CREDENTIAL", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_credential: u32,

    /// How long a new connection to the gRPC or admin port has to complete its first
    /// request (TLS handshake, HTTP/2 preface and the request's headers) before it is
    /// closed. Connections that made a request are kept; HTTP/2 keepalive pings find
    /// dead ones.
    #[arg(long, env = "WEBHOOK_CONNECTION_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub connection_handshake_timeout: Duration,

    /// gRPC connections open at once. At the limit, a new connection takes the place of
    /// the oldest one that has not made a request yet, or is closed at once when every
    /// connection is being served. Default: the open-file limit less what is kept for
    /// deliveries (2 per worker), the store, the admin port and the process.
    #[arg(long, env = "WEBHOOK_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// Origins whose web pages may call the gRPC port over gRPC-Web, comma-separated
    /// (`https://dash.example.com`); none by default. `*` (every origin) only with
    /// WEBHOOK_AUTH=off.
    #[arg(long, env = "WEBHOOK_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// A gRPC connection older than this is asked to go (HTTP/2 GOAWAY), so that clients
    /// reconnect and spread over the instances behind a load balancer; its calls in
    /// flight have WEBHOOK_MAX_CONNECTION_AGE_GRACE to finish (a status stream resumes
    /// from its cursor on the new connection).
    #[arg(long, env = "WEBHOOK_MAX_CONNECTION_AGE", default_value = "30m", value_parser = duration)]
    pub max_connection_age: Duration,

    /// How long calls on a connection past its age may go on before it is closed.
    #[arg(long, env = "WEBHOOK_MAX_CONNECTION_AGE_GRACE", default_value = "5m", value_parser = duration)]
    pub max_connection_age_grace: Duration,

    /// Concurrent calls (HTTP/2 streams) on one gRPC connection.
    #[arg(long, env = "WEBHOOK_MAX_STREAMS_PER_CONNECTION", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_connection: u32,

    /// An endpoint whose attempts have all failed for this long is disabled.
    #[arg(long, env = "WEBHOOK_AUTO_DISABLE_AFTER", default_value = "5days", value_parser = duration)]
    pub auto_disable_after: Duration,

    /// Attempts in flight to one destination host (URL host and port) at once, over all
    /// the endpoints pointing at it.
    #[arg(long, env = "WEBHOOK_HOST_MAX_IN_FLIGHT", default_value_t = 64)]
    pub host_max_in_flight: u32,

    /// Requests per second to one destination host, over all the endpoints pointing at
    /// it (0: no rate ceiling, for trusted deployments whose endpoints all belong to
    /// their operator).
    #[arg(long, env = "WEBHOOK_HOST_RATE_LIMIT", default_value_t = 2000)]
    pub host_rate_limit: u32,

    /// Authentication: `on`, or `off` for local experiments only.
    #[arg(long, env = "WEBHOOK_AUTH", value_enum, default_value = "on")]
    pub auth: AuthMode,

    /// An admin API key the operator chooses (at least 32 characters); kept only as a
    /// hash. Without it, a first start with no keys generates one.
    #[arg(long, env = "WEBHOOK_ADMIN_API_KEY", hide_env_values = true)]
    pub admin_api_key: Option<String>,

    /// Endpoints one tenant may have.
    #[arg(long, env = "WEBHOOK_MAX_ENDPOINTS_PER_TENANT", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_endpoints_per_tenant: u64,

    /// Accept bearer JWTs issued by this issuer (`iss`); needs an audience and one key
    /// source.
    #[arg(long, env = "WEBHOOK_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// The audience (`aud`) JWTs must name.
    #[arg(long, env = "WEBHOOK_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// HS256 secret JWTs are signed with.
    #[arg(long, env = "WEBHOOK_JWT_HS256_SECRET", hide_env_values = true)]
    pub jwt_hs256_secret: Option<String>,

    /// JWKS file holding the public keys JWTs are signed with (RS256, ES256, EdDSA).
    #[arg(long, env = "WEBHOOK_JWT_JWKS_FILE")]
    pub jwt_jwks_file: Option<PathBuf>,

    /// JWKS URL serving the public keys JWTs are signed with.
    #[arg(long, env = "WEBHOOK_JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<url::Url>,

    /// Clock skew allowed when checking a JWT's times.
    #[arg(long, env = "WEBHOOK_JWT_LEEWAY", default_value = "60s", value_parser = duration)]
    pub jwt_leeway: Duration,

    /// The JWT claim naming the caller's tenant (absent: not bound to one).
    #[arg(long, env = "WEBHOOK_JWT_TENANT_CLAIM", default_value = "tenant_id")]
    pub jwt_tenant_claim: String,

    /// Certificate chain (PEM) of the gRPC port; with the key, gRPC is served over TLS.
    #[arg(long, env = "WEBHOOK_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of the certificate.
    #[arg(long, env = "WEBHOOK_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// CA (PEM) whose client certificates are required (mTLS).
    #[arg(long, env = "WEBHOOK_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,

    /// Key (32 random bytes, base64) that encrypts endpoint signing secrets and custom
    /// header values at rest; without one they are stored in clear.
    #[arg(long, env = "WEBHOOK_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,

    /// File holding the master key (instead of WEBHOOK_MASTER_KEY).
    #[arg(long, env = "WEBHOOK_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,

    /// Former master keys (comma-separated base64), used only to decrypt while records
    /// are re-encrypted under the current one.
    #[arg(long, env = "WEBHOOK_PREVIOUS_MASTER_KEYS", hide_env_values = true)]
    pub previous_master_keys: Option<String>,

    /// File holding the former master keys, one per line.
    #[arg(long, env = "WEBHOOK_PREVIOUS_MASTER_KEYS_FILE")]
    pub previous_master_keys_file: Option<PathBuf>,
}

/// How calls are authenticated.
#[derive(Clone)]
pub struct AuthConfig {
    pub enabled: bool,
    /// The operator's admin key, as its hash.
    pub admin_key: Option<SecretHash>,
    pub jwt: Option<JwtSettings>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("enabled", &self.enabled)
            .field("admin_key", &self.admin_key.is_some())
            .field("jwt", &self.jwt.is_some())
            .finish()
    }
}

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    Embedded { data_dir: PathBuf },
    Memory,
    Redis(RedisConfig),
}

impl ServeArgs {
    /// The trace export settings; `None` when tracing is off.
    pub fn tracing(&self) -> Option<TracingConfig> {
        self.enable_tracing.then(|| TracingConfig {
            endpoint: self
                .otlp_endpoint
                .clone()
                .or_else(|| self.otel_exporter_otlp_endpoint.clone())
                .unwrap_or_else(|| "http://localhost:4317".to_owned()),
        })
    }
}

/// Validated configuration, one part per subsystem.
#[derive(Debug, Clone)]
pub struct Config {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub enable_metrics: bool,
    pub storage: StorageConfig,
    pub store: StoreOptions,
    /// The delivery core, with the retry and protection policies every part uses.
    pub delivery: DeliveryConfig,
    pub service: ServiceConfig,
    pub legacy_signature_headers: bool,
    pub shutdown_grace: Duration,
    pub analytics_retention: Duration,
    /// How often expired messages are looked for.
    pub retention_sweep_interval: Duration,
    pub auth: AuthConfig,
    /// `None`: gRPC in clear (h2c).
    pub tls: Option<TlsFiles>,
    /// Where webhooks may go.
    pub egress: EgressConfig,
    /// The gRPC port's connections.
    pub connections: ConnectionsConfig,
    /// The origins whose pages may call the gRPC port over gRPC-Web.
    pub cors: CorsOrigins,
    /// The sizing profile, and why it was chosen.
    pub profile: Profile,
}

/// A setting with an unusable value.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {flag} ({env}): {reason}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub env: &'static str,
    pub reason: String,
}

impl ServeArgs {
    /// # Errors
    /// Names the first setting whose value cannot work, alone or with the others.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let profile = Profile::choose(self.profile, |name| std::env::var(name).ok());
        let protection = self.protection()?;
        let keyring = Arc::new(self.keyring()?);
        let auth = self.auth_config()?;
        let tls = self.tls_files()?;
        let egress = self.egress()?;
        let storage = match self.storage_type {
            StorageType::Embedded => StorageConfig::Embedded {
                data_dir: self.data_dir,
            },
            StorageType::Memory => StorageConfig::Memory,
            StorageType::Auto if self.redis_url.is_none() => StorageConfig::Embedded {
                data_dir: self.data_dir,
            },
            StorageType::Auto | StorageType::Redis => {
                let Some(url) = self.redis_url else {
                    return Err(ConfigError {
                        flag: "--redis-url",
                        env: "REDIS_URL",
                        reason: "storage type redis needs the Redis URL".into(),
                    });
                };
                if self.redis_prefix.is_empty() || self.redis_prefix.contains(['{', '}']) {
                    return Err(ConfigError {
                        flag: "--redis-prefix",
                        env: "WEBHOOK_REDIS_PREFIX",
                        reason: "must be non-empty, without braces".into(),
                    });
                }
                StorageConfig::Redis(RedisConfig {
                    url,
                    password: self.redis_password,
                    db: self.redis_db,
                    prefix: self.redis_prefix,
                    instance_id: self
                        .instance_id
                        .unwrap_or_else(|| ulid::Ulid::new().to_string().to_lowercase()),
                    allow_eviction: self.redis_allow_eviction,
                })
            }
        };
        if self.default_timeout.is_zero() {
            return Err(ConfigError {
                flag: "--default-timeout",
                env: "WEBHOOK_DEFAULT_TIMEOUT",
                reason: "must be more than zero".into(),
            });
        }
        for (value, flag, env) in [
            (
                self.idempotency_ttl,
                "--idempotency-ttl",
                "WEBHOOK_IDEMPOTENCY_TTL",
            ),
            (
                self.shutdown_grace,
                "--shutdown-grace",
                "WEBHOOK_SHUTDOWN_GRACE",
            ),
            (
                self.stream_heartbeat,
                "--stream-heartbeat",
                "WEBHOOK_STREAM_HEARTBEAT",
            ),
            (self.retention, "--retention", "WEBHOOK_RETENTION"),
            (self.slow_after, "--slow-after", "WEBHOOK_SLOW_AFTER"),
            (
                self.connection_handshake_timeout,
                "--connection-handshake-timeout",
                "WEBHOOK_CONNECTION_HANDSHAKE_TIMEOUT",
            ),
            (
                self.retention_sweep_interval,
                "--retention-sweep-interval",
                "WEBHOOK_RETENTION_SWEEP_INTERVAL",
            ),
        ] {
            if value.is_zero() {
                return Err(ConfigError {
                    flag,
                    env,
                    reason: "must be more than zero".into(),
                });
            }
        }
        let retry = RetryPolicy::try_new(
            self.default_retry_count,
            self.retry_initial_delay,
            self.max_retry_delay,
            self.retry_multiplier,
            self.retry_jitter,
        )
        .map_err(|e| {
            let (flag, env) = match e {
                PolicyError::TooManyRetries { .. } => {
                    ("--default-retry-count", "WEBHOOK_DEFAULT_RETRY_COUNT")
                }
                PolicyError::ZeroInitialDelay => {
                    ("--retry-initial-delay", "WEBHOOK_RETRY_INITIAL_DELAY")
                }
                PolicyError::MaxDelay { .. } => ("--max-retry-delay", "WEBHOOK_MAX_RETRY_DELAY"),
                PolicyError::Multiplier(_) => ("--retry-multiplier", "WEBHOOK_RETRY_MULTIPLIER"),
            };
            ConfigError {
                flag,
                env,
                reason: e.to_string(),
            }
        })?;

        Ok(Config {
            auth,
            tls,
            egress,
            grpc_addr: self.grpc_addr,
            admin_addr: self.admin_addr,
            enable_metrics: self.enable_metrics,
            storage,
            store: StoreOptions {
                idempotency_ttl: self.idempotency_ttl,
                status_retention: self.status_retention,
                status_buffer: self.stream_buffer as usize,
                retention: self.retention,
                keyring,
                readers: profile.sizing.store_readers,
            },
            delivery: DeliveryConfig {
                max_workers: self.max_workers.unwrap_or(profile.sizing.max_workers) as usize,
                request_timeout: self.default_timeout,
                retry,
                protection,
                pace: PaceConfig {
                    slow_after: self.slow_after,
                    slow_share: self.slow_worker_share,
                },
            },
            service: ServiceConfig {
                max_queue_size: self.max_queue_size,
                secret_rotation_grace: self.secret_rotation_grace,
                max_payload_bytes: self.max_payload_bytes as usize,
                stream_heartbeat: self.stream_heartbeat,
                max_endpoints_per_tenant: self.max_endpoints_per_tenant,
                retention: self.retention,
                max_stored_bytes: self.max_stored_bytes,
                max_streams_per_credential: self.max_streams_per_credential,
            },
            profile,
            cors: CorsOrigins::parse(&self.cors_origins, self.auth == AuthMode::On).map_err(
                |e| ConfigError {
                    flag: "--cors-origins",
                    env: "WEBHOOK_CORS_ORIGINS",
                    reason: e.to_string(),
                },
            )?,
            connections: ConnectionsConfig {
                first_request_timeout: self.connection_handshake_timeout,
                max_connections: self.max_connections,
                max_streams_per_connection: self.max_streams_per_connection,
                max_age: self.max_connection_age,
                max_age_grace: self.max_connection_age_grace,
            },
            legacy_signature_headers: self.legacy_signature_headers,
            shutdown_grace: self.shutdown_grace,
            analytics_retention: Duration::from_secs(
                u64::from(self.analytics_retention_days) * 24 * 3600,
            ),
            retention_sweep_interval: self.retention_sweep_interval,
        })
    }
}

impl ServeArgs {
    fn egress(&self) -> Result<EgressConfig, ConfigError> {
        if let Some(proxy) = &self.egress_proxy
            && !matches!(proxy.scheme(), "http" | "https" | "socks5" | "socks5h")
        {
            return Err(ConfigError {
                flag: "--egress-proxy",
                env: "WEBHOOK_EGRESS_PROXY",
                reason: format!(
                    "scheme {} is not one of http, https, socks5, socks5h",
                    proxy.scheme()
                ),
            });
        }
        Ok(EgressConfig {
            allow: self.egress_allow_cidrs.clone(),
            proxy: self.egress_proxy.clone(),
            require_https: self.require_https,
            ca_file: self.egress_ca_file.clone(),
            resolver: None,
        })
    }

    fn auth_config(&self) -> Result<AuthConfig, ConfigError> {
        let admin_key = self
            .admin_api_key
            .as_deref()
            .map(SecretHash::of_bootstrap_key)
            .transpose()
            .map_err(|e| ConfigError {
                flag: "--admin-api-key",
                env: "WEBHOOK_ADMIN_API_KEY",
                reason: e.to_string(),
            })?;
        let sources = [
            self.jwt_hs256_secret
                .clone()
                .map(|s| JwtKeys::Hs256(s.into_bytes())),
            self.jwt_jwks_file.clone().map(JwtKeys::JwksFile),
            self.jwt_jwks_url.clone().map(JwtKeys::JwksUrl),
        ];
        let mut sources = sources.into_iter().flatten();
        let keys = sources.next();
        if sources.next().is_some() {
            return Err(ConfigError {
                flag: "--jwt-hs256-secret",
                env: "WEBHOOK_JWT_HS256_SECRET",
                reason: "set one JWT key source: an HS256 secret, a JWKS file or a JWKS URL".into(),
            });
        }
        let jwt = match (keys, &self.jwt_issuer, &self.jwt_audience) {
            (None, None, None) => None,
            (Some(keys), Some(issuer), Some(audience)) => Some(JwtSettings {
                issuer: issuer.clone(),
                audience: audience.clone(),
                leeway: self.jwt_leeway,
                keys,
                tenant_claim: self.jwt_tenant_claim.clone(),
            }),
            (None, _, _) => {
                return Err(ConfigError {
                    flag: "--jwt-jwks-url",
                    env: "WEBHOOK_JWT_JWKS_URL",
                    reason: "with WEBHOOK_JWT_ISSUER or WEBHOOK_JWT_AUDIENCE set, JWTs need a key source: an HS256 secret, a JWKS file or a JWKS URL"
                        .into(),
                });
            }
            (Some(_), None, _) => {
                return Err(ConfigError {
                    flag: "--jwt-issuer",
                    env: "WEBHOOK_JWT_ISSUER",
                    reason: "JWTs need the issuer they must come from".into(),
                });
            }
            (Some(_), Some(_), None) => {
                return Err(ConfigError {
                    flag: "--jwt-audience",
                    env: "WEBHOOK_JWT_AUDIENCE",
                    reason: "JWTs need the audience they must name".into(),
                });
            }
        };
        Ok(AuthConfig {
            enabled: self.auth == AuthMode::On,
            admin_key,
            jwt,
        })
    }

    fn tls_files(&self) -> Result<Option<TlsFiles>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            })),
            (None, None) if self.tls_client_ca.is_none() => Ok(None),
            (None, _) => Err(ConfigError {
                flag: "--tls-cert",
                env: "WEBHOOK_TLS_CERT",
                reason: "with WEBHOOK_TLS_KEY or WEBHOOK_TLS_CLIENT_CA set, TLS needs the certificate too"
                    .into(),
            }),
            (Some(_), None) => Err(ConfigError {
                flag: "--tls-key",
                env: "WEBHOOK_TLS_KEY",
                reason: "with WEBHOOK_TLS_CERT set, TLS needs the certificate's private key too"
                    .into(),
            }),
        }
    }

    /// The master keys, read from their values or files.
    fn keyring(&self) -> Result<Keyring, ConfigError> {
        let current = secret_setting(
            self.master_key.as_deref(),
            self.master_key_file.as_ref(),
            ("--master-key", "WEBHOOK_MASTER_KEY"),
            ("--master-key-file", "WEBHOOK_MASTER_KEY_FILE"),
        )?;
        let current = current
            .map(|(text, flag, env)| {
                MasterKey::parse(&text).map_err(|e| ConfigError {
                    flag,
                    env,
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        let previous = secret_setting(
            self.previous_master_keys.as_deref(),
            self.previous_master_keys_file.as_ref(),
            ("--previous-master-keys", "WEBHOOK_PREVIOUS_MASTER_KEYS"),
            (
                "--previous-master-keys-file",
                "WEBHOOK_PREVIOUS_MASTER_KEYS_FILE",
            ),
        )?;
        let previous = match previous {
            None => Vec::new(),
            Some((text, flag, env)) => text
                .split([',', '\n'])
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .enumerate()
                .map(|(i, k)| {
                    MasterKey::parse(k).map_err(|e| ConfigError {
                        flag,
                        env,
                        reason: format!("key {}: {e}", i + 1),
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Keyring::new(current, previous))
    }

    fn host_ceiling(&self) -> Result<HostCeiling, ConfigError> {
        if self.host_max_in_flight == 0 {
            return Err(ConfigError {
                flag: "--host-max-in-flight",
                env: "WEBHOOK_HOST_MAX_IN_FLIGHT",
                reason: "must be at least 1".into(),
            });
        }
        let rate_limit = match self.host_rate_limit {
            0 => None,
            limit => Some(
                RateLimit::try_new(limit, Duration::from_secs(1), limit).map_err(|e| {
                    ConfigError {
                        flag: "--host-rate-limit",
                        env: "WEBHOOK_HOST_RATE_LIMIT",
                        reason: e.to_string(),
                    }
                })?,
            ),
        };
        Ok(HostCeiling {
            max_in_flight: self.host_max_in_flight,
            rate_limit,
        })
    }

    fn protection(&self) -> Result<ProtectionConfig, ConfigError> {
        let breaker = BreakerPolicy::try_new(
            self.circuit_breaker_failure_threshold,
            self.circuit_breaker_timeout,
        )
        .map_err(|e| {
            let (flag, env) = match e {
                BreakerPolicyError::Threshold(_) => (
                    "--circuit-breaker-failure-threshold",
                    "CIRCUIT_BREAKER_FAILURE_THRESHOLD",
                ),
                BreakerPolicyError::Timeout(_) => {
                    ("--circuit-breaker-timeout", "CIRCUIT_BREAKER_TIMEOUT")
                }
            };
            ConfigError {
                flag,
                env,
                reason: e.to_string(),
            }
        })?;
        let rate_limit = match self.rate_limit {
            0 => None,
            limit => {
                let burst = if self.rate_limit_burst == 0 {
                    limit
                } else {
                    self.rate_limit_burst
                };
                Some(
                    RateLimit::try_new(limit, self.rate_limit_window, burst).map_err(|e| {
                        let (flag, env) = match e {
                            RateLimitError::Limit(_) => ("--rate-limit", "WEBHOOK_RATE_LIMIT"),
                            RateLimitError::Window(_) => {
                                ("--rate-limit-window", "WEBHOOK_RATE_LIMIT_WINDOW")
                            }
                            RateLimitError::Burst(_) => {
                                ("--rate-limit-burst", "WEBHOOK_RATE_LIMIT_BURST")
                            }
                        };
                        ConfigError {
                            flag,
                            env,
                            reason: e.to_string(),
                        }
                    })?,
                )
            }
        };
        let config = ProtectionConfig {
            breaker,
            rate_limit,
            rate_limit_window: self.rate_limit_window,
            max_in_flight: self.endpoint_max_in_flight,
            auto_disable_after: self.auto_disable_after,
            bounds: self.override_bounds()?,
            host: self.host_ceiling()?,
        };
        // The defaults must themselves be a valid endpoint policy; the breaker and the
        // rate limit were checked above, so only the in-flight cap can fail here.
        if let Err(e @ ProtectionError::NoInFlight) = config.resolve(&ProtectionOverride::default())
        {
            return Err(ConfigError {
                flag: "--endpoint-max-in-flight",
                env: "WEBHOOK_ENDPOINT_MAX_IN_FLIGHT",
                reason: e.to_string(),
            });
        }
        if self.auto_disable_after.is_zero() {
            return Err(ConfigError {
                flag: "--auto-disable-after",
                env: "WEBHOOK_AUTO_DISABLE_AFTER",
                reason: "must be more than zero".into(),
            });
        }
        Ok(config)
    }
}

/// A secret given as a value or in a file (not both): its text, with the flag and
/// variable it came from.
fn secret_setting(
    value: Option<&str>,
    file: Option<&PathBuf>,
    (value_flag, value_env): (&'static str, &'static str),
    (file_flag, file_env): (&'static str, &'static str),
) -> Result<Option<(String, &'static str, &'static str)>, ConfigError> {
    match (value, file) {
        (None, None) => Ok(None),
        (Some(value), None) => Ok(Some((value.to_owned(), value_flag, value_env))),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|text| Some((text, file_flag, file_env)))
            .map_err(|e| ConfigError {
                flag: file_flag,
                env: file_env,
                reason: format!("cannot read {}: {e}", path.display()),
            }),
        (Some(_), Some(_)) => Err(ConfigError {
            flag: file_flag,
            env: file_env,
            reason: format!("set {value_env} or {file_env}, not both"),
        }),
    }
}

/// The flag and variable of each bound on endpoints' overrides: rate, delay floor,
/// retries, in flight, breaker threshold.
const BOUND_SETTINGS: [(&str, &str); 5] = [
    (
        "--endpoint-max-rate-limit",
        "WEBHOOK_ENDPOINT_MAX_RATE_LIMIT",
    ),
    ("--retry-min-delay", "WEBHOOK_RETRY_MIN_DELAY"),
    ("--max-retry-count", "WEBHOOK_MAX_RETRY_COUNT"),
    (
        "--endpoint-max-in-flight-ceiling",
        "WEBHOOK_ENDPOINT_MAX_IN_FLIGHT_CEILING",
    ),
    ("--breaker-max-threshold", "WEBHOOK_BREAKER_MAX_THRESHOLD"),
];

impl ServeArgs {
    /// The bounds on endpoints' overrides. The server's own defaults must lie within
    /// them: a default is what every endpoint that sets nothing gets.
    fn override_bounds(&self) -> Result<OverrideBounds, ConfigError> {
        let [rate, delay, retries, in_flight, threshold] = BOUND_SETTINGS;
        // Each ceiling within what its policy accepts at all.
        let ceilings = [
            (self.max_retry_count, 0, RetryPolicy::MAX_RETRIES, retries),
            (self.endpoint_max_in_flight_ceiling, 1, 10_000, in_flight),
            (self.breaker_max_threshold, 1, 10_000, threshold),
        ];
        for (value, least, most, (flag, env)) in ceilings {
            if !(least..=most).contains(&value) {
                return Err(ConfigError {
                    flag,
                    env,
                    reason: format!("must be {least} to {most}, got {value}"),
                });
            }
        }
        let bounds = OverrideBounds {
            max_rate: (self.endpoint_max_rate_limit > 0).then_some(self.endpoint_max_rate_limit),
            min_delay: self.retry_min_delay,
            max_retries: self.max_retry_count,
            max_in_flight: self.endpoint_max_in_flight_ceiling,
            max_failure_threshold: self.breaker_max_threshold,
        };
        let retry = RetryOverride {
            max_retries: Some(self.default_retry_count),
            initial_delay: Some(self.retry_initial_delay),
            max_delay: Some(self.max_retry_delay),
            ..Default::default()
        };
        let protection = ProtectionOverride {
            rate_limit: match self.rate_limit {
                0 => RateLimitOverride::Unlimited,
                limit => RateLimitOverride::Custom {
                    limit,
                    window: Some(self.rate_limit_window),
                    burst: (self.rate_limit_burst > 0).then_some(self.rate_limit_burst),
                },
            },
            failure_threshold: Some(self.circuit_breaker_failure_threshold),
            breaker_timeout: Some(self.circuit_breaker_timeout),
            max_in_flight: Some(self.endpoint_max_in_flight),
        };
        let past = bounds
            .check_retry(&retry)
            .into_iter()
            .chain(bounds.check_protection(&protection, self.rate_limit_window))
            .next();
        let Some(e) = past else { return Ok(bounds) };
        let ((flag, env), (_, bound)) = match e {
            OutOfBounds::Retries { .. } => (
                ("--default-retry-count", "WEBHOOK_DEFAULT_RETRY_COUNT"),
                retries,
            ),
            OutOfBounds::InitialDelay { .. } => (
                ("--retry-initial-delay", "WEBHOOK_RETRY_INITIAL_DELAY"),
                delay,
            ),
            OutOfBounds::MaxDelay { .. } => {
                (("--max-retry-delay", "WEBHOOK_MAX_RETRY_DELAY"), delay)
            }
            OutOfBounds::Unlimited { .. } | OutOfBounds::Rate { .. } => {
                (("--rate-limit", "WEBHOOK_RATE_LIMIT"), rate)
            }
            OutOfBounds::Burst { .. } => (("--rate-limit-burst", "WEBHOOK_RATE_LIMIT_BURST"), rate),
            OutOfBounds::FailureThreshold { .. } => (
                (
                    "--circuit-breaker-failure-threshold",
                    "CIRCUIT_BREAKER_FAILURE_THRESHOLD",
                ),
                threshold,
            ),
            OutOfBounds::BreakerTimeout { .. } => (
                ("--circuit-breaker-timeout", "CIRCUIT_BREAKER_TIMEOUT"),
                delay,
            ),
            OutOfBounds::MaxInFlight { .. } => (
                ("--endpoint-max-in-flight", "WEBHOOK_ENDPOINT_MAX_IN_FLIGHT"),
                in_flight,
            ),
        };
        Err(ConfigError {
            flag,
            env,
            reason: format!("{e}: the default must lie within the bound {bound}"),
        })
    }
}

impl ServeArgs {
    /// Every setting at its default, whatever the process environment holds: tests build
    /// their configuration from this, so a developer's `WEBHOOK_*` variables cannot change
    /// them.
    pub fn defaults() -> Self {
        let matches = Self::without_environment()
            .try_get_matches_from(["herald"])
            .expect("every setting has a default");
        Self::from_arg_matches(&matches).expect("the defaults are settings")
    }

    /// The settings' command line with no environment variable attached.
    fn without_environment() -> clap::Command {
        Self::augment_args(clap::Command::new("herald"))
            .mut_args(|arg| arg.env(None::<&'static str>))
    }
}

impl Config {
    /// Every default, with the given store: a laptop run's settings, environment aside.
    pub fn with_storage(storage: StorageConfig) -> Self {
        let mut args = ServeArgs::defaults();
        args.storage_type = match storage {
            StorageConfig::Memory => StorageType::Memory,
            StorageConfig::Embedded { data_dir } => {
                args.data_dir = data_dir;
                StorageType::Embedded
            }
            StorageConfig::Redis(redis) => {
                args.redis_url = Some(redis.url);
                args.redis_password = redis.password;
                args.redis_db = redis.db;
                args.redis_prefix = redis.prefix;
                args.instance_id = Some(redis.instance_id);
                args.redis_allow_eviction = redis.allow_eviction;
                StorageType::Redis
            }
        };
        args.into_config().expect("the defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2h 30m"), Ok(Duration::from_secs(9000)));
        assert!(duration("soon").is_err());
    }

    #[test]
    fn errors_name_the_setting() {
        let mut args = ServeArgs::defaults();
        args.retry_multiplier = 0.5;
        let e = args.into_config().unwrap_err();
        assert_eq!(e.env, "WEBHOOK_RETRY_MULTIPLIER");
        assert!(e.to_string().contains("--retry-multiplier"));
    }

    #[test]
    fn every_origin_needs_authentication_off() {
        let mut args = ServeArgs::defaults();
        args.cors_origins = vec!["*".into()];
        let e = args.clone().into_config().unwrap_err();
        assert_eq!(e.env, "WEBHOOK_CORS_ORIGINS");
        assert!(e.to_string().contains("WEBHOOK_AUTH=off"), "{e}");
        args.auth = AuthMode::Off;
        assert_eq!(args.into_config().unwrap().cors, CorsOrigins::Any);
        assert_eq!(
            ServeArgs::defaults().into_config().unwrap().cors,
            CorsOrigins::None
        );
    }

    #[test]
    fn override_bounds_are_checked_and_the_defaults_lie_within_them() {
        let bounds = ServeArgs::defaults()
            .into_config()
            .unwrap()
            .delivery
            .protection
            .bounds;
        assert_eq!(
            bounds,
            OverrideBounds {
                max_rate: Some(10_000),
                min_delay: Duration::from_secs(1),
                max_retries: 20,
                max_in_flight: 64,
                max_failure_threshold: 100,
            }
        );
        // A change to the defaults, the variable it is blamed on, and words of the reason.
        type Case = (fn(&mut ServeArgs), &'static str, &'static str);
        let cases: [Case; 14] = [
            (
                |a| a.max_retry_count = 101,
                "WEBHOOK_MAX_RETRY_COUNT",
                "0 to 100",
            ),
            (
                |a| a.endpoint_max_in_flight_ceiling = 0,
                "WEBHOOK_ENDPOINT_MAX_IN_FLIGHT_CEILING",
                "1 to 10000",
            ),
            (
                |a| a.breaker_max_threshold = 10_001,
                "WEBHOOK_BREAKER_MAX_THRESHOLD",
                "1 to 10000",
            ),
            (
                |a| a.default_retry_count = 21,
                "WEBHOOK_DEFAULT_RETRY_COUNT",
                "WEBHOOK_MAX_RETRY_COUNT",
            ),
            (
                |a| a.retry_initial_delay = Duration::from_millis(999),
                "WEBHOOK_RETRY_INITIAL_DELAY",
                "WEBHOOK_RETRY_MIN_DELAY",
            ),
            (
                |a| a.retry_min_delay = Duration::from_secs(25 * 3600),
                "WEBHOOK_RETRY_INITIAL_DELAY",
                "WEBHOOK_RETRY_MIN_DELAY",
            ),
            (
                |a| a.rate_limit = 0,
                "WEBHOOK_RATE_LIMIT",
                "WEBHOOK_ENDPOINT_MAX_RATE_LIMIT",
            ),
            (
                |a| a.rate_limit = 10_001,
                "WEBHOOK_RATE_LIMIT",
                "WEBHOOK_ENDPOINT_MAX_RATE_LIMIT",
            ),
            (
                |a| a.rate_limit_window = Duration::from_millis(99),
                "WEBHOOK_RATE_LIMIT",
                "WEBHOOK_ENDPOINT_MAX_RATE_LIMIT",
            ),
            (
                |a| a.rate_limit_burst = 10_001,
                "WEBHOOK_RATE_LIMIT_BURST",
                "WEBHOOK_ENDPOINT_MAX_RATE_LIMIT",
            ),
            (
                |a| a.endpoint_max_in_flight = 65,
                "WEBHOOK_ENDPOINT_MAX_IN_FLIGHT",
                "WEBHOOK_ENDPOINT_MAX_IN_FLIGHT_CEILING",
            ),
            (
                |a| a.circuit_breaker_failure_threshold = 101,
                "CIRCUIT_BREAKER_FAILURE_THRESHOLD",
                "WEBHOOK_BREAKER_MAX_THRESHOLD",
            ),
            (
                |a| a.circuit_breaker_timeout = Duration::from_millis(500),
                "CIRCUIT_BREAKER_TIMEOUT",
                "WEBHOOK_RETRY_MIN_DELAY",
            ),
            (
                |a| a.endpoint_max_in_flight = 0,
                "WEBHOOK_ENDPOINT_MAX_IN_FLIGHT",
                "at least 1",
            ),
        ];
        for (change, env, reason) in cases {
            let mut args = ServeArgs::defaults();
            change(&mut args);
            let e = args.into_config().unwrap_err();
            assert_eq!(e.env, env, "{e}");
            assert!(e.reason.contains(reason), "{e}");
        }
        // At the bounds, and with no rate bound, no limit at all.
        let mut args = ServeArgs::defaults();
        args.default_retry_count = 20;
        args.retry_initial_delay = Duration::from_secs(1);
        args.rate_limit = 10_000;
        args.endpoint_max_in_flight = 64;
        args.circuit_breaker_failure_threshold = 100;
        args.circuit_breaker_timeout = Duration::from_secs(1);
        assert!(args.into_config().is_ok());
        let mut args = ServeArgs::defaults();
        args.endpoint_max_rate_limit = 0;
        args.rate_limit = 0;
        assert_eq!(
            args.into_config()
                .unwrap()
                .delivery
                .protection
                .bounds
                .max_rate,
            None
        );
    }

    #[test]
    fn host_ceilings_default_and_refuse_nonsense() {
        let host = ServeArgs::defaults()
            .into_config()
            .unwrap()
            .delivery
            .protection
            .host;
        assert_eq!(host.max_in_flight, 64);
        assert_eq!(
            host.rate_limit.map(|l| (l.limit(), l.burst())),
            Some((2000, 2000))
        );
        let mut args = ServeArgs::defaults();
        args.host_rate_limit = 0;
        let host = args.into_config().unwrap().delivery.protection.host;
        assert_eq!(host.rate_limit, None, "0: no rate ceiling");
        let mut args = ServeArgs::defaults();
        args.host_max_in_flight = 0;
        assert_eq!(
            args.into_config().unwrap_err().env,
            "WEBHOOK_HOST_MAX_IN_FLIGHT"
        );
        let mut args = ServeArgs::defaults();
        args.host_rate_limit = 2_000_000;
        assert_eq!(
            args.into_config().unwrap_err().env,
            "WEBHOOK_HOST_RATE_LIMIT"
        );
    }

    #[test]
    fn slow_endpoints_share_half_the_workers_by_default_and_are_slow_after_a_second() {
        let pace = ServeArgs::defaults().into_config().unwrap().delivery.pace;
        assert_eq!(
            pace,
            PaceConfig {
                slow_after: Duration::from_secs(1),
                slow_share: 50,
            }
        );
        let mut args = ServeArgs::defaults();
        args.slow_after = Duration::ZERO;
        assert_eq!(args.into_config().unwrap_err().env, "WEBHOOK_SLOW_AFTER");
        let share = |value: &str| {
            ServeArgs::without_environment()
                .try_get_matches_from(["herald", "--slow-worker-share", value])
                .is_ok()
        };
        assert!(share("1") && share("100"));
        assert!(!share("0") && !share("101"));
    }

    #[test]
    fn defaults_ignore_the_environment() {
        let reading: Vec<_> = ServeArgs::without_environment()
            .get_arguments()
            .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        assert!(reading.is_empty(), "defaults would read {reading:?}");
        let command = ServeArgs::augment_args(clap::Command::new("herald"));
        assert!(
            command
                .get_arguments()
                .any(|a| a.get_env().is_some_and(|e| e == "WEBHOOK_DATA_DIR")),
            "the binary's command line reads the environment"
        );
    }

    #[test]
    fn master_keys_are_32_bytes_of_base64_named_by_their_setting() {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let mut args = ServeArgs::defaults();
        args.master_key = Some(key.clone());
        args.previous_master_keys = Some(format!("{key}, {key}"));
        let keyring = args.into_config().unwrap().store.keyring;
        assert_eq!(
            keyring.current(),
            MasterKey::parse(&key).ok().as_ref().map(MasterKey::id)
        );
        let mut args = ServeArgs::defaults();
        args.master_key = Some("c2hvcnQ=".into());
        let e = args.into_config().unwrap_err();
        assert_eq!((e.flag, e.env), ("--master-key", "WEBHOOK_MASTER_KEY"));
        assert!(e.to_string().contains("32 bytes"), "{e}");
        let mut args = ServeArgs::defaults();
        args.previous_master_keys = Some(format!("{key},not base64"));
        let e = args.into_config().unwrap_err();
        assert_eq!(e.env, "WEBHOOK_PREVIOUS_MASTER_KEYS");
        assert!(e.to_string().contains("key 2"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        std::fs::write(&file, format!("{key}\n")).unwrap();
        let mut args = ServeArgs::defaults();
        args.master_key_file = Some(file.clone());
        assert!(
            args.into_config()
                .unwrap()
                .store
                .keyring
                .current()
                .is_some()
        );
        let mut args = ServeArgs::defaults();
        args.master_key_file = Some(file);
        args.master_key = Some(key);
        assert_eq!(
            args.into_config().unwrap_err().env,
            "WEBHOOK_MASTER_KEY_FILE"
        );
    }

    #[test]
    fn auto_picks_redis_with_a_url_and_redis_needs_one() {
        let mut args = ServeArgs::defaults();
        args.redis_url = Some("redis://127.0.0.1:6379".into());
        assert!(matches!(
            args.into_config().unwrap().storage,
            StorageConfig::Redis(_)
        ));
        let mut args = ServeArgs::defaults();
        args.storage_type = StorageType::Redis;
        assert_eq!(args.into_config().unwrap_err().env, "REDIS_URL");
    }
}
