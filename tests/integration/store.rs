//! The `Store` trait's contract, checked on every backend without gRPC or HTTP in the way:
//! atomic publish with idempotency, claims under a lease, lease expiry and takeover, each
//! transition of `complete`, cancellation on endpoint deletion, status events in commit
//! order (stored and live), and rollups.
//!
//! Every test runs on the memory store, the embedded store in a temporary directory, and
//! the Redis store on a private `redis-server` under a prefix of its own, each test with a
//! fresh store. What the trait leaves to a backend (the Redis store applies endpoint
//! protection itself and takes over leases on Redis's own clock) is asserted per backend
//! where it differs, and says so. The delivery core above the trait is not exercised here:
//! `delivery` and `protection` do that through the API.
//!
//! Stores, endpoints, messages, claim requests and outcomes are built by the helpers at the
//! top only, so a change of their constructors is adapted there alone.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use herald::analytics::{FailureKind, Rollup, RollupRow, minute_of};
use herald::config::{Config, StorageConfig};
use herald::domain::{
    AttemptRecord, Delivery, DeliveryState, DisabledReason, Endpoint, EndpointId, EventPattern,
    EventType, MessageId, NewMessage, ProtectionOverride, RetryOverride, Secret, SigningSecrets,
    StatusEvent, StatusKind, TenantId, TransportError,
};
use herald::policy::protection::{EndpointEffects, is_endpoint_failure};
use herald::storage::redis::RedisConfig;
use herald::storage::{
    AttemptQuery, Claim, ClaimRequest, Lease, Outcome, Published, RedisStore, SqliteStore, Store,
    StoreError, Transition,
};

use crate::redis::RedisServer;
use crate::support::{Backend, PATIENCE, eventually};

/// Runs a store test once per backend, each on a fresh store, while sharing the machine
/// with the rest of the suite (tests that time themselves take it alone).
macro_rules! each_store {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                each_store!(@on $name, memory, Memory);
                each_store!(@on $name, embedded, Embedded);
                each_store!(@on $name, redis, Redis);
            }
        )*
    };
    (@on $name:ident, $backend:ident, $variant:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $backend() {
            let _machine = $crate::support::share_machine().await;
            let (store, guard) =
                super::open_store($crate::support::Backend::$variant).await;
            super::$name(store, &guard).await;
        }
    };
}

each_store!(
    publish_creates_one_delivery_per_matching_enabled_endpoint,
    idempotency_key_dedupes_same_content_and_refuses_other_content,
    batch_results_follow_input_order,
    claim_leases_due_deliveries_once,
    claim_honours_limit_and_endpoint_room,
    expired_lease_is_taken_over_and_the_old_lease_only_records,
    success_finishes_the_delivery,
    retry_at_makes_the_delivery_due_again_at_that_time,
    failed_delivery_is_recovered_since_its_failure,
    a_disabling_outcome_disables_the_endpoint,
    delete_endpoint_cancels_unfinished_deliveries,
    status_events_follow_commit_order_stored_and_live,
    rollups_and_pending_match_the_attempts_recorded,
    close_ends_the_background_work_and_keeps_what_was_acknowledged,
);

// ---------------------------------------------------------------------------------------
// Stores: the one place they are built.

/// What keeps a test's store alive (its directory, its Redis), and what another instance
/// of the same store opens on.
enum Guard {
    Memory,
    Dir(tempfile::TempDir),
    Redis {
        server: RedisServer,
        /// This test's key prefix: instances opened with it share one queue.
        prefix: String,
    },
}

/// A fresh store of `backend`, and what keeps it alive.
async fn open_store(backend: Backend) -> (Arc<dyn Store>, Guard) {
    let guard = match backend {
        Backend::Memory => Guard::Memory,
        Backend::Embedded => Guard::Dir(tempfile::tempdir().expect("a temporary directory")),
        Backend::Redis => Guard::Redis {
            server: RedisServer::start().await,
            prefix: format!("store-{}", unique()),
        },
    };
    let store = open_instance(&guard).await;
    (store, guard)
}

/// Opens a store on what `guard` holds, with the server's default settings. The only
/// caller of the backends' constructors.
async fn open_instance(guard: &Guard) -> Arc<dyn Store> {
    let defaults = Config::with_storage(StorageConfig::Memory);
    match guard {
        Guard::Memory => Arc::new(SqliteStore::open_memory(defaults.store).expect("memory store")),
        Guard::Dir(dir) => {
            Arc::new(SqliteStore::open_dir(dir.path(), defaults.store).expect("embedded store"))
        }
        Guard::Redis { server, prefix } => {
            let config = RedisConfig {
                url: server.url(),
                password: None,
                db: None,
                prefix: prefix.clone(),
                // Each instance is its own consumer of the shared ready stream.
                instance_id: format!("instance-{}", unique()),
                allow_eviction: false,
            };
            Arc::new(
                RedisStore::open(&config, defaults.store, defaults.delivery.protection)
                    .await
                    .expect("redis store"),
            )
        }
    }
}

/// Another instance on the same data, as a second Herald process has it. The embedded
/// store locks its directory to one process and the memory store is one process's own,
/// so for them the only instance is `store` itself.
async fn other_instance(store: &Arc<dyn Store>, guard: &Guard) -> Arc<dyn Store> {
    match guard {
        Guard::Redis { .. } => open_instance(guard).await,
        Guard::Memory | Guard::Dir(_) => store.clone(),
    }
}

fn unique() -> String {
    ulid::Ulid::new().to_string().to_lowercase()
}

// ---------------------------------------------------------------------------------------
// Values: the one place endpoints, messages, claim requests and outcomes are built.

/// How long a claim reserves its deliveries, when the test does not let it expire.
const LEASE: Duration = Duration::from_secs(30);
/// A lease a test lets expire. The Redis store takes over a delivery once Redis has seen
/// it idle this long (real time), so the test waits at least this long there.
const SHORT_LEASE: Duration = Duration::from_millis(100);

/// The wall clock to the millisecond, which every store keeps: times written and read
/// back then compare equal. Near the real time, since the Redis store mixes in its own.
fn start_time() -> SystemTime {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).expect("in range"))
}

fn id(value: &str) -> EndpointId {
    EndpointId::parse(value).expect("a valid endpoint id")
}

fn event_type(value: &str) -> EventType {
    EventType::parse(value).expect("a valid event type")
}

