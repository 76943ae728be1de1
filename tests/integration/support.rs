//! Test support: a real Herald on 127.0.0.1:0 on the backend a test names (memory,
//! embedded, or a private `redis-server`) and a real HTTP sink on another ephemeral port
//! whose answers each test scripts. Waiting is on events (the sink's channel) or on
//! bounded polls of the API; never on a fixed sleep.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use herald::app::Application;
use herald::auth::SecretHash;
use herald::cli::{Client, client};
use herald::config::{Config, StorageConfig};
use herald::delivery::signer;
use herald::domain::{Jitter, Secret};
use herald::grpc::pb;
use herald::policy::bounds::OverrideBounds;
use herald::policy::protection::HostCeiling;
use herald::policy::retry::RetryPolicy;
use herald::storage::Store;
use herald::storage::redis::RedisConfig;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, Semaphore, mpsc, oneshot};
use tonic::transport::Channel;

use crate::redis::RedisServer;

/// Longest any test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The block test servers may deliver to: the sinks' (`WEBHOOK_EGRESS_ALLOW_CIDRS`).
pub const LOOPBACK: &str = "127.0.0.0/8";

/// The operator admin key every test server accepts (`WEBHOOK_ADMIN_API_KEY`); tests
/// call Herald the way a user does, with a credential.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdefghijklmnopqrstuv";

/// A client of the server at `addr` that calls with `credential`.
pub async fn client_with(addr: SocketAddr, credential: Option<&str>) -> Client {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("a valid address")
        .connect()
        .await
        .expect("client connects");
    client(channel, credential).expect("a header value")
}

/// A client of the server at `addr` with the admin key.
pub async fn admin_client(addr: SocketAddr) -> Client {
    client_with(addr, Some(ADMIN_KEY)).await
}
/// Interval between polls of the API while waiting for a state.
const POLL: Duration = Duration::from_millis(10);

/// Which store a test runs against.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Memory,
    Embedded,
    /// A private `redis-server` per test (see `redis`).
    Redis,
}

/// Runs an async test once per backend, so every backend passes the same suite.
#[macro_export]
macro_rules! each_backend {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory() {
                    super::$name($crate::support::Backend::Memory).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn embedded() {
                    super::$name($crate::support::Backend::Embedded).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis() {
                    super::$name($crate::support::Backend::Redis).await;
                }
            }
        )*
    };
}

/// A running Herald with a connected client.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The admin HTTP port (metrics, health).
    pub admin: SocketAddr,
    pub client: Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// Keeps the store's directory or Redis alive for the test.
    _store: StoreGuard,
    /// This test's share of the machine, held while the server runs.
    _machine: Machine,
}

/// Tests run in parallel and share the machine; a test that compares two timed runs
/// takes it alone, so that other tests' load does not fall on one run only.
static MACHINE: RwLock<()> = RwLock::const_new(());

/// A test's hold on the machine.
pub enum Machine {
    Shared {
        _guard: RwLockReadGuard<'static, ()>,
    },
    Alone {
        _guard: RwLockWriteGuard<'static, ()>,
    },
}

/// A share of the machine, for tests that run beside others.
pub async fn share_machine() -> Machine {
    Machine::Shared {
        _guard: MACHINE.read().await,
    }
}

/// The whole machine: waits for every running test to finish, and holds others back.
/// What those tests left for the disk to write is flushed first, so that the kernel's
/// writeback of their files does not land on one of the timed runs only (Redis and the
/// embedded store fsync every acknowledged write).
pub async fn take_machine() -> Machine {
    let guard = MACHINE.write().await;
    tokio::task::spawn_blocking(|| std::process::Command::new("sync").status())
        .await
        .expect("sync runs")
        .expect("sync starts");
    Machine::Alone { _guard: guard }
}

/// A fast retry schedule for tests: 3 retries, 20 ms growing ×2, at most 200 ms.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::try_new(
        3,
        Duration::from_millis(20),
        Duration::from_millis(200),
        2.0,
        Jitter::Proportional,
    )
    .unwrap()
}

/// What a test's store lives in, kept until the test ends (dropping it removes the
/// directory or kills the Redis).
pub enum StoreGuard {
    None,
    Dir { _dir: tempfile::TempDir },
    Redis { _server: RedisServer },
}

/// Settings for `server`, under a prefix and an instance id of their own.
pub fn redis_storage(server: &RedisServer) -> StorageConfig {
    let unique = ulid::Ulid::new().to_string().to_lowercase();
    StorageConfig::Redis(RedisConfig {
        url: server.url(),
        password: None,
        db: None,
        prefix: format!("test-{unique}"),
        instance_id: format!("instance-{unique}"),
        allow_eviction: false,
    })
}

