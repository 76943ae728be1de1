//! Several `herald` processes sharing one Redis, as a deployment runs them: work
//! published on any instance is delivered by one of them, to every matching endpoint,
//! once; an instance killed mid-attempt loses nothing (the others take over its leases
//! when they expire); a Redis crash loses nothing acknowledged and delivery resumes by
//! itself; a rate limit holds for the cluster as a whole; and a status stream opened on
//! one instance sees the work of all.
//!
//! Each test starts its own `redis-server` (AOF, an fsync per write), its own sink and
//! its own children (see `child`). It waits on the sink's channel, on watch channels
//! or on bounded polls of the API, never on a fixed sleep, and every wait has a deadline.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald::grpc::pb;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::child::{Client, Herald, Settings, get_message, register, state_name};
use crate::redis::RedisServer;
use crate::support::{PATIENCE, Received, Reply, Sink, eventually, publish_json, share_machine};

/// The instance ids of a cluster.
const INSTANCES: [&str; 3] = ["a", "b", "c"];
/// Attempts in flight per instance, which bounds what a crash can leave unrecorded.
const MAX_WORKERS: usize = 16;
/// The request timeout of the crash tests: their lease is 2 × 1 s + 10 s.
const SHORT_TIMEOUT: &str = "1s";
const LEASE: Duration = Duration::from_secs(12);

/// The event types published, in turn.
const EVENT_TYPES: [&str; 4] = [
    "order.created",
    "order.shipped",
    "invoice.paid",
    "user.signed_up",
];
/// The sink paths registered as endpoints, each with its event-type filter.
const ROUTES: [(&str, &[&str]); 3] = [
    ("/all", &[]),
    ("/orders", &["order.*"]),
    ("/invoices", &["invoice.paid"]),
];

/// Whether an endpoint with `filter` receives `event_type`.
fn matches(filter: &[&str], event_type: &str) -> bool {
    filter.is_empty()
        || filter.iter().any(|f| match f.strip_suffix('*') {
            Some(prefix) => event_type.starts_with(prefix),
            None => *f == event_type,
        })
}

/// The sink paths an event of `event_type` goes to.
fn routes_of(event_type: &str) -> impl Iterator<Item = &'static str> + '_ {
    ROUTES
        .iter()
        .filter(move |(_, filter)| matches(filter, event_type))
        .map(|(path, _)| *path)
}

fn millis(ms: u64) -> prost_types::Duration {
    prost_types::Duration::try_from(Duration::from_millis(ms)).unwrap()
}

/// Three instances on one Redis under one key prefix.
struct Cluster {
    redis: RedisServer,
    nodes: Vec<Herald>,
    /// One client per instance, in the order of `nodes`.
    clients: Vec<Client>,
}

impl Cluster {
    /// Starts Redis, then the instances with the base settings plus `tune`.
    async fn start(tune: &[(&str, &str)]) -> Self {
        let redis = RedisServer::start().await;
        let prefix = format!("cluster-{}", ulid::Ulid::new().to_string().to_lowercase());
        let (mut nodes, mut clients) = (Vec::new(), Vec::new());
        for id in INSTANCES {
            let settings = tune.iter().fold(
                Settings::redis(&redis.url(), &prefix, id)
                    .set("WEBHOOK_MAX_WORKERS", &MAX_WORKERS.to_string()),
                |settings, (name, value)| settings.set(name, value),
            );
            let (node, client) = Herald::start(&settings).await;
            nodes.push(node);
            clients.push(client);
        }
        Self {
            redis,
            nodes,
            clients,
        }
    }

    /// Registers one endpoint per route on the first instance, adjusted by `adjust`;
    /// returns the path of each endpoint id.
    async fn register_routes(
        &mut self,
        sink: &Sink,
        adjust: impl Fn(&str, &mut pb::RegisterEndpointRequest),
    ) -> HashMap<String, &'static str> {
        let mut endpoints = HashMap::new();
        for (path, filter) in ROUTES {
            let mut req = pb::RegisterEndpointRequest {
                url: sink.url(path),
                event_types: filter.iter().map(|f| (*f).to_owned()).collect(),
                // Failures in the crash tests are the crash's, not the endpoint's.
                circuit_breaker: Some(pb::CircuitBreakerPolicy {
                    failure_threshold: Some(10_000),
                    timeout: None,
                }),
                retry_policy: Some(pb::RetryPolicy {
                    max_retries: Some(100),
                    initial_delay: Some(millis(20)),
                    max_delay: Some(millis(200)),
                    ..Default::default()
                }),
                // No limit: these tests measure delivery, not the default rate limit.
                rate_limit: Some(pb::RateLimit {
                    limit: 0,
                    window: None,
                    burst: 0,
                }),
                ..Default::default()
            };
            adjust(path, &mut req);
            endpoints.insert(register(&mut self.clients[0], req).await, path);
        }
        endpoints
    }

    /// SIGTERM to every instance still running; each must exit cleanly.
    async fn stop(mut self) {
        for node in &mut self.nodes {
            if node.is_running() {
                node.terminate();
            }
        }
        for node in &mut self.nodes {
            if node.is_running() {
                let status = node.wait_exit().await;
                assert!(
                    status.success(),
                    "instance {} exits cleanly on SIGTERM, not {status}; stderr:\n{}",
                    node.pid(),
                    node.stderr()
                );
            }
        }
    }
}

