//! Requests an attacker would send: absurd times and durations, bytes that are not
//! protobuf, a status cursor from the future, a bug that panics, answers too large for a
//! stock client, deeply nested JSON, and batches that would flood the backlog. Each is
//! refused with the code that says why, or served within bounds, and the server goes on.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Buf, BufMut};
use herald::analytics::RollupRow;
use herald::auth::{ApiKey, ApiKeyId};
use herald::domain::{
    Attempt, Delivery, Endpoint, EndpointId, EndpointUpdate, EventType, Message, MessageId,
    NewMessage, Secret, StatusEvent, TenantId,
};
use herald::grpc::pb;
use herald::storage::{
    AttemptQuery, ClaimBatch, ClaimRequest, EventPage, Expunged, Lease, Outcome, Published,
    Resealed, SqliteStore, Store, StoreError, Swept, TenantExpunged, TenantSummary,
};
use pb::stream_delivery_status_response::Item;
use tokio::sync::Semaphore;
use tokio_stream::StreamExt;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::each_backend;
use crate::support::{
    ADMIN_KEY, Backend, PATIENCE, Reply, Sink, TestApp, publish_json, publish_raw, spawn_app,
    spawn_app_over, spawn_app_with, test_config, violations,
};

fn at(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos })
}

fn lasting(seconds: i64, nanos: i32) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds, nanos })
}