/// An enabled endpoint that receives every message.
fn endpoint(name: &str, now: SystemTime) -> Endpoint {
    endpoint_for(name, &[], &[], now)
}

/// An enabled endpoint with an event-type filter and channels (empty: everything).
fn endpoint_for(name: &str, event_types: &[&str], channels: &[&str], now: SystemTime) -> Endpoint {
    Endpoint {
        id: id(name),
        tenant: TenantId::default(),
        url: url::Url::parse(&format!("https://{name}.example/hook")).expect("a valid URL"),
        description: String::new(),
        event_types: event_types
            .iter()
            .map(|p| EventPattern::parse(p).expect("a valid pattern"))
            .collect(),
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
        headers: Vec::new(),
        retry: RetryOverride::default(),
        protection: ProtectionOverride::default(),
        disabled: None,
        failing_since: None,
        secrets: SigningSecrets::new(Secret::generate()),
        created_at: now,
        updated_at: now,
    }
}

/// An endpoint that stores sharing protection let have at most `cap` attempts in flight.
fn capped_endpoint(name: &str, cap: u32, now: SystemTime) -> Endpoint {
    let mut endpoint = endpoint(name, now);
    endpoint.protection.max_in_flight = Some(cap);
    endpoint
}

/// A message without idempotency key or channels.
fn message(event: &str, payload: &str) -> NewMessage {
    new_message(event, payload, None, &[])
}

fn keyed_message(event: &str, payload: &str, key: &str) -> NewMessage {
    new_message(event, payload, Some(key), &[])
}

fn new_message(event: &str, payload: &str, key: Option<&str>, channels: &[&str]) -> NewMessage {
    NewMessage {
        tenant: TenantId::default(),
        event_type: event_type(event),
        payload: Bytes::from(payload.to_owned()),
        content_type: NewMessage::DEFAULT_CONTENT_TYPE.to_owned(),
        idempotency_key: key.map(str::to_owned),
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
        metadata: BTreeMap::from([("source".to_owned(), "store-suite".to_owned())]),
        trace: None,
    }
}

/// A claim of at most `limit` deliveries due at `now`, with room at every endpoint.
fn claim_request(now: SystemTime, lease: Duration, limit: usize) -> ClaimRequest {
    claim_request_with_room(now, lease, limit, &[], usize::MAX)
}

/// A claim with room `room` per listed endpoint and `unknown` for the others.
fn claim_request_with_room(
    now: SystemTime,
    lease: Duration,
    limit: usize,
    room: &[(&EndpointId, usize)],
    unknown: usize,
) -> ClaimRequest {
    ClaimRequest {
        now,
        lease,
        limit,
        per_endpoint: room.iter().map(|(e, n)| ((*e).clone(), *n)).collect(),
        unknown,
    }
}

/// What the receiver did with one attempt.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    Unanswered(TransportError),
}

/// The outcome of an attempt at `claim` that started at `started_at` and took `latency`.
fn outcome(
    claim: &Claim,
    answer: Answer,
    started_at: SystemTime,
    latency: Duration,
    transition: Transition,
) -> Outcome {
    let (status_code, transport_error) = match answer {
        Answer::Status(code) => (Some(code), None),
        Answer::Unanswered(error) => (None, Some(error)),
    };
    let error = match (transition, answer) {
        (Transition::Succeeded, _) => String::new(),
        (_, Answer::Status(code)) => format!("HTTP {code}"),
        (_, Answer::Unanswered(error)) => format!("{error:?}"),
    };
    let record = AttemptRecord {
        started_at,
        latency,
        status_code,
        transport_error,
        error,
        response_excerpt: String::new(),
    };
    Outcome {
        endpoint_failure: is_endpoint_failure(&record),
        record,
        transition,
        event_type: claim.message.event_type.clone(),
        endpoint: EndpointEffects::default(),
    }
}

/// A 200 that took 10 ms.
fn delivered(claim: &Claim, started_at: SystemTime) -> Outcome {
    outcome(
        claim,
        Answer::Status(200),
        started_at,
        Duration::from_millis(10),
        Transition::Succeeded,
    )
}

/// A 500 that took 10 ms, leading to `transition`.
fn server_error(claim: &Claim, started_at: SystemTime, transition: Transition) -> Outcome {
    outcome(
        claim,
        Answer::Status(500),
        started_at,
        Duration::from_millis(10),
        transition,
    )
}

// ---------------------------------------------------------------------------------------
// Store calls the tests share.

async fn create(store: &Arc<dyn Store>, endpoint: Endpoint) -> EndpointId {
    store
        .create_endpoint(endpoint, u64::MAX)
        .await
        .expect("create endpoint")
        .id
}

/// Publishes one message that must be new; its id and delivery count.
async fn publish(store: &Arc<dyn Store>, message: NewMessage, now: SystemTime) -> (MessageId, u32) {
    let mut results = store.publish(vec![message], now).await.expect("publish");
    assert_eq!(results.len(), 1, "one result per message");
    match results.remove(0) {
        Published::Created {
            message_id,
            deliveries,
        } => (message_id, deliveries),
        other => panic!("a new message was not created: {other:?}"),
    }
}

async fn claim(store: &Arc<dyn Store>, request: ClaimRequest) -> Vec<Claim> {
    store.claim_due(request).await.expect("claim").claims
}

/// The message's deliveries by endpoint.
async fn deliveries(store: &Arc<dyn Store>, message: &MessageId) -> HashMap<EndpointId, Delivery> {
    let (_, deliveries) = store.get_message(message).await.expect("get message");
    deliveries
        .into_iter()
        .map(|d| (d.endpoint_id.clone(), d))
        .collect()
}

async fn delivery(store: &Arc<dyn Store>, message: &MessageId, endpoint: &EndpointId) -> Delivery {
    deliveries(store, message)
        .await
        .remove(endpoint)
        .unwrap_or_else(|| panic!("{message} has a delivery to {endpoint}"))
}

async fn complete(store: &Arc<dyn Store>, lease: Lease, outcome: Outcome, now: SystemTime) {
    store.complete(lease, outcome, now).await.expect("complete");
}

/// Every retained status event, oldest first.
async fn all_events(store: &Arc<dyn Store>) -> Vec<StatusEvent> {
    store
        .events_after(0, 10_000)
        .await
        .expect("events after 0")
        .events
}