/// A message the publishers got acknowledged.
#[derive(Debug, Clone)]
struct Acked {
    id: String,
    event_type: &'static str,
}

/// Every acknowledged message, by idempotency key.
struct Ledger {
    acked: Mutex<HashMap<String, Acked>>,
    /// How many are acknowledged so far.
    count: watch::Sender<usize>,
}

impl Ledger {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            acked: Mutex::new(HashMap::new()),
            count: watch::channel(0).0,
        })
    }

    /// Records an acknowledgement; the same key must always name the same message.
    fn ack(&self, key: String, id: String, event_type: &'static str) {
        let mut acked = self.acked.lock().unwrap();
        if let Some(earlier) = acked.get(&key) {
            assert_eq!(
                earlier.id, id,
                "idempotency key {key} named two messages on two tries"
            );
            return;
        }
        acked.insert(key, Acked { id, event_type });
        self.count.send_replace(acked.len());
    }

    fn snapshot(&self) -> Vec<Acked> {
        self.acked.lock().unwrap().values().cloned().collect()
    }
}

/// How much the publishers publish: `publishers` tasks, each `rounds` rounds of
/// [`SINGLES`] Publish calls and one PublishBatch of [`BATCH`] events, every call on
/// the next instance in turn.
#[derive(Clone, Copy)]
struct Load {
    publishers: usize,
    rounds: usize,
}

const SINGLES: usize = 5;
const BATCH: usize = 20;
/// Tries of one call before a publisher gives up (a failed test).
const TRIES: u32 = 10;

impl Load {
    fn total(self) -> usize {
        self.publishers * self.rounds * (SINGLES + BATCH)
    }
}

/// One event of a publisher: its idempotency key, type and request.
fn event(task: usize, round: usize, i: usize) -> (String, &'static str, pb::PublishRequest) {
    let key = format!("{task}-{round}-{i}");
    let event_type = EVENT_TYPES[(task + round + i) % EVENT_TYPES.len()];
    let mut req = publish_json(
        event_type,
        serde_json::json!({"task": task, "round": round, "i": i}),
    );
    req.idempotency_key = key.clone();
    (key, event_type, req)
}

/// Starts the publishers. A failed call is tried again, with the same idempotency keys,
/// on the next instance once `up` is true (the test sets it false while the store is
/// down); returns the codes of the failed tries.
fn spawn_publishers(
    load: Load,
    clients: &[Client],
    ledger: &Arc<Ledger>,
    up: &watch::Receiver<bool>,
) -> JoinSet<Vec<Code>> {
    let mut tasks = JoinSet::new();
    for task in 0..load.publishers {
        let (mut clients, ledger, mut up) = (clients.to_vec(), ledger.clone(), up.clone());
        tasks.spawn(async move {
            let mut failures = Vec::new();
            let mut next = task;
            for round in 0..load.rounds {
                for i in 0..SINGLES {
                    let (key, event_type, req) = event(task, round, i);
                    let expected = routes_of(event_type).count() as u32;
                    let mut tries = 0;
                    loop {
                        let client = &mut clients[next % INSTANCES.len()];
                        next += 1;
                        tries += 1;
                        match tokio::time::timeout(PATIENCE, client.publish(req.clone())).await {
                            Ok(Ok(resp)) => {
                                let resp = resp.into_inner();
                                assert_eq!(resp.delivery_count, expected, "{event_type}");
                                ledger.ack(key, resp.message_id, event_type);
                                break;
                            }
                            Ok(Err(status)) => failures.push(status.code()),
                            Err(_) => failures.push(Code::DeadlineExceeded),
                        }
                        assert!(
                            tries < TRIES,
                            "publish {key} failed {tries} times: {failures:?}"
                        );
                        until_up(&mut up).await;
                    }
                }
                let events: Vec<_> = (SINGLES..SINGLES + BATCH)
                    .map(|i| event(task, round, i))
                    .collect();
                let requests: Vec<_> = events.iter().map(|(_, _, req)| req.clone()).collect();
                let mut tries = 0;
                loop {
                    let client = &mut clients[next % INSTANCES.len()];
                    next += 1;
                    tries += 1;
                    let batch = pb::PublishBatchRequest {
                        requests: requests.clone(),
                    };
                    match tokio::time::timeout(PATIENCE, client.publish_batch(batch)).await {
                        Ok(Ok(resp)) => {
                            let results = resp.into_inner().results;
                            let published: Vec<_> = results
                                .into_iter()
                                .map(|r| match r.result {
                                    Some(pb::publish_batch_result::Result::Published(p)) => Ok(p),
                                    Some(pb::publish_batch_result::Result::Error(e)) => {
                                        Err(Code::from(e.code))
                                    }
                                    None => Err(Code::Unknown),
                                })
                                .collect();
                            if let Some(Err(code)) = published.iter().find(|p| p.is_err()) {
                                // Tried again whole: the keys return what was published.
                                failures.push(*code);
                            } else {
                                for ((key, event_type, _), p) in events.iter().zip(published) {
                                    let p = p.expect("checked above");
                                    assert_eq!(
                                        p.delivery_count,
                                        routes_of(event_type).count() as u32,
                                        "{event_type}"
                                    );
                                    ledger.ack(key.clone(), p.message_id, event_type);
                                }
                                break;
                            }
                        }
                        Ok(Err(status)) => failures.push(status.code()),
                        Err(_) => failures.push(Code::DeadlineExceeded),
                    }
                    assert!(
                        tries < TRIES,
                        "batch {task}-{round} failed {tries} times: {failures:?}"
                    );
                    until_up(&mut up).await;
                }
            }
            failures
        });
    }
    tasks
}

