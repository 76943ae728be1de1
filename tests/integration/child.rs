//! The real `herald` binary as a child process, for `process` (one instance on the
//! embedded store), `cluster` (several instances sharing a Redis) and `connections`
//! (floods against its open-file limit, its CPU time and memory read from `/proc`).
//!
//! A child starts from [`Settings`]: a fixed base (ports `127.0.0.1:0`, JSON logs, fast
//! retries, loose bounds on endpoints' overrides) plus its store and each test's
//! overrides, and the open-file limit a test asks for; nothing from the environment
//! running the tests leaks in. A thread per child reads its stderr (JSON log lines) into
//! a channel, so the child never blocks on a full pipe and tests wait on log lines
//! instead of sleeping. A child still running when its guard drops (a failed test) is
//! killed, and its stderr printed.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

pub use herald::cli::Client;
use herald::grpc::pb;
use tokio::sync::mpsc;

use crate::support::{ADMIN_KEY, LOOPBACK, PATIENCE, admin_client};

/// The environment of one child: the base settings, its store, then overrides; and
/// the open-file limit it starts with.
#[derive(Debug, Clone)]
pub struct Settings {
    env: Vec<(String, String)>,
    open_files: Option<OpenFiles>,
}

/// An open-file limit (`ulimit -n`) a child starts with, as a service manager would set.
#[derive(Debug, Clone, Copy)]
pub struct OpenFiles {
    pub soft: u64,
    /// `None`: the test process's own hard limit.
    pub hard: Option<u64>,
}

