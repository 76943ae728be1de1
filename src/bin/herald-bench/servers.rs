//! The processes under test: Herald, started from its binary as an operator would, and
//! the `redis-server` it uses on the Redis store.
//!
//! Herald gets a fixed environment (ports `127.0.0.1:0`, JSON logs, its store, host
//! ceilings that never bind on the one sink every endpoint points at) and nothing else of
//! ours: settings in the environment running the bench would skew it. Its
//! gRPC address comes from its `herald serving` log line; a thread per child reads its
//! stderr, so it never blocks on a full pipe, and keeps the last lines for error
//! messages. Redis runs in its own temporary directory on a free loopback port, with
//! every write fsync'd (what Herald's durable acks need). Both are killed when dropped.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::ValueEnum;
use herald::cli::{Client, client};
use serde::Serialize;
use tokio::sync::oneshot;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Longest wait for a child to say it serves, or for Redis to answer.
const START_PATIENCE: Duration = Duration::from_secs(30);
/// Interval between health checks of a starting server: start time is measured in ms.
const HEALTH_POLL: Duration = Duration::from_millis(1);
/// Stderr lines of a child kept for error messages.
const TAIL_LINES: usize = 40;
/// Free ports tried for Redis: another process may take one between our check and its bind.
const PORT_ATTEMPTS: usize = 5;
/// Longest any one call to Herald may take: a hung server fails the run, never hangs it.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The service whose health says Herald serves.
const SERVICE: &str = "herald.v1.WebhookService";

/// Where Herald keeps its state during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// SQLite in a temporary data directory, fsync'd acks.
    Embedded,
    /// In memory: nothing survives a restart, so its rows are labelled non-durable.
    Memory,
    /// A `redis-server` started by the bench, AOF with an fsync per write.
    Redis,
}

impl StoreKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Memory => "memory",
            Self::Redis => "redis",
        }
    }

    pub fn durable(self) -> bool {
        self != Self::Memory
    }
}

/// A running `herald`. Dropping it kills the process and removes its data directory.
pub struct Herald {
    child: Child,
    grpc: SocketAddr,
    /// The admin key it was started with, for the clients' calls.
    admin_key: String,
    tail: Tail,
    /// The embedded store's directory, removed after the process is gone.
    data_dir: Option<tempfile::TempDir>,
}