/// The one field violation of `status`, which names `field` and the allowed range.
fn refused(status: Status, field: &str) {
    let found = violations(&status);
    assert_eq!(
        found.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
        [field],
        "{status:?}"
    );
    assert!(
        found[0].1.contains(" to "),
        "{field}: the description gives the range: {found:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_times_and_durations_are_refused_naming_the_field() {
    let mut app = spawn_app(Backend::Memory).await;
    let sink = Sink::start().await;
    let (endpoint_id, _) = app.register_url(sink.url("/hook")).await;
    let c = &mut app.client;
    // Past the largest timestamp: GetAnalytics panicked on this once.
    for (start_time, end_time, field) in [
        (None, at(i64::MAX, 0), "end_time"),
        (None, at(253_402_300_800, 0), "end_time"),
        (at(i64::MIN + 1, 0), None, "start_time"),
        (at(-62_135_596_801, 0), None, "start_time"),
        (at(0, -1), None, "start_time"),
        (None, at(1_700_000_000, 1_000_000_000), "end_time"),
    ] {
        let req = pb::GetAnalyticsRequest {
            start_time,
            end_time,
            ..Default::default()
        };
        refused(c.get_analytics(req).await.unwrap_err(), field);
    }
    // In range, but before the Unix epoch analytics count from.
    let status = c
        .get_analytics(pb::GetAnalyticsRequest {
            start_time: at(-3600, 0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&status)[0].0, "start_time");
    // Windows at either end of the range are empty, not a panic.
    for end_time in [at(600, 0), at(253_402_300_799, 999_999_999)] {
        let report = c
            .get_analytics(pb::GetAnalyticsRequest {
                end_time,
                ..Default::default()
            })
            .await
            .expect("a window at the edge of time")
            .into_inner();
        assert_eq!(report.totals.unwrap_or_default().attempts, 0);
    }

    let since = |seconds| pb::RecoverEndpointRequest {
        endpoint_id: endpoint_id.clone(),
        since: at(seconds, 0),
        ..Default::default()
    };
    refused(
        c.recover_endpoint(since(i64::MAX)).await.unwrap_err(),
        "since",
    );
    refused(
        c.recover_endpoint(since(i64::MIN)).await.unwrap_err(),
        "since",
    );
    refused(
        c.create_api_key(pb::CreateApiKeyRequest {
            name: "far".into(),
            scopes: vec![pb::Scope::Read as i32],
            expire_time: at(i64::MAX, 999_999_999),
            ..Default::default()
        })
        .await
        .unwrap_err(),
        "expire_time",
    );

    // Durations: negative beyond what negation can hold, or past 10,000 years.
    let mut publish = publish_json("a.b", serde_json::json!({}));
    publish.retention = lasting(i64::MIN, 0);
    refused(c.publish(publish).await.unwrap_err(), "retention");
    let mut publish = publish_json("a.b", serde_json::json!({}));
    publish.retention = lasting(i64::MAX, 999_999_999);
    refused(c.publish(publish).await.unwrap_err(), "retention");
    refused(
        c.rotate_endpoint_secret(pb::RotateEndpointSecretRequest {
            endpoint_id: endpoint_id.clone(),
            grace_period: lasting(i64::MIN, -999_999_999),
            ..Default::default()
        })
        .await
        .unwrap_err(),
        "grace_period",
    );
    let registration = |retry_policy, rate_limit, circuit_breaker| pb::RegisterEndpointRequest {
        url: sink.url("/other"),
        retry_policy,
        rate_limit,
        circuit_breaker,
        ..Default::default()
    };
    let retry = |seconds| pb::RetryPolicy {
        initial_delay: lasting(seconds, 0),
        ..Default::default()
    };
    refused(
        c.register_endpoint(registration(Some(retry(i64::MIN)), None, None))
            .await
            .unwrap_err(),
        "retry_policy.initial_delay",
    );
    let rate = pb::RateLimit {
        limit: 5,
        window: lasting(315_576_000_001, 0),
        burst: 0,
    };
    refused(
        c.register_endpoint(registration(None, Some(rate), None))
            .await
            .unwrap_err(),
        "rate_limit.window",
    );
    let breaker = pb::CircuitBreakerPolicy {
        timeout: lasting(1, 1_000_000_000),
        ..Default::default()
    };
    refused(
        c.register_endpoint(registration(None, None, Some(breaker)))
            .await
            .unwrap_err(),
        "circuit_breaker.timeout",
    );
    refused(
        c.create_api_key(pb::CreateApiKeyRequest {
            name: "limited".into(),
            scopes: vec![pb::Scope::Publish as i32],
            publish_rate_limit: Some(pb::RateLimit {
                limit: 1,
                window: lasting(i64::MIN, 0),
                burst: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap_err(),
        "publish_rate_limit.window",
    );

    // Nothing of the above hurt the server.
    c.get_health(pb::GetHealthRequest {})
        .await
        .expect("still serving");
    app.stop().await;
}

/// Sends bytes as they are and reads answers as bytes: a client that sends what no
/// generated client would.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        Self
    }

    fn decoder(&mut self) -> Self {
        Self
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// Bytes that no `herald.v1` request decodes from: a string field whose length runs
/// past the end, a string that is not UTF-8, a varint that never ends.
const MALFORMED: [&[u8]; 3] = [&[0x0a, 0x05, b'a'], &[0x0a, 0x02, 0xff, 0xfe], &[0xff; 11]];

fn raw_request(bytes: &[u8]) -> tonic::Request<Vec<u8>> {
    let mut request = tonic::Request::new(bytes.to_vec());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_KEY}").parse().unwrap(),
    );
    request
}

fn malformed(status: &Status) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with("malformed protobuf: "),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_protobuf_is_invalid_argument() {
    let mut app = spawn_app(Backend::Memory).await;
    let channel = Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    for bytes in MALFORMED {
        grpc.ready().await.unwrap();
        let status = grpc
            .unary(
                raw_request(bytes),
                http::uri::PathAndQuery::from_static("/herald.v1.WebhookService/Publish"),
                RawCodec,
            )
            .await
            .unwrap_err();
        malformed(&status);
        grpc.ready().await.unwrap();
        let status = grpc
            .server_streaming(
                raw_request(bytes),
                http::uri::PathAndQuery::from_static(
                    "/herald.v1.WebhookService/StreamDeliveryStatus",
                ),
                RawCodec,
            )
            .await
            .unwrap_err();
        malformed(&status);
    }
    // Well-formed bytes on the same connection are served.
    grpc.ready().await.unwrap();
    let health = grpc
        .unary(
            raw_request(&[]),
            http::uri::PathAndQuery::from_static("/herald.v1.WebhookService/GetHealth"),
            RawCodec,
        )
        .await
        .expect("an empty GetHealthRequest is valid")
        .into_inner();
    assert!(!health.is_empty());
    app.client
        .get_health(pb::GetHealthRequest {})
        .await
        .expect("still serving");
    app.stop().await;
}

/// Opens a status stream on the app's connection.
async fn watch(
    app: &TestApp,
    req: pb::StreamDeliveryStatusRequest,
) -> Result<tonic::Streaming<pb::StreamDeliveryStatusResponse>, Status> {
    let mut client = app.client.clone();
    client
        .stream_delivery_status(req)
        .await
        .map(tonic::Response::into_inner)
}

/// The next item of a stream, waiting at most [`PATIENCE`].
async fn next(
    stream: &mut tonic::Streaming<pb::StreamDeliveryStatusResponse>,
) -> Result<pb::StreamDeliveryStatusResponse, Status> {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the stream answers in time")
        .expect("the stream goes on")
}

/// The cursor a stream opened now starts at: the newest event's.
async fn newest_cursor(app: &TestApp) -> u64 {
    let mut stream = watch(app, pb::StreamDeliveryStatusRequest::default())
        .await
        .expect("stream opens");
    match next(&mut stream).await.expect("a heartbeat").item {
        Some(Item::Heartbeat(h)) => h.cursor,
        other => panic!("a stream from now starts with a heartbeat: {other:?}"),
    }
}

each_backend!(a_cursor_beyond_the_newest_event_is_out_of_range);

async fn a_cursor_beyond_the_newest_event_is_out_of_range(backend: Backend) {
    let mut sink = Sink::start().await;
    // Heartbeats come quickly: without the check, they are what such a stream gets.
    let mut app = spawn_app_with(backend, |c| {
        c.service.stream_heartbeat = Duration::from_millis(50);
    })
    .await;
    let (endpoint_id, _) = app.register_url(sink.url("/hook")).await;
    let id = app
        .publish_json("a.b", serde_json::json!({}))
        .await
        .message_id;
    sink.next().await;
    app.wait_for_delivery(&id, &endpoint_id, pb::DeliveryState::Succeeded)
        .await;
    let newest = newest_cursor(&app).await;
    assert!(newest > 0);

    for ahead in [newest + 1, newest + 1_000_000, u64::MAX] {
        let request = pb::StreamDeliveryStatusRequest {
            after_cursor: Some(ahead),
            ..Default::default()
        };
        let status = match watch(&app, request).await {
            Ok(mut stream) => next(&mut stream).await.unwrap_err(),
            Err(status) => status,
        };
        assert_eq!(status.code(), Code::OutOfRange, "{ahead}: {status:?}");
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "CURSOR_AHEAD");
        assert_eq!(info.metadata["after_cursor"], ahead.to_string());
        assert_eq!(info.metadata["latest_cursor"], newest.to_string());
    }

    // The newest cursor itself resumes: nothing is missed, the stream idles.
    let mut stream = watch(
        &app,
        pb::StreamDeliveryStatusRequest {
            after_cursor: Some(newest),
            ..Default::default()
        },
    )
    .await
    .expect("stream opens");
    assert!(matches!(
        next(&mut stream).await.expect("a heartbeat").item,
        Some(Item::Heartbeat(_))
    ));
    app.stop().await;
}

/// A store with bugs: listing tenants panics, and so does reading every retained status
/// event (after cursor 0). Everything else is the memory store's.
struct Buggy(SqliteStore);

#[async_trait::async_trait]
impl Store for Buggy {
    async fn publish(
        &self,
        batch: Vec<NewMessage>,
        now: SystemTime,
        backlog_limit: u64,
    ) -> Result<Vec<Published>, StoreError> {
        self.0.publish(batch, now, backlog_limit).await
    }
    async fn create_endpoint(
        &self,
        endpoint: Endpoint,
        max_per_tenant: u64,
    ) -> Result<Endpoint, StoreError> {
        self.0.create_endpoint(endpoint, max_per_tenant).await
    }
    async fn get_endpoint(&self, id: &EndpointId) -> Result<Endpoint, StoreError> {
        self.0.get_endpoint(id).await
    }
    async fn list_endpoints(
        &self,
        tenant: Option<TenantId>,
        after: Option<EndpointId>,
        limit: usize,
    ) -> Result<Vec<Endpoint>, StoreError> {
        self.0.list_endpoints(tenant, after, limit).await
    }
    async fn list_tenants(
        &self,
        _after: Option<TenantId>,
        _limit: usize,
    ) -> Result<Vec<TenantSummary>, StoreError> {
        panic!("a bug in listing tenants")
    }
    async fn update_endpoint(
        &self,
        id: &EndpointId,
        update: EndpointUpdate,
        now: SystemTime,
    ) -> Result<Endpoint, StoreError> {
        self.0.update_endpoint(id, update, now).await
    }
    async fn delete_endpoint(&self, id: &EndpointId, now: SystemTime) -> Result<u32, StoreError> {
        self.0.delete_endpoint(id, now).await
    }
    async fn rotate_secret(
        &self,
        id: &EndpointId,
        next: Secret,
        previous_until: SystemTime,
        now: SystemTime,
    ) -> Result<Endpoint, StoreError> {
        self.0.rotate_secret(id, next, previous_until, now).await
    }
    async fn reseal_endpoints(&self, limit: usize) -> Result<Resealed, StoreError> {
        self.0.reseal_endpoints(limit).await
    }
    async fn get_message(&self, id: &MessageId) -> Result<(Message, Vec<Delivery>), StoreError> {
        self.0.get_message(id).await
    }
    async fn list_attempts(&self, query: AttemptQuery) -> Result<Vec<Attempt>, StoreError> {
        self.0.list_attempts(query).await
    }
    async fn retry_delivery(
        &self,
        message: &MessageId,
        endpoint: &EndpointId,
        now: SystemTime,
    ) -> Result<Delivery, StoreError> {
        self.0.retry_delivery(message, endpoint, now).await
    }
    async fn replay_message(
        &self,
        message: &MessageId,
        now: SystemTime,
    ) -> Result<u32, StoreError> {
        self.0.replay_message(message, now).await
    }
    async fn expunge_message(
        &self,
        id: &MessageId,
        now: SystemTime,
    ) -> Result<Expunged, StoreError> {
        self.0.expunge_message(id, now).await
    }
    async fn expunge_tenant(
        &self,
        tenant: &TenantId,
        batch: usize,
        now: SystemTime,
    ) -> Result<TenantExpunged, StoreError> {
        self.0.expunge_tenant(tenant, batch, now).await
    }
    async fn claim_due(&self, request: ClaimRequest) -> Result<ClaimBatch, StoreError> {
        self.0.claim_due(request).await
    }
    async fn release(&self, leases: Vec<Lease>, now: SystemTime) -> Result<(), StoreError> {
        self.0.release(leases, now).await
    }
    async fn complete(
        &self,
        lease: Lease,
        outcome: Outcome,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.0.complete(lease, outcome, now).await
    }
    async fn recover_endpoint(
        &self,
        id: &EndpointId,
        since: SystemTime,
        now: SystemTime,
    ) -> Result<u32, StoreError> {
        self.0.recover_endpoint(id, since, now).await
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<StatusEvent>> {
        self.0.subscribe()
    }
    async fn events_after(&self, cursor: u64, limit: usize) -> Result<EventPage, StoreError> {
        assert_ne!(cursor, 0, "a bug in reading every retained event");
        self.0.events_after(cursor, limit).await
    }
    async fn rollups(
        &self,
        from_minute: i64,
        to_minute: i64,
        endpoints: Option<Vec<EndpointId>>,
        event_type: Option<EventType>,
    ) -> Result<Vec<RollupRow>, StoreError> {
        self.0
            .rollups(from_minute, to_minute, endpoints, event_type)
            .await
    }
    async fn pending(
        &self,
        endpoints: Option<Vec<EndpointId>>,
        event_type: Option<EventType>,
    ) -> Result<u64, StoreError> {
        self.0.pending(endpoints, event_type).await
    }
    async fn prune_rollups(&self, before_minute: i64) -> Result<u64, StoreError> {
        self.0.prune_rollups(before_minute).await
    }
    async fn probe(&self) -> Result<(), StoreError> {
        self.0.probe().await
    }
    async fn sweep(&self, now: SystemTime, limit: usize) -> Result<Swept, StoreError> {
        self.0.sweep(now, limit).await
    }
    async fn purge_expired_keys(&self, now: SystemTime) -> Result<u64, StoreError> {
        self.0.purge_expired_keys(now).await
    }
    fn backlog(&self) -> u64 {
        self.0.backlog()
    }
    fn stored_bytes(&self) -> u64 {
        self.0.stored_bytes()
    }
    async fn create_api_key(&self, key: ApiKey) -> Result<(), StoreError> {
        self.0.create_api_key(key).await
    }
    async fn get_api_key(&self, id: &ApiKeyId) -> Result<ApiKey, StoreError> {
        self.0.get_api_key(id).await
    }
    async fn list_api_keys(
        &self,
        after: Option<ApiKeyId>,
        limit: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        self.0.list_api_keys(after, limit).await
    }
    async fn revoke_api_key(&self, id: &ApiKeyId, now: SystemTime) -> Result<ApiKey, StoreError> {
        self.0.revoke_api_key(id, now).await
    }
    async fn touch_api_key(&self, id: &ApiKeyId, at: SystemTime) -> Result<(), StoreError> {
        self.0.touch_api_key(id, at).await
    }
    fn condition(&self) -> tokio::sync::watch::Receiver<herald::storage::Condition> {
        self.0.condition()
    }
    async fn close(&self) {
        self.0.close().await;
    }
}

/// The count of calls of `method` answered with `code`, as the metrics scrape has it.
fn handled(scrape: &str, method: &str, code: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| l.starts_with("grpc_server_handled_total{"))
        .filter(|l| {
            l.contains(&format!(
                "grpc_method=\"/herald.v1.WebhookService/{method}\""
            )) && l.contains(&format!("grpc_code=\"{code}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_answers_internal_for_its_call_only() {
    let (config, _) = test_config(Backend::Memory).await;
    let store = SqliteStore::open_memory(config.store).unwrap();
    let mut app = spawn_app_over(Arc::new(Buggy(store))).await;
    let mut sink = Sink::start().await;
    let (endpoint_id, _) = app.register_url(sink.url("/hook")).await;
    let first = app
        .publish_json("a.b", serde_json::json!({}))
        .await
        .message_id;
    sink.next().await;
    app.wait_for_delivery(&first, &endpoint_id, pb::DeliveryState::Succeeded)
        .await;
    // A watcher on the same connection, following the live events.
    let mut watcher = watch(&app, pb::StreamDeliveryStatusRequest::default())
        .await
        .expect("stream opens");
    assert!(matches!(
        next(&mut watcher).await.unwrap().item,
        Some(Item::Heartbeat(_))
    ));

    // A unary call whose handler panics.
    for _ in 0..2 {
        let status = app
            .client
            .list_tenants(pb::ListTenantsRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Internal, "{status:?}");
        assert_eq!(status.message(), "internal error");
    }
    // A stream that panics once it has started answering.
    let status = match watch(
        &app,
        pb::StreamDeliveryStatusRequest {
            after_cursor: Some(0),
            ..Default::default()
        },
    )
    .await
    {
        Ok(mut stream) => next(&mut stream).await.unwrap_err(),
        Err(status) => status,
    };
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_eq!(status.message(), "internal error");

    // The connection, the watcher and the server go on.
    let second = app
        .publish_json("a.b", serde_json::json!({}))
        .await
        .message_id;
    sink.next().await;
    let seen = loop {
        let item = next(&mut watcher).await.expect("the watcher goes on");
        if let Some(Item::Event(event)) = item.item {
            break event;
        }
    };
    assert_eq!(seen.message_id, second);
    let scrape = app.scrape().await;
    assert_eq!(handled(&scrape, "ListTenants", "Internal"), 2.0, "{scrape}");
    app.stop().await;
}

each_backend!(admission_counts_deliveries_not_calls);

async fn admission_counts_deliveries_not_calls(backend: Backend) {
    const ENDPOINTS: usize = 20;
    const LIMIT: u64 = 100;
    let mut sink = Sink::start().await;
    // Every delivery stays unfinished until the test opens the gate.
    let gate = Arc::new(Semaphore::new(0));
    sink.always("/hook", Reply::status(200).held_by(gate.clone()));
    let mut app = spawn_app_with(backend, |c| {
        c.service.max_queue_size = LIMIT;
        c.delivery.request_timeout = 3 * PATIENCE;
    })
    .await;
    let mut endpoints = Vec::new();
    for _ in 0..ENDPOINTS {
        let (id, _) = app
            .register(pb::RegisterEndpointRequest {
                url: sink.url("/hook"),
                event_types: vec!["order.*".into()],
                ..Default::default()
            })
            .await;
        endpoints.push(id);
    }
    let batch = |n: usize| pb::PublishBatchRequest {
        requests: (0..n)
            .map(|i| publish_json("order.created", serde_json::json!({ "i": i })))
            .collect(),
    };

    // 10 events to 20 endpoints: 200 deliveries, more than the limit allows at all.
    let status = app.client.publish_batch(batch(10)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("200 deliveries"), "{status:?}");
    // 4 events: 80 deliveries fit; one more event fills the backlog to the limit.
    let mut accepted = app.publish_batch(batch(4).requests).await;
    let last = app
        .publish_json("order.created", serde_json::json!({}))
        .await;
    assert_eq!(last.delivery_count as usize, ENDPOINTS);
    accepted.push(last.message_id);
    // Full: one more event is refused, and a batch is refused whole.
    let retry_later = |status: Status| {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.get_details_retry_info().is_some(), "{status:?}");
    };
    retry_later(
        app.client
            .publish(publish_json("order.created", serde_json::json!({})))
            .await
            .unwrap_err(),
    );
    retry_later(app.client.publish_batch(batch(2)).await.unwrap_err());
    // An event no endpoint receives adds nothing to the backlog, and is accepted.
    let unheard = app
        .publish_json("audit.logged", serde_json::json!({}))
        .await;
    assert_eq!(unheard.delivery_count, 0);

    // Exactly what was accepted is delivered: 100 deliveries.
    gate.add_permits(10 * LIMIT as usize);
    let received = sink.take(LIMIT as usize).await;
    assert_eq!(received.len(), LIMIT as usize);
    for id in &accepted {
        for endpoint in &endpoints {
            app.wait_for_delivery(id, endpoint, pb::DeliveryState::Succeeded)
                .await;
        }
    }
    assert!(sink.drain().is_empty(), "nothing refused was stored");
    // With the backlog drained, publishing is accepted again.
    app.publish_batch(batch(5).requests).await;
    app.stop().await;
}

/// What a stock gRPC client accepts in one answer.
const CLIENT_LIMIT: usize = 4 * 1024 * 1024;

/// `count` strings of `len` bytes, each different.
fn filler(count: usize, len: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{i:04}{}", "a".repeat(len - 4)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_fit_a_stock_client_and_reach_every_item() {
    let mut app = spawn_app(Backend::Memory).await;
    let sink = Sink::start().await;
    // Endpoints at their limits: 8 KiB of headers, 256 event types and 256 channels
    // (about 78 KiB each): 60 of them take more than 4 MiB.
    let mut registered = Vec::new();
    for i in 0..60 {
        let (id, _) = app
            .register(pb::RegisterEndpointRequest {
                endpoint_id: format!("large-{i:02}"),
                url: sink.url("/hook"),
                description: "d".repeat(1024),
                event_types: filler(256, 128)
                    .into_iter()
                    .map(|t| format!("{t}.*"))
                    .collect(),
                channels: filler(256, 128),
                headers: filler(32, 250)
                    .into_iter()
                    .enumerate()
                    .map(|(n, v)| (format!("x-h{n:02}"), v))
                    .collect(),
                ..Default::default()
            })
            .await;
        registered.push(id);
    }
    // The app's client keeps the default 4 MiB limit on what it receives.
    let mut listed = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = app
            .client
            .list_endpoints(pb::ListEndpointsRequest {
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await
            .expect("a page a stock client accepts")
            .into_inner();
        assert!(prost::Message::encoded_len(&page) < CLIENT_LIMIT);
        pages += 1;
        listed.extend(page.endpoints.into_iter().map(|e| e.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert!(pages > 1, "the endpoints did not fit in one answer");
    assert_eq!(listed, registered, "every endpoint once, in order");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_at_the_payload_limit_fits_a_stock_client() {
    let max = herald::grpc::response::MAX_PAYLOAD_BYTES as usize;
    let mut app = spawn_app_with(Backend::Memory, |c| c.service.max_payload_bytes = max).await;
    // A JSON array of zeros, exactly at the limit: its `google.protobuf.Value` form is
    // about six times larger.
    let zeros = (max - 3) / 2;
    let data = format!(
        "[0{}{}]",
        ",0".repeat(zeros),
        " ".repeat(max - 3 - 2 * zeros)
    )
    .into_bytes();
    assert_eq!(data.len(), max);
    let mut too_large = data.clone();
    too_large.push(b' ');
    let status = app
        .client
        .publish(publish_raw("a.b", &too_large, "application/json"))
        .await
        .unwrap_err();
    assert_eq!(violations(&status)[0].0, "payload");
    let id = app
        .client
        .publish(publish_raw("a.b", &data, "application/json"))
        .await
        .expect("a payload at the limit is accepted")
        .into_inner()
        .message_id;
    let answer = app.message(&id).await;
    let message = answer.message.unwrap();
    assert_eq!(message.payload, data, "the exact bytes");
    assert!(
        message.payload_json.is_none(),
        "its Value form would not fit"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_more_deliveries_than_fit_pages_them() {
    const ENDPOINTS: usize = 3600;
    let max = herald::grpc::response::MAX_PAYLOAD_BYTES as usize;
    let mut app = spawn_app_with(Backend::Memory, |c| c.service.max_payload_bytes = max).await;
    // Endpoints at Herald's own admin port, which it never sends webhooks to, tried once:
    // the payload is never sent, and the deliveries stay listed, failed.
    let own = format!("http://localhost:{}/hook", app.admin.port());
    let endpoint_id = |i: usize| format!("{i:05}{}", "e".repeat(59));
    let mut work = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let (mut client, own) = (app.client.clone(), own.clone());
        work.spawn(async move {
            for i in (lane..ENDPOINTS).step_by(8) {
                client
                    .register_endpoint(pb::RegisterEndpointRequest {
                        endpoint_id: endpoint_id(i),
                        url: own.clone(),
                        retry_policy: Some(pb::RetryPolicy {
                            max_retries: Some(0),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await
                    .expect("register");
            }
        });
    }
    while let Some(done) = work.join_next().await {
        done.unwrap();
    }
    // The largest message: a payload at the limit, and metadata at its own.
    let mut publish = publish_raw("a.b", &vec![b'x'; max], "text/plain");
    publish.metadata = filler(32, 64).into_iter().zip(filler(32, 1024)).collect();
    let published = app.client.publish(publish).await.unwrap().into_inner();
    assert_eq!(published.delivery_count as usize, ENDPOINTS);

    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = app
            .client
            .get_message(pb::GetMessageRequest {
                message_id: published.message_id.clone(),
                page_token,
                ..Default::default()
            })
            .await
            .expect("a page a stock client accepts")
            .into_inner();
        assert!(prost::Message::encoded_len(&page) < CLIENT_LIMIT);
        assert_eq!(page.message.unwrap().payload.len(), max, "on every page");
        pages += 1;
        seen.extend(page.deliveries.into_iter().map(|d| d.endpoint_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert!(pages > 1, "the deliveries did not fit in one answer");
    let expected: Vec<String> = (0..ENDPOINTS).map(endpoint_id).collect();
    assert_eq!(seen, expected, "every delivery once, in endpoint order");
    // A page token of another list is refused, naming it.
    let status = app
        .client
        .get_message(pb::GetMessageRequest {
            message_id: published.message_id,
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&status)[0].0, "page_token");
    app.stop().await;
}

/// JSON text nesting `depth` objects.
fn nested(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_nesting_is_bounded_at_publish() {
    let mut app = spawn_app(Backend::Memory).await;
    let deepest = herald::domain::NewMessage::MAX_JSON_DEPTH;
    let json = |text: &str| {
        publish_json(
            "a.b",
            serde_json::from_str::<serde_json::Value>(text).unwrap(),
        )
    };
    let raw = |text: &str, content_type| publish_raw("a.b", text.as_bytes(), content_type);
    let arrays = |depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth));

    let status = app.client.publish(json(&arrays(40))).await.unwrap_err();
    let found = violations(&status);
    assert_eq!(found[0].0, "json");
    assert!(
        found[0].1.contains("40") && found[0].1.contains("32"),
        "{found:?}"
    );
    let status = app
        .client
        .publish(raw(&nested(deepest + 1), "application/cloudevents+json"))
        .await
        .unwrap_err();
    assert_eq!(violations(&status)[0].0, "raw.data");
    let status = app
        .client
        .publish_batch(pb::PublishBatchRequest {
            requests: vec![json("{}"), json(&arrays(deepest + 1))],
        })
        .await
        .expect("a batch answers per event")
        .into_inner();
    match &status.results[1].result {
        Some(pb::publish_batch_result::Result::Error(e)) => {
            assert_eq!(e.field_violations[0].field, "requests[1].json");
        }
        other => panic!("the deep event is refused: {other:?}"),
    }
    // Not JSON: not looked at.
    app.client
        .publish(raw(&arrays(1000), "text/plain"))
        .await
        .expect("any bytes as text");
    // At the limit: accepted, and answered as JSON a stock client decodes.
    let id = app
        .client
        .publish(json(&nested(deepest)))
        .await
        .expect("JSON at the depth limit")
        .into_inner()
        .message_id;
    let message = app.message(&id).await.message.unwrap();
    assert_eq!(
        message.payload_json,
        Some(herald::grpc::response::proto_value(
            serde_json::from_str(&nested(deepest)).unwrap()
        ))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_fit_a_stock_client_however_many_fields_are_wrong() {
    let mut app = spawn_app(Backend::Memory).await;
    let sink = Sink::start().await;
    // 256 event types and 32 header names, each wrong, the names long.
    let status = app
        .client
        .register_endpoint(pb::RegisterEndpointRequest {
            url: sink.url("/hook"),
            event_types: filler(256, 120)
                .into_iter()
                .map(|t| format!("Not Valid {t}"))
                .collect(),
            headers: filler(32, 200)
                .into_iter()
                .map(|n| (format!("bad name {n}"), "v".to_owned()))
                .collect(),
            ..Default::default()
        })
        .await
        .expect_err("refused, and readable");
    let shown = violations(&status);
    assert!(
        !shown.is_empty() && shown.len() < 256,
        "{} shown",
        shown.len()
    );
    assert!(shown.iter().all(|(f, d)| f.len() <= 128 && d.len() <= 512));
    assert!(
        status
            .message()
            .ends_with(&format!("and {} more", 256 + 32 - 5)),
        "{}",
        status.message()
    );
    app.stop().await;
}