impl Settings {
    /// The settings every child starts from: every test's endpoints point at loopback
    /// sinks, so host ceilings wide enough never to bind (tests of them set their own).
    fn base() -> Self {
        let env = [
            ("RUST_LOG", "info"),
            ("WEBHOOK_GRPC_ADDR", "127.0.0.1:0"),
            ("WEBHOOK_ADMIN_ADDR", "127.0.0.1:0"),
            ("WEBHOOK_LOG_FORMAT", "json"),
            ("WEBHOOK_RETRY_INITIAL_DELAY", "20ms"),
            ("WEBHOOK_MAX_RETRY_DELAY", "200ms"),
            ("WEBHOOK_DEFAULT_RETRY_COUNT", "20"),
            // As in-process tests: overrides bounded only by what each policy accepts.
            ("WEBHOOK_RETRY_MIN_DELAY", "0"),
            ("WEBHOOK_MAX_RETRY_COUNT", "100"),
            ("WEBHOOK_BREAKER_MAX_THRESHOLD", "10000"),
            ("WEBHOOK_ENDPOINT_MAX_RATE_LIMIT", "0"),
            ("WEBHOOK_DEFAULT_TIMEOUT", "10s"),
            ("WEBHOOK_SHUTDOWN_GRACE", "10s"),
            ("WEBHOOK_ADMIN_API_KEY", ADMIN_KEY),
            ("WEBHOOK_EGRESS_ALLOW_CIDRS", LOOPBACK),
            ("WEBHOOK_HOST_MAX_IN_FLIGHT", "10000"),
            ("WEBHOOK_HOST_RATE_LIMIT", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Self {
            env,
            open_files: None,
        }
    }

    /// The embedded store in `data_dir`.
    pub fn embedded(data_dir: &Path) -> Self {
        Self::base()
            .set("WEBHOOK_STORAGE_TYPE", "embedded")
            .set("WEBHOOK_DATA_DIR", &data_dir.display().to_string())
    }

    /// A Redis store at `url`, under `prefix`, as the instance `instance_id`.
    pub fn redis(url: &str, prefix: &str, instance_id: &str) -> Self {
        Self::base()
            .set("WEBHOOK_STORAGE_TYPE", "redis")
            .set("REDIS_URL", url)
            .set("WEBHOOK_REDIS_PREFIX", prefix)
            .set("WEBHOOK_INSTANCE_ID", instance_id)
    }

    /// The same settings without `name`.
    pub fn without(mut self, name: &str) -> Self {
        self.env.retain(|(k, _)| k != name);
        self
    }

    /// The same settings with `name` set to `value` (the last setting of a name wins).
    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same settings, started with the open-file limit `limit`.
    pub fn open_files(mut self, limit: OpenFiles) -> Self {
        self.open_files = Some(limit);
        self
    }
}

/// Whether the test runner's variable `name` could change a child's settings.
fn is_setting(name: &str) -> bool {
    ["WEBHOOK_", "REDIS_", "CIRCUIT_BREAKER_", "OTEL_", "OTLP_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || name == "ENABLE_METRICS"
        || name == "ENABLE_TRACING"
        || herald::profile::PLATFORM_VARIABLES.contains(&name)
}

/// A `herald` child process. Dropping it kills the process if it still runs.
pub struct Herald {
    child: Option<Child>,
    pid: u32,
    /// The gRPC and admin addresses it serves, once it said so.
    grpc: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    /// Stderr lines not yet looked at; closed once the child closed its stderr (exited).
    lines: mpsc::UnboundedReceiver<String>,
    /// Every stderr line looked at so far.
    log: Vec<String>,
}

impl Herald {
    /// Starts the binary with `settings`, without waiting.
    pub fn spawn(settings: &Settings) -> Self {
        let binary = env!("CARGO_BIN_EXE_herald");
        let mut command = match settings.open_files {
            None => Command::new(binary),
            // The shell sets the limit and becomes the binary (same pid): the soft limit
            // first, since the hard one may not fall below it.
            Some(OpenFiles { soft, hard }) => {
                let hard = hard
                    .map(|h| format!(" && ulimit -Hn {h}"))
                    .unwrap_or_default();
                let mut command = Command::new("sh");
                command.args([
                    "-c",
                    &format!("ulimit -Sn {soft}{hard} && exec \"$0\""),
                    binary,
                ]);
                command
            }
        };
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if is_setting(&name) {
                command.env_remove(name.as_ref());
            }
        }
        command.envs(settings.env.iter().map(|(k, v)| (k, v)));
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the herald binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::unbounded_channel();
        // Reads continuously, so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Self {
            pid: child.id(),
            child: Some(child),
            grpc: None,
            admin: None,
            lines,
            log: Vec::new(),
        }
    }

    /// Starts the binary and waits until it serves; returns it with a connected client.
    pub async fn start(settings: &Settings) -> (Self, Client) {
        let mut herald = Self::spawn(settings);
        let serving = herald.wait_for_message("herald serving").await;
        let [addr, admin] = ["grpc", "admin"].map(|name| {
            let addr: SocketAddr = serving[name]
                .as_str()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("the serving line names its {name} address: {serving}"));
            assert!(addr.ip().is_loopback() && addr.port() != 0, "bound {addr}");
            addr
        });
        herald.grpc = Some(addr);
        herald.admin = Some(admin);
        let client = admin_client(addr).await;
        (herald, client)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The CPU time (user and system) the process has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = self.proc_file("stat");
        // The command name (field 2) may hold spaces: count from its closing parenthesis.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        let ticks: u64 = [11, 12]
            .iter()
            .map(|&i| fields[i].parse::<u64>().expect("a tick count"))
            .sum();
        let per_second = rustix::param::clock_ticks_per_second();
        Duration::from_millis(ticks * 1000 / per_second)
    }

    /// The process's resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.proc_file("status")
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    fn proc_file(&self, name: &str) -> String {
        let path = format!("/proc/{}/{name}", self.pid);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    /// The gRPC address of a child started with [`Herald::start`].
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.expect("the child was started and serves")
    }