/// Host ceilings that never bind: every test's endpoints point at loopback sinks, and
/// only the tests of host ceilings set tight ones.
const UNBOUNDED_HOSTS: HostCeiling = HostCeiling {
    max_in_flight: 10_000,
    rate_limit: None,
};

/// The configuration tests start from: ephemeral port, fast retries, short timeout, host
/// ceilings out of the way.
pub async fn test_config(backend: Backend) -> (Config, StoreGuard) {
    let (storage, guard) = match backend {
        Backend::Memory => (StorageConfig::Memory, StoreGuard::None),
        Backend::Embedded => {
            let dir = tempfile::tempdir().unwrap();
            (
                StorageConfig::Embedded {
                    data_dir: dir.path().to_owned(),
                },
                StoreGuard::Dir { _dir: dir },
            )
        }
        Backend::Redis => {
            let server = RedisServer::start().await;
            (
                redis_storage(&server),
                StoreGuard::Redis { _server: server },
            )
        }
    };
    let mut config = Config::with_storage(storage);
    config.grpc_addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
    config.delivery.retry = fast_retry();
    // Tests' endpoints retry within milliseconds and keep breakers and rate limits out of
    // the way: their overrides are bounded only by what each policy accepts. Tests of
    // the bounds set their own.
    config.delivery.protection.bounds = OverrideBounds {
        max_rate: None,
        min_delay: Duration::ZERO,
        max_retries: RetryPolicy::MAX_RETRIES,
        max_failure_threshold: 10_000,
        ..config.delivery.protection.bounds
    };
    config.delivery.request_timeout = Duration::from_secs(5);
    config.delivery.protection.host = UNBOUNDED_HOSTS;
    config.shutdown_grace = Duration::from_secs(5);
    config.auth.admin_key = Some(SecretHash::of(ADMIN_KEY));
    // The sinks listen on loopback, which Herald reaches only when allowed.
    config.egress.allow = vec![LOOPBACK.parse().unwrap()];
    (config, guard)
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_holding(share_machine().await, backend, adjust).await
}

/// Starts a Herald for a test that already holds `machine`.
pub async fn spawn_app_holding(
    machine: Machine,
    backend: Backend,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let (mut config, store) = test_config(backend).await;
    adjust(&mut config);
    let tls = config.tls.is_some();
    let app = Application::build(config).await.expect("herald starts");
    serve(app, machine, store, tls).await
}

/// Starts a Herald over `store`, a store of the test's own, with the test settings.
pub async fn spawn_app_over(store: Arc<dyn Store>) -> TestApp {
    let (config, guard) = test_config(Backend::Memory).await;
    let app = Application::build_with_store(config, store)
        .await
        .expect("herald starts");
    serve(app, share_machine().await, guard, false).await
}

/// Runs `app` until the test stops it, with a client of the admin key.
async fn serve(app: Application, machine: Machine, store: StoreGuard, tls: bool) -> TestApp {
    let addr = app.local_addr();
    let admin = app.admin_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .expect("herald runs");
    });
    let client = if tls {
        // A TLS server's tests make their own clients, trusting its CA; this plaintext
        // one could not speak to it, so it never connects.
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("a valid address")
            .connect_lazy();
        client(channel, Some(ADMIN_KEY)).expect("a header value")
    } else {
        admin_client(addr).await
    };
    TestApp {
        addr,
        admin,
        client,
        shutdown: Some(tx),
        server: Some(server),
        _store: store,
        _machine: machine,
    }
}

