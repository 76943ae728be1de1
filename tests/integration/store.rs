//! The `Store` trait's contract, checked on every backend without gRPC or HTTP in the way:
//! atomic publish with idempotency, claims under a lease, lease expiry and takeover, each
//! transition of `complete`, cancellation on endpoint deletion, expunging (a message, a
//! tenant's), status events in commit
//! order (stored and live), rollups, tenants (routing, idempotency, listings, the
//! per-tenant endpoint cap) and API keys. Stores written before tenants existed are
//! opened once per backend that persists, to check what the upgrade makes of them.
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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use herald::analytics::{FailureKind, Rollup, RollupRow, minute_of};
use herald::auth::key::parse_bearer;
use herald::auth::{ApiKey, ApiKeyId, ApiKeyToken, Scope, Scopes};
use herald::config::{Config, StorageConfig};
use herald::domain::{
    Attempt, AttemptRecord, Delivery, DeliveryState, DisabledReason, Endpoint, EndpointId,
    EventPattern, EventType, MessageId, NewMessage, ProtectionOverride, RetryOverride, Secret,
    SigningSecrets, StatusEvent, StatusKind, TenantId, TransportError,
};
use herald::policy::limiter::RateLimit;
use herald::policy::pace::{Pace, PaceRoom};
use herald::policy::protection::{EndpointEffects, SharedRoom, is_endpoint_failure};
use herald::storage::codec::{content_hash, ms};
use herald::storage::redis::RedisConfig;
use herald::storage::{
    AttemptQuery, Claim, ClaimRequest, Lease, Outcome, Published, RECHECK_UNSETTLED, RedisStore,
    SqliteStore, Store, StoreError, Swept, TenantSummary, Transition,
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
    claim_shares_a_hosts_room_among_its_endpoints,
    claim_holds_slow_endpoints_to_their_share,
    expired_lease_is_taken_over_and_the_old_lease_only_records,
    success_finishes_the_delivery,
    retry_at_makes_the_delivery_due_again_at_that_time,
    failed_delivery_is_recovered_since_its_failure,
    a_disabling_outcome_disables_the_endpoint,
    delete_endpoint_cancels_unfinished_deliveries,
    expunge_empties_the_message_and_cancels_its_deliveries,
    expunge_tenant_goes_in_batches_and_only_through_that_tenant,
    status_events_follow_commit_order_stored_and_live,
    rollups_and_pending_match_the_attempts_recorded,
    rollups_and_pending_take_a_set_of_endpoints,
    close_ends_the_background_work_and_keeps_what_was_acknowledged,
    publish_and_replay_reach_only_endpoints_of_the_message_tenant,
    idempotency_keys_are_remembered_per_tenant,
    endpoints_and_tenants_are_listed_per_tenant_in_pages,
    endpoint_cap_counts_per_tenant,
    endpoint_cap_holds_under_concurrent_creates,
    api_keys_round_trip_list_in_id_order_and_revoke_once,
    retention_deletes_settled_messages_past_their_expiry_only,
    retention_deletes_in_batches_of_the_limit,
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

/// The backlog limit of publishes that test something else.
const NO_BACKLOG_LIMIT: u64 = u64::MAX;

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
        retention: Duration::from_secs(3600),
    }
}

/// `message` kept `retention` once settled.
fn kept_for(retention: Duration, message: NewMessage) -> NewMessage {
    NewMessage {
        retention,
        ..message
    }
}

fn tenant(value: &str) -> TenantId {
    TenantId::parse(value).expect("a valid tenant id")
}

/// `endpoint` in tenant `name` rather than the default one.
fn endpoint_in(name: &str, endpoint: Endpoint) -> Endpoint {
    Endpoint {
        tenant: tenant(name),
        ..endpoint
    }
}

/// `message` of tenant `name` rather than the default one.
fn message_in(name: &str, message: NewMessage) -> NewMessage {
    NewMessage {
        tenant: tenant(name),
        ..message
    }
}

/// An API key with every optional field set (tenant, expiry, publish limit), and the
/// secret its token carries, which the stored hash must match.
fn api_key(name: &str, now: SystemTime) -> (ApiKey, String) {
    let (id, token, secret_hash) = ApiKeyToken::generate();
    let (_, secret) = parse_bearer(token.expose()).expect("a minted token parses");
    let key = ApiKey {
        id,
        name: name.to_owned(),
        scopes: Scopes::new([Scope::Publish, Scope::Read]),
        tenant: Some(tenant("a")),
        secret_hash,
        created_at: now,
        expires_at: Some(now + Duration::from_secs(3600)),
        publish_limit: Some(
            RateLimit::try_new(10, Duration::from_secs(1), 5).expect("a valid rate limit"),
        ),
        revoked_at: None,
        last_used_at: None,
    };
    (key, secret.to_owned())
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
        hosts: Default::default(),
        pace: PaceRoom {
            endpoints: HashMap::new(),
            unknown: Pace::Timely,
            slow_room: usize::MAX,
        },
    }
}

