//! The workloads and how one is measured.
//!
//! A workload registers its own endpoints, subscribed to its own event type (`w2.*`),
//! so no two workloads share a delivery; it deletes them at its end. It then runs a
//! warm-up (results discarded), snapshots CPU time and resets the peak RSS, publishes
//! its measured messages (closed or open loop), waits until every delivery arrived (or
//! nothing arrived for the stall limit), and works out the figures from the publishers'
//! answers and the sink's records: publish rate and latency, end-to-end delivery rate,
//! publish → delivery latency, CPU per delivery, peak RSS, and the ledger (published ×
//! matching endpoints = delivered + missing, duplicates counted).
//!
//! It does not judge the figures against the budget; `report` does.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use herald::grpc::pb;
use indicatif::ProgressBar;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::payload::{self, Clock, ms};
use crate::procfs::{self, MachineTime};
use crate::report;
use crate::sink::{Receipt, Sink};

pub use herald::cli::Client;

/// Attempts in flight per endpoint: enough that the sink's round trip never limits a
/// healthy endpoint, and 64 × 50 ms bounds the slow one at 1,280 deliveries/s.
const MAX_IN_FLIGHT: u32 = 64;
/// The highest breaker threshold Herald can allow (the bench servers allow it with
/// `WEBHOOK_BREAKER_MAX_THRESHOLD`): a benchmark endpoint's circuit stays closed, so the
/// failing endpoint keeps costing attempts.
const BREAKER_THRESHOLD: u32 = 10_000;
/// Longest wait for one phase's deliveries however steadily they trickle in.
const SETTLE_LIMIT: Duration = Duration::from_secs(30 * 60);
/// Registrations and deletions in flight at once.
const REGISTRATION_CALLS: usize = 64;
/// How often the progress bar and the wait for deliveries look at the sink.
const TICK: Duration = Duration::from_millis(50);

/// What an endpoint of a workload does.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Answers 204 at once.
    Healthy,
    /// Answers 204 after this long.
    Slow(Duration),
    /// Answers 500 to everything; retried fast, never delivered.
    Failing,
}

/// How messages are published.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// `publishers` concurrent publishers, each sending its next message once the last
    /// is acknowledged, until `messages` are sent.
    Closed { messages: u64, publishers: usize },
    /// `rate` messages per second for `duration`, each at its scheduled time whatever
    /// the answers to the others; latencies count from the scheduled time.
    Open { rate: f64, duration: Duration },
}