    /// The admin HTTP address of a child started with [`Herald::start`].
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.expect("the child was started and serves")
    }

    /// Whether the process still runs (it has not exited and was not reaped).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// The stderr read so far, for failure messages.
    pub fn stderr(&self) -> String {
        self.log.join("\n")
    }

    /// Takes in the stderr lines written so far, without waiting.
    pub fn read_log(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
    }

    /// Whether a line read so far contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log.iter().any(|line| line.contains(needle))
    }

    /// The first JSON line read so far whose message starts with `prefix`.
    pub fn logged_message(&self, prefix: &str) -> Option<serde_json::Value> {
        self.log
            .iter()
            .filter_map(|line| log_message(line))
            .find(|(message, _)| message.starts_with(prefix))
            .map(|(_, value)| value)
    }

    /// The first JSON log line whose message starts with `prefix`, read already or
    /// awaited (at most [`PATIENCE`]).
    pub async fn wait_for_message(&mut self, prefix: &str) -> serde_json::Value {
        if let Some(value) = self.logged_message(prefix) {
            return value;
        }
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Err(_) => panic!(
                    "timed out waiting for a log line {prefix:?}; stderr so far:\n{}",
                    self.stderr()
                ),
                Ok(None) => panic!(
                    "herald closed stderr before logging {prefix:?}; stderr:\n{}",
                    self.stderr()
                ),
                Ok(Some(line)) => {
                    let found = log_message(&line).filter(|(m, _)| m.starts_with(prefix));
                    self.log.push(line);
                    if let Some((_, value)) = found {
                        return value;
                    }
                }
            }
        }
    }

    /// Reads stderr to its end (at most [`PATIENCE`]), then reaps the child.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Err(_) => panic!(
                    "herald did not exit within {PATIENCE:?}; stderr so far:\n{}",
                    self.stderr()
                ),
                Ok(None) => break,
                Ok(Some(line)) => self.log.push(line),
            }
        }
        // Stderr is closed: the process is gone or about to be; reaping does not wait long.
        let mut child = self.child.take().expect("the child is not reaped yet");
        tokio::task::block_in_place(|| child.wait()).expect("wait for herald")
    }

    /// SIGKILL: no chance to finish anything.
    pub async fn kill(&mut self) -> ExitStatus {
        self.child
            .as_mut()
            .expect("the child runs")
            .kill()
            .expect("SIGKILL herald");
        self.wait_exit().await
    }

    /// SIGTERM: the graceful shutdown an orchestrator asks for.
    pub fn terminate(&self) {
        assert!(self.child.is_some(), "the child runs");
        let status = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed: {status}", self.pid);
    }

    /// SIGTERM, then the process must exit successfully within [`PATIENCE`].
    pub async fn stop(&mut self) {
        self.terminate();
        let status = self.wait_exit().await;
        assert!(
            status.success(),
            "herald exits cleanly on SIGTERM, not {status}; stderr:\n{}",
            self.stderr()
        );
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        let mut fate = "reaped by the test".to_owned();
        if let Some(mut child) = self.child.take() {
            fate = match child.try_wait() {
                Ok(Some(status)) => format!("had exited on its own ({status})"),
                _ => "killed by the guard".to_owned(),
            };
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- herald pid {}: {fate}", self.pid);
            self.read_log();
            eprintln!(
                "--- stderr of herald (pid {}):\n{}",
                self.pid,
                self.stderr()
            );
        }
    }
}

/// The message of a JSON log line, with the whole line parsed.
fn log_message(line: &str) -> Option<(String, serde_json::Value)> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let message = value.get("message")?.as_str()?.to_owned();
    Some((message, value))
}

/// Registers `req`; returns the endpoint's id.
pub async fn register(client: &mut Client, req: pb::RegisterEndpointRequest) -> String {
    let resp = client
        .register_endpoint(req)
        .await
        .expect("register endpoint")
        .into_inner();
    resp.endpoint.expect("the endpoint is returned").id
}

/// Registers an endpoint at `url` with every other setting left to the defaults.
pub async fn register_url(client: &mut Client, url: String) -> String {
    register(
        client,
        pb::RegisterEndpointRequest {
            url,
            ..Default::default()
        },
    )
    .await
}

pub async fn get_message(client: &mut Client, id: &str) -> pb::GetMessageResponse {
    client
        .get_message(pb::GetMessageRequest {
            message_id: id.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("get message {id}: {e}"))
        .into_inner()
}

pub fn state_name(state: i32) -> String {
    pb::DeliveryState::try_from(state)
        .map(|s| s.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("unknown state {state}"))
}