/// Waits until `backlog()` is `expected`. The Redis store's figure is a copy of Redis's
/// counter that a background reader refreshes (after each status event it reads, and
/// every second), so it may trail a write by up to a second; the SQLite stores answer at
/// once.
async fn assert_backlog(store: &Arc<dyn Store>, expected: u64) {
    eventually(&format!("the backlog is {expected}"), || async {
        (store.backlog() == expected).then_some(())
    })
    .await;
}

/// How many claims go to each endpoint.
fn per_endpoint(claims: &[Claim]) -> HashMap<EndpointId, usize> {
    let mut counts = HashMap::new();
    for claim in claims {
        *counts.entry(claim.endpoint.id.clone()).or_default() += 1;
    }
    counts
}

/// The one claim of `message` among `claims`.
fn claim_of<'a>(claims: &'a [Claim], message: &MessageId, endpoint: &EndpointId) -> &'a Claim {
    let found: Vec<&Claim> = claims
        .iter()
        .filter(|c| c.message.id == *message && c.endpoint.id == *endpoint)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one claim of {message} to {endpoint} among {} claims",
        claims.len()
    );
    found[0]
}

/// The endpoints a message's deliveries go to, in id order.
fn receivers(deliveries: &[Delivery]) -> Vec<&EndpointId> {
    sorted(deliveries.iter().map(|d| &d.endpoint_id))
}

fn sorted<T: Ord>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut items: Vec<T> = items.into_iter().collect();
    items.sort();
    items
}

// ---------------------------------------------------------------------------------------
// 1. Publish.

async fn publish_creates_one_delivery_per_matching_enabled_endpoint(
    store: Arc<dyn Store>,
    _: &Guard,
) {
    let t0 = start_time();
    let all = create(&store, endpoint("all", t0)).await;
    let orders = create(&store, endpoint_for("orders", &["order.*"], &[], t0)).await;
    let paid = create(&store, endpoint_for("paid", &["order.paid"], &[], t0)).await;
    let eu = create(&store, endpoint_for("eu", &[], &["eu"], t0)).await;
    // Disabled from the start: it matches every message and must receive none. Its
    // reason is kept as given (a reason other than the default `Manual` shows that).
    let mut off = endpoint("off", t0);
    off.disabled = Some(DisabledReason::Gone);
    let off = create(&store, off).await;
    assert_eq!(
        store.get_endpoint(&off).await.unwrap().disabled,
        Some(DisabledReason::Gone)
    );

    let sent = new_message(
        "order.created",
        r#"{"n":1}"#,
        Some("order-1"),
        &["eu", "fr"],
    );
    let (in_eu, n) = publish(&store, sent.clone(), t0).await;
    assert_eq!(
        n, 3,
        "all, orders and eu receive order.created in channel eu"
    );
    let (stored, by_endpoint) = store.get_message(&in_eu).await.expect("get message");
    assert_eq!(stored.id, in_eu);
    assert_eq!(stored.event_type, sent.event_type);
    assert_eq!(stored.payload, sent.payload);
    assert_eq!(stored.content_type, sent.content_type);
    assert_eq!(stored.idempotency_key, sent.idempotency_key);
    assert_eq!(stored.channels, sent.channels);
    assert_eq!(stored.metadata, sent.metadata);
    assert_eq!(stored.created_at, t0);
    assert_eq!(
        receivers(&by_endpoint),
        sorted([&all, &orders, &eu]),
        "neither paid (other type) nor off (disabled)"
    );
    for d in &by_endpoint {
        assert_eq!(d.message_id, in_eu);
        assert_eq!(d.state, DeliveryState::Pending, "{d:?}");
        assert_eq!(d.attempt_count, 0, "{d:?}");
    }

    let (elsewhere, n) = publish(&store, message("order.paid", "{}"), t0).await;
    assert_eq!(n, 3);
    let (_, by_endpoint) = store.get_message(&elsewhere).await.unwrap();
    assert_eq!(
        receivers(&by_endpoint),
        sorted([&all, &orders, &paid]),
        "not eu: a message in no channel is outside an endpoint's channels"
    );

    let (other_type, n) =
        publish(&store, new_message("user.created", "{}", None, &["eu"]), t0).await;
    assert_eq!(n, 2);
    let (_, by_endpoint) = store.get_message(&other_type).await.unwrap();
    assert_eq!(receivers(&by_endpoint), sorted([&all, &eu]));

    assert_backlog(&store, 8).await;
    assert_eq!(store.pending(None, None).await.unwrap(), 8);
    assert_eq!(store.pending(Some(vec![off]), None).await.unwrap(), 0);
    assert_eq!(
        store
            .pending(Some(vec![all.clone()]), Some(event_type("order.created")))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.pending(Some(vec![all]), None).await.unwrap(), 3);
}