impl TestApp {
    /// Stops the server the way SIGTERM would, and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(PATIENCE, server)
                .await
                .expect("herald stops in time")
                .expect("herald task");
        }
    }

    /// Registers an endpoint at `url` with the given filter; returns its id and secret.
    pub async fn register(&mut self, req: pb::RegisterEndpointRequest) -> (String, Secret) {
        let resp = self
            .client
            .register_endpoint(req)
            .await
            .expect("register")
            .into_inner();
        (
            resp.endpoint.unwrap().id,
            Secret::parse(&resp.secret).unwrap(),
        )
    }

    /// Registers an endpoint at `url` with every other setting left to the defaults.
    pub async fn register_url(&mut self, url: String) -> (String, Secret) {
        self.register(pb::RegisterEndpointRequest {
            url,
            ..Default::default()
        })
        .await
    }

    /// Publishes `count` events of one type in one batch, numbered `{"i": n}`; returns
    /// their message ids in order.
    pub async fn publish_many(&mut self, event_type: &str, count: usize) -> Vec<String> {
        self.publish_batch(
            (0..count)
                .map(|i| publish_json(event_type, serde_json::json!({ "i": i })))
                .collect(),
        )
        .await
    }

    /// Publishes a batch that must succeed in full; returns the message ids in order.
    pub async fn publish_batch(&mut self, requests: Vec<pb::PublishRequest>) -> Vec<String> {
        let results = self
            .client
            .publish_batch(pb::PublishBatchRequest { requests })
            .await
            .expect("publish batch")
            .into_inner()
            .results;
        results
            .into_iter()
            .map(|r| match r.result {
                Some(pb::publish_batch_result::Result::Published(p)) => p.message_id,
                other => panic!("a batch event was refused: {other:?}"),
            })
            .collect()
    }

    pub async fn publish_json(
        &mut self,
        event_type: &str,
        json: serde_json::Value,
    ) -> pb::PublishResponse {
        self.client
            .publish(publish_json(event_type, json))
            .await
            .expect("publish")
            .into_inner()
    }

    pub async fn message(&mut self, id: &str) -> pb::GetMessageResponse {
        self.client
            .get_message(pb::GetMessageRequest {
                message_id: id.to_owned(),
                ..Default::default()
            })
            .await
            .expect("get message")
            .into_inner()
    }

    pub async fn attempts(&mut self, message_id: &str) -> Vec<pb::Attempt> {
        let req = pb::ListAttemptsRequest {
            message_id: message_id.to_owned(),
            ..Default::default()
        };
        self.client
            .list_attempts(req)
            .await
            .expect("list attempts")
            .into_inner()
            .attempts
    }

    /// The admin port's metrics, in the text format.
    pub async fn scrape(&self) -> String {
        scrape(self.admin).await
    }

    /// The attempts of a message once `ready` holds for them.
    pub async fn attempts_when(
        &self,
        message_id: &str,
        ready: impl Fn(&[pb::Attempt]) -> bool,
    ) -> Vec<pb::Attempt> {
        let ready = &ready;
        eventually(&format!("the attempts of {message_id}"), || {
            let mut client = self.client.clone();
            let message_id = message_id.to_owned();
            async move {
                let attempts = client
                    .list_attempts(pb::ListAttemptsRequest {
                        message_id,
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .attempts;
                ready(&attempts).then_some(attempts)
            }
        })
        .await
    }

    /// Polls the message until its delivery to `endpoint` is in `state`.
    pub async fn wait_for_delivery(
        &self,
        message_id: &str,
        endpoint: &str,
        state: pb::DeliveryState,
    ) -> pb::Delivery {
        let client = self.client.clone();
        eventually(
            &format!("delivery of {message_id} to {endpoint} reaches {state:?}"),
            || {
                let mut client = client.clone();
                let (message_id, endpoint) = (message_id.to_owned(), endpoint.to_owned());
                async move {
                    let resp = client
                        .get_message(pb::GetMessageRequest {
                            message_id,
                            // The admin key sees the message whatever its tenant.
                            all_tenants: true,
                            ..Default::default()
                        })
                        .await
                        .ok()?
                        .into_inner();
                    resp.deliveries
                        .into_iter()
                        .find(|d| d.endpoint_id == endpoint && d.state == state as i32)
                }
            },
        )
        .await
    }
}

/// The metrics of the admin port at `admin`, in the text format.
pub async fn scrape(admin: SocketAddr) -> String {
    tokio::time::timeout(PATIENCE, reqwest::get(format!("http://{admin}/metrics")))
        .await
        .expect("the admin port answers in time")
        .expect("the admin port answers")
        .text()
        .await
        .expect("a scrape")
}

/// The value of one series (`name{labels}`) in a scrape; `None` when it is absent.
pub fn metric(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().expect("a number"))
}

/// The field violations of an `INVALID_ARGUMENT` status, as (field, description), sorted.
pub fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let mut found: Vec<_> = tonic_types::StatusExt::get_details_bad_request(status)
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect();
    found.sort();
    found
}

/// Polls `check` until it yields a value, for at most [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(POLL);
    loop {
        tick.tick().await;
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
    }
}

/// An HTTP client as a browser's fetch is: HTTP/1.1 only.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

pub fn publish_json(event_type: &str, json: serde_json::Value) -> pb::PublishRequest {
    pb::PublishRequest {
        event_type: event_type.to_owned(),
        payload: Some(pb::publish_request::Payload::Json(
            herald::grpc::response::proto_value(json),
        )),
        ..Default::default()
    }
}

pub fn publish_raw(event_type: &str, data: &[u8], content_type: &str) -> pb::PublishRequest {
    pb::PublishRequest {
        event_type: event_type.to_owned(),
        payload: Some(pb::publish_request::Payload::Raw(pb::RawPayload {
            data: data.to_vec(),
            content_type: content_type.to_owned(),
        })),
        ..Default::default()
    }
}