/// Before a failed call is tried again: waits while the test has the store down (it
/// marks it up again only once every instance reports SERVING). The next try goes to the
/// next instance, so a dead one costs one failure per round.
async fn until_up(up: &mut watch::Receiver<bool>) {
    up.wait_for(|up| *up)
        .await
        .expect("the test holds the sender");
}

/// Waits for every publisher; returns the codes of their failed tries.
async fn join_publishers(mut tasks: JoinSet<Vec<Code>>, deadline: Instant) -> Vec<Code> {
    let mut failures = Vec::new();
    while let Some(done) = tokio::time::timeout_at(deadline.into(), tasks.join_next())
        .await
        .expect("the publishers finish in time")
    {
        failures.extend(done.expect("publisher task"));
    }
    failures
}

/// What the sink received: the arrival times of each (path, message id).
#[derive(Default)]
struct Tally {
    seen: HashMap<(String, String), Vec<Instant>>,
    requests: usize,
}

impl Tally {
    fn absorb(&mut self, r: &Received) {
        self.requests += 1;
        self.seen
            .entry((r.path.clone(), r.header("webhook-id").to_owned()))
            .or_default()
            .push(r.at);
    }

    fn count(&self, path: &str, id: &str) -> usize {
        self.seen
            .get(&(path.to_owned(), id.to_owned()))
            .map_or(0, Vec::len)
    }
}

/// How a run ended, once everything acknowledged was delivered and recorded.
#[derive(Debug)]
struct Settled {
    messages: usize,
    deliveries: usize,
    requests: usize,
    /// Requests beyond one per delivery (retries after a failed attempt included).
    resent: usize,
    /// Requests beyond the attempts recorded: sent twice for one recorded attempt, or
    /// sent by an attempt whose outcome was lost.
    unrecorded: usize,
    /// Deliveries that took more than one recorded attempt.
    retried: usize,
}

/// Waits until the sink has received every acknowledged message at every matching path
/// and every delivery is SUCCEEDED; checks that nothing else arrived.
async fn settle(
    clients: &[Client],
    ledger: &Ledger,
    endpoints: &HashMap<String, &'static str>,
    sink: &mut Sink,
    tally: &mut Tally,
    deadline: Instant,
) -> Settled {
    let acked = ledger.snapshot();
    let mut missing: HashSet<(String, String)> = acked
        .iter()
        .flat_map(|a| routes_of(a.event_type).map(|path| (path.to_owned(), a.id.clone())))
        .filter(|(path, id)| tally.count(path, id) == 0)
        .collect();
    while !missing.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} acknowledged deliveries never reached the sink, e.g. {:?}",
            missing.len(),
            missing.iter().next()
        );
        let r = sink.next().await;
        tally.absorb(&r);
        missing.remove(&(r.path.clone(), r.header("webhook-id").to_owned()));
    }

    // Every delivery SUCCEEDED, to exactly the matching endpoints; the lookups run a
    // few dozen at a time, spread over the instances.
    let lookups = Arc::new(Semaphore::new(32));
    let mut checks = JoinSet::new();
    for (i, a) in acked.iter().enumerate() {
        let (client, lookups, endpoints) = (
            clients[i % clients.len()].clone(),
            lookups.clone(),
            endpoints.clone(),
        );
        let a = a.clone();
        checks.spawn(async move {
            let _turn = lookups.acquire().await.unwrap();
            let deliveries = eventually(&format!("every delivery of {} succeeded", a.id), || {
                let mut client = client.clone();
                let id = a.id.clone();
                async move {
                    let deliveries = get_message(&mut client, &id).await.deliveries;
                    deliveries
                        .iter()
                        .all(|d| d.state == pb::DeliveryState::Succeeded as i32)
                        .then_some(deliveries)
                }
            })
            .await;
            let paths: HashSet<&str> = deliveries
                .iter()
                .map(|d| endpoints[&d.endpoint_id])
                .collect();
            let expected: HashSet<&str> = routes_of(a.event_type).collect();
            assert_eq!(
                paths, expected,
                "the deliveries of {} ({})",
                a.id, a.event_type
            );
            assert_eq!(
                deliveries.len(),
                expected.len(),
                "one delivery per endpoint"
            );
            deliveries
                .into_iter()
                .map(|d| {
                    assert!(d.attempt_count >= 1, "{d:?} ({})", state_name(d.state));
                    ((endpoints[&d.endpoint_id], a.id.clone()), d.attempt_count)
                })
                .collect::<Vec<_>>()
        });
    }
    let mut attempts = HashMap::new();
    while let Some(done) = checks.join_next().await {
        attempts.extend(done.expect("lookup task"));
    }

    // Every recorded attempt's request is in the sink's channel by now.
    for r in sink.drain() {
        tally.absorb(&r);
    }
    let ids: HashMap<&str, &'static str> = acked
        .iter()
        .map(|a| (a.id.as_str(), a.event_type))
        .collect();
    let stray: Vec<_> = tally
        .seen
        .keys()
        .filter(|(path, id)| {
            !ids.get(id.as_str())
                .is_some_and(|event_type| routes_of(event_type).any(|p| p == path))
        })
        .collect();
    assert!(
        stray.is_empty(),
        "requests for no acknowledged message or at a path that does not match: {stray:?}"
    );
    let mut settled = Settled {
        messages: acked.len(),
        deliveries: attempts.len(),
        requests: tally.requests,
        resent: 0,
        unrecorded: 0,
        retried: 0,
    };
    for ((path, id), recorded) in &attempts {
        let received = tally.count(path, id);
        settled.resent += received - 1;
        settled.unrecorded += received.saturating_sub(*recorded as usize);
        settled.retried += usize::from(*recorded > 1);
    }
    settled
}

