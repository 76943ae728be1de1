//! The sink: the HTTP/1.1 server on loopback that Herald delivers the benchmark's
//! webhooks to.
//!
//! Paths name the endpoint and its behaviour: `/e/<n>` answers 204 at once,
//! `/slow/<ms>/<n>` after `ms` milliseconds, `/fail/<n>` always 500. For each accepted
//! request it records the endpoint number, the `webhook-id` header, the publish time
//! read from its fixed place in the payload and the receipt time; failing paths are only
//! counted. It parses no JSON and holds its lock only to push one record: it shares two
//! cores with Herald. It runs on a thread of its own (one current-thread runtime), so
//! its CPU time is told apart from the publishers'. What the records mean (the ledger,
//! latencies) is worked out by `workload` once a phase is over.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::serve::ListenerExt as _;
use tokio::sync::oneshot;

use crate::payload::{self, Clock};
use crate::procfs;

/// One accepted request.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// The endpoint number from the path.
    pub endpoint: u32,
    /// The `webhook-id` header: the message id.
    pub id: Box<str>,
    /// Publish time written in the payload (the scheduled time in open loop).
    pub sent_ns: u64,
    pub received_ns: u64,
}

#[derive(Clone)]
pub struct Sink {
    inner: Arc<Inner>,
}

struct Inner {
    clock: Clock,
    addr: SocketAddr,
    /// The thread serving the sink, for its CPU time; `None` if Linux did not say.
    thread: Option<u32>,
    receipts: Mutex<Vec<Receipt>>,
    /// Requests recorded since the last reset; read often, so kept apart from the lock.
    accepted: AtomicU64,
    /// Requests answered with an error since the last reset (failing paths, bad bodies).
    refused: AtomicU64,
}

impl Sink {
    /// Binds 127.0.0.1:0 and serves, on a thread of its own, until the process ends.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound or the thread cannot start.
    pub async fn start(clock: Clock) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("the sink's runtime")?;
        let listener = {
            // Registered with the sink's runtime, which will drive it.
            let _runtime = runtime.enter();
            let listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind the sink")?;
            listener.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(listener)?
        };
        let addr = listener.local_addr()?;
        let (thread_tx, thread_rx) = oneshot::channel();
        let (router_tx, router_rx) = oneshot::channel::<Router>();
        std::thread::Builder::new()
            .name("bench-sink".to_owned())
            .spawn(move || {
                let _ = thread_tx.send(thread_id());
                runtime.block_on(async move {
                    let Ok(router) = router_rx.await else {
                        return;
                    };
                    // Small answers must not wait for Nagle's algorithm.
                    let listener = listener.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    let _ = axum::serve(listener, router).await;
                });
            })
            .context("start the sink's thread")?;
        let thread = thread_rx.await.context("the sink's thread starts")?;
        let sink = Self {
            inner: Arc::new(Inner {
                clock,
                addr,
                thread,
                receipts: Mutex::new(Vec::new()),
                accepted: AtomicU64::new(0),
                refused: AtomicU64::new(0),
            }),
        };
        let router = Router::new()
            .route("/e/{endpoint}", post(accept))
            .route("/slow/{ms}/{endpoint}", post(accept_slowly))
            .route("/fail/{endpoint}", post(refuse))
            .with_state(sink.clone());
        router_tx
            .send(router)
            .map_err(|_| anyhow::anyhow!("the sink's thread ended at start"))?;
        Ok(sink)
    }

    /// CPU seconds the sink's thread has used so far, when Linux tells.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let thread = self.inner.thread?;
        procfs::thread_cpu_seconds(std::process::id(), thread).ok()
    }

    /// The URL of endpoint `n` answering at once.
    pub fn url(&self, n: u32) -> String {
        format!("http://{}/e/{n}", self.inner.addr)
    }

    /// The URL of endpoint `n` answering after `delay`.
    pub fn slow_url(&self, n: u32, delay: Duration) -> String {
        format!("http://{}/slow/{}/{n}", self.inner.addr, delay.as_millis())
    }

    /// The URL of endpoint `n` answering 500 to everything.
    pub fn failing_url(&self, n: u32) -> String {
        format!("http://{}/fail/{n}", self.inner.addr)
    }

    /// Forgets every record and count: the next phase starts from nothing.
    pub fn reset(&self) {
        let mut receipts = self.lock();
        receipts.clear();
        self.inner.accepted.store(0, Ordering::Relaxed);
        self.inner.refused.store(0, Ordering::Relaxed);
    }

    pub fn accepted(&self) -> u64 {
        self.inner.accepted.load(Ordering::Relaxed)
    }

    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// Runs `f` over the records so far. Requests wait meanwhile: keep it short, or call
    /// it once the phase is over.
    pub fn with_receipts<T>(&self, f: impl FnOnce(&[Receipt]) -> T) -> T {
        f(&self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Receipt>> {
        // A panic while pushing cannot leave the vector half-written.
        self.inner
            .receipts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the request; the answer to give.
    fn record(&self, endpoint: u32, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        let received_ns = self.inner.clock.now_ns();
        let id = headers.get("webhook-id").and_then(|v| v.to_str().ok());
        let (Some(id), Some(sent_ns)) = (id, payload::sent_ns(body)) else {
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
            return StatusCode::BAD_REQUEST;
        };
        let receipt = Receipt {
            endpoint,
            id: id.into(),
            sent_ns,
            received_ns,
        };
        self.lock().push(receipt);
        self.inner.accepted.fetch_add(1, Ordering::Relaxed);
        StatusCode::NO_CONTENT
    }
}

async fn accept(
    State(sink): State<Sink>,
    Path(endpoint): Path<u32>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    sink.record(endpoint, &headers, &body)
}

/// Recorded on arrival (the delivery reached the receiver), answered after the delay.
async fn accept_slowly(
    State(sink): State<Sink>,
    Path((ms, endpoint)): Path<(u64, u32)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = sink.record(endpoint, &headers, &body);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    status
}

async fn refuse(State(sink): State<Sink>) -> StatusCode {
    sink.inner.refused.fetch_add(1, Ordering::Relaxed);
    StatusCode::INTERNAL_SERVER_ERROR
}

/// The Linux thread id of the calling thread.
fn thread_id() -> Option<u32> {
    // "/proc/thread-self" links to "<pid>/task/<tid>".
    std::fs::read_link("/proc/thread-self")
        .ok()?
        .file_name()?
        .to_str()?
        .parse()
        .ok()
}
