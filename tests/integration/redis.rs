//! A private `redis-server` per test, and the tests of what is particular to running on
//! Redis: the settings Herald refuses or warns about, and the fixture's own restart.
//!
//! [`RedisServer`] runs in its own temporary directory on a free loopback port, with AOF
//! on and an fsync per write (what Herald's "OK means durable" needs), and is killed when
//! dropped. No test relies on a Redis left running or on a fixed port. A missing
//! `redis-server` fails the test that needs it, never skips it: `scripts/test` installs
//! it.

use std::fs::OpenOptions;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::child::{Herald, Settings};
use crate::support::share_machine;

/// How long a starting `redis-server` may take to answer.
const START_PATIENCE: Duration = Duration::from_secs(10);
/// Interval between checks of a starting `redis-server`.
const START_POLL: Duration = Duration::from_millis(10);
/// Free ports tried before giving up: another process may take a port between the
/// moment it is found free and the moment Redis binds it.
const PORT_ATTEMPTS: usize = 5;

/// A `redis-server` of one test. Dropping it kills the process.
pub struct RedisServer {
    port: u16,
    /// The working directory (AOF files, the log); kept across [`RedisServer::restart`].
    dir: tempfile::TempDir,
    /// Settings beyond the fixture's own, e.g. a maxmemory policy.
    extra: Vec<String>,
    child: Option<Child>,
}

/// Why one launch failed.
enum Launch {
    /// The port was taken by someone else.
    PortTaken,
    Failed(String),
}

impl RedisServer {
    /// Starts a server with AOF on (`appendfsync always`) and no RDB snapshots, and
    /// waits until it answers.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// [`RedisServer::start`] with more `redis-server` arguments (`--name value`).
    pub async fn start_with(extra: &[&str]) -> Self {
        let mut server = Self {
            port: 0,
            dir: tempfile::tempdir().expect("a temporary directory for redis"),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
        };
        for attempt in 1..=PORT_ATTEMPTS {
            server.port = free_port();
            match server.launch().await {
                Ok(()) => return server,
                Err(Launch::PortTaken) if attempt < PORT_ATTEMPTS => {}
                Err(Launch::PortTaken) => {
                    panic!("redis-server found no free port in {PORT_ATTEMPTS} attempts")
                }
                Err(Launch::Failed(why)) => panic!("{why}"),
            }
        }
        unreachable!("every attempt returns or panics")
    }

    /// The working directory: Redis's files (the AOF) and its log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: Redis keeps only what its AOF holds.
    pub fn kill(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("redis runs");
        child.kill().expect("SIGKILL redis-server");
        child.wait().expect("reap redis-server")
    }

    /// Starts Redis again on the same port and directory, so it replays its AOF.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "redis was killed before its restart");
        // A connection of someone else may hold the port for a moment after the kill.
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            match self.launch().await {
                Ok(()) => return,
                Err(Launch::PortTaken) if Instant::now() < deadline => {
                    tokio::time::sleep(START_POLL).await;
                }
                Err(Launch::PortTaken) => panic!(
                    "redis-server could not bind port {} again within {START_PATIENCE:?}",
                    self.port
                ),
                Err(Launch::Failed(why)) => panic!("{why}"),
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// What the server wrote, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts the process on `self.port` and waits until it, and no other process,
    /// answers there.
    async fn launch(&mut self) -> Result<(), Launch> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("the redis log file opens");
        let port = self.port.to_string();
        let dir = self.dir.path().display().to_string();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port, "--bind", "127.0.0.1", "--dir", &dir])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", "", "--daemonize", "no"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone the log file")))
            .stderr(Stdio::from(log));
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run redis-server ({e}); the Redis tests need it on PATH \
                 (scripts/test installs it with apt-get)"
            )
        });
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            let child = self.child.as_mut().expect("just started");
            if let Some(status) = child.try_wait().expect("poll redis-server") {
                self.child = None;
                let log = self.log();
                return Err(if log.contains("Address already in use") {
                    Launch::PortTaken
                } else {
                    Launch::Failed(format!(
                        "redis-server exited at start ({status}); its log:\n{log}"
                    ))
                });
            }
            // Another Redis could answer on a port it took from us; ours names its pid.
            if serving_pid(&self.url()).await == Some(pid) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Launch::Failed(format!(
                    "redis-server did not answer within {START_PATIENCE:?}; its log:\n{}",
                    self.log()
                )));
            }
            tokio::time::sleep(START_POLL).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- redis-server log (port {}):\n{}", self.port, self.log());
        }
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// The pid of the Redis answering at `url`, if one answers.
async fn serving_pid(url: &str) -> Option<u32> {
    let client = ::redis::Client::open(url).ok()?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(1),
        client.get_multiplexed_async_connection(),
    )
    .await
    .ok()?
    .ok()?;
    let info: String = ::redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
}