/// A claim with unlimited room per endpoint, but `room` shared by the endpoints `group`
/// (those pointing at one host).
fn claim_request_sharing(
    now: SystemTime,
    limit: usize,
    group: &[&EndpointId],
    room: usize,
) -> ClaimRequest {
    ClaimRequest {
        hosts: SharedRoom {
            group_of: group.iter().map(|e| ((*e).clone(), 0)).collect(),
            room: vec![room],
        },
        ..claim_request(now, LEASE, limit)
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
    let mut results = store
        .publish(vec![message], now, NO_BACKLOG_LIMIT)
        .await
        .expect("publish");
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
            NO_BACKLOG_LIMIT,
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
            NO_BACKLOG_LIMIT,
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
            .publish(
                vec![different],
                t0 + Duration::from_secs(3),
                NO_BACKLOG_LIMIT,
            )
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
            NO_BACKLOG_LIMIT,
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

/// Endpoints pointing at one host share its room: the process says it in the request on
/// SQLite, the Redis store applies the host ceiling of its settings (64 in flight) itself.
async fn claim_shares_a_hosts_room_among_its_endpoints(store: Arc<dyn Store>, _: &Guard) {
    let t0 = start_time();
    let on_host = |name: &str| {
        let mut endpoint = capped_endpoint(name, 100, t0);
        endpoint.url = url::Url::parse(&format!("https://shared.example/{name}")).unwrap();
        endpoint
    };
    let a = create(&store, on_host("a")).await;
    let b = create(&store, on_host("b")).await;
    let c = create(&store, capped_endpoint("c", 100, t0)).await;
    for i in 0..40 {
        publish(
            &store,
            message("order.created", &format!(r#"{{"i":{i}}}"#)),
            t0,
        )
        .await;
    }
    let host_room = 64;
    let held = claim(&store, claim_request_sharing(t0, 200, &[&a, &b], host_room)).await;
    let taken = per_endpoint(&held);
    assert_eq!(
        taken[&a] + taken[&b],
        host_room,
        "the host's room, over both its endpoints: {taken:?}"
    );
    assert_eq!(taken[&c], 40, "another host's endpoint is not held back");
    assert!(
        claim(&store, claim_request_sharing(t0, 200, &[&a, &b], 0))
            .await
            .is_empty()
    );
    let done = held.iter().find(|held| held.endpoint.id == a).unwrap();
    complete(&store, done.lease, delivered(done, t0), t0).await;
    let freed = claim(&store, claim_request_sharing(t0, 200, &[&a, &b], 1)).await;
    assert_eq!(freed.len(), 1, "a finished attempt frees the host one slot");
}

/// Slow endpoints, as the claiming process's pacing has them, share its slow room, each
/// within its own room; timely ones are not held back. Every store applies the request's
/// pacing (the workers are the process's); the Redis store looks at an endpoint it held
/// back again a little later, as nothing in Redis says when the process has room again.
async fn claim_holds_slow_endpoints_to_their_share(store: Arc<dyn Store>, _: &Guard) {
    let t0 = start_time();
    let timely = create(&store, capped_endpoint("timely", 100, t0)).await;
    let late = create(&store, capped_endpoint("late", 100, t0)).await;
    let probing = create(&store, capped_endpoint("probing", 100, t0)).await;
    let unknown = create(&store, capped_endpoint("unknown", 100, t0)).await;
    for i in 0..10 {
        publish(
            &store,
            message("order.created", &format!(r#"{{"i":{i}}}"#)),
            t0,
        )
        .await;
    }
    let paced = |now: SystemTime, slow_room: usize| ClaimRequest {
        pace: PaceRoom {
            endpoints: HashMap::from([
                (timely.clone(), Pace::Timely),
                (late.clone(), Pace::Slow { room: usize::MAX }),
                (probing.clone(), Pace::Slow { room: 1 }),
            ]),
            unknown: Pace::Slow { room: 1 },
            slow_room,
        },
        ..claim_request(now, LEASE, 100)
    };
    let first = per_endpoint(&claim(&store, paced(t0, 3)).await);
    let count =
        |taken: &HashMap<EndpointId, usize>, e: &EndpointId| taken.get(e).copied().unwrap_or(0);
    assert_eq!(
        count(&first, &timely),
        10,
        "a timely endpoint is not held back"
    );
    assert_eq!(
        count(&first, &late) + count(&first, &probing) + count(&first, &unknown),
        3,
        "the slow endpoints share the slow room: {first:?}"
    );
    assert!(count(&first, &probing) <= 1 && count(&first, &unknown) <= 1);
    assert!(
        claim(&store, paced(t0, 0)).await.is_empty(),
        "no slow room, and nothing due to the timely endpoint"
    );
    let later = per_endpoint(&claim(&store, paced(t0 + Duration::from_secs(1), 100)).await);
    assert_eq!(
        later,
        HashMap::from([
            (late.clone(), 10 - count(&first, &late)),
            (probing.clone(), 1),
            (unknown.clone(), 1),
        ]),
        "each slow endpoint within its own room"
    );
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

/// The message's attempts, oldest first.
async fn attempts_of(store: &Arc<dyn Store>, message: &MessageId) -> Vec<Attempt> {
    store
        .list_attempts(AttemptQuery {
            message_id: Some(message.clone()),
            endpoint_id: None,
            delivery_state: None,
            after_id: None,
            limit: 100,
        })
        .await
        .expect("list attempts")
}

async fn expunge_empties_the_message_and_cancels_its_deliveries(store: Arc<dyn Store>, _: &Guard) {
    let t0 = start_time();
    // One attempt at a time: the expunged message's attempt in flight must give its room
    // back (on Redis, the store applies the cap itself; here the request says so).
    let one = create(&store, capped_endpoint("one", 1, t0)).await;
    let other = create(&store, endpoint("other", t0)).await;
    let (gone, _) = publish(&store, message("card.charged", r#"{"card":"4111"}"#), t0).await;
    let (kept, _) = publish(&store, message("card.charged", r#"{"card":"5500"}"#), t0).await;
    let room = [(&one, 1)];
    let claims = claim(
        &store,
        claim_request_with_room(t0, LEASE, 10, &room, usize::MAX),
    )
    .await;
    let in_flight = claim_of(&claims, &gone, &one).clone();
    let failed = claim_of(&claims, &gone, &other);
    let mut answer = server_error(
        failed,
        t0,
        Transition::RetryAt(t0 + Duration::from_secs(3600)),
    );
    answer.record.response_excerpt = "card 4111 declined".into();
    complete(&store, failed.lease, answer, t0).await;
    assert_eq!(
        delivery(&store, &kept, &one).await.state,
        DeliveryState::Pending
    );
    assert_backlog(&store, 4).await;

    // Two payloads of 15 bytes each.
    assert_eq!(store.stored_bytes(), 30);
    let now = t0 + Duration::from_secs(1);
    let expunged = store.expunge_message(&gone, now).await.unwrap();
    assert_eq!(
        store.stored_bytes(),
        15,
        "the expunged payload is no longer counted"
    );
    assert!(expunged.fresh);
    assert_eq!(
        expunged.cancelled, 2,
        "the one in flight and the one pending"
    );
    assert_backlog(&store, 2).await;
    let (message, _) = store.get_message(&gone).await.unwrap();
    assert!(message.payload.is_empty());
    assert_eq!(message.expunged_at, Some(expunged.at));
    assert_eq!(message.event_type, event_type("card.charged"));
    for endpoint in [&one, &other] {
        assert_eq!(
            delivery(&store, &gone, endpoint).await.state,
            DeliveryState::Cancelled
        );
    }
    let attempts = attempts_of(&store, &gone).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].record.status_code, Some(500));
    assert!(attempts[0].record.response_excerpt.is_empty());
    let cancelled: Vec<_> = all_events(&store)
        .await
        .into_iter()
        .filter(|e| e.kind == StatusKind::DeliveryCancelled)
        .map(|e| (e.message_id.unwrap(), e.endpoint_id.unwrap()))
        .collect();
    assert_eq!(
        sorted(cancelled),
        sorted([(gone.clone(), one.clone()), (gone.clone(), other.clone())])
    );
    let (untouched, _) = store.get_message(&kept).await.unwrap();
    assert!(untouched.expunged_at.is_none() && !untouched.payload.is_empty());

    // Again: the first time stands, nothing more is cancelled.
    let again = store
        .expunge_message(&gone, now + Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        (again.at, again.fresh, again.cancelled),
        (expunged.at, false, 0)
    );

    // The room of the cancelled attempt is free: the other message goes to `one` now.
    let next = claim(
        &store,
        claim_request_with_room(now, LEASE, 10, &room, usize::MAX),
    )
    .await;
    assert_eq!(
        next.iter()
            .map(|c| (&c.message.id, &c.endpoint.id))
            .collect::<Vec<_>>(),
        [(&kept, &one)]
    );
    // The cancelled attempt ends: recorded without its excerpt, the delivery stays
    // cancelled and the backlog as it was.
    let mut late = delivered(&in_flight, now);
    late.record.response_excerpt = "thanks for card 4111".into();
    complete(&store, in_flight.lease, late, now).await;
    assert_eq!(
        delivery(&store, &gone, &one).await.state,
        DeliveryState::Cancelled
    );
    let attempts = attempts_of(&store, &gone).await;
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts
            .iter()
            .all(|a| a.record.response_excerpt.is_empty())
    );
    assert_backlog(&store, 2).await;

    // It is never sent again.
    for refused in [
        store.retry_delivery(&gone, &one, now).await.map(drop),
        store.replay_message(&gone, now).await.map(drop),
    ] {
        match refused {
            Err(StoreError::FailedPrecondition(why)) => assert!(why.contains("expunged"), "{why}"),
            other => panic!("an expunged message was queued again: {other:?}"),
        }
    }
    assert!(matches!(
        store.expunge_message(&MessageId::generate(), now).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn expunge_tenant_goes_in_batches_and_only_through_that_tenant(
    store: Arc<dyn Store>,
    _: &Guard,
) {
    let t0 = start_time();
    create(&store, endpoint_in("acme", endpoint("acme-orders", t0))).await;
    let mut acme = Vec::new();
    for i in 0..5 {
        let payload = format!(r#"{{"i":{i}}}"#);
        let (m, deliveries) = publish(
            &store,
            message_in("acme", message("order.created", &payload)),
            t0,
        )
        .await;
        assert_eq!(deliveries, 1);
        acme.push(m);
    }
    let (before, _) = publish(
        &store,
        message_in("acme", message("order.created", "{}")),
        t0,
    )
    .await;
    let first = store.expunge_message(&before, t0).await.unwrap();
    let (other, _) = publish(&store, message("order.created", "{}"), t0).await;

    let now = t0 + Duration::from_secs(1);
    let done = store.expunge_tenant(&tenant("acme"), 2, now).await.unwrap();
    assert_eq!(
        done.messages, 5,
        "each message once, the one expunged before not again"
    );
    assert_eq!(done.cancelled, 5);
    assert_backlog(&store, 0).await;
    for m in &acme {
        let (message, _) = store.get_message(m).await.unwrap();
        assert!(
            message.payload.is_empty() && message.expunged_at.is_some(),
            "{m}"
        );
    }
    let (message, _) = store.get_message(&before).await.unwrap();
    assert_eq!(message.expunged_at, Some(first.at));
    let (message, _) = store.get_message(&other).await.unwrap();
    assert!(message.expunged_at.is_none() && !message.payload.is_empty());
    let again = store.expunge_tenant(&tenant("acme"), 2, now).await.unwrap();
    assert_eq!((again.messages, again.cancelled), (0, 0));
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

async fn rollups_and_pending_take_a_set_of_endpoints(store: Arc<dyn Store>, _: &Guard) {
    // As above: once `complete` returns, its attempt is in t0's minute of the rollups.
    let t0 = start_time();
    let minute = minute_of(t0);
    let a = create(&store, endpoint("a", t0)).await;
    let b = create(&store, endpoint("b", t0)).await;
    let c = create(&store, endpoint("c", t0)).await;
    publish(&store, message("order.created", r#"{"m":1}"#), t0).await;
    let claims = claim(&store, claim_request(t0, LEASE, 10)).await;
    assert_eq!(
        per_endpoint(&claims).len(),
        3,
        "one attempt to each endpoint"
    );
    for attempt in &claims {
        complete(&store, attempt.lease, delivered(attempt, t0), t0).await;
    }
    // Waiting: one delivery to each endpoint.
    publish(&store, message("order.created", r#"{"m":2}"#), t0).await;

    let rows = store
        .rollups(minute, minute + 1, Some(vec![a.clone(), c.clone()]), None)
        .await
        .unwrap();
    let mut attempts: BTreeMap<&EndpointId, u64> = BTreeMap::new();
    for row in &rows {
        assert_eq!(row.minute, minute, "{row:?}");
        *attempts.entry(&row.endpoint).or_default() += row.rollup.attempts;
    }
    assert_eq!(
        attempts,
        BTreeMap::from([(&a, 1), (&c, 1)]),
        "the set's endpoints, and not b"
    );
    assert!(
        store
            .rollups(minute, minute + 1, Some(Vec::new()), None)
            .await
            .unwrap()
            .is_empty(),
        "an empty set selects no endpoint (None selects every one)"
    );
    assert_eq!(
        store
            .rollups(minute, minute + 1, None, None)
            .await
            .unwrap()
            .iter()
            .map(|r| r.rollup.attempts)
            .sum::<u64>(),
        3
    );

    assert_eq!(
        store
            .pending(Some(vec![a.clone(), c.clone()]), None)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .pending(Some(vec![a, c]), Some(event_type("order.paid")))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.pending(Some(vec![b]), None).await.unwrap(), 1);
    assert_eq!(store.pending(Some(Vec::new()), None).await.unwrap(), 0);
    assert_eq!(store.pending(None, None).await.unwrap(), 3);
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
                .publish(vec![message("order.created", "{}")], t0, NO_BACKLOG_LIMIT)
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

// ---------------------------------------------------------------------------------------
// 8. Tenants.

async fn publish_and_replay_reach_only_endpoints_of_the_message_tenant(
    store: Arc<dyn Store>,
    _: &Guard,
) {
    let t0 = start_time();
    // The same filters in tenants a and b: only the tenant tells their endpoints apart.
    let a_all = create(&store, endpoint_in("a", endpoint("a-all", t0))).await;
    let a_orders = create(
        &store,
        endpoint_in("a", endpoint_for("a-orders", &["order.*"], &[], t0)),
    )
    .await;
    let b_all = create(&store, endpoint_in("b", endpoint("b-all", t0))).await;
    let b_orders = create(
        &store,
        endpoint_in("b", endpoint_for("b-orders", &["order.*"], &[], t0)),
    )
    .await;
    let default_all = create(&store, endpoint("default-all", t0)).await;

    let (of_a, n) = publish(
        &store,
        message_in("a", message("order.created", r#"{"t":"a"}"#)),
        t0,
    )
    .await;
    assert_eq!(n, 2, "a's endpoints, none of b's or of the default tenant");
    let (stored, by_endpoint) = store.get_message(&of_a).await.unwrap();
    assert_eq!(stored.tenant, tenant("a"));
    assert_eq!(receivers(&by_endpoint), sorted([&a_all, &a_orders]));

    let (of_b, n) = publish(&store, message_in("b", message("user.created", "{}")), t0).await;
    assert_eq!(n, 1);
    let (stored, by_endpoint) = store.get_message(&of_b).await.unwrap();
    assert_eq!(stored.tenant, tenant("b"));
    assert_eq!(receivers(&by_endpoint), [&b_all]);

    let (of_default, n) = publish(&store, message("order.created", "{}"), t0).await;
    assert_eq!(n, 1);
    let (stored, by_endpoint) = store.get_message(&of_default).await.unwrap();
    assert_eq!(stored.tenant, TenantId::default());
    assert_eq!(receivers(&by_endpoint), [&default_all]);

    let (of_nobody, n) = publish(&store, message_in("c", message("order.created", "{}")), t0).await;
    assert_eq!(n, 0, "tenant c has no endpoints");
    let (stored, by_endpoint) = store.get_message(&of_nobody).await.unwrap();
    assert_eq!(stored.tenant, tenant("c"));
    assert!(by_endpoint.is_empty(), "{by_endpoint:?}");
    assert_backlog(&store, 4).await;

    // A replay matches the tenant's endpoints as they are now (a-late too), still none of
    // another tenant's.
    let a_late = create(&store, endpoint_in("a", endpoint("a-late", t0))).await;
    let later = t0 + Duration::from_secs(1);
    assert_eq!(store.replay_message(&of_a, later).await.unwrap(), 3);
    let (_, by_endpoint) = store.get_message(&of_a).await.unwrap();
    assert_eq!(
        receivers(&by_endpoint),
        sorted([&a_all, &a_late, &a_orders])
    );
    assert_eq!(store.replay_message(&of_nobody, later).await.unwrap(), 0);
    assert!(deliveries(&store, &of_nobody).await.is_empty());
    assert_backlog(&store, 5).await;
    assert_eq!(
        store
            .pending(Some(vec![b_all, b_orders]), None)
            .await
            .unwrap(),
        1,
        "b's endpoints have b's message only"
    );
}

async fn idempotency_keys_are_remembered_per_tenant(store: Arc<dyn Store>, _: &Guard) {
    let t0 = start_time();
    create(&store, endpoint_in("a", endpoint("a-all", t0))).await;
    create(&store, endpoint_in("b", endpoint("b-all", t0))).await;
    let keyed = |name: &str| message_in(name, keyed_message("order.created", "{}", "key-1"));

    let (in_a, n) = publish(&store, keyed("a"), t0).await;
    assert_eq!(n, 1);
    // The same key and content in another tenant is another message, not a duplicate.
    let (in_b, n) = publish(&store, keyed("b"), t0).await;
    assert_eq!(n, 1);
    assert_ne!(in_a, in_b);
    for (id, name) in [(&in_a, "a"), (&in_b, "b")] {
        let (stored, _) = store.get_message(id).await.unwrap();
        assert_eq!(stored.tenant, tenant(name));
        assert_eq!(
            stored.idempotency_key.as_deref(),
            Some("key-1"),
            "the key as given, not as scoped"
        );
    }

    let later = t0 + Duration::from_secs(1);
    let again = store
        .publish(vec![keyed("a"), keyed("b")], later, NO_BACKLOG_LIMIT)
        .await
        .unwrap();
    assert_eq!(
        again,
        [
            Published::Duplicate {
                message_id: in_a.clone(),
                deliveries: 1
            },
            Published::Duplicate {
                message_id: in_b.clone(),
                deliveries: 1
            },
        ],
        "each tenant's key names its own message"
    );
    let changed = message_in("b", keyed_message("order.created", r#"{"x":1}"#, "key-1"));
    assert_eq!(
        store
            .publish(vec![changed], later, NO_BACKLOG_LIMIT)
            .await
            .unwrap(),
        [Published::Conflict { message_id: in_b }]
    );
    // In one batch too: the second tenant's key is not taken by the first's.
    let batch = store
        .publish(
            vec![
                message_in("a", keyed_message("order.created", "{}", "key-2")),
                message_in("b", keyed_message("order.created", "{}", "key-2")),
                keyed_message("order.created", "{}", "key-1"),
            ],
            later,
            NO_BACKLOG_LIMIT,
        )
        .await
        .unwrap();
    let created: Vec<&MessageId> = batch
        .iter()
        .filter_map(|r| match r {
            Published::Created { message_id, .. } => Some(message_id),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 3, "{batch:?}");
    assert_eq!(created.iter().collect::<HashSet<_>>().len(), 3, "{batch:?}");
    assert!(!created.contains(&&in_a), "{batch:?}");
}

async fn endpoints_and_tenants_are_listed_per_tenant_in_pages(store: Arc<dyn Store>, _: &Guard) {
    let t0 = start_time();
    // Created out of id order: listings are in id order whatever the creation order.
    for (name, id) in [
        ("c", "c1"),
        ("a", "a3"),
        ("b", "b1"),
        ("a", "a1"),
        ("a", "a2"),
    ] {
        create(&store, endpoint_in(name, endpoint(id, t0))).await;
    }
    let ids = |endpoints: Vec<Endpoint>| -> Vec<String> {
        endpoints.into_iter().map(|e| e.id.to_string()).collect()
    };
    let list = |tenant_name: Option<&str>, after: Option<&str>, limit: usize| {
        let store = store.clone();
        let (tenant_id, after) = (tenant_name.map(tenant), after.map(id));
        async move {
            store
                .list_endpoints(tenant_id, after, limit)
                .await
                .expect("list endpoints")
        }
    };

    let of_a = list(Some("a"), None, 10).await;
    assert!(of_a.iter().all(|e| e.tenant == tenant("a")), "{of_a:?}");
    assert_eq!(ids(of_a), ["a1", "a2", "a3"]);
    assert_eq!(ids(list(Some("a"), None, 2).await), ["a1", "a2"]);
    assert_eq!(ids(list(Some("a"), Some("a2"), 2).await), ["a3"]);
    assert!(list(Some("a"), Some("a3"), 2).await.is_empty());
    assert_eq!(
        ids(list(Some("b"), Some("a1"), 10).await),
        ["b1"],
        "`after` may be any id"
    );
    assert!(list(Some("z"), None, 10).await.is_empty(), "no such tenant");
    assert_eq!(
        ids(list(None, None, 10).await),
        ["a1", "a2", "a3", "b1", "c1"]
    );
    assert_eq!(ids(list(None, Some("a3"), 1).await), ["b1"]);
    assert_eq!(ids(list(None, Some("b1"), 10).await), ["c1"]);

    let summary = |name: &str, endpoints: u64| TenantSummary {
        tenant: tenant(name),
        endpoints,
    };
    assert_eq!(
        store.list_tenants(None, 10).await.unwrap(),
        [summary("a", 3), summary("b", 1), summary("c", 1)]
    );
    assert_eq!(
        store.list_tenants(None, 2).await.unwrap(),
        [summary("a", 3), summary("b", 1)]
    );
    assert_eq!(
        store.list_tenants(Some(tenant("b")), 2).await.unwrap(),
        [summary("c", 1)]
    );
    assert!(
        store
            .list_tenants(Some(tenant("c")), 2)
            .await
            .unwrap()
            .is_empty()
    );

    let now = t0 + Duration::from_secs(1);
    store.delete_endpoint(&id("a1"), now).await.unwrap();
    store.delete_endpoint(&id("b1"), now).await.unwrap();
    assert_eq!(
        store.list_tenants(None, 10).await.unwrap(),
        [summary("a", 2), summary("c", 1)],
        "a tenant without endpoints is not listed"
    );
    assert!(list(Some("b"), None, 10).await.is_empty());
    assert_eq!(ids(list(Some("a"), None, 10).await), ["a2", "a3"]);
}

async fn endpoint_cap_counts_per_tenant(store: Arc<dyn Store>, _: &Guard) {
    const CAP: u64 = 2;
    let t0 = start_time();
    let create_capped = |endpoint: Endpoint| store.create_endpoint(endpoint, CAP);
    create_capped(endpoint_in("a", endpoint("a1", t0)))
        .await
        .unwrap();
    create_capped(endpoint_in("a", endpoint("a2", t0)))
        .await
        .unwrap();

    match create_capped(endpoint_in("a", endpoint("a3", t0))).await {
        Err(StoreError::TooManyEndpoints {
            tenant: full,
            limit,
        }) => {
            assert_eq!((full, limit), (tenant("a"), CAP));
        }
        other => panic!("a's third endpoint must be refused: {other:?}"),
    }
    assert!(matches!(
        store.get_endpoint(&id("a3")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.list_tenants(None, 10).await.unwrap(),
        [TenantSummary {
            tenant: tenant("a"),
            endpoints: CAP
        }],
        "a refused create is not counted"
    );

    create_capped(endpoint_in("b", endpoint("b1", t0)))
        .await
        .expect("another tenant has room of its own");

    store
        .delete_endpoint(&id("a1"), t0 + Duration::from_secs(1))
        .await
        .unwrap();
    create_capped(endpoint_in("a", endpoint("a3", t0)))
        .await
        .expect("a deletion makes room");
    assert!(matches!(
        create_capped(endpoint_in("a", endpoint("a4", t0))).await,
        Err(StoreError::TooManyEndpoints { .. })
    ));
}

async fn endpoint_cap_holds_under_concurrent_creates(store: Arc<dyn Store>, guard: &Guard) {
    // The count and the creation are one step, so creates racing for the last places of
    // a tenant (on Redis, from two instances) never overshoot it.
    const CAP: u64 = 3;
    const TRIES: u64 = 8;
    let t0 = start_time();
    let other = other_instance(&store, guard).await;
    let mut racing = tokio::task::JoinSet::new();
    for i in 0..TRIES {
        let via = Arc::clone(if i % 2 == 0 { &store } else { &other });
        let endpoint = endpoint_in("race", endpoint(&format!("race{i}"), t0));
        racing.spawn(async move { via.create_endpoint(endpoint, CAP).await });
    }
    let (mut created, mut refused) = (0, 0);
    while let Some(result) = racing.join_next().await {
        match result.expect("the create task ends") {
            Ok(_) => created += 1,
            Err(StoreError::TooManyEndpoints { .. }) => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((created, refused), (CAP, TRIES - CAP));
    let listed = store
        .list_endpoints(Some(tenant("race")), None, 100)
        .await
        .unwrap();
    assert_eq!(u64::try_from(listed.len()).unwrap(), CAP);
    assert_eq!(
        store.list_tenants(None, 10).await.unwrap(),
        [TenantSummary {
            tenant: tenant("race"),
            endpoints: CAP
        }]
    );
}

// ---------------------------------------------------------------------------------------
// 9. API keys.

async fn api_keys_round_trip_list_in_id_order_and_revoke_once(
    store: Arc<dyn Store>,
    guard: &Guard,
) {
    let t0 = start_time();
    // On Redis another instance reads the same keys at once (no cache in between): a key
    // made or revoked through one process is honoured by every other.
    let other = other_instance(&store, guard).await;
    let (full, secret) = api_key("deploy bot", t0);
    store.create_api_key(full.clone()).await.unwrap();
    let stored = other.get_api_key(&full.id).await.unwrap();
    assert_eq!(stored.id, full.id);
    assert_eq!(stored.name, "deploy bot");
    assert_eq!(stored.scopes, Scopes::new([Scope::Read, Scope::Publish]));
    assert_eq!(stored.tenant, Some(tenant("a")));
    assert_eq!(stored.created_at, t0);
    assert_eq!(stored.expires_at, full.expires_at);
    assert_eq!(stored.publish_limit, full.publish_limit);
    assert!(
        stored.secret_hash.matches(&secret),
        "the hash of the secret"
    );
    assert!(!stored.secret_hash.matches("another secret"));
    assert_eq!((stored.revoked_at, stored.last_used_at), (None, None));

    // Without the optional fields: `None` stays `None`, not some default.
    let (mut bare, _) = api_key("admin", t0);
    bare.scopes = Scopes::admin();
    bare.tenant = None;
    bare.expires_at = None;
    bare.publish_limit = None;
    store.create_api_key(bare.clone()).await.unwrap();
    let stored = store.get_api_key(&bare.id).await.unwrap();
    assert_eq!(stored.scopes, Scopes::admin());
    assert_eq!(
        (stored.tenant, stored.expires_at, stored.publish_limit),
        (None, None, None)
    );

    let impostor = ApiKey {
        name: "impostor".to_owned(),
        ..full.clone()
    };
    assert!(matches!(
        store.create_api_key(impostor).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(
        store.get_api_key(&full.id).await.unwrap().name,
        "deploy bot",
        "the first record stands"
    );
    let unknown = ApiKeyId::generate();
    assert!(matches!(
        store.get_api_key(&unknown).await,
        Err(StoreError::NotFound { .. })
    ));

    // Ids are ULIDs, so id order is creation order (to the millisecond).
    let (third, _) = api_key("third", t0);
    store.create_api_key(third.clone()).await.unwrap();
    let all = sorted([&full.id, &bare.id, &third.id].map(ApiKeyId::to_string));
    let listed =
        |keys: Vec<ApiKey>| -> Vec<String> { keys.into_iter().map(|k| k.id.to_string()).collect() };
    assert_eq!(listed(store.list_api_keys(None, 10).await.unwrap()), all);
    assert_eq!(
        listed(other.list_api_keys(None, 2).await.unwrap()),
        all[..2]
    );
    let after = ApiKeyId::parse(&all[1]).unwrap();
    assert_eq!(
        listed(store.list_api_keys(Some(after), 2).await.unwrap()),
        all[2..]
    );
    let last = ApiKeyId::parse(&all[2]).unwrap();
    assert!(store.list_api_keys(Some(last), 2).await.unwrap().is_empty());

    let revoked_at = t0 + Duration::from_secs(10);
    let revoked = other.revoke_api_key(&full.id, revoked_at).await.unwrap();
    assert_eq!(revoked.id, full.id);
    assert_eq!(revoked.revoked_at, Some(revoked_at));
    assert_eq!(
        store.get_api_key(&full.id).await.unwrap().revoked_at,
        Some(revoked_at),
        "seen through the other instance at once"
    );
    let again = store
        .revoke_api_key(&full.id, revoked_at + Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        again.revoked_at,
        Some(revoked_at),
        "the first revocation stands"
    );
    let listed_full = store
        .list_api_keys(None, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.id == full.id)
        .expect("a revoked key is still listed");
    assert_eq!(listed_full.revoked_at, Some(revoked_at));
    assert!(matches!(
        store.revoke_api_key(&unknown, revoked_at).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.get_api_key(&bare.id).await.unwrap().revoked_at,
        None,
        "only the key named is revoked"
    );

    let used_at = t0 + Duration::from_secs(20);
    store.touch_api_key(&bare.id, used_at).await.unwrap();
    assert_eq!(
        other.get_api_key(&bare.id).await.unwrap().last_used_at,
        Some(used_at)
    );
    let used_later = used_at + Duration::from_secs(60);
    other.touch_api_key(&bare.id, used_later).await.unwrap();
    assert_eq!(
        store.get_api_key(&bare.id).await.unwrap().last_used_at,
        Some(used_later)
    );
    assert_eq!(
        store.get_api_key(&third.id).await.unwrap().last_used_at,
        None
    );
}

// ---------------------------------------------------------------------------------------
// 10. Stores written before tenants.

/// The tables that tenants changed, as a version before tenants made them; the store
/// itself makes the tables that did not change.
const PRE_TENANT_TABLES: &str = "
CREATE TABLE endpoints (
    id      TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL,
    record  TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    event_type      TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    payload         BLOB NOT NULL,
    channels        TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    idempotency_key TEXT,
    created_at      INTEGER NOT NULL,
    trace           TEXT
) WITHOUT ROWID;
CREATE TABLE idempotency (
    key          TEXT PRIMARY KEY,
    message_id   TEXT NOT NULL,
    content_hash BLOB NOT NULL,
    deliveries   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;
";

async fn retention_deletes_settled_messages_past_their_expiry_only(
    store: Arc<dyn Store>,
    _: &Guard,
) {
    let t0 = start_time();
    let hour = Duration::from_secs(3600);
    let a = create(&store, endpoint_for("a", &["order.*"], &[], t0)).await;
    // Delivered: settled, kept an hour.
    let (delivered_id, _) = publish(
        &store,
        kept_for(hour, message("order.created", "{\"n\":1}")),
        t0,
    )
    .await;
    let claims = claim(&store, claim_request(t0, LEASE, 10)).await;
    complete(&store, claims[0].lease, delivered(&claims[0], t0), t0).await;
    // Matching no endpoint: settled at once, and asked to be kept ten minutes only.
    let (unmatched, deliveries) = publish(
        &store,
        kept_for(Duration::from_secs(600), message("nobody.listens", "{}")),
        t0,
    )
    .await;
    assert_eq!(deliveries, 0);
    // Pending: never settled here.
    let (pending, _) = publish(&store, kept_for(hour, message("order.created", "{}")), t0).await;
    let (stored, _) = store.get_message(&delivered_id).await.unwrap();
    assert_eq!(stored.expires_at, t0 + hour);

    let nothing = store
        .sweep(t0 + Duration::from_secs(599), 100)
        .await
        .unwrap();
    assert_eq!(nothing, Swept::default(), "nothing has expired yet");
    let first = store
        .sweep(t0 + Duration::from_secs(600), 100)
        .await
        .unwrap();
    assert_eq!(
        (
            first.messages,
            first.deliveries,
            first.attempts,
            first.payload_bytes
        ),
        (1, 0, 0, 2),
        "the message kept ten minutes goes first"
    );
    assert!(matches!(
        store.get_message(&unmatched).await,
        Err(StoreError::NotFound { .. })
    ));

    let later = t0 + hour;
    let second = store.sweep(later, 100).await.unwrap();
    assert_eq!(
        (
            second.messages,
            second.deliveries,
            second.attempts,
            second.payload_bytes,
            second.more
        ),
        (1, 1, 1, 7, false),
        "the delivered message goes with its delivery and attempt; the pending one stays"
    );
    assert!(matches!(
        store.get_message(&delivered_id).await,
        Err(StoreError::NotFound { .. })
    ));
    let attempts = store
        .list_attempts(AttemptQuery {
            message_id: None,
            endpoint_id: Some(a.clone()),
            delivery_state: None,
            after_id: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert!(attempts.is_empty(), "its attempts are gone: {attempts:?}");
    let (kept, _) = store
        .get_message(&pending)
        .await
        .expect("unsettled work is kept");
    assert!(kept.expires_at > later, "and looked at again later");

    // Once it settles, it goes at the next look.
    let claims = claim(&store, claim_request(later, LEASE, 10)).await;
    complete(&store, claims[0].lease, delivered(&claims[0], later), later).await;
    assert_eq!(
        store.sweep(later, 100).await.unwrap(),
        Swept::default(),
        "not before the next look"
    );
    let third = store.sweep(later + RECHECK_UNSETTLED, 100).await.unwrap();
    assert_eq!(
        (third.messages, third.deliveries, third.attempts),
        (1, 1, 1)
    );
    assert!(matches!(
        store.get_message(&pending).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.sweep(later + 2 * hour, 100).await.unwrap(),
        Swept::default()
    );
}

async fn retention_deletes_in_batches_of_the_limit(store: Arc<dyn Store>, _: &Guard) {
    let t0 = start_time();
    let batch: Vec<NewMessage> = (0..5)
        .map(|i| {
            kept_for(
                Duration::from_secs(1),
                message("nobody.listens", &i.to_string()),
            )
        })
        .collect();
    store.publish(batch, t0, NO_BACKLOG_LIMIT).await.unwrap();
    let later = t0 + Duration::from_secs(1);
    let mut sizes = Vec::new();
    loop {
        let swept = store.sweep(later, 2).await.unwrap();
        sizes.push(swept.messages);
        if !swept.more {
            break;
        }
        assert!(sizes.len() < 10, "the sweep ends: {sizes:?}");
    }
    assert_eq!(sizes.iter().sum::<u64>(), 5);
    assert!(
        sizes.iter().all(|n| *n <= 2),
        "no batch is over the limit: {sizes:?}"
    );
}

/// The endpoint's record as written before tenants: no `tenant` field.
fn pre_tenant_record(endpoint: &Endpoint) -> String {
    let mut record = serde_json::to_value(endpoint).expect("an endpoint serialises");
    let removed = record
        .as_object_mut()
        .expect("a record is an object")
        .remove("tenant");
    assert!(removed.is_some(), "records name their tenant now");
    record.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_written_before_tenants_opens_in_the_default_tenant() {
    let _machine = crate::support::share_machine().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let t0 = start_time();
    let old = endpoint("old", t0);
    let sent = keyed_message("order.created", r#"{"old":true}"#, "order-1");
    let old_message = MessageId::generate();
    {
        // The store's database file in its data directory.
        let conn = rusqlite::Connection::open(dir.path().join("herald.sqlite3"))
            .expect("create the old database");
        conn.execute_batch(PRE_TENANT_TABLES).unwrap();
        conn.execute(
            "INSERT INTO endpoints (id, enabled, record) VALUES (?1, 1, ?2)",
            rusqlite::params![old.id.as_str(), pre_tenant_record(&old)],
        )
        .unwrap();
        // Published before the endpoint existed: no delivery.
        conn.execute(
            "INSERT INTO messages (id, event_type, content_type, payload, channels, metadata, idempotency_key, created_at, trace)
             VALUES (?1, ?2, ?3, ?4, '[]', '{}', ?5, ?6, NULL)",
            rusqlite::params![
                old_message.as_str(),
                sent.event_type.as_str(),
                sent.content_type,
                sent.payload.as_ref(),
                sent.idempotency_key,
                ms(t0),
            ],
        )
        .unwrap();
        // The key unscoped, as it was remembered then.
        conn.execute(
            "INSERT INTO idempotency (key, message_id, content_hash, deliveries, expires_at)
             VALUES ('order-1', ?1, ?2, 0, ?3)",
            rusqlite::params![
                old_message.as_str(),
                content_hash(&sent),
                ms(t0 + Duration::from_secs(3600)),
            ],
        )
        .unwrap();
    }
    let guard = Guard::Dir(dir);

    let store = open_instance(&guard).await;
    assert_eq!(
        store.get_endpoint(&old.id).await.unwrap(),
        old,
        "the old record, in the default tenant"
    );
    assert_eq!(
        store
            .list_endpoints(Some(TenantId::default()), None, 10)
            .await
            .unwrap(),
        std::slice::from_ref(&old)
    );
    assert_eq!(
        store.list_tenants(None, 10).await.unwrap(),
        [TenantSummary {
            tenant: TenantId::default(),
            endpoints: 1
        }]
    );
    let (stored, _) = store.get_message(&old_message).await.unwrap();
    assert_eq!(stored.tenant, TenantId::default());
    assert_eq!(stored.idempotency_key.as_deref(), Some("order-1"));
    let (routed, n) = publish(&store, message("order.created", "{}"), t0).await;
    assert_eq!(
        n, 1,
        "a new message of the default tenant reaches the old endpoint"
    );
    assert_eq!(
        receivers(&store.get_message(&routed).await.unwrap().1),
        [&old.id]
    );

    // The old key is the default tenant's: it still dedupes there, and only there.
    let dedupes = |store: Arc<dyn Store>| {
        let sent = sent.clone();
        let old_message = old_message.clone();
        async move {
            let later = t0 + Duration::from_secs(1);
            assert_eq!(
                store
                    .publish(vec![sent.clone()], later, NO_BACKLOG_LIMIT)
                    .await
                    .unwrap(),
                [Published::Duplicate {
                    message_id: old_message.clone(),
                    deliveries: 0
                }]
            );
            let changed = NewMessage {
                payload: Bytes::from_static(b"{}"),
                ..sent
            };
            assert_eq!(
                store
                    .publish(vec![changed], later, NO_BACKLOG_LIMIT)
                    .await
                    .unwrap(),
                [Published::Conflict {
                    message_id: old_message
                }]
            );
        }
    };
    dedupes(store.clone()).await;
    let (elsewhere, _) = publish(&store, message_in("b", sent.clone()), t0).await;
    assert_ne!(elsewhere, old_message);

    // Opening again migrates nothing twice: the key is still found where it was moved.
    store.close().await;
    drop(store);
    let reopened = open_instance(&guard).await;
    dedupes(reopened.clone()).await;
    assert_eq!(reopened.get_endpoint(&old.id).await.unwrap(), old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_written_before_tenants_indexes_its_endpoints_at_open() {
    let _machine = crate::support::share_machine().await;
    let guard = Guard::Redis {
        server: RedisServer::start().await,
        prefix: format!("store-{}", unique()),
    };
    let Guard::Redis { server, prefix } = &guard else {
        unreachable!("made above")
    };
    // Key names as `src/storage/redis/keys.rs` makes them.
    let key = |name: &str| format!("{{{prefix}}}:{name}");
    let t0 = start_time();
    let old = endpoint("old", t0);
    let old_message = MessageId::generate();
    let published_at = ms(t0).to_string();
    let sent = keyed_message("order.created", "{}", "order-1");
    let hash: String = content_hash(&sent)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let remembered_for = Duration::from_secs(3600);
    {
        // What a version before tenants left: the record, the id index, the shared
        // state and the endpoint version; no `tenants`, `t:<tenant>:eps` or `tidx`. A
        // message published before the endpoint existed, and its idempotency record
        // under the key alone.
        let mut conn = crate::redis::connect(server).await;
        let () = ::redis::pipe()
            .set(key("ep:old"), pre_tenant_record(&old))
            .ignore()
            .zadd(key("eps"), "old", 0)
            .ignore()
            .hset_multiple(key("g:old"), &[("en", "1"), ("inf", "0")])
            .ignore()
            .set(key("epver"), 1)
            .ignore()
            .hset_multiple(
                key(&format!("m:{old_message}")),
                &[
                    ("et", "order.created"),
                    ("ct", NewMessage::DEFAULT_CONTENT_TYPE),
                    ("p", "{}"),
                    ("ch", "[]"),
                    ("md", "{}"),
                    ("ik", "order-1"),
                    ("tc", ""),
                    ("c", published_at.as_str()),
                ],
            )
            .ignore()
            .hset_multiple(
                key("idem:order-1"),
                &[("m", old_message.as_str()), ("h", &hash), ("n", "0")],
            )
            .ignore()
            .pexpire(key("idem:order-1"), remembered_for.as_millis() as i64)
            .ignore()
            .query_async(&mut conn)
            .await
            .expect("write the old deployment");
    }

    let store = open_instance(&guard).await;
    let default = TenantId::default();
    assert_eq!(store.get_endpoint(&old.id).await.unwrap().tenant, default);
    assert_eq!(
        store
            .list_endpoints(Some(default.clone()), None, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| &e.id)
            .collect::<Vec<_>>(),
        [&old.id]
    );
    assert_eq!(
        store.list_tenants(None, 10).await.unwrap(),
        [TenantSummary {
            tenant: default.clone(),
            endpoints: 1
        }]
    );
    let (stored, _) = store.get_message(&old_message).await.unwrap();
    assert_eq!(stored.tenant, default, "a message without a tenant field");
    // A message stored before messages had an expiry gets one, and is indexed by it, so
    // retention (and DeleteTenant's expunge) finds it.
    let retention = Config::with_storage(StorageConfig::Memory).store.retention;
    assert_eq!(stored.expires_at, t0 + retention);
    let indexed: Option<i64> = ::redis::cmd("ZSCORE")
        .arg(key("exp"))
        .arg(old_message.as_str())
        .query_async(&mut crate::redis::connect(server).await)
        .await
        .unwrap();
    assert_eq!(indexed, Some(ms(t0 + retention)));
    // The old key is the default tenant's, as in the embedded store: it still dedupes
    // there, and only there, for the rest of the time it is remembered.
    let later = t0 + Duration::from_secs(1);
    assert_eq!(
        store
            .publish(vec![sent.clone()], later, NO_BACKLOG_LIMIT)
            .await
            .unwrap(),
        [Published::Duplicate {
            message_id: old_message.clone(),
            deliveries: 0
        }]
    );
    let (elsewhere, _) = publish(&store, message_in("b", sent.clone()), later).await;
    assert_ne!(elsewhere, old_message);
    let mut conn = crate::redis::connect(server).await;
    let left: i64 = ::redis::cmd("PTTL")
        .arg(key("idem:default/order-1"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        left > 0 && u128::try_from(left).unwrap() <= remembered_for.as_millis(),
        "the record keeps its expiry: {left} ms"
    );

    // The counts built at open are the ones later changes add to and take from.
    let new = create(&store, endpoint("new", t0)).await;
    let (routed, n) = publish(&store, message("order.created", "{}"), t0).await;
    assert_eq!(n, 2);
    assert_eq!(
        receivers(&store.get_message(&routed).await.unwrap().1),
        sorted([&new, &old.id])
    );
    let reopened = other_instance(&store, &guard).await;
    // Opening again moves nothing twice: the old key and the new ones stay where they are.
    for (message, first) in [
        (sent.clone(), &old_message),
        (message_in("b", sent), &elsewhere),
    ] {
        let again = reopened
            .publish(vec![message], later, NO_BACKLOG_LIMIT)
            .await
            .unwrap();
        assert!(
            matches!(&again[..], [Published::Duplicate { message_id, .. }] if message_id == first),
            "{again:?}"
        );
    }
    assert_eq!(
        reopened.list_tenants(None, 10).await.unwrap(),
        [TenantSummary {
            tenant: default.clone(),
            endpoints: 2
        }]
    );
    store
        .delete_endpoint(&old.id, t0 + Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        reopened.list_tenants(None, 10).await.unwrap(),
        [TenantSummary {
            tenant: default.clone(),
            endpoints: 1
        }],
        "the old record's tenant is found when it is deleted"
    );
    assert_eq!(
        reopened
            .list_endpoints(Some(default), None, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| &e.id)
            .collect::<Vec<_>>(),
        [&new]
    );
}