impl Load {
    fn messages(&self) -> u64 {
        match *self {
            Self::Closed { messages, .. } => messages,
            Self::Open { rate, duration } => open_loop_count(rate, duration),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Workload {
    /// `W1` … `W6b`.
    pub key: &'static str,
    pub title: String,
    pub targets: Vec<Target>,
    /// Endpoints registered beside the targets that receive none of the traffic, each
    /// subscribed to an event type of its own (one endpoint per customer).
    pub idle_endpoints: usize,
    pub load: Load,
}

impl Workload {
    fn slug(&self) -> String {
        self.key.to_lowercase()
    }
}

/// What one workload measured.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub key: &'static str,
    pub title: String,
    pub endpoints: usize,
    /// Endpoints that accept deliveries: the ledger's "matching endpoints".
    pub healthy_endpoints: usize,
    pub load: LoadFigures,
    pub published: u64,
    pub publish_errors: u64,
    pub first_publish_error: Option<String>,
    /// From the first publish (scheduled, in open loop) to the last answer.
    pub publish_seconds: f64,
    pub publish_calls_per_s: f64,
    pub publish_p50_ms: f64,
    pub publish_p99_ms: f64,
    /// From the first publish to the last delivery.
    pub delivery_seconds: f64,
    pub deliveries_per_s: f64,
    pub delivery_p50_ms: f64,
    pub delivery_p99_ms: f64,
    pub delivery_max_ms: f64,
    pub cpu: CpuFigures,
    /// Herald's VmHWM during the workload (since a reset at its start, when allowed).
    pub peak_rss_mb: f64,
    pub peak_rss_reset: bool,
    pub ledger: Ledger,
    /// Requests the sink answered with an error: the failing endpoint's attempts.
    pub refused_attempts: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadFigures {
    /// `closed` or `open`.
    pub kind: &'static str,
    pub publishers: Option<usize>,
    pub rate_per_s: Option<f64>,
    pub seconds: Option<f64>,
}

/// CPU time over the measured part, top-style: 100 % is one core busy.
#[derive(Debug, Clone, Serialize)]
pub struct CpuFigures {
    pub wall_seconds: f64,
    pub herald_seconds: f64,
    pub redis_seconds: Option<f64>,
    /// This tool: the publishers and the sink.
    pub bench_seconds: f64,
    /// The sink's thread alone (within `bench_seconds`).
    pub sink_seconds: Option<f64>,
    /// Every core of the machine busy, from /proc/stat.
    pub machine_seconds: f64,
    pub herald_percent: f64,
    pub redis_percent: Option<f64>,
    pub bench_percent: f64,
    pub sink_percent: Option<f64>,
    /// The publishers (gRPC clients) and the rest of the tool: bench minus sink.
    pub publishers_percent: Option<f64>,
    /// Busy time of the machine spent by no process of the run: kernel threads (the
    /// fsyncs' journal writes among them) and any other work on the machine.
    pub other_percent: f64,
    /// Herald's and its store's CPU seconds per 1,000 deliveries.
    pub seconds_per_1000_deliveries: f64,
}

/// published × matching endpoints = delivered + missing.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Ledger {
    pub published: u64,
    pub endpoints: u64,
    pub expected: u64,
    /// Distinct (message, endpoint) pairs received.
    pub delivered: u64,
    pub missing: u64,
    /// Receipts of a (message, endpoint) pair already received.
    pub duplicates: u64,
    /// Receipts of messages whose publish returned an error (or of nothing published).
    pub unknown: u64,
}

impl Ledger {
    pub fn balanced(&self) -> bool {
        self.missing == 0
    }
}

/// Whom a run measures, and how each workload starts and ends.
pub struct Setup {
    pub herald_pid: u32,
    /// The `redis-server` of a run on the Redis store: its CPU counts as Herald's.
    pub redis_pid: Option<u32>,
    /// Published before each workload's measured part; its results are discarded. A soak
    /// has none: its verdict leaves out its first part instead.
    pub warmup: Option<Load>,
    /// Longest wait for the next delivery before the missing ones are declared missing.
    pub stall: Duration,
}

/// The run's shared means: the clock, the sink, the clients and whom to measure.
pub struct Bench {
    clock: Clock,
    sink: Sink,
    /// One HTTP/2 connection each; publishers are spread over them.
    clients: Vec<Client>,
    setup: Setup,
    bar: ProgressBar,
    /// Numbers endpoints across the run, so the sink tells every workload's apart.
    next_endpoint: u32,
    /// Publishes answered so far in the phase that runs (errors included).
    sent: Arc<AtomicU64>,
}

/// An endpoint registered for a workload.
struct Registered {
    id: String,
    number: u32,
    target: Target,
}

impl Bench {
    pub fn new(
        clock: Clock,
        sink: Sink,
        clients: Vec<Client>,
        setup: Setup,
        bar: ProgressBar,
    ) -> Self {
        Self {
            clock,
            sink,
            clients,
            setup,
            bar,
            next_endpoint: 0,
            sent: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Publishes answered so far in the phase that runs, read while it runs (a soak's
    /// samples); every phase starts it again from 0.
    pub fn sent(&self) -> Arc<AtomicU64> {
        self.sent.clone()
    }

    /// Registers the workload's endpoints, measures it, deletes them.
    ///
    /// # Errors
    ///
    /// When Herald refuses a registration or deletion, or a process cannot be measured.
    pub async fn run(&mut self, workload: &Workload) -> anyhow::Result<Measured> {
        let endpoints = self.register(workload).await?;
        let idle = self.register_idle(workload).await?;
        let measured = self.measure(workload, &endpoints).await;
        let ids = endpoints.into_iter().map(|e| e.id).chain(idle);
        self.on_every(ids, |mut client, endpoint_id| async move {
            client
                .delete_endpoint(pb::DeleteEndpointRequest {
                    endpoint_id: endpoint_id.clone(),
                    ..Default::default()
                })
                .await
                .with_context(|| format!("delete endpoint {endpoint_id}"))
                .map(drop)
        })
        .await?;
        measured
    }

    /// Calls `call` for each item, [`REGISTRATION_CALLS`] at a time over the clients.
    async fn on_every<T, F>(
        &self,
        items: impl Iterator<Item = T>,
        call: impl Fn(Client, T) -> F,
    ) -> anyhow::Result<()>
    where
        T: Send + 'static,
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let mut calls = JoinSet::new();
        for (i, item) in items.enumerate() {
            if calls.len() == REGISTRATION_CALLS {
                calls.join_next().await.context("a call is running")???;
            }
            calls.spawn(call(self.clients[i % self.clients.len()].clone(), item));
        }
        while let Some(done) = calls.join_next().await {
            done??;
        }
        Ok(())
    }

    /// Registers the workload's idle endpoints; returns their ids.
    async fn register_idle(&mut self, workload: &Workload) -> anyhow::Result<Vec<String>> {
        let slug = workload.slug();
        let url = self.sink.url(0);
        self.bar.set_message(format!(
            "{}: registering {} idle endpoints",
            workload.key,
            report::number(workload.idle_endpoints as f64)
        ));
        let ids: Vec<String> = (0..workload.idle_endpoints)
            .map(|i| format!("bench-{slug}-idle-{i}"))
            .collect();
        self.on_every(ids.clone().into_iter(), |mut client, endpoint_id| {
            let request = pb::RegisterEndpointRequest {
                // A type of its own, outside the traffic's `{slug}.*`.
                event_types: vec![format!("idle.{endpoint_id}")],
                endpoint_id,
                url: url.clone(),
                ..Default::default()
            };
            async move {
                client
                    .register_endpoint(request)
                    .await
                    .context("register an idle endpoint")
                    .map(drop)
            }
        })
        .await?;
        Ok(ids)
    }

    async fn register(&mut self, workload: &Workload) -> anyhow::Result<Vec<Registered>> {
        let slug = workload.slug();
        let mut registered = Vec::new();
        for (i, &target) in workload.targets.iter().enumerate() {
            self.next_endpoint += 1;
            let number = self.next_endpoint;
            let (url, retry_policy) = match target {
                Target::Healthy => (self.sink.url(number), None),
                Target::Slow(delay) => (self.sink.slow_url(number, delay), None),
                Target::Failing => (self.sink.failing_url(number), Some(fast_retries())),
            };
            let request = pb::RegisterEndpointRequest {
                endpoint_id: format!("bench-{slug}-{i}"),
                url,
                description: format!("herald-bench {}", workload.key),
                event_types: vec![format!("{slug}.*")],
                retry_policy,
                rate_limit: Some(pb::RateLimit {
                    limit: 0,
                    ..Default::default()
                }),
                circuit_breaker: Some(pb::CircuitBreakerPolicy {
                    failure_threshold: Some(BREAKER_THRESHOLD),
                    timeout: None,
                }),
                max_in_flight: Some(MAX_IN_FLIGHT),
                ..Default::default()
            };
            let answer = self.clients[0]
                .register_endpoint(request)
                .await
                .with_context(|| format!("register endpoint {i} of {}", workload.key))?
                .into_inner();
            let id = answer.endpoint.context("the endpoint is returned")?.id;
            registered.push(Registered { id, number, target });
        }
        Ok(registered)
    }

    async fn measure(
        &mut self,
        workload: &Workload,
        endpoints: &[Registered],
    ) -> anyhow::Result<Measured> {
        let event_type: Arc<str> = format!("{}.bench", workload.slug()).into();
        let healthy: HashMap<u32, usize> = endpoints
            .iter()
            .filter(|e| !matches!(e.target, Target::Failing))
            .enumerate()
            .map(|(slot, e)| (e.number, slot))
            .collect();

        // Warm-up: connections, caches and the store's first pages; its results are dropped.
        self.sink.reset();
        if let Some(warmup) = self.setup.warmup {
            let label = format!("{} warm-up", workload.key);
            let published = self
                .publish(&event_type, warmup, &label, healthy.len())
                .await?;
            self.settle(&published, &healthy).await;
            self.sink.reset();
        }

        let before = Snapshot::take(self.setup.herald_pid, self.setup.redis_pid, &self.sink)?;
        let peak_rss_reset = procfs::reset_peak_rss(self.setup.herald_pid);
        let label = format!("{} {}", workload.key, workload.title);
        let published = self
            .publish(&event_type, workload.load, &label, healthy.len())
            .await?;
        let tally = self.settle(&published, &healthy).await;
        let after = Snapshot::take(self.setup.herald_pid, self.setup.redis_pid, &self.sink)?;
        let peak_rss_mb = procfs::peak_rss_mb(self.setup.herald_pid)?;

        let mut publish_latencies = published.latencies_ns.clone();
        publish_latencies.sort_unstable();
        let publish_seconds = seconds(published.first_ns, published.last_ns);
        let delivery_seconds = seconds(published.first_ns, tally.last_received_ns);
        let delivered = tally.ledger.delivered;
        Ok(Measured {
            key: workload.key,
            title: workload.title.clone(),
            endpoints: endpoints.len(),
            healthy_endpoints: healthy.len(),
            load: load_figures(workload.load),
            published: published.ids.len() as u64,
            publish_errors: published.errors,
            first_publish_error: published.first_error.clone(),
            publish_seconds,
            publish_calls_per_s: rate(published.ids.len() as u64, publish_seconds),
            publish_p50_ms: ms(percentile(&publish_latencies, 0.50)),
            publish_p99_ms: ms(percentile(&publish_latencies, 0.99)),
            delivery_seconds,
            deliveries_per_s: rate(delivered, delivery_seconds),
            delivery_p50_ms: ms(percentile(&tally.latencies_ns, 0.50)),
            delivery_p99_ms: ms(percentile(&tally.latencies_ns, 0.99)),
            delivery_max_ms: ms(tally.latencies_ns.last().copied().unwrap_or(0)),
            cpu: before.until(&after, delivered),
            peak_rss_mb,
            peak_rss_reset,
            ledger: tally.ledger,
            refused_attempts: self.sink.refused(),
        })
    }

    /// Publishes `load`, showing progress under `label`.
    async fn publish(
        &self,
        event_type: &Arc<str>,
        load: Load,
        label: &str,
        healthy: usize,
    ) -> anyhow::Result<Published> {
        let sent = &self.sent;
        sent.store(0, Ordering::Relaxed);
        let planned = load.messages();
        self.bar.reset();
        self.bar.set_length(planned * healthy as u64);
        let _ticker = Ticker::start(
            self.bar.clone(),
            self.sink.clone(),
            sent.clone(),
            format!("{label}: published"),
            planned,
        );
        let published = match load {
            Load::Closed {
                messages,
                publishers,
            } => {
                closed_loop(
                    &self.clients,
                    self.clock,
                    event_type,
                    messages,
                    publishers,
                    sent,
                )
                .await?
            }
            Load::Open { rate, duration } => {
                open_loop(&self.clients, self.clock, event_type, rate, duration, sent).await?
            }
        };
        Ok(published)
    }

    /// Waits until every delivery of `published` to the `healthy` endpoints arrived, or
    /// none arrived for the stall limit; the tally of what did.
    async fn settle(&self, published: &Published, healthy: &HashMap<u32, usize>) -> Tally {
        let ids: HashMap<&str, usize> = published
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let expected = (ids.len() * healthy.len()) as u64;
        let started = Instant::now();
        let mut progress = (self.sink.accepted(), Instant::now());
        let mut tallied_at = None;
        loop {
            let accepted = self.sink.accepted();
            self.bar.set_position(accepted.min(expected));
            // Duplicates and stray receipts also count as accepted: only a tally can
            // tell when everything is in. It holds the sink's lock, so once per change.
            if accepted >= expected && tallied_at != Some(accepted) {
                tallied_at = Some(accepted);
                let tally = self.sink.with_receipts(|r| tally(r, &ids, healthy));
                if tally.ledger.balanced() {
                    return tally;
                }
            }
            if accepted != progress.0 {
                progress = (accepted, Instant::now());
            }
            if progress.1.elapsed() >= self.setup.stall || started.elapsed() >= SETTLE_LIMIT {
                return self.sink.with_receipts(|r| tally(r, &ids, healthy));
            }
            tokio::time::sleep(TICK).await;
        }
    }
}

/// The failing endpoint's schedule: three retries within about 70 ms, so it keeps
/// Herald busy during the workload.
fn fast_retries() -> pb::RetryPolicy {
    let millis = |n: i32| prost_types::Duration {
        seconds: 0,
        nanos: n * 1_000_000,
    };
    pb::RetryPolicy {
        max_retries: Some(3),
        initial_delay: Some(millis(10)),
        max_delay: Some(millis(100)),
        multiplier: Some(2.0),
        jitter: pb::RetryJitter::Proportional as i32,
    }
}

fn load_figures(load: Load) -> LoadFigures {
    match load {
        Load::Closed { publishers, .. } => LoadFigures {
            kind: "closed",
            publishers: Some(publishers),
            rate_per_s: None,
            seconds: None,
        },
        Load::Open { rate, duration } => LoadFigures {
            kind: "open",
            publishers: None,
            rate_per_s: Some(rate),
            seconds: Some(duration.as_secs_f64()),
        },
    }
}

/// Keeps the progress bar current while a phase runs; stops when dropped.
struct Ticker(tokio::task::JoinHandle<()>);

impl Ticker {
    fn start(
        bar: ProgressBar,
        sink: Sink,
        sent: Arc<AtomicU64>,
        label: String,
        planned: u64,
    ) -> Self {
        Self(tokio::spawn(async move {
            loop {
                let sent = sent.load(Ordering::Relaxed);
                bar.set_message(format!("{label} {sent}/{planned}"));
                bar.set_position(sink.accepted().min(bar.length().unwrap_or(u64::MAX)));
                tokio::time::sleep(TICK).await;
            }
        }))
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the publishers of one phase got back.
#[derive(Debug, Default)]
struct Published {
    /// Acknowledged message ids.
    ids: Vec<String>,
    latencies_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    /// The phase's first publish (its scheduled time, in open loop).
    first_ns: u64,
    /// The last answer.
    last_ns: u64,
}

impl Published {
    fn starting_at(first_ns: u64) -> Self {
        Self {
            first_ns,
            ..Self::default()
        }
    }

    /// One answer to a publish counted from `from_ns` (sent or scheduled).
    fn record(
        &mut self,
        answer: Result<tonic::Response<pb::PublishResponse>, tonic::Status>,
        from_ns: u64,
        end_ns: u64,
    ) {
        self.latencies_ns.push(end_ns.saturating_sub(from_ns));
        self.last_ns = self.last_ns.max(end_ns);
        match answer {
            Ok(answer) => self.ids.push(answer.into_inner().message_id),
            Err(status) => {
                self.errors += 1;
                self.first_error
                    .get_or_insert_with(|| format!("{:?}: {}", status.code(), status.message()));
            }
        }
    }

    fn merge(&mut self, other: Self) {
        self.ids.extend(other.ids);
        self.latencies_ns.extend(other.latencies_ns);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.last_ns = self.last_ns.max(other.last_ns);
    }
}

fn publish_request(event_type: &str, sent_ns: u64) -> pb::PublishRequest {
    pb::PublishRequest {
        event_type: event_type.to_owned(),
        payload: Some(pb::publish_request::Payload::Raw(pb::RawPayload {
            data: payload::payload(sent_ns),
            content_type: "application/json".to_owned(),
        })),
        ..Default::default()
    }
}

async fn closed_loop(
    clients: &[Client],
    clock: Clock,
    event_type: &Arc<str>,
    messages: u64,
    publishers: usize,
    sent: &Arc<AtomicU64>,
) -> anyhow::Result<Published> {
    let next = Arc::new(AtomicU64::new(0));
    let mut all = Published::starting_at(clock.now_ns());
    let mut tasks = JoinSet::new();
    for publisher in 0..publishers {
        let mut client = clients[publisher % clients.len()].clone();
        let (next, sent, event_type) = (next.clone(), sent.clone(), event_type.clone());
        tasks.spawn(async move {
            let mut mine = Published::default();
            while next.fetch_add(1, Ordering::Relaxed) < messages {
                let start = clock.now_ns();
                let answer = client.publish(publish_request(&event_type, start)).await;
                mine.record(answer, start, clock.now_ns());
                sent.fetch_add(1, Ordering::Relaxed);
            }
            mine
        });
    }
    while let Some(part) = tasks.join_next().await {
        all.merge(part.context("a publisher")?);
    }
    Ok(all)
}

fn open_loop_count(rate: f64, duration: Duration) -> u64 {
    (rate * duration.as_secs_f64()).round().max(1.0) as u64
}

async fn open_loop(
    clients: &[Client],
    clock: Clock,
    event_type: &Arc<str>,
    rate: f64,
    duration: Duration,
    sent: &Arc<AtomicU64>,
) -> anyhow::Result<Published> {
    let count = open_loop_count(rate, duration);
    let start = Instant::now() + TICK;
    let (tx, mut schedule) = mpsc::unbounded_channel();
    // A thread keeps the schedule: its sleep is far finer than tokio's 1 ms timer, and
    // any lateness of the pacing would count against Herald, since latency is measured
    // from the scheduled time.
    std::thread::spawn(move || {
        for i in 0..count {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if tx.send(at).is_err() {
                return;
            }
        }
    });
    let mut tasks = JoinSet::new();
    let mut next_client = (0..clients.len()).cycle();
    while let Some(at) = schedule.recv().await {
        let scheduled = clock.ns_at(at);
        let mut client = clients[next_client.next().unwrap_or(0)].clone();
        let (sent, event_type) = (sent.clone(), event_type.clone());
        tasks.spawn(async move {
            let answer = client
                .publish(publish_request(&event_type, scheduled))
                .await;
            sent.fetch_add(1, Ordering::Relaxed);
            (answer, scheduled, clock.now_ns())
        });
    }
    let mut all = Published::starting_at(clock.ns_at(start));
    while let Some(done) = tasks.join_next().await {
        let (answer, scheduled, end) = done.context("a publish")?;
        all.record(answer, scheduled, end);
    }
    Ok(all)
}

/// The ledger and latencies of one phase, from the sink's records.
#[derive(Debug)]
struct Tally {
    ledger: Ledger,
    /// Publish → delivery of each first receipt, sorted.
    latencies_ns: Vec<u64>,
    last_received_ns: u64,
}

/// Counts the receipts of the published messages (`ids`: id → index) at the `healthy`
/// endpoints (number → slot); receipts at other endpoints belong to other phases.
fn tally(receipts: &[Receipt], ids: &HashMap<&str, usize>, healthy: &HashMap<u32, usize>) -> Tally {
    let width = healthy.len();
    let mut seen = vec![false; ids.len() * width];
    let mut latencies_ns = Vec::with_capacity(seen.len());
    let (mut duplicates, mut unknown, mut last_received_ns) = (0, 0, 0);
    for receipt in receipts {
        let Some(&slot) = healthy.get(&receipt.endpoint) else {
            continue;
        };
        let Some(&message) = ids.get(&*receipt.id) else {
            unknown += 1;
            continue;
        };
        let cell = &mut seen[message * width + slot];
        if *cell {
            duplicates += 1;
            continue;
        }
        *cell = true;
        latencies_ns.push(receipt.received_ns.saturating_sub(receipt.sent_ns));
        last_received_ns = last_received_ns.max(receipt.received_ns);
    }
    latencies_ns.sort_unstable();
    let expected = seen.len() as u64;
    let delivered = latencies_ns.len() as u64;
    Tally {
        ledger: Ledger {
            published: ids.len() as u64,
            endpoints: width as u64,
            expected,
            delivered,
            missing: expected - delivered,
            duplicates,
            unknown,
        },
        latencies_ns,
        last_received_ns,
    }
}

/// Nearest-rank percentile `q` (0–1) of sorted values; 0 for none.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn seconds(from_ns: u64, to_ns: u64) -> f64 {
    Duration::from_nanos(to_ns.saturating_sub(from_ns)).as_secs_f64()
}

fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// CPU time of every process of the run at one moment.
struct Snapshot {
    herald: f64,
    redis: Option<f64>,
    bench: f64,
    sink: Option<f64>,
    machine: MachineTime,
}

impl Snapshot {
    fn take(herald: u32, redis: Option<u32>, sink: &Sink) -> anyhow::Result<Self> {
        Ok(Self {
            herald: procfs::cpu_seconds(herald)?,
            redis: redis.map(procfs::cpu_seconds).transpose()?,
            bench: procfs::cpu_seconds(std::process::id())?,
            sink: sink.cpu_seconds(),
            machine: MachineTime::now()?,
        })
    }

    fn until(&self, after: &Self, delivered: u64) -> CpuFigures {
        let wall = after
            .machine
            .at
            .saturating_duration_since(self.machine.at)
            .as_secs_f64();
        let herald = after.herald - self.herald;
        let redis = after.redis.zip(self.redis).map(|(a, b)| a - b);
        let bench = after.bench - self.bench;
        let sink = after.sink.zip(self.sink).map(|(a, b)| a - b);
        let machine = after.machine.busy - self.machine.busy;
        let percent = |s: f64| if wall > 0.0 { s / wall * 100.0 } else { 0.0 };
        let store = herald + redis.unwrap_or(0.0);
        CpuFigures {
            wall_seconds: wall,
            herald_seconds: herald,
            redis_seconds: redis,
            bench_seconds: bench,
            sink_seconds: sink,
            machine_seconds: machine,
            herald_percent: percent(herald),
            redis_percent: redis.map(percent),
            bench_percent: percent(bench),
            sink_percent: sink.map(percent),
            publishers_percent: sink.map(|sink| percent((bench - sink).max(0.0))),
            other_percent: percent((machine - store - bench).max(0.0)),
            seconds_per_1000_deliveries: if delivered > 0 {
                store / delivered as f64 * 1000.0
            } else {
                0.0
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(endpoint: u32, id: &str, sent_ns: u64, received_ns: u64) -> Receipt {
        Receipt {
            endpoint,
            id: id.into(),
            sent_ns,
            received_ns,
        }
    }

    #[test]
    fn the_ledger_counts_deliveries_missing_duplicates_and_strays() {
        let ids: HashMap<&str, usize> = [("a", 0), ("b", 1)].into();
        // Endpoints 7 and 9 are this phase's; 8 is another's.
        let healthy: HashMap<u32, usize> = [(7, 0), (9, 1)].into();
        let receipts = [
            receipt(7, "a", 100, 1_100),
            receipt(9, "a", 100, 2_100),
            receipt(7, "b", 200, 1_200),
            receipt(7, "b", 200, 9_200),
            receipt(8, "a", 100, 9_900),
            receipt(9, "warm-up", 0, 50),
        ];
        let tally = tally(&receipts, &ids, &healthy);
        assert_eq!(
            tally.ledger,
            Ledger {
                published: 2,
                endpoints: 2,
                expected: 4,
                delivered: 3,
                missing: 1,
                duplicates: 1,
                unknown: 1,
            }
        );
        assert!(!tally.ledger.balanced());
        assert_eq!(tally.latencies_ns, [1_000, 1_000, 2_000]);
        assert_eq!(tally.last_received_ns, 2_100);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.50), 50);
        assert_eq!(percentile(&values, 0.99), 99);
        assert_eq!(percentile(&values, 1.0), 100);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn open_loop_sends_rate_times_duration() {
        assert_eq!(open_loop_count(300.0, Duration::from_secs(10)), 3_000);
        assert_eq!(open_loop_count(0.1, Duration::from_secs(1)), 1);
    }
}