/// A connection to `server` for tests that look at Redis directly.
pub async fn connect(server: &RedisServer) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test redis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_fixture_keeps_acknowledged_writes_across_a_kill() {
    let mut server = RedisServer::start().await;
    let mut conn = connect(&server).await;
    let () = ::redis::cmd("SET")
        .arg("written")
        .arg("before the kill")
        .query_async(&mut conn)
        .await
        .unwrap();
    let status = server.kill();
    assert!(!status.success(), "killed, not exited: {status}");
    assert_eq!(serving_pid(&server.url()).await, None, "nothing answers");

    server.restart().await;
    let mut conn = connect(&server).await;
    let value: Option<String> = ::redis::cmd("GET")
        .arg("written")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        value.as_deref(),
        Some("before the kill"),
        "replayed from the AOF"
    );
    let config: Vec<String> = ::redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendfsync")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(config, ["appendfsync", "always"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_that_may_evict_is_refused_unless_allowed() {
    let _machine = share_machine().await;
    let server = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]).await;
    let settings = Settings::redis(&server.url(), "evicting", "a");

    let mut refused = Herald::spawn(&settings);
    let status = refused.wait_exit().await;
    let stderr = refused.stderr();
    println!("eviction policy allkeys-lru: exit {status}, stderr:\n{stderr}");
    assert!(
        status.code().is_some_and(|c| c != 0),
        "Herald must refuse a Redis that may evict keys, not {status}; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("WEBHOOK_REDIS_ALLOW_EVICTION") && stderr.contains("allkeys-lru"),
        "the error names the policy and the setting that allows it:\n{stderr}"
    );
    assert!(!refused.logged("herald serving"), "{stderr}");

    let (mut allowed, mut client) =
        Herald::start(&settings.set("WEBHOOK_REDIS_ALLOW_EVICTION", "true")).await;
    client
        .list_endpoints(herald::grpc::pb::ListEndpointsRequest::default())
        .await
        .expect("serves when eviction is allowed");
    allowed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_without_aof_is_used_with_a_warning() {
    let _machine = share_machine().await;
    let server = RedisServer::start_with(&["--appendonly", "no"]).await;
    let (mut herald, mut client) =
        Herald::start(&Settings::redis(&server.url(), "no-aof", "a")).await;
    client
        .list_endpoints(herald::grpc::pb::ListEndpointsRequest::default())
        .await
        .expect("serves without AOF");
    herald.read_log();
    // The warning meant, and not another one that merely mentions AOF (such as the
    // setting being unreadable).
    let warning = herald
        .logged_message("Redis runs without AOF: acknowledged messages are lost")
        .unwrap_or_else(|| panic!("a warning says AOF is off; stderr:\n{}", herald.stderr()));
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert!(
        herald.logged_message("cannot read Redis").is_none(),
        "the settings were readable; stderr:\n{}",
        herald.stderr()
    );
    herald.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_at_startup_is_an_error() {
    let _machine = share_machine().await;
    // A port nothing listens on: no fallback to another store may hide that.
    let url = format!("redis://127.0.0.1:{}", free_port());
    let mut herald = Herald::spawn(&Settings::redis(&url, "unreachable", "a"));
    let status = herald.wait_exit().await;
    let stderr = herald.stderr();
    assert!(
        status.code().is_some_and(|c| c != 0),
        "Herald must not start without its Redis, not {status}; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("cannot reach Redis at 127.0.0.1:"),
        "the error says Redis is unreachable, and where:\n{stderr}"
    );
    assert!(!herald.logged("herald serving"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_consumer_group_is_recreated() {
    let _machine = share_machine().await;
    let server = RedisServer::start().await;
    let mut sink = crate::support::Sink::start().await;
    let (mut herald, mut client) =
        Herald::start(&Settings::redis(&server.url(), "regroup", "a")).await;
    crate::child::register_url(&mut client, sink.url("/hook")).await;
    let publish =
        |n: u32| crate::support::publish_json("order.created", serde_json::json!({ "n": n }));
    let first = client
        .publish(publish(1))
        .await
        .expect("publish")
        .into_inner()
        .message_id;
    sink.next().await;
    // Its outcome is recorded (the group acknowledged it) before the group goes: else the
    // attempt is repeated, as it should be, and arrives again.
    crate::support::eventually("the first delivery is recorded", || {
        let (mut client, id) = (client.clone(), first.clone());
        async move {
            let message = client
                .get_message(herald::grpc::pb::GetMessageRequest {
                    message_id: id,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner();
            let succeeded = herald::grpc::pb::DeliveryState::Succeeded as i32;
            message
                .deliveries
                .iter()
                .all(|d| d.state == succeeded)
                .then_some(())
        }
    })
    .await;

    // What a Redis restarted without its data leaves: no ready stream, no group.
    let mut conn = connect(&server).await;
    let destroyed: i64 = ::redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg("{regroup}:ready")
        .arg("workers")
        .query_async(&mut conn)
        .await
        .expect("destroy the consumer group");
    assert_eq!(destroyed, 1);

    client.publish(publish(2)).await.expect("publish");
    let received = sink.next().await;
    let body: serde_json::Value = serde_json::from_slice(&received.body).unwrap();
    assert_eq!(body["n"], 2, "delivered after the group was recreated");
    herald.read_log();
    assert!(
        herald.logged("consumer group is missing; recreating it"),
        "{}",
        herald.stderr()
    );
    herald.stop().await;
}