/// A request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// The sender's address: which process sent it can be told from its port.
    pub peer: SocketAddr,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Whether `secret` verifies the request the way a receiver following the standard
    /// would (its timestamp checked against now, with 5 minutes' tolerance).
    pub fn verify(&self, secret: &Secret) -> Result<(), signer::VerifyError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let timestamp: i64 = self
            .header("webhook-timestamp")
            .parse()
            .expect("numeric webhook-timestamp");
        signer::verify(
            secret,
            self.header("webhook-signature"),
            self.header("webhook-id"),
            timestamp,
            &self.body,
            now,
            300,
        )
    }
}

/// How the sink answers one request.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// When set, the answer waits for a permit of this gate.
    pub gate: Option<Arc<Semaphore>>,
    /// When set, the answer takes this long, like a slow receiver.
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            gate: None,
            delay: None,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn held_by(mut self, gate: Arc<Semaphore>) -> Self {
        self.gate = Some(gate);
        self
    }

    pub fn slow(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

#[derive(Default)]
struct Script {
    /// Answers for the next requests to each path, in order; then `200`.
    queued: HashMap<String, VecDeque<Reply>>,
    /// The answer once a path's queue is empty.
    default: HashMap<String, Reply>,
}

/// Requests the sink is answering at once: now, and the most so far.
#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    most: AtomicUsize,
}

/// One request being answered; counted until dropped.
struct Answering(Arc<Concurrency>);

impl Answering {
    fn start(concurrency: Arc<Concurrency>) -> Self {
        let now = concurrency.now.fetch_add(1, Ordering::SeqCst) + 1;
        concurrency.most.fetch_max(now, Ordering::SeqCst);
        Self(concurrency)
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A real HTTP server on an ephemeral port that records every request.
pub struct Sink {
    pub addr: SocketAddr,
    received: mpsc::UnboundedReceiver<Received>,
    script: Arc<Mutex<Script>>,
    concurrency: Arc<Concurrency>,
}

impl Sink {
    pub async fn start() -> Self {
        let (tx, received) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(Script::default()));
        let concurrency = Arc::new(Concurrency::default());
        let (handler_script, handler_concurrency) = (script.clone(), concurrency.clone());
        let app = axum::Router::new().fallback(move |req: Request| {
            let (tx, script) = (tx.clone(), handler_script.clone());
            let answering = Answering::start(handler_concurrency.clone());
            async move {
                let response = answer(req, tx, script).await;
                drop(answering);
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            addr,
            received,
            script,
            concurrency,
        }
    }

    /// The most requests the sink was answering at once so far (each counted from its
    /// arrival until its answer is ready).
    pub fn most_concurrent(&self) -> usize {
        self.concurrency.most.load(Ordering::SeqCst)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next answers to requests at `path`, in order.
    pub fn queue(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        self.script
            .lock()
            .unwrap()
            .queued
            .entry(path.to_owned())
            .or_default()
            .extend(replies);
    }

    /// The answer at `path` once its queue is used up.
    pub fn always(&self, path: &str, reply: Reply) {
        self.script
            .lock()
            .unwrap()
            .default
            .insert(path.to_owned(), reply);
    }

    /// The next request, waiting at most [`PATIENCE`].
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(PATIENCE, self.received.recv())
            .await
            .expect("the sink received a request in time")
            .expect("sink running")
    }

    /// The next `n` requests.
    pub async fn take(&mut self, n: usize) -> Vec<Received> {
        let mut all = Vec::with_capacity(n);
        for _ in 0..n {
            all.push(self.next().await);
        }
        all
    }

    /// Requests received and not yet taken, without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        std::iter::from_fn(|| self.received.try_recv().ok()).collect()
    }
}

async fn answer(
    req: Request,
    tx: mpsc::UnboundedSender<Received>,
    script: Arc<Mutex<Script>>,
) -> Response {
    let path = req.uri().path().to_owned();
    let headers = req.headers().clone();
    let ConnectInfo(peer) = *req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .expect("the sink serves with connect info");
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let reply = {
        let mut s = script.lock().unwrap();
        let queued = s.queued.get_mut(&path).and_then(VecDeque::pop_front);
        queued
            .or_else(|| s.default.get(&path).cloned())
            .unwrap_or_else(|| Reply::status(200))
    };
    let _ = tx.send(Received {
        path,
        peer,
        headers,
        body,
        at: Instant::now(),
    });
    if let Some(gate) = &reply.gate {
        gate.acquire().await.unwrap().forget();
    }
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        format!("sink answered {}", reply.status),
    )
        .into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}