/// The last stderr lines of a child.
#[derive(Clone, Default)]
struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn text(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// How to start Herald: its binary, its store and its retention.
pub struct Launcher {
    binary: PathBuf,
    store: StoreKind,
    /// The Redis of a Redis run, shared by every Herald the run starts.
    redis: Option<RedisServer>,
    /// `WEBHOOK_RETENTION`, when not Herald's default: a soak shortens it so that settled
    /// messages expire within the run.
    retention: Option<Duration>,
    /// Distinguishes the Heralds of one run on a shared Redis (prefix, instance id).
    started: u32,
}

impl Launcher {
    pub fn new(binary: PathBuf, store: StoreKind, redis: Option<RedisServer>) -> Self {
        Self {
            binary,
            store,
            redis,
            retention: None,
            started: 0,
        }
    }

    /// Every Herald started from now on keeps settled messages for `retention`.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// The URL of the run's Redis, on the Redis store.
    pub fn redis_url(&self) -> Option<String> {
        self.redis.as_ref().map(RedisServer::url)
    }

    /// The pid of the run's Redis, on the Redis store: its CPU counts as Herald's.
    pub fn redis_pid(&self) -> Option<u32> {
        self.redis.as_ref().map(RedisServer::pid)
    }

    /// Starts a fresh Herald (an empty store) and waits until its health check answers
    /// SERVING; returns it with the time from spawn to SERVING.
    ///
    /// # Errors
    ///
    /// When it cannot start, exits, or does not serve within 30 s.
    pub async fn start(&mut self) -> anyhow::Result<(Herald, Duration)> {
        self.start_on(None).await
    }

    /// Starts a Herald as [`Self::start`] does; on the embedded store, on `data_dir` when
    /// given (a store filled before).
    ///
    /// # Errors
    ///
    /// As [`Self::start`].
    pub async fn start_on(
        &mut self,
        data_dir: Option<tempfile::TempDir>,
    ) -> anyhow::Result<(Herald, Duration)> {
        self.started += 1;
        let mut command = Command::new(&self.binary);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if is_setting(&name) {
                command.env_remove(name.as_ref());
            }
        }
        // A fresh admin key per instance: it only ever serves this run, on loopback.
        let admin_key = format!("bench-admin-{}", ulid::Ulid::new()).to_lowercase();
        command.env("WEBHOOK_ADMIN_API_KEY", &admin_key);
        command.envs([
            ("RUST_LOG", "warn,herald=info"),
            ("WEBHOOK_GRPC_ADDR", "127.0.0.1:0"),
            ("WEBHOOK_ADMIN_ADDR", "127.0.0.1:0"),
            ("WEBHOOK_LOG_FORMAT", "json"),
            ("WEBHOOK_STORAGE_TYPE", self.store.name()),
            // The benchmark's sink listens on loopback.
            ("WEBHOOK_EGRESS_ALLOW_CIDRS", "127.0.0.0/8"),
            // The workloads' endpoints lift the rate limit and the breaker and retry a
            // failing endpoint within milliseconds (see `workload`).
            ("WEBHOOK_ENDPOINT_MAX_RATE_LIMIT", "0"),
            ("WEBHOOK_RETRY_MIN_DELAY", "0"),
            ("WEBHOOK_BREAKER_MAX_THRESHOLD", "10000"),
            // Every endpoint points at the one loopback sink: host ceilings as wide as the
            // default worker pool, and no host rate ceiling, so they never hold it back.
            ("WEBHOOK_HOST_MAX_IN_FLIGHT", "256"),
            ("WEBHOOK_HOST_RATE_LIMIT", "0"),
            // W9 registers 100,000 endpoints for one tenant.
            ("WEBHOOK_MAX_ENDPOINTS_PER_TENANT", "1000000"),
        ]);
        if let Some(retention) = self.retention {
            command.env("WEBHOOK_RETENTION", format!("{}ms", retention.as_millis()));
        }
        let data_dir = match self.store {
            StoreKind::Embedded => {
                let dir = match data_dir {
                    Some(dir) => dir,
                    None => tempfile::Builder::new()
                        .prefix("herald-bench-data-")
                        .tempdir()
                        .context("a temporary data directory")?,
                };
                command.env("WEBHOOK_DATA_DIR", dir.path());
                Some(dir)
            }
            StoreKind::Memory => None,
            StoreKind::Redis => {
                let redis = self.redis.as_ref().context("a Redis run has its Redis")?;
                let name = format!("bench-{}-{}", std::process::id(), self.started);
                command
                    .env("REDIS_URL", redis.url())
                    .env("WEBHOOK_REDIS_PREFIX", &name)
                    .env("WEBHOOK_INSTANCE_ID", &name);
                None
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let tail = Tail::default();
        let (serving_tx, serving_rx) = oneshot::channel();
        std::thread::spawn({
            let tail = tail.clone();
            move || read_stderr(stderr, &tail, serving_tx)
        });
        let mut herald = Herald {
            child,
            grpc: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            admin_key,
            tail,
            data_dir,
        };
        herald.grpc = match tokio::time::timeout(START_PATIENCE, serving_rx).await {
            Ok(Ok(addr)) => addr,
            Ok(Err(_)) => bail!(
                "herald exited before serving; its stderr:\n{}",
                herald.tail.text()
            ),
            Err(_) => bail!(
                "herald did not log `herald serving` within {START_PATIENCE:?}; its stderr:\n{}",
                herald.tail.text()
            ),
        };
        wait_serving(herald.grpc)
            .await
            .with_context(|| format!("herald's stderr:\n{}", herald.tail.text()))?;
        Ok((herald, spawned.elapsed()))
    }
}

impl Herald {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The embedded store's data directory; `None` on the other stores.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_ref().map(tempfile::TempDir::path)
    }

    /// A new client on its own gRPC channel (one HTTP/2 connection), calling with the
    /// admin key.
    ///
    /// # Errors
    ///
    /// When it does not accept the connection.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let channel = Endpoint::from_shared(format!("http://{}", self.grpc))?
            .timeout(CALL_TIMEOUT)
            .connect()
            .await
            .context("connect to herald")?;
        client(channel, Some(&self.admin_key)).context("the admin key as a header")
    }

    /// Its last stderr lines, for error messages.
    pub fn stderr_tail(&self) -> String {
        self.tail.text()
    }

    /// Kills it; returns its data directory, kept.
    pub fn stop(mut self) -> Option<tempfile::TempDir> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.data_dir.take()
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether our variable `name` could change Herald's settings.
fn is_setting(name: &str) -> bool {
    ["WEBHOOK_", "REDIS_", "CIRCUIT_BREAKER_", "OTEL_", "OTLP_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || ["ENABLE_METRICS", "ENABLE_TRACING", "RUST_LOG"].contains(&name)
        // A serverless platform's variable would size Herald for it.
        || herald::profile::PLATFORM_VARIABLES.contains(&name)
}

/// Reads a child's stderr to its end: hands over the gRPC address of the `herald
/// serving` line, keeps the last lines.
fn read_stderr(
    stderr: std::process::ChildStderr,
    tail: &Tail,
    serving: oneshot::Sender<SocketAddr>,
) {
    let mut serving = Some(serving);
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
        if serving.is_some()
            && let Some(addr) = serving_addr(&line)
            && let Some(tx) = serving.take()
        {
            let _ = tx.send(addr);
        }
        tail.push(line);
    }
}

/// The `grpc` field of the JSON log line `herald serving`.
fn serving_addr(line: &str) -> Option<SocketAddr> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value.get("message")?.as_str()? != "herald serving" {
        return None;
    }
    value.get("grpc")?.as_str()?.parse().ok()
}

