//! The live status stream: order, filters, resuming from a cursor across a restart,
//! heartbeats, the slow-consumer cut-off, retention and shutdown.

use std::time::Duration;

use herald::config::StorageConfig;
use herald::grpc::pb;
use pb::stream_delivery_status_response::Item;
use tokio_stream::StreamExt;
use tonic::Streaming;
use tonic_types::StatusExt;

use crate::each_backend;
use crate::support::{
    ADMIN_KEY, Backend, PATIENCE, Reply, Sink, TestApp, spawn_app, spawn_app_with,
};

type Kind = pb::StatusEventKind;

async fn open(
    app: &TestApp,
    req: pb::StreamDeliveryStatusRequest,
) -> Streaming<pb::StreamDeliveryStatusResponse> {
    let mut client = app.client.clone();
    client
        .stream_delivery_status(req)
        .await
        .expect("stream opens")
        .into_inner()
}

/// A stream on a connection of its own whose flow-control window holds a few events
/// only: a consumer that reads nothing then really stops the server from sending, as a
/// slow client across a network does (on loopback, default windows would take every
/// event of a test).
async fn open_stalled(
    app: &TestApp,
    req: pb::StreamDeliveryStatusRequest,
) -> Streaming<pb::StreamDeliveryStatusResponse> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .initial_stream_window_size(Some(1024))
        .connect()
        .await
        .expect("client connects");
    herald::cli::client(channel, Some(ADMIN_KEY))
        .unwrap()
        .stream_delivery_status(req)
        .await
        .expect("stream opens")
        .into_inner()
}

/// Everything retained from the start, then the live tail.
fn from_start() -> pb::StreamDeliveryStatusRequest {
    after(0)
}

/// Everything after `cursor`, then the live tail.
fn after(cursor: u64) -> pb::StreamDeliveryStatusRequest {
    pb::StreamDeliveryStatusRequest {
        after_cursor: Some(cursor),
        ..Default::default()
    }
}

/// The next event (heartbeats skipped), waiting at most [`PATIENCE`] in all.
async fn next_event(
    stream: &mut Streaming<pb::StreamDeliveryStatusResponse>,
) -> pb::DeliveryStatusEvent {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let item = stream.next().await.expect("stream open").expect("no error");
            if let Some(Item::Event(event)) = item.item {
                return event;
            }
        }
    })
    .await
    .expect("an event in time")
}

/// Events until one of `kind` for `message` arrived (included).
async fn events_until(
    stream: &mut Streaming<pb::StreamDeliveryStatusResponse>,
    kind: Kind,
    message: &str,
) -> Vec<pb::DeliveryStatusEvent> {
    let mut events = Vec::new();
    loop {
        let event = next_event(stream).await;
        let done = event.kind == kind as i32 && event.message_id == message;
        events.push(event);
        if done {
            return events;
        }
    }
}

each_backend!(
    stream_reports_every_state_change_in_order,
    stream_filters_and_ends_when_settled,
    slow_consumer_is_cut_off_with_a_cursor_to_resume,
    heartbeats_pruned_cursors_and_shutdown,
    a_watch_from_now_says_where_now_is,
);