/// The gRPC health of the instance at `addr` for `service`.
async fn health(addr: SocketAddr, service: &str) -> Option<ServingStatus> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    let mut client = HealthClient::new(channel);
    let status = client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .ok()?
        .into_inner()
        .status;
    ServingStatus::try_from(status).ok()
}

/// The status code of the instance's `/readyz`.
async fn readyz(admin: SocketAddr) -> Option<u16> {
    // reqwest's client needs a TLS provider even for plain HTTP; the first install wins.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::get(format!("http://{admin}/readyz")).await.ok()?;
    Some(response.status().as_u16())
}

/// Polls every instance until its gRPC health for the whole server ("") and for the
/// API is `want`, and its `/readyz` agrees.
async fn wait_for_health(cluster: &Cluster, want: ServingStatus) {
    let ready = if want == ServingStatus::Serving {
        200
    } else {
        503
    };
    for node in &cluster.nodes {
        let (addr, admin) = (node.grpc_addr(), node.admin_addr());
        eventually(&format!("{addr} reports {want:?}"), || async move {
            for service in ["", "herald.v1.WebhookService"] {
                if health(addr, service).await != Some(want) {
                    return None;
                }
            }
            (readyz(admin).await == Some(ready)).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_delivers_every_message_once_to_each_matching_endpoint() {
    let _machine = share_machine().await;
    let started = Instant::now();
    let mut sink = Sink::start().await;
    let mut cluster = Cluster::start(&[]).await;
    let endpoints = cluster.register_routes(&sink, |_, _| {}).await;

    let load = Load {
        publishers: 6,
        rounds: 20,
    };
    let ledger = Ledger::new();
    let (_up, up) = watch::channel(true);
    let publishers = spawn_publishers(load, &cluster.clients, &ledger, &up);
    let failures = join_publishers(publishers, Instant::now() + 3 * PATIENCE).await;
    assert!(failures.is_empty(), "no publish failed: {failures:?}");
    let published = started.elapsed();

    let mut tally = Tally::default();
    let deadline = Instant::now() + 3 * PATIENCE;
    let settled = settle(
        &cluster.clients,
        &ledger,
        &endpoints,
        &mut sink,
        &mut tally,
        deadline,
    )
    .await;
    println!(
        "cluster: {} messages over {} instances ({} publishers), published in {published:?}; \
         {settled:?}; {} duplicates; {:?} in all",
        settled.messages,
        INSTANCES.len(),
        load.publishers,
        settled.resent,
        started.elapsed()
    );
    assert_eq!(
        settled.messages,
        load.total(),
        "every publish was acknowledged"
    );
    let per_cycle: usize = EVENT_TYPES.iter().map(|t| routes_of(t).count()).sum();
    assert_eq!(
        settled.deliveries,
        load.total() / EVENT_TYPES.len() * per_cycle,
        "one delivery per matching endpoint"
    );
    assert_eq!(
        settled.resent, 0,
        "no message was delivered twice to an endpoint"
    );
    assert_eq!(settled.retried, 0, "every delivery took one attempt");
    assert_eq!(settled.requests, settled.deliveries);
    cluster.stop().await;
}

/// The held requests of one instance, as the sink saw them.
struct Victim {
    index: usize,
    /// Message ids whose requests it had in flight.
    in_flight: Vec<String>,
}

/// Requests received this recently at a path whose answers are held are certainly
/// still awaited by their sender: its 1 s request timeout has not expired.
const CERTAINLY_IN_FLIGHT: Duration = Duration::from_millis(500);

/// The instance that sent the most recent of the `held` requests, with the ids of all
/// the held requests it certainly still awaits.
fn find_victim(held: &[Received], sink_port: u16, nodes: &[Herald]) -> Option<Victim> {
    let pids: Vec<u32> = nodes.iter().map(Herald::pid).collect();
    let owners: Vec<(usize, &Received)> = held
        .iter()
        .filter(|r| r.at.elapsed() < CERTAINLY_IN_FLIGHT)
        .filter_map(|r| {
            let pid = connection_owner(r.peer, sink_port, &pids)?;
            Some((pids.iter().position(|p| *p == pid)?, r))
        })
        .collect();
    let (index, _) = owners.iter().max_by_key(|(_, r)| r.at)?;
    Some(Victim {
        index: *index,
        in_flight: owners
            .iter()
            .filter(|(i, _)| i == index)
            .map(|(_, r)| r.header("webhook-id").to_owned())
            .collect(),
    })
}

/// Which of `pids` owns the TCP connection from `peer` to the loopback port
/// `remote_port`: the socket's inode from `/proc/net/tcp`, then the process holding
/// it among the file descriptors in `/proc/PID/fd`.
fn connection_owner(peer: SocketAddr, remote_port: u16, pids: &[u32]) -> Option<u32> {
    let SocketAddr::V4(peer) = peer else {
        return None;
    };
    let [a, b, c, d] = peer.ip().octets();
    let local = format!("{d:02X}{c:02X}{b:02X}{a:02X}:{:04X}", peer.port());
    let remote = format!(":{remote_port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) == Some(&local.as_str()) && fields.get(2)?.ends_with(&remote) {
            fields.get(9).copied()
        } else {
            None
        }
    })?;
    let socket = format!("socket:[{inode}]");
    pids.iter().copied().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == socket.as_str())
            })
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_instance_leases_are_completed_by_the_others() {
    let _machine = share_machine().await;
    let started = Instant::now();
    let mut sink = Sink::start().await;
    // Answers at /invoices are held until the kill: whoever sent one has it in flight.
    let gate = Arc::new(Semaphore::new(0));
    sink.always("/invoices", Reply::status(200).held_by(gate.clone()));
    let mut cluster = Cluster::start(&[("WEBHOOK_DEFAULT_TIMEOUT", SHORT_TIMEOUT)]).await;
    let endpoints = cluster
        .register_routes(&sink, |path, req| {
            // Held attempts must not take every worker from the other endpoints.
            if path == "/invoices" {
                req.max_in_flight = Some(4);
            }
        })
        .await;

    let load = Load {
        publishers: 6,
        rounds: 20,
    };
    let ledger = Ledger::new();
    let (_up, up) = watch::channel(true);
    let mut count = ledger.count.subscribe();
    let publishers = spawn_publishers(load, &cluster.clients, &ledger, &up);

    // The kill comes a third of the way through publishing, once deliveries flow and
    // an instance certainly holds leases: requests it sent are held at the sink.
    let mut tally = Tally::default();
    let mut held = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    let victim = loop {
        if *count.borrow_and_update() >= load.total() / 3
            && tally.requests >= 100
            && let Some(victim) = find_victim(&held, sink.addr.port(), &cluster.nodes)
        {
            break victim;
        }
        assert!(
            Instant::now() < deadline,
            "no kill point: {} acknowledged, {} requests, {} held",
            *count.borrow(),
            tally.requests,
            held.len()
        );
        tokio::select! {
            r = sink.next() => {
                tally.absorb(&r);
                if r.path == "/invoices" {
                    held.push(r);
                }
            }
            changed = count.changed() => changed.expect("the ledger is alive"),
        }
    };
    let status = cluster.nodes[victim.index].kill().await;
    let killed_at = Instant::now();
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");
    let acked_at_kill = *count.borrow();
    let live: Vec<Client> = cluster
        .clients
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim.index)
        .map(|(_, c)| c.clone())
        .collect();
    sink.always("/invoices", Reply::status(200));
    gate.add_permits(1_000_000);

    assert!(
        acked_at_kill < load.total(),
        "the kill came while publishing went on"
    );
    let failures = join_publishers(publishers, Instant::now() + 3 * PATIENCE).await;

    // The victim's held deliveries are sent again by the others once its lease expired.
    let mut reclaimed: HashMap<&str, Duration> = HashMap::new();
    let patience = killed_at + LEASE + PATIENCE;
    while reclaimed.len() < victim.in_flight.len() {
        for id in &victim.in_flight {
            if let Some(at) = tally
                .seen
                .get(&("/invoices".to_owned(), id.clone()))
                .and_then(|times| times.iter().find(|t| **t > killed_at))
            {
                reclaimed.insert(id, at.duration_since(killed_at));
            }
        }
        if reclaimed.len() == victim.in_flight.len() {
            break;
        }
        assert!(
            Instant::now() < patience,
            "the victim's in-flight deliveries were not sent again within the lease and \
             {PATIENCE:?}: {} of {}",
            reclaimed.len(),
            victim.in_flight.len()
        );
        let r = sink.next().await;
        tally.absorb(&r);
    }

    let settled = settle(
        &live,
        &ledger,
        &endpoints,
        &mut sink,
        &mut tally,
        Instant::now() + 3 * PATIENCE,
    )
    .await;
    let slowest = reclaimed.values().max().copied().unwrap_or_default();
    println!(
        "instance kill: killed instance {} with {acked_at_kill}/{} acknowledged and {} held \
         deliveries in flight, sent again by the others after {slowest:?} at most (lease \
         {LEASE:?}); {} publish tries failed ({:?}); {settled:?}; {} duplicates (requests \
         beyond the recorded attempts); {:?} in all",
        INSTANCES[victim.index],
        load.total(),
        victim.in_flight.len(),
        failures.len(),
        failures.iter().collect::<HashSet<_>>(),
        settled.unrecorded,
        started.elapsed()
    );
    assert_eq!(
        settled.messages,
        load.total(),
        "every publish was acknowledged in the end"
    );
    assert!(
        settled.unrecorded <= MAX_WORKERS,
        "{} requests beyond the recorded attempts; at most the {MAX_WORKERS} attempts the \
         killed instance could have had in flight",
        settled.unrecorded
    );
    for (i, node) in cluster.nodes.iter_mut().enumerate() {
        assert_eq!(node.is_running(), i != victim.index, "only the victim died");
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crash_loses_nothing_acknowledged_and_delivery_resumes() {
    let _machine = share_machine().await;
    let started = Instant::now();
    let mut sink = Sink::start().await;
    let mut cluster = Cluster::start(&[("WEBHOOK_DEFAULT_TIMEOUT", SHORT_TIMEOUT)]).await;
    let pids: Vec<u32> = cluster.nodes.iter().map(Herald::pid).collect();
    let endpoints = cluster.register_routes(&sink, |_, _| {}).await;

    let load = Load {
        publishers: 6,
        rounds: 20,
    };
    let ledger = Ledger::new();
    let (up_tx, up) = watch::channel(true);
    let mut count = ledger.count.subscribe();
    let publishers = spawn_publishers(load, &cluster.clients, &ledger, &up);

    let mut tally = Tally::default();
    let deadline = Instant::now() + PATIENCE;
    while *count.borrow_and_update() < load.total() / 3 || tally.requests < 100 {
        assert!(
            Instant::now() < deadline,
            "no kill point: {} acknowledged, {} requests",
            *count.borrow(),
            tally.requests
        );
        tokio::select! {
            r = sink.next() => tally.absorb(&r),
            changed = count.changed() => changed.expect("the ledger is alive"),
        }
    }
    // Publishers that fail from now on wait for the restart, then try again.
    up_tx.send_replace(false);
    let status = cluster.redis.kill();
    let killed_at = Instant::now();
    let acked_at_kill = *count.borrow();
    assert!(!status.success(), "redis was killed: {status}");

    // While Redis is down, every instance refuses to publish with UNAVAILABLE and says
    // it is not serving.
    for (i, client) in cluster.clients.iter_mut().enumerate() {
        let probe = publish_json("outage.probe", serde_json::json!({"instance": i}));
        let answer = tokio::time::timeout(PATIENCE, client.publish(probe))
            .await
            .expect("Publish answers in time while Redis is down");
        let status = answer.expect_err("Publish cannot succeed while Redis is down");
        assert_eq!(
            status.code(),
            Code::Unavailable,
            "Publish on instance {} while Redis is down: {status:?}",
            INSTANCES[i]
        );
    }
    wait_for_health(&cluster, ServingStatus::NotServing).await;
    let outage_seen = killed_at.elapsed();
    // Liveness stays SERVING: restarting an instance would not bring Redis back.
    for node in &cluster.nodes {
        assert_eq!(
            health(node.grpc_addr(), herald::app::LIVENESS_SERVICE).await,
            Some(ServingStatus::Serving)
        );
    }

    cluster.redis.restart().await;
    let restarted_at = Instant::now();
    wait_for_health(&cluster, ServingStatus::Serving).await;
    let serving_again = restarted_at.elapsed();
    up_tx.send_replace(true);

    let failures = join_publishers(publishers, Instant::now() + 3 * PATIENCE).await;
    let settled = settle(
        &cluster.clients,
        &ledger,
        &endpoints,
        &mut sink,
        &mut tally,
        restarted_at + LEASE + 3 * PATIENCE,
    )
    .await;
    let codes: HashSet<Code> = failures.iter().copied().collect();
    println!(
        "redis crash: killed with {acked_at_kill}/{} acknowledged; NOT_SERVING everywhere \
         {outage_seen:?} after the kill, SERVING {serving_again:?} after the restart; {} \
         publish tries failed during the outage ({codes:?}) and were tried again; \
         {settled:?}; {} duplicates (requests beyond the recorded attempts); {:?} in all",
        load.total(),
        failures.len(),
        settled.unrecorded,
        started.elapsed()
    );
    assert_eq!(
        settled.messages,
        load.total(),
        "every publish was acknowledged in the end"
    );
    assert!(
        failures.iter().all(|code| *code == Code::Unavailable),
        "publishes failed during the outage with UNAVAILABLE only: {failures:?}"
    );
    assert!(
        settled.unrecorded <= INSTANCES.len() * MAX_WORKERS,
        "{} requests beyond the recorded attempts; at most the attempts in flight at the crash",
        settled.unrecorded
    );
    for (node, pid) in cluster.nodes.iter_mut().zip(pids) {
        assert!(
            node.is_running() && node.pid() == pid,
            "no instance restarted"
        );
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_shared_by_the_cluster() {
    let _machine = share_machine().await;
    const TOTAL: usize = 300;
    let (limit, burst, window) = (50u32, 10u32, Duration::from_secs(1));
    let mut sink = Sink::start().await;
    let mut cluster = Cluster::start(&[]).await;
    register(
        &mut cluster.clients[0],
        pb::RegisterEndpointRequest {
            url: sink.url("/limited"),
            rate_limit: Some(pb::RateLimit {
                limit,
                window: Some(millis(1000)),
                burst,
            }),
            ..Default::default()
        },
    )
    .await;

    // A third of the messages published on each instance, all at once.
    let per_instance = TOTAL / INSTANCES.len();
    let mut batches = JoinSet::new();
    for (i, client) in cluster.clients.iter().enumerate() {
        let mut client = client.clone();
        batches.spawn(async move {
            let requests = (0..per_instance)
                .map(|n| publish_json("tick", serde_json::json!({"instance": i, "n": n})))
                .collect();
            client
                .publish_batch(pb::PublishBatchRequest { requests })
                .await
                .expect("publish batch")
                .into_inner()
                .results
                .into_iter()
                .map(|r| match r.result {
                    Some(pb::publish_batch_result::Result::Published(p)) => p.message_id,
                    other => panic!("an event was refused: {other:?}"),
                })
                .collect::<Vec<_>>()
        });
    }
    let mut published = HashSet::new();
    while let Some(ids) = batches.join_next().await {
        published.extend(ids.expect("publishing task"));
    }
    assert_eq!(published.len(), TOTAL);

    let received = sink.take(TOTAL).await;
    let ids: HashSet<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), TOTAL, "each message once");
    assert!(ids.iter().all(|id| published.contains(*id)));
    let times: Vec<Instant> = received.iter().map(|r| r.at).collect();

    // No window sees more than limit + burst. Tokens are taken when a delivery is claimed
    // and the sink times arrivals, which a busy machine delays unevenly: a window 100 ms
    // shorter, which the bucket fills with 45 + 10 at most, leaves room for that jitter
    // and still catches instances each keeping a bucket of their own (3 × 60).
    let span = window - Duration::from_millis(100);
    let busiest = (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| t.duration_since(times[i]) < span)
                .count()
        })
        .max()
        .unwrap_or_default();
    let elapsed = times[TOTAL - 1].duration_since(times[0]);
    let floor = window.mul_f64(f64::from(TOTAL as u32 - burst) / f64::from(limit)) - window;
    println!(
        "shared rate limit: {TOTAL} requests from {} instances in {elapsed:?} (at least \
         {floor:?} at {limit}/{window:?} + {burst}); busiest window {busiest}",
        INSTANCES.len()
    );
    assert!(
        busiest <= (limit + burst) as usize,
        "{busiest} requests within one window; the cluster may send {}",
        limit + burst
    );
    assert!(
        elapsed >= floor,
        "{TOTAL} requests took {elapsed:?}, at least {floor:?} at one limit for the cluster"
    );
    assert!(sink.drain().is_empty(), "nothing sent twice");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_stream_on_one_instance_sees_deliveries_made_by_all() {
    let _machine = share_machine().await;
    const PER_INSTANCE: usize = 100;
    let mut sink = Sink::start().await;
    let mut cluster = Cluster::start(&[]).await;
    register(
        &mut cluster.clients[0],
        pb::RegisterEndpointRequest {
            url: sink.url("/hook"),
            ..Default::default()
        },
    )
    .await;
    let succeeded = || pb::StreamDeliveryStatusRequest {
        after_cursor: Some(0),
        kinds: vec![pb::StatusEventKind::AttemptSucceeded as i32],
        ..Default::default()
    };
    let mut live = cluster.clients[0]
        .stream_delivery_status(succeeded())
        .await
        .expect("stream opens on a")
        .into_inner();

    // Published on b and c only.
    let mut published = HashSet::new();
    for client in &mut cluster.clients[1..] {
        let requests = (0..PER_INSTANCE)
            .map(|n| publish_json("order.created", serde_json::json!({"n": n})))
            .collect();
        let results = client
            .publish_batch(pb::PublishBatchRequest { requests })
            .await
            .expect("publish batch")
            .into_inner()
            .results;
        for r in results {
            match r.result {
                Some(pb::publish_batch_result::Result::Published(p)) => {
                    published.insert(p.message_id);
                }
                other => panic!("an event was refused: {other:?}"),
            }
        }
    }
    assert_eq!(published.len(), 2 * PER_INSTANCE);
    sink.take(published.len()).await;

    /// Reads succeeded events until every published message has one; returns the
    /// cursor of each.
    async fn read_all(
        stream: &mut tonic::Streaming<pb::StreamDeliveryStatusResponse>,
        published: &HashSet<String>,
    ) -> HashMap<String, u64> {
        let mut cursors = HashMap::new();
        let mut last = 0;
        while cursors.len() < published.len() {
            let item = tokio::time::timeout(PATIENCE, stream.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{} of {} succeeded events in time",
                        cursors.len(),
                        published.len()
                    )
                })
                .expect("the stream stays open")
                .expect("no stream error");
            let Some(pb::stream_delivery_status_response::Item::Event(event)) = item.item else {
                continue;
            };
            assert_eq!(event.kind, pb::StatusEventKind::AttemptSucceeded as i32);
            assert!(
                event.cursor > last,
                "cursors increase: {} after {last}",
                event.cursor
            );
            last = event.cursor;
            assert!(published.contains(&event.message_id), "{event:?}");
            let earlier = cursors.insert(event.message_id.clone(), event.cursor);
            assert_eq!(earlier, None, "one success per message: {event:?}");
        }
        cursors
    }
    let seen_live = read_all(&mut live, &published).await;

    // Replayed from the start on another instance: the same events, same cursors.
    let mut replay = cluster.clients[1]
        .stream_delivery_status(succeeded())
        .await
        .expect("stream opens on b")
        .into_inner();
    let seen_replayed = read_all(&mut replay, &published).await;
    println!(
        "status: a's stream saw all {} deliveries published on b and c",
        seen_live.len()
    );
    assert_eq!(seen_live, seen_replayed, "live and replayed events agree");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_changes_on_one_instance_apply_on_all_at_once() {
    let _machine = share_machine().await;
    let mut sink = Sink::start().await;
    let mut cluster = Cluster::start(&[]).await;
    let id = register(
        &mut cluster.clients[0],
        pb::RegisterEndpointRequest {
            url: sink.url("/old"),
            ..Default::default()
        },
    )
    .await;
    let publish = |client: &mut Client, n: u32| {
        let mut client = client.clone();
        async move {
            client
                .publish(publish_json("order.created", serde_json::json!({ "n": n })))
                .await
                .expect("publish")
                .into_inner()
                .delivery_count
        }
    };
    assert_eq!(publish(&mut cluster.clients[1], 1).await, 1);
    assert_eq!(sink.next().await.path, "/old");

    // Changed through a; the very next publish on b and c follows the change.
    cluster.clients[0]
        .update_endpoint(pb::UpdateEndpointRequest {
            tenant_id: String::new(),
            endpoint: Some(pb::Endpoint {
                id: id.clone(),
                url: sink.url("/new"),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["url".into()],
            }),
        })
        .await
        .expect("update on a");
    assert_eq!(publish(&mut cluster.clients[1], 2).await, 1);
    assert_eq!(publish(&mut cluster.clients[2], 3).await, 1);
    let paths: Vec<String> = sink.take(2).await.into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/new", "/new"]);

    // Disabled through c: a publish on b right after goes nowhere.
    cluster.clients[2]
        .update_endpoint(pb::UpdateEndpointRequest {
            tenant_id: String::new(),
            endpoint: Some(pb::Endpoint {
                id,
                enabled: false,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["enabled".into()],
            }),
        })
        .await
        .expect("disable on c");
    assert_eq!(publish(&mut cluster.clients[1], 4).await, 0);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_sends_one_probe_per_breaker_timeout() {
    let _machine = share_machine().await;
    const OPEN_FOR: Duration = Duration::from_millis(800);
    const WATCHED: Duration = Duration::from_millis(4_000);
    let mut sink = Sink::start().await;
    sink.always("/down", Reply::status(500));
    let mut cluster = Cluster::start(&[]).await;
    let id = register(
        &mut cluster.clients[0],
        pb::RegisterEndpointRequest {
            url: sink.url("/down"),
            circuit_breaker: Some(pb::CircuitBreakerPolicy {
                failure_threshold: Some(3),
                timeout: Some(prost_types::Duration::try_from(OPEN_FOR).unwrap()),
            }),
            retry_policy: Some(pb::RetryPolicy {
                max_retries: Some(100),
                initial_delay: Some(millis(20)),
                max_delay: Some(millis(50)),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    let mut opened = cluster.clients[0]
        .stream_delivery_status(pb::StreamDeliveryStatusRequest {
            endpoint_ids: vec![id],
            kinds: vec![pb::StatusEventKind::CircuitOpened as i32],
            ..Default::default()
        })
        .await
        .expect("stream opens")
        .into_inner();
    // Every instance has work for the endpoint, due again every few tens of ms.
    for (i, client) in cluster.clients.iter_mut().enumerate() {
        for n in 0..10 {
            client
                .publish(publish_json(
                    "order.created",
                    serde_json::json!({ "i": i, "n": n }),
                ))
                .await
                .expect("publish");
        }
    }
    tokio::time::timeout(PATIENCE, opened.next())
        .await
        .expect("the circuit opens")
        .expect("stream open")
        .expect("no stream error");
    // Requests sent before the opening may still arrive just after it.
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + WATCHED;
    let mut probes = Vec::new();
    while let Ok(received) = tokio::time::timeout_at(end.into(), sink.next()).await {
        if received.at >= start {
            probes.push(received.at);
        }
    }
    // One probe per open period for the whole cluster: about WATCHED / OPEN_FOR of
    // them, where a breaker per instance would send three times as many.
    let most = (WATCHED.as_millis() / OPEN_FOR.as_millis()) as usize + 1;
    println!("{} probes in {WATCHED:?}", probes.len());
    assert!(
        (2..=most).contains(&probes.len()),
        "{} probes in {WATCHED:?}, expected 2..={most}",
        probes.len()
    );
    for pair in probes.windows(2) {
        assert!(
            pair[1] - pair[0] >= OPEN_FOR - Duration::from_millis(50),
            "probes {:?} apart, the breaker stays open {OPEN_FOR:?}",
            pair[1] - pair[0]
        );
    }
    cluster.stop().await;
}