/// Polls `grpc.health.v1.Health/Check` until Herald answers SERVING.
async fn wait_serving(addr: SocketAddr) -> anyhow::Result<()> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?;
    let deadline = Instant::now() + START_PATIENCE;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match endpoint.connect().await {
            Ok(channel) => {
                let request = HealthCheckRequest {
                    service: SERVICE.to_owned(),
                };
                match HealthClient::new(channel).check(request).await {
                    Ok(answer) if answer.get_ref().status == ServingStatus::Serving as i32 => {
                        return Ok(());
                    }
                    Ok(answer) => last = format!("status {}", answer.get_ref().status),
                    Err(status) => last = status.to_string(),
                }
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(HEALTH_POLL).await;
    }
    bail!("herald at {addr} did not answer SERVING within {START_PATIENCE:?} (last: {last})")
}

/// A `redis-server` of the run. Dropping it kills the process and removes its directory.
pub struct RedisServer {
    child: Child,
    port: u16,
    /// The AOF and the log; kept until the process is gone.
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` with AOF and `appendfsync always`, no RDB snapshots, and
    /// waits until it answers.
    ///
    /// # Errors
    ///
    /// When `redis-server` is missing, exits at start, or finds no free port.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("herald-bench-redis-")
            .tempdir()
            .context("a temporary directory for redis")?;
        let log = dir.path().join("redis.log");
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let mut child = spawn_redis(dir.path(), &log, port)?;
            match wait_answering(&mut child, port, &log).await {
                Ok(true) => {
                    return Ok(Self {
                        child,
                        port,
                        _dir: dir,
                    });
                }
                // Someone else took the port; the process has exited.
                Ok(false) => {}
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e);
                }
            }
        }
        bail!("redis-server found no free port in {PORT_ATTEMPTS} attempts")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_redis(dir: &Path, log: &Path, port: u16) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .context("open the redis log")?;
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .args(["--save", "", "--daemonize", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .context("run redis-server (the Redis store needs it on PATH; scripts/test installs it)")
}

/// Waits until `child`, and no other process, answers on `port`: true once it does,
/// false when it exited because the port was taken.
async fn wait_answering(child: &mut Child, port: u16, log: &Path) -> anyhow::Result<bool> {
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = Instant::now() + START_PATIENCE;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            if log.contains("Address already in use") {
                return Ok(false);
            }
            bail!("redis-server exited at start ({status}); its log:\n{log}");
        }
        // Another Redis could answer on a port it took from us; ours names its pid.
        if serving_pid(&url).await == Some(child.id()) {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("redis-server did not answer within {START_PATIENCE:?}")
}

/// The pid of the Redis answering at `url`, if one answers.
async fn serving_pid(url: &str) -> Option<u32> {
    let info = info(url, "server").await.ok()?;
    info_field(&info, "process_id")?.parse().ok()
}

/// The memory Redis at `url` holds for its data (`used_memory` of `INFO memory`), in MB.
///
/// # Errors
///
/// When Redis does not answer or its answer has no `used_memory`.
pub async fn redis_used_memory_mb(url: &str) -> anyhow::Result<f64> {
    let info = info(url, "memory").await?;
    let bytes: f64 = info_field(&info, "used_memory")
        .and_then(|bytes| bytes.parse().ok())
        .context("used_memory in INFO memory")?;
    Ok(bytes / 1e6)
}

/// One section of `INFO` from the Redis at `url`, on a connection of its own.
async fn info(url: &str, section: &str) -> anyhow::Result<String> {
    let client = redis::Client::open(url)?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(1),
        client.get_multiplexed_async_connection(),
    )
    .await
    .context("connect to redis")??;
    Ok(redis::cmd("INFO")
        .arg(section)
        .query_async(&mut conn)
        .await?)
}

/// The value of `name` in an `INFO` answer (`name:value` lines).
fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// A loopback port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serving_line_names_the_grpc_address() {
        let line = r#"{"timestamp":"t","level":"INFO","message":"herald serving","grpc":"127.0.0.1:4242","admin":"127.0.0.1:4243","storage":"embedded"}"#;
        assert_eq!(serving_addr(line), Some("127.0.0.1:4242".parse().unwrap()));
        assert_eq!(serving_addr(r#"{"message":"herald stopped"}"#), None);
        assert_eq!(serving_addr("herald serving"), None);
    }

    #[test]
    fn info_fields_are_found_by_their_whole_name() {
        let info = "# Memory\r\nused_memory_rss:4000\r\nused_memory:1234\r\n";
        assert_eq!(info_field(info, "used_memory"), Some("1234"));
        assert_eq!(info_field(info, "used_memory_rss"), Some("4000"));
        assert_eq!(info_field(info, "process_id"), None);
    }
}