async fn idempotency_key_dedupes_same_content_and_refuses_other_content(
    store: Arc<dyn Store>,
    _: &Guard,
) {
    let t0 = start_time();
    let a = create(&store, endpoint("a", t0)).await;
    create(&store, endpoint("b", t0)).await;

    let (first, n) = publish(&store, keyed_message("order.created", "{}", "key-1"), t0).await;
    assert_eq!(n, 2);
    assert_backlog(&store, 2).await;

    let again = store
        .publish(
            vec![keyed_message("order.created", "{}", "key-1")],
            t0 + Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        [Published::Duplicate {
            message_id: first.clone(),
            deliveries: 2
        }]
    );
    // An endpoint created since would have received a new message: a duplicate creates
    // nothing, not even for it.
    create(&store, endpoint("c", t0)).await;
    let again = store
        .publish(
            vec![keyed_message("order.created", "{}", "key-1")],
            t0 + Duration::from_secs(2),
        )
        .await
        .unwrap();
    assert!(
        matches!(&again[..], [Published::Duplicate { message_id, .. }] if *message_id == first),
        "{again:?}"
    );
    assert_eq!(deliveries(&store, &first).await.len(), 2, "no new delivery");
    assert_backlog(&store, 2).await;
    assert_eq!(store.pending(None, None).await.unwrap(), 2);

    for different in [
        keyed_message("order.created", r#"{"other":true}"#, "key-1"),
        keyed_message("order.paid", "{}", "key-1"),
    ] {
        let refused = store
            .publish(vec![different], t0 + Duration::from_secs(3))
            .await
            .unwrap();
        assert_eq!(
            refused,
            [Published::Conflict {
                message_id: first.clone()
            }]
        );
    }
    assert_eq!(deliveries(&store, &first).await.len(), 2);
    assert_eq!(store.pending(None, None).await.unwrap(), 2);

    // The key protects only its own message.
    let (second, n) = publish(&store, keyed_message("order.created", "{}", "key-2"), t0).await;
    assert_ne!(second, first);
    assert_eq!(n, 3);
    assert_backlog(&store, 5).await;
    assert_eq!(
        delivery(&store, &first, &a).await.state,
        DeliveryState::Pending
    );
}

async fn batch_results_follow_input_order(store: Arc<dyn Store>, _: &Guard) {
    let t0 = start_time();
    create(&store, endpoint("a", t0)).await;
    let (seen, _) = publish(&store, keyed_message("order.created", "{}", "seen"), t0).await;

    let results = store
        .publish(
            vec![
                keyed_message("order.created", r#"{"i":0}"#, "fresh"),
                keyed_message("order.created", "{}", "seen"),
                message("order.created", r#"{"i":2}"#),
                keyed_message("order.created", r#"{"changed":1}"#, "seen"),
                // The same key twice in one batch: the second sees the first.
                keyed_message("order.created", r#"{"i":4}"#, "twice"),
                keyed_message("order.created", r#"{"i":4}"#, "twice"),
            ],
            t0,
        )
        .await
        .expect("publish batch");

    assert_eq!(results.len(), 6, "{results:?}");
    let Published::Created {
        message_id: fresh, ..
    } = &results[0]
    else {
        panic!("0: {results:?}")
    };
    assert_eq!(
        results[1],
        Published::Duplicate {
            message_id: seen.clone(),
            deliveries: 1
        }
    );
    let Published::Created {
        message_id: plain, ..
    } = &results[2]
    else {
        panic!("2: {results:?}")
    };
    assert_eq!(results[3], Published::Conflict { message_id: seen });
    let Published::Created {
        message_id: twice, ..
    } = &results[4]
    else {
        panic!("4: {results:?}")
    };
    assert_eq!(
        results[5],
        Published::Duplicate {
            message_id: twice.clone(),
            deliveries: 1
        }
    );
    // Each created result names its own message: the payloads say which.
    for (id, payload) in [
        (fresh, r#"{"i":0}"#),
        (plain, r#"{"i":2}"#),
        (twice, r#"{"i":4}"#),
    ] {
        let (stored, _) = store.get_message(id).await.unwrap();
        assert_eq!(stored.payload, Bytes::from(payload), "{id}");
    }
    assert_backlog(&store, 4).await;
}

// ---------------------------------------------------------------------------------------
// 2. Claims under a lease.

async fn claim_leases_due_deliveries_once(store: Arc<dyn Store>, _: &Guard) {
    let t0 = start_time();
    let a = create(&store, endpoint("a", t0)).await;
    let b = create(&store, endpoint_for("b", &["order.*"], &[], t0)).await;
    let (m1, _) = publish(&store, message("order.created", r#"{"m":1}"#), t0).await;
    let (m2, _) = publish(&store, message("user.created", r#"{"m":2}"#), t0).await;

    let early = claim(
        &store,
        claim_request(t0 - Duration::from_secs(1), LEASE, 10),
    )
    .await;
    assert!(early.is_empty(), "nothing is due before it was published");

    let claims = claim(&store, claim_request(t0, LEASE, 10)).await;
    assert_eq!(claims.len(), 3, "m1 to a and b, m2 to a");
    for (message, endpoint, payload) in [
        (&m1, &a, r#"{"m":1}"#),
        (&m1, &b, r#"{"m":1}"#),
        (&m2, &a, r#"{"m":2}"#),
    ] {
        let c = claim_of(&claims, message, endpoint);
        assert_eq!(c.message.payload, Bytes::from(payload));
        assert_eq!(
            c.endpoint.url.host_str(),
            Some(&*format!("{endpoint}.example"))
        );
        assert_eq!((c.attempt_number, c.attempts_in_round), (1, 0));
        assert_eq!(
            delivery(&store, message, endpoint).await.state,
            DeliveryState::InFlight
        );
    }
    let mut leases: Vec<Lease> = claims.iter().map(|c| c.lease).collect();
    leases.sort_by_key(|l| (l.delivery, l.token));
    leases.dedup_by_key(|l| l.delivery);
    assert_eq!(leases.len(), 3, "one delivery per claim");

    let during = claim(
        &store,
        claim_request(t0 + LEASE - Duration::from_millis(1), LEASE, 10),
    )
    .await;
    assert!(
        during.is_empty(),
        "a delivery is not claimed again while its lease runs: {:?}",
        during.iter().map(|c| c.lease).collect::<Vec<_>>()
    );
    assert_backlog(&store, 3).await;
    assert_eq!(
        store.pending(None, None).await.unwrap(),
        3,
        "in flight is unfinished"
    );
}

async fn claim_honours_limit_and_endpoint_room(store: Arc<dyn Store>, guard: &Guard) {
    let t0 = start_time();
    let a = create(&store, capped_endpoint("a", 2, t0)).await;
    let b = create(&store, capped_endpoint("b", 2, t0)).await;
    for i in 0..4 {
        publish(
            &store,
            message("order.created", &format!(r#"{{"i":{i}}}"#)),
            t0,
        )
        .await;
    }

    if matches!(guard, Guard::Redis { .. }) {
        // The Redis store applies each endpoint's in-flight cap itself, shared by every
        // instance, and does not read `per_endpoint`/`unknown`: a process on it passes
        // unlimited room (its `SharedProtection` does). The room of an endpoint is its cap
        // (2 here) less its attempts in flight, whatever the request says.
        let first = claim(&store, claim_request(t0, LEASE, 3)).await;
        assert_eq!(first.len(), 3, "at most `limit` claims");
        let second = claim(&store, claim_request(t0, LEASE, 100)).await;
        let mut held = first;
        held.extend(second);
        assert_eq!(
            per_endpoint(&held),
            HashMap::from([(a.clone(), 2), (b.clone(), 2)]),
            "no endpoint has more than its cap in flight"
        );
        assert!(
            claim(&store, claim_request(t0, LEASE, 100))
                .await
                .is_empty()
        );

        let done = held.iter().find(|c| c.endpoint.id == a).unwrap();
        complete(&store, done.lease, delivered(done, t0), t0).await;
        let freed = claim(&store, claim_request(t0, LEASE, 100)).await;
        assert_eq!(
            per_endpoint(&freed),
            HashMap::from([(a, 1)]),
            "a finished attempt frees room for one more"
        );
    } else {
        // The SQLite stores leave protection to the process, which says in the request
        // how many deliveries each endpoint has room for; the cap override is its to apply.
        let listed = claim(
            &store,
            claim_request_with_room(t0, LEASE, 100, &[(&a, 1)], 0),
        )
        .await;
        assert_eq!(
            per_endpoint(&listed),
            HashMap::from([(a.clone(), 1)]),
            "a listed endpoint gets its room, an unlisted one `unknown` (0)"
        );
        let unlisted = claim(
            &store,
            claim_request_with_room(t0, LEASE, 100, &[(&a, 0)], 2),
        )
        .await;
        assert_eq!(
            per_endpoint(&unlisted),
            HashMap::from([(b.clone(), 2)]),
            "an unlisted endpoint gets `unknown`, one with room 0 nothing"
        );
        let limited = claim(&store, claim_request(t0, LEASE, 3)).await;
        assert_eq!(limited.len(), 3, "at most `limit` claims");
        let rest = claim(&store, claim_request(t0, LEASE, 100)).await;
        let mut held = [listed, unlisted, limited, rest].concat();
        assert_eq!(
            per_endpoint(&held),
            HashMap::from([(a, 4), (b, 4)]),
            "unlimited room takes everything left"
        );
        held.sort_by_key(|c| c.lease.delivery);
        held.dedup_by_key(|c| c.lease.delivery);
        assert_eq!(held.len(), 8, "each delivery claimed once");
    }
}

// ---------------------------------------------------------------------------------------
// 3. Lease expiry and takeover.

async fn expired_lease_is_taken_over_and_the_old_lease_only_records(
    store: Arc<dyn Store>,
    guard: &Guard,
) {
    let t0 = start_time();
    let a = create(&store, endpoint("a", t0)).await;
    let (m, _) = publish(&store, message("order.created", "{}"), t0).await;
    let taker = other_instance(&store, guard).await;

    let first = claim(&store, claim_request(t0, SHORT_LEASE, 10)).await;
    assert_eq!(first.len(), 1);
    let old = first[0].clone();

    // The SQLite stores expire leases on the request's clock, so the first claim past
    // the lease takes it over. The Redis store does so on Redis's clock (the entry must
    // have been idle for the claiming request's lease) and looks at most once a second of
    // request time: each round moves `now` on by a second and asks again, until Redis
    // has seen the delivery idle long enough.
    let deadline = Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut now = t0 + SHORT_LEASE;
    let new = loop {
        tick.tick().await;
        let claims = claim(&taker, claim_request(now, SHORT_LEASE, 10)).await;
        if let Some(claim) = claims.first() {
            assert_eq!(claims.len(), 1, "only the expired delivery");
            break claim.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the expired lease was not taken over within {PATIENCE:?}"
        );
        now += Duration::from_secs(1);
    };
    assert_eq!(new.lease.delivery, old.lease.delivery, "the same delivery");
    assert_ne!(new.lease.token, old.lease.token, "under a new lease");
    assert_eq!(new.message.id, m);
    assert_eq!(new.endpoint.id, a);
    assert_eq!(new.attempt_number, 1, "no attempt was recorded in between");

    // The old holder finishes late: its attempt is recorded, its transition is not.
    complete(
        &store,
        old.lease,
        server_error(&old, t0, Transition::Failed),
        now,
    )
    .await;
    let d = delivery(&store, &m, &a).await;
    assert_eq!(d.state, DeliveryState::InFlight, "still the new holder's");
    assert_eq!(d.attempt_count, 1, "the late attempt counts");
    assert!(
        !all_events(&store)
            .await
            .iter()
            .any(|e| e.kind == StatusKind::DeliveryExhausted),
        "no transition event for the late attempt"
    );
    assert!(
        claim(&store, claim_request(now, LEASE, 10))
            .await
            .is_empty(),
        "the late attempt did not hand the delivery back"
    );

    complete(&taker, new.lease, delivered(&new, now), now).await;
    let d = delivery(&store, &m, &a).await;
    assert_eq!(d.state, DeliveryState::Succeeded);
    assert_eq!(d.attempt_count, 2);
    let attempts = store
        .list_attempts(AttemptQuery {
            message_id: Some(m),
            endpoint_id: None,
            delivery_state: None,
            after_id: None,
            limit: 10,
        })
        .await
        .unwrap();
    let summary: Vec<(u32, bool)> = attempts.iter().map(|a| (a.number, a.succeeded)).collect();
    assert_eq!(summary, [(1, false), (2, true)]);
    assert_backlog(&store, 0).await;
}

// ---------------------------------------------------------------------------------------
// 4. Completing an attempt.

async fn success_finishes_the_delivery(store: Arc<dyn Store>, _: &Guard) {
    let t0 = start_time();
    let a = create(&store, endpoint("a", t0)).await;
    let (m, _) = publish(&store, message("order.created", "{}"), t0).await;
    assert_backlog(&store, 1).await;

    let claims = claim(&store, claim_request(t0, LEASE, 10)).await;
    complete(&store, claims[0].lease, delivered(&claims[0], t0), t0).await;

    let d = delivery(&store, &m, &a).await;
    assert_eq!(d.state, DeliveryState::Succeeded);
    assert_eq!(d.attempt_count, 1);
    assert_eq!(d.next_attempt_at, None);
    assert_backlog(&store, 0).await;
    assert_eq!(store.pending(None, None).await.unwrap(), 0);
    let later = t0 + 2 * LEASE;
    assert!(
        claim(&store, claim_request(later, LEASE, 10))
            .await
            .is_empty(),
        "a finished delivery is never claimed again"
    );
}

async fn retry_at_makes_the_delivery_due_again_at_that_time(store: Arc<dyn Store>, _: &Guard) {
    let t0 = start_time();
    let a = create(&store, endpoint("a", t0)).await;
    let (m, _) = publish(&store, message("order.created", "{}"), t0).await;
    let claims = claim(&store, claim_request(t0, LEASE, 10)).await;
    let retry_at = t0 + Duration::from_secs(60);
    complete(
        &store,
        claims[0].lease,
        server_error(&claims[0], t0, Transition::RetryAt(retry_at)),
        t0,
    )
    .await;

    let d = delivery(&store, &m, &a).await;
    assert_eq!(d.state, DeliveryState::Pending);
    assert_eq!(d.attempt_count, 1);
    assert_eq!(d.next_attempt_at, Some(retry_at));
    assert_backlog(&store, 1).await;

    let early = store
        .claim_due(claim_request(
            retry_at - Duration::from_millis(1),
            LEASE,
            10,
        ))
        .await
        .unwrap();
    assert!(early.claims.is_empty(), "not due before its retry time");
    assert_eq!(
        early.next_due,
        Some(retry_at),
        "the batch says when it is due"
    );

    let due = claim(&store, claim_request(retry_at, LEASE, 10)).await;
    assert_eq!(due.len(), 1, "due at its retry time");
    assert_eq!(due[0].message.id, m);
    assert_eq!((due[0].attempt_number, due[0].attempts_in_round), (2, 1));
}

async fn failed_delivery_is_recovered_since_its_failure(store: Arc<dyn Store>, _: &Guard) {
    let t0 = start_time();
    let a = create(&store, endpoint("a", t0)).await;
    let (m, _) = publish(&store, message("order.created", "{}"), t0).await;
    let claims = claim(&store, claim_request(t0, LEASE, 10)).await;
    let failed_at = t0 + Duration::from_secs(1);
    complete(
        &store,
        claims[0].lease,
        server_error(&claims[0], t0, Transition::Failed),
        failed_at,
    )
    .await;

    let d = delivery(&store, &m, &a).await;
    assert_eq!(d.state, DeliveryState::Failed);
    assert_eq!(d.attempt_count, 1);
    assert_backlog(&store, 0).await;
    assert_eq!(store.pending(None, None).await.unwrap(), 0);
    assert!(
        claim(&store, claim_request(t0 + 2 * LEASE, LEASE, 10))
            .await
            .is_empty(),
        "an exhausted delivery is not claimed"
    );
    assert!(
        all_events(&store)
            .await
            .iter()
            .any(|e| e.kind == StatusKind::DeliveryExhausted && e.message_id.as_ref() == Some(&m))
    );

    let now = t0 + Duration::from_secs(10);
    let after = failed_at + Duration::from_millis(1);
    assert_eq!(
        store.recover_endpoint(&a, after, now).await.unwrap(),
        0,
        "failed before `since`"
    );
    assert_eq!(store.recover_endpoint(&a, failed_at, now).await.unwrap(), 1);
    let d = delivery(&store, &m, &a).await;
    assert_eq!(d.state, DeliveryState::Pending);
    assert_backlog(&store, 1).await;
    let again = claim(&store, claim_request(now, LEASE, 10)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].attempt_number, again[0].attempts_in_round),
        (2, 0),
        "a new round of retries"
    );
}

async fn a_disabling_outcome_disables_the_endpoint(store: Arc<dyn Store>, _: &Guard) {
    let t0 = start_time();
    let gone = create(&store, endpoint("gone", t0)).await;
    let kept = create(&store, endpoint("kept", t0)).await;
    let (m1, _) = publish(&store, message("order.created", r#"{"m":1}"#), t0).await;
    let claims = claim(&store, claim_request(t0, LEASE, 10)).await;
    assert_eq!(claims.len(), 2);
    // Waiting behind the attempt when its endpoint is disabled.
    let (m2, _) = publish(&store, message("order.created", r#"{"m":2}"#), t0).await;

    let to_gone = claim_of(&claims, &m1, &gone);
    complete(
        &store,
        to_gone.lease,
        Outcome {
            endpoint: EndpointEffects {
                disable: Some(DisabledReason::Gone),
                ..EndpointEffects::default()
            },
            ..outcome(
                to_gone,
                Answer::Status(410),
                t0,
                Duration::from_millis(10),
                Transition::Failed,
            )
        },
        t0,
    )
    .await;

    let disabled = store.get_endpoint(&gone).await.unwrap();
    assert_eq!(disabled.disabled, Some(DisabledReason::Gone));
    assert_eq!(
        delivery(&store, &m1, &gone).await.state,
        DeliveryState::Failed
    );
    assert!(all_events(&store).await.iter().any(|e| {
        e.kind == StatusKind::EndpointDisabled
            && e.endpoint_id.as_ref() == Some(&gone)
            && e.disabled_reason == Some(DisabledReason::Gone)
    }));

    let later = claim(
        &store,
        claim_request(t0 + Duration::from_secs(1), LEASE, 10),
    )
    .await;
    assert_eq!(
        per_endpoint(&later),
        HashMap::from([(kept.clone(), 1)]),
        "a disabled endpoint's pending delivery waits"
    );
    assert_eq!(
        delivery(&store, &m2, &gone).await.state,
        DeliveryState::Pending
    );

    let (m3, n) = publish(&store, message("order.created", r#"{"m":3}"#), t0).await;
    assert_eq!(n, 1, "only the enabled endpoint");
    let reached = deliveries(&store, &m3).await;
    assert!(
        reached.contains_key(&kept) && !reached.contains_key(&gone),
        "{reached:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 5. Cancel on delete.

async fn delete_endpoint_cancels_unfinished_deliveries(store: Arc<dyn Store>, _: &Guard) {
    let t0 = start_time();
    let doomed = create(&store, endpoint("doomed", t0)).await;
    let kept = create(&store, endpoint("kept", t0)).await;
    let (done, _) = publish(&store, message("order.created", r#"{"i":0}"#), t0).await;
    let (in_flight, _) = publish(&store, message("order.created", r#"{"i":1}"#), t0).await;
    let claims = claim(&store, claim_request(t0, LEASE, 10)).await;
    let finished = claim_of(&claims, &done, &doomed);
    complete(&store, finished.lease, delivered(finished, t0), t0).await;
    let attempt = claim_of(&claims, &in_flight, &doomed).clone();
    let mut waiting = Vec::new();
    for i in 2..5 {
        let (m, _) = publish(
            &store,
            message("order.created", &format!(r#"{{"i":{i}}}"#)),
            t0,
        )
        .await;
        waiting.push(m);
    }
    // kept: 2 in flight and 3 pending; doomed: 1 in flight and 3 pending.
    assert_backlog(&store, 9).await;

    let now = t0 + Duration::from_secs(1);
    let cancelled = store.delete_endpoint(&doomed, now).await.unwrap();
    assert_eq!(cancelled, 4, "the pending ones and the one in flight");
    assert!(matches!(
        store.get_endpoint(&doomed).await,
        Err(StoreError::NotFound { .. })
    ));
    for m in waiting.iter().chain([&in_flight]) {
        assert_eq!(
            delivery(&store, m, &doomed).await.state,
            DeliveryState::Cancelled,
            "{m}"
        );
        assert_ne!(
            delivery(&store, m, &kept).await.state,
            DeliveryState::Cancelled
        );
    }
    assert_eq!(
        delivery(&store, &done, &doomed).await.state,
        DeliveryState::Succeeded,
        "a finished delivery stays as it was"
    );
    assert_backlog(&store, 5).await;
    assert_eq!(
        store
            .pending(Some(vec![doomed.clone()]), None)
            .await
            .unwrap(),
        0
    );
    let cancelled_events = all_events(&store)
        .await
        .into_iter()
        .filter(|e| e.kind == StatusKind::DeliveryCancelled)
        .map(|e| (e.message_id.unwrap(), e.endpoint_id.unwrap()))
        .collect::<Vec<_>>();
    assert_eq!(cancelled_events.len(), 4, "{cancelled_events:?}");
    assert!(cancelled_events.iter().all(|(_, e)| *e == doomed));

    // The attempt under way ends: recorded, but the delivery stays cancelled.
    complete(&store, attempt.lease, delivered(&attempt, now), now).await;
    assert_eq!(
        delivery(&store, &in_flight, &doomed).await.state,
        DeliveryState::Cancelled
    );
    // Past every lease, and (on Redis) with a lease short enough that any delivery left
    // in the ready stream is taken over: only the kept endpoint's pending ones come.
    let rest = claim(
        &store,
        claim_request(t0 + 10 * LEASE, Duration::from_millis(1), 100),
    )
    .await;
    assert!(rest.len() >= 3, "the kept endpoint's pending deliveries");
    assert!(
        rest.iter().all(|c| c.endpoint.id == kept),
        "nothing of a deleted endpoint is claimed: {:?}",
        rest.iter()
            .map(|c| (&c.message.id, &c.endpoint.id))
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------
// 6. Status events.

async fn status_events_follow_commit_order_stored_and_live(store: Arc<dyn Store>, _: &Guard) {
    use StatusKind::*;
    let t0 = start_time();
    let a = create(&store, endpoint("a", t0)).await;
    let mut live = store.subscribe();

    let (m1, _) = publish(&store, message("order.created", "{}"), t0).await;
    let first = claim(&store, claim_request(t0, LEASE, 10)).await;
    let retry_at = t0 + Duration::from_secs(5);
    complete(
        &store,
        first[0].lease,
        server_error(&first[0], t0, Transition::RetryAt(retry_at)),
        t0 + Duration::from_millis(10),
    )
    .await;
    let second = claim(&store, claim_request(retry_at, LEASE, 10)).await;
    complete(
        &store,
        second[0].lease,
        server_error(&second[0], retry_at, Transition::Failed),
        retry_at + Duration::from_millis(10),
    )
    .await;
    let (m2, _) = publish(&store, message("order.paid", "{}"), retry_at).await;
    let third = claim(&store, claim_request(retry_at, LEASE, 10)).await;
    complete(
        &store,
        third[0].lease,
        delivered(&third[0], retry_at),
        retry_at + Duration::from_millis(10),
    )
    .await;

    let page = store.events_after(0, 100).await.unwrap();
    let seen: Vec<(StatusKind, Option<&MessageId>, Option<u32>)> = page
        .events
        .iter()
        .map(|e| (e.kind, e.message_id.as_ref(), e.attempt_number))
        .collect();
    assert_eq!(
        seen,
        [
            (AttemptStarted, Some(&m1), Some(1)),
            (AttemptFailed, Some(&m1), Some(1)),
            (RetryScheduled, Some(&m1), Some(1)),
            (AttemptStarted, Some(&m1), Some(2)),
            (AttemptFailed, Some(&m1), Some(2)),
            (DeliveryExhausted, Some(&m1), Some(2)),
            (AttemptStarted, Some(&m2), Some(1)),
            (AttemptSucceeded, Some(&m2), Some(1)),
        ],
        "in the order the transitions were committed"
    );
    assert!(
        page.events.windows(2).all(|w| w[0].cursor < w[1].cursor),
        "cursors increase: {:?}",
        page.events.iter().map(|e| e.cursor).collect::<Vec<_>>()
    );
    assert_eq!(page.latest, page.events.last().unwrap().cursor);
    assert!(!page.pruned);
    for e in &page.events {
        assert_eq!(e.endpoint_id.as_ref(), Some(&a), "{e:?}");
        assert!(e.event_type.is_some(), "{e:?}");
    }
    assert_eq!(page.events[1].status_code, Some(500));
    assert_eq!(page.events[2].next_attempt_at, Some(retry_at));
    assert_eq!(page.events[7].status_code, Some(200));

    // Resuming from a cursor gives the rest.
    let rest = store
        .events_after(page.events[3].cursor, 100)
        .await
        .unwrap();
    assert_eq!(rest.events, page.events[4..]);
    let limited = store.events_after(0, 2).await.unwrap();
    assert_eq!(limited.events, page.events[..2]);

    for stored in &page.events {
        let received = tokio::time::timeout(PATIENCE, live.recv())
            .await
            .expect("the live event arrives in time")
            .expect("the subscriber kept up");
        assert_eq!(*received, *stored, "live in the same order as stored");
    }
}

// ---------------------------------------------------------------------------------------
// 7. Rollups and pending.

async fn rollups_and_pending_match_the_attempts_recorded(store: Arc<dyn Store>, _: &Guard) {
    // Every attempt starts at t0, so they all fall in t0's minute. The SQLite stores add a
    // commit's attempts to the stored rollups in that same commit (`flush_rollups` before
    // COMMIT), and the Redis store in the completing script: once `complete` returns, its
    // attempt is in the rollups.
    let t0 = start_time();
    let minute = minute_of(t0);
    let created = event_type("order.created");
    let paid = event_type("order.paid");
    let e = create(&store, endpoint("e", t0)).await;
    let f = create(&store, endpoint_for("f", &["order.paid"], &[], t0)).await;
    let (ok, _) = publish(&store, message("order.created", r#"{"m":"ok"}"#), t0).await;
    let (exhausted, _) = publish(&store, message("order.created", r#"{"m":"x"}"#), t0).await;
    let (waiting, _) = publish(&store, message("order.created", r#"{"m":"w"}"#), t0).await;
    let (other, _) = publish(&store, message("order.paid", "{}"), t0).await;

    let ms = Duration::from_millis;
    let claims = claim(&store, claim_request(t0, LEASE, 10)).await;
    assert_eq!(claims.len(), 5);
    let attempt = |m: &MessageId, to: &EndpointId| claim_of(&claims, m, to).clone();
    let c = attempt(&ok, &e);
    complete(
        &store,
        c.lease,
        outcome(&c, Answer::Status(200), t0, ms(10), Transition::Succeeded),
        t0,
    )
    .await;
    let c = attempt(&exhausted, &e);
    let retry_at = t0 + Duration::from_secs(1);
    complete(
        &store,
        c.lease,
        outcome(
            &c,
            Answer::Status(500),
            t0,
            ms(20),
            Transition::RetryAt(retry_at),
        ),
        t0,
    )
    .await;
    let c = attempt(&waiting, &e);
    let much_later = t0 + Duration::from_secs(3600);
    complete(
        &store,
        c.lease,
        outcome(
            &c,
            Answer::Unanswered(TransportError::Timeout),
            t0,
            ms(40),
            Transition::RetryAt(much_later),
        ),
        t0,
    )
    .await;
    let c = attempt(&other, &e);
    complete(
        &store,
        c.lease,
        outcome(&c, Answer::Status(204), t0, ms(5), Transition::Succeeded),
        t0,
    )
    .await;
    // The attempt of `other` to f stays in flight: unfinished, and not in any rollup.
    let retried = claim(&store, claim_request(retry_at, LEASE, 10)).await;
    assert_eq!(retried.len(), 1);
    let c = &retried[0];
    complete(
        &store,
        c.lease,
        outcome(c, Answer::Status(503), t0, ms(30), Transition::Failed),
        retry_at,
    )
    .await;

    let window = (minute, minute + 1);
    let of_created = total(
        &store
            .rollups(
                window.0,
                window.1,
                Some(vec![e.clone()]),
                Some(created.clone()),
            )
            .await
            .unwrap(),
        &e,
        minute,
    );
    assert_eq!(
        (
            of_created.deliveries,
            of_created.attempts,
            of_created.succeeded,
            of_created.failed,
            of_created.exhausted
        ),
        (3, 4, 1, 3, 1),
        "deliveries, attempts, succeeded, failed, exhausted"
    );
    assert_eq!(of_created.latency_sum_us, 100_000);
    assert_eq!(of_created.latency_max_us, 40_000);
    assert_eq!(of_created.latency.count(), 4);
    assert_eq!(
        of_created.status_codes,
        BTreeMap::from([(200, 1), (500, 1), (503, 1)])
    );
    assert_eq!(
        of_created.failure_kinds,
        BTreeMap::from([(FailureKind::ServerError, 2), (FailureKind::Timeout, 1)])
    );

    let of_e = total(
        &store
            .rollups(window.0, window.1, Some(vec![e.clone()]), None)
            .await
            .unwrap(),
        &e,
        minute,
    );
    assert_eq!(
        (
            of_e.deliveries,
            of_e.attempts,
            of_e.succeeded,
            of_e.failed,
            of_e.exhausted
        ),
        (4, 5, 2, 3, 1),
        "every event type of e"
    );
    assert_eq!(of_e.latency_sum_us, 105_000);
    let of_paid = store
        .rollups(window.0, window.1, None, Some(paid.clone()))
        .await
        .unwrap();
    assert_eq!(
        total(&of_paid, &e, minute).attempts,
        1,
        "f's attempt is in flight"
    );
    assert!(
        store
            .rollups(window.0, window.1, Some(vec![f.clone()]), None)
            .await
            .unwrap()
            .is_empty()
    );
    for (from, to) in [(minute + 1, minute + 2), (minute - 1, minute)] {
        assert!(
            store
                .rollups(from, to, None, None)
                .await
                .unwrap()
                .is_empty(),
            "[{from}, {to}) holds none of minute {minute}"
        );
    }

    // Unfinished: `waiting` to e (pending), `other` to f (in flight).
    assert_eq!(store.pending(None, None).await.unwrap(), 2);
    assert_eq!(store.pending(Some(vec![e.clone()]), None).await.unwrap(), 1);
    assert_eq!(
        store
            .pending(Some(vec![e.clone()]), Some(created.clone()))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .pending(Some(vec![e]), Some(paid.clone()))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.pending(Some(vec![f.clone()]), None).await.unwrap(), 1);
    assert_eq!(store.pending(None, Some(paid)).await.unwrap(), 1);
    assert_eq!(
        store.pending(Some(vec![f]), Some(created)).await.unwrap(),
        0
    );
    assert_backlog(&store, 2).await;
}

/// The rows summed into one rollup, checking they are all of `endpoint` in `minute`.
fn total(rows: &[RollupRow], endpoint: &EndpointId, minute: i64) -> Rollup {
    let mut sum = Rollup::default();
    for row in rows {
        assert_eq!((&row.endpoint, row.minute), (endpoint, minute), "{row:?}");
        sum.merge(&row.rollup);
    }
    sum
}

async fn close_ends_the_background_work_and_keeps_what_was_acknowledged(
    store: Arc<dyn Store>,
    guard: &Guard,
) {
    let t0 = start_time();
    let kept = create(&store, endpoint("kept", t0)).await;
    let (acknowledged, n) = publish(&store, message("order.created", r#"{"i":1}"#), t0).await;
    assert_eq!(n, 1);
    tokio::time::timeout(PATIENCE, store.close())
        .await
        .expect("close ends its background work");
    tokio::time::timeout(PATIENCE, store.close())
        .await
        .expect("a second close is harmless");
    match guard {
        // Its writer thread has stopped: nothing more is taken.
        Guard::Memory | Guard::Dir(_) => assert!(matches!(
            store
                .publish(vec![message("order.created", "{}")], t0)
                .await,
            Err(StoreError::Closed)
        )),
        // Only its readers stopped; calls still go straight to Redis.
        Guard::Redis { .. } => {}
    }
    if matches!(guard, Guard::Memory) {
        return;
    }
    // What was acknowledged before the close is there for the next process.
    drop(store);
    let next = open_instance(guard).await;
    let (message, deliveries) = next
        .get_message(&acknowledged)
        .await
        .expect("the acknowledged message outlives the close");
    assert_eq!(message.id, acknowledged);
    assert_eq!(receivers(&deliveries), sorted([&kept]));
}