/// A stream opened without a cursor starts with a heartbeat naming the newest cursor: a
/// watcher cut off before its first event resumes from there and misses nothing.
async fn a_watch_from_now_says_where_now_is(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    app.register_url(sink.url("/hook")).await;
    let first = app
        .publish_json("order.created", serde_json::json!({"n": 1}))
        .await
        .message_id;
    sink.next().await;
    let mut all = open(&app, from_start()).await;
    let newest = loop {
        let event = next_event(&mut all).await;
        if event.message_id == first && event.kind == Kind::AttemptSucceeded as i32 {
            break event.cursor;
        }
    };

    let mut now = open(&app, pb::StreamDeliveryStatusRequest::default()).await;
    let opening = tokio::time::timeout(PATIENCE, now.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Some(Item::Heartbeat(heartbeat)) = opening.item else {
        panic!("the stream opens with a heartbeat: {opening:?}")
    };
    assert_eq!(heartbeat.cursor, newest);
    // Cut off at once: what was published meanwhile is all there after that cursor.
    drop(now);
    let second = app
        .publish_json("order.created", serde_json::json!({"n": 2}))
        .await
        .message_id;
    let mut resumed = open(&app, after(heartbeat.cursor)).await;
    let event = next_event(&mut resumed).await;
    assert_eq!(event.message_id, second);
    assert_eq!(event.cursor, newest + 1);
    app.stop().await;
}

async fn stream_reports_every_state_change_in_order(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let mut stream = open(&app, from_start()).await;
    let (endpoint_id, _) = app.register_url(sink.url("/hook")).await;
    sink.queue("/hook", [Reply::status(503)]);
    let id = app
        .publish_json("order.created", serde_json::json!({}))
        .await
        .message_id;
    sink.take(2).await;

    let events: Vec<pb::DeliveryStatusEvent> =
        events_until(&mut stream, Kind::AttemptSucceeded, &id)
            .await
            .into_iter()
            .filter(|e| e.message_id == id)
            .collect();
    let kinds: Vec<i32> = events.iter().map(|e| e.kind).collect();
    let expected = [
        Kind::AttemptStarted,
        Kind::AttemptFailed,
        Kind::RetryScheduled,
        Kind::AttemptStarted,
        Kind::AttemptSucceeded,
    ];
    assert_eq!(kinds, expected.map(|k| k as i32));
    assert!(
        events.windows(2).all(|w| w[0].cursor < w[1].cursor),
        "cursors increase"
    );
    assert!(
        events
            .iter()
            .all(|e| e.endpoint_id == endpoint_id && e.event_type == "order.created")
    );
    assert_eq!((events[1].status_code, events[1].attempt_number), (503, 1));
    assert!(events[1].latency.is_some());
    assert!(events[2].next_attempt_time.is_some());
    assert_eq!((events[4].status_code, events[4].attempt_number), (200, 2));

    // Endpoint events are on the stream too.
    let update = pb::UpdateEndpointRequest {
        tenant_id: String::new(),
        endpoint: Some(pb::Endpoint {
            id: endpoint_id.clone(),
            enabled: false,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["enabled".into()],
        }),
    };
    app.client.update_endpoint(update).await.unwrap();
    let disabled = next_event(&mut stream).await;
    assert_eq!(
        (disabled.kind, disabled.endpoint_id.as_str()),
        (Kind::EndpointDisabled as i32, endpoint_id.as_str())
    );
    assert_eq!(disabled.disabled_reason, pb::DisabledReason::Manual as i32);
    app.stop().await;
}

async fn stream_filters_and_ends_when_settled(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let (a, _) = app.register_url(sink.url("/a")).await;
    let (b, _) = app.register_url(sink.url("/b")).await;
    let only_b_results = pb::StreamDeliveryStatusRequest {
        after_cursor: Some(0),
        endpoint_ids: vec![b.clone()],
        event_types: vec!["invoice.*".into()],
        kinds: vec![Kind::AttemptSucceeded as i32],
        ..Default::default()
    };
    let mut filtered = open(&app, only_b_results).await;
    app.publish_json("user.created", serde_json::json!({}))
        .await;
    let invoice = app
        .publish_json("invoice.paid", serde_json::json!({}))
        .await
        .message_id;
    sink.take(4).await;
    let event = next_event(&mut filtered).await;
    assert_eq!(
        (
            event.kind,
            event.endpoint_id.as_str(),
            event.message_id.as_str()
        ),
        (Kind::AttemptSucceeded as i32, b.as_str(), invoice.as_str())
    );

    // A stream for one message ends once it is settled everywhere.
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    sink.queue("/a", [Reply::status(200).held_by(gate.clone())]);
    let id = app
        .publish_json("invoice.sent", serde_json::json!({}))
        .await
        .message_id;
    let one_message = pb::StreamDeliveryStatusRequest {
        after_cursor: Some(0),
        message_id: id.clone(),
        until_settled: true,
        ..Default::default()
    };
    let mut settled = open(&app, one_message).await;
    sink.take(2).await;
    gate.add_permits(1);
    let mut seen = Vec::new();
    while let Some(item) = tokio::time::timeout(PATIENCE, settled.next())
        .await
        .expect("the stream ends in time")
    {
        if let Some(Item::Event(e)) = item.expect("no error").item {
            assert_eq!(e.message_id, id);
            seen.push((e.endpoint_id, e.kind));
        }
    }
    for endpoint in [&a, &b] {
        assert!(
            seen.contains(&(endpoint.clone(), Kind::AttemptSucceeded as i32)),
            "{seen:?}"
        );
    }
    let status = app
        .client
        .stream_delivery_status(pb::StreamDeliveryStatusRequest {
            until_settled: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    app.stop().await;
}

async fn slow_consumer_is_cut_off_with_a_cursor_to_resume(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app_with(backend, |c| c.store.status_buffer = 16).await;
    app.register_url(sink.url("/hook")).await;
    // A consumer that reads nothing while a thousand deliveries happen.
    let mut stalled = open_stalled(&app, pb::StreamDeliveryStatusRequest::default()).await;
    let ids = app.publish_many("load.tick", 1000).await;
    sink.take(ids.len()).await;

    let mut last_cursor = 0;
    let mut heartbeats = 0;
    let status = loop {
        match tokio::time::timeout(PATIENCE, stalled.next())
            .await
            .expect("an item in time")
        {
            Some(Ok(pb::StreamDeliveryStatusResponse {
                item: Some(Item::Event(e)),
            })) => last_cursor = e.cursor,
            Some(Ok(_)) => {
                // Idle: the consumer caught up, so it was never cut off.
                heartbeats += 1;
                assert!(heartbeats < 3, "the stalled consumer was never cut off");
            }
            Some(Err(status)) => break status,
            None => panic!("the stream ended without telling the consumer it fell behind"),
        }
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    let info = status
        .get_details_error_info()
        .expect("ErrorInfo names the cursor");
    let resume: u64 = info.metadata["resume_after_cursor"].parse().unwrap();
    assert_eq!(
        resume, last_cursor,
        "resume right after the last event received"
    );

    // Resuming from that cursor misses nothing.
    let mut resumed = open(&app, after(resume)).await;
    assert_eq!(next_event(&mut resumed).await.cursor, resume + 1);
    app.stop().await;
}

/// Two runs on one durable store: the embedded store's directory, or one Redis under one
/// prefix (the same instance restarted).
mod resuming_across_a_restart_misses_nothing_and_repeats_nothing {
    use herald::config::StorageConfig;

    use crate::redis::RedisServer;
    use crate::support::redis_storage;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        let dir = tempfile::tempdir().unwrap();
        let storage = StorageConfig::Embedded {
            data_dir: dir.path().to_owned(),
        };
        super::resuming_across_a_restart(storage).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis() {
        let server = RedisServer::start().await;
        super::resuming_across_a_restart(redis_storage(&server)).await;
    }
}

async fn resuming_across_a_restart(storage: StorageConfig) {
    let mut sink = Sink::start().await;

    // Both runs use the same store (the backend's own store is replaced).
    let mut app = spawn_app_with(Backend::Memory, |c| c.storage = storage.clone()).await;
    app.register_url(sink.url("/hook")).await;
    let mut stream = open(&app, from_start()).await;
    let first = app
        .publish_json("a.b", serde_json::json!({"n": 1}))
        .await
        .message_id;
    let second = app
        .publish_json("a.b", serde_json::json!({"n": 2}))
        .await
        .message_id;
    sink.take(2).await;
    let mut events = Vec::new();
    while events
        .iter()
        .filter(|e: &&pb::DeliveryStatusEvent| e.kind == Kind::AttemptSucceeded as i32)
        .count()
        < 2
    {
        events.push(next_event(&mut stream).await);
    }
    // The consumer stops right after the first message succeeded.
    let resume = events
        .iter()
        .find(|e| e.kind == Kind::AttemptSucceeded as i32 && e.message_id == first)
        .unwrap()
        .cursor;
    let expected: Vec<u64> = events
        .iter()
        .map(|e| e.cursor)
        .filter(|c| *c > resume)
        .collect();
    assert!(events.iter().any(|e| e.message_id == second));
    app.stop().await;

    let mut app = spawn_app_with(Backend::Memory, |c| c.storage = storage.clone()).await;
    let third = app
        .publish_json("a.b", serde_json::json!({"n": 3}))
        .await
        .message_id;
    sink.next().await;
    let mut resumed = open(&app, after(resume)).await;
    let after_restart = events_until(&mut resumed, Kind::AttemptSucceeded, &third).await;
    let cursors: Vec<u64> = after_restart.iter().map(|e| e.cursor).collect();
    assert_eq!(
        &cursors[..expected.len()],
        &expected[..],
        "the first run's events come first, from the store"
    );
    let contiguous: Vec<u64> = (resume + 1..=*cursors.last().unwrap()).collect();
    assert_eq!(
        cursors, contiguous,
        "no gap and no duplicate across the restart"
    );
    app.stop().await;
}

async fn heartbeats_pruned_cursors_and_shutdown(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app_with(backend, |c| {
        c.service.stream_heartbeat = Duration::from_millis(100);
        c.store.status_retention = 10;
    })
    .await;
    let mut idle = open(&app, pb::StreamDeliveryStatusRequest::default()).await;
    let item = tokio::time::timeout(PATIENCE, idle.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(item.item, Some(Item::Heartbeat(_))), "{item:?}");

    // Enough events to prune: a cursor before the retained ones is out of range.
    app.register_url(sink.url("/hook")).await;
    let ids = app.publish_many("a.b", 80).await;
    sink.take(ids.len()).await;
    let mut old = open(&app, from_start()).await;
    let status = tokio::time::timeout(PATIENCE, old.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange);

    // Shutdown ends open streams instead of waiting for them.
    app.stop().await;
    let end = tokio::time::timeout(PATIENCE, async {
        loop {
            match idle.next().await {
                Some(Ok(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the stream ends with the server");
    assert!(end.is_none() || end.unwrap().is_err());
}
