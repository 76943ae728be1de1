//! Retention through the API: settled messages go once past their retention (the
//! service's, or a shorter one asked for at publish), on every backend, counted in the
//! metrics; what the embedded store and Redis hold returns to the same size after each
//! round of traffic has expired.

use std::time::Duration;

use herald::config::StorageConfig;
use herald::grpc::pb;

use crate::each_backend;
use crate::support::{
    Backend, Sink, eventually, metric, publish_json, publish_raw, spawn_app_with,
};

each_backend!(
    settled_messages_go_once_past_their_retention,
    storage_returns_to_the_same_size_after_each_round_expires,
    payloads_past_the_stored_bytes_budget_wait_for_retention,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_while_status_streams_read() {
    const MESSAGES: usize = 320;
    const PAYLOAD: usize = 64 * 1024;
    let mut sink = Sink::start().await;
    let mut storage = None;
    let mut app = spawn_app_with(Backend::Embedded, |c| storage = Some(c.storage.clone())).await;
    let Some(StorageConfig::Embedded { data_dir }) = storage else {
        panic!("an embedded store");
    };
    app.register_url(sink.url("/hook")).await;
    // One watcher reads every event as it comes; another, on a connection whose window
    // holds a few events, reads nothing.
    let mut reading = app
        .client
        .clone()
        .stream_delivery_status(pb::StreamDeliveryStatusRequest::default())
        .await
        .expect("stream opens")
        .into_inner();
    let reader = tokio::spawn(async move {
        let mut events = 0;
        while let Ok(Some(_)) = reading.message().await {
            events += 1;
        }
        events
    });
    let stalled = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .expect("an address")
        .initial_stream_window_size(Some(1024))
        .connect()
        .await
        .expect("client connects");
    let _stalled = herald::cli::client(stalled, Some(crate::support::ADMIN_KEY))
        .expect("a client")
        .stream_delivery_status(pb::StreamDeliveryStatusRequest::default())
        .await
        .expect("stream opens");
    for batch in 0..MESSAGES / 16 {
        app.publish_batch(
            (0..16)
                .map(|i| {
                    let fill = u8::try_from((batch * 16 + i) % 251).expect("a byte");
                    publish_raw(
                        "bulk.loaded",
                        &vec![fill; PAYLOAD],
                        "application/octet-stream",
                    )
                })
                .collect(),
        )
        .await;
    }
    sink.take(MESSAGES).await;
    // Over 20 MB went through the WAL; checkpoints that readers never pin keep reusing
    // its first few MB.
    let wal = std::fs::metadata(data_dir.join("herald.sqlite3-wal"))
        .expect("the WAL exists")
        .len();
    println!("WAL after {MESSAGES} payloads of {PAYLOAD} bytes: {wal} bytes");
    assert!(wal < 12 << 20, "the WAL grew to {wal} bytes");
    app.stop().await;
    assert!(
        reader.await.expect("the reader ends") >= MESSAGES,
        "the watcher read along"
    );
}

/// A publish of `event_type` kept `retention` once settled.
fn kept_for(event_type: &str, i: usize, retention: Duration) -> pb::PublishRequest {
    pb::PublishRequest {
        retention: Some(retention.try_into().expect("a proto duration")),
        ..publish_json(event_type, serde_json::json!({ "i": i }))
    }
}

/// Settings of a Herald that keeps messages an hour and looks for expired ones often.
fn short_sweeps(config: &mut herald::config::Config) {
    config.service.retention = Duration::from_secs(3600);
    config.retention_sweep_interval = Duration::from_millis(100);
}

async fn settled_messages_go_once_past_their_retention(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app_with(backend, short_sweeps).await;
    app.register_url(sink.url("/hook")).await;
    let brief = app
        .publish_batch(vec![kept_for("order.created", 0, Duration::from_secs(1))])
        .await
        .remove(0);
    let kept = app.publish_many("order.created", 1).await.remove(0);
    sink.take(2).await;
    let message = |id: &str| pb::GetMessageRequest {
        message_id: id.to_owned(),
        ..Default::default()
    };
    let stored = app
        .client
        .get_message(message(&brief))
        .await
        .expect("kept until its retention")
        .into_inner()
        .message
        .expect("a message");
    let (created, expires) = (
        stored.create_time.expect("a create time"),
        stored.expire_time.expect("an expire time"),
    );
    assert_eq!(expires.seconds - created.seconds, 1);

    eventually("the brief message is deleted", || {
        let mut client = app.client.clone();
        let request = message(&brief);
        async move {
            match client.get_message(request).await {
                Err(status) if status.code() == tonic::Code::NotFound => Some(()),
                _ => None,
            }
        }
    })
    .await;
    let still = app
        .client
        .get_message(message(&kept))
        .await
        .expect("the message kept an hour is still there")
        .into_inner();
    assert_eq!(still.deliveries.len(), 1);
    let scrape = app.scrape().await;
    let deleted = |kind: &str| {
        metric(
            &scrape,
            &format!(r#"webhook_retention_deleted_total{{kind="{kind}"}}"#),
        )
        .unwrap_or(0.0)
    };
    assert_eq!(
        (
            deleted("messages"),
            deleted("deliveries"),
            deleted("attempts")
        ),
        (1.0, 1.0, 1.0)
    );
    assert_eq!(deleted("payload_bytes"), 7.0, r#"{{"i":0}}"#);
    assert!(
        metric(&scrape, "webhook_retention_sweep_seconds_count").unwrap_or(0.0) >= 1.0,
        "sweeps are timed"
    );

    for (retention, why) in [
        (
            Duration::from_secs(7200),
            "longer than the service keeps messages",
        ),
        (Duration::from_millis(500), "at least one second"),
    ] {
        let refused = app
            .client
            .publish(kept_for("order.created", 1, retention))
            .await
            .expect_err(why);
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{why}");
        let violations = crate::support::violations(&refused);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].0, "retention");
    }
    app.stop().await;
}

/// Status events kept for watchers in the bounded-growth test.
const STATUS_RETENTION: u64 = 50;
/// How far past its retention a store may let its status events run before trimming:
/// the embedded store trims every 64 events, Redis by whole stream nodes (100 entries).
const TRIM_SLACK: u64 = 100;

/// What a store holds, as the bounded-growth test counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Footprint {
    /// Rows of messages, deliveries and attempts in the embedded store; keys of the
    /// Redis store but for the per-minute rollups, which keep their own retention.
    stored: u64,
    /// Status events kept.
    events: u64,
    /// Entries of Redis's ready stream (none in the embedded store).
    ready: u64,
}

/// What the store holds now; `None` for the memory store, which shares the embedded
/// store's code.
async fn footprint(storage: &StorageConfig) -> Option<Footprint> {
    match storage {
        StorageConfig::Memory => None,
        StorageConfig::Embedded { data_dir } => {
            let conn = rusqlite::Connection::open_with_flags(
                data_dir.join("herald.sqlite3"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .expect("the database opens read-only");
            let (stored, events): (u64, u64) = conn
                .query_row(
                    "SELECT (SELECT COUNT(*) FROM messages) + (SELECT COUNT(*) FROM deliveries) + (SELECT COUNT(*) FROM attempts), (SELECT COUNT(*) FROM status_events)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .expect("rows are counted");
            Some(Footprint {
                stored,
                events,
                ready: 0,
            })
        }
        StorageConfig::Redis(redis) => {
            let client = redis::Client::open(redis.url.as_str()).expect("a Redis URL");
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .expect("Redis answers");
            // Every key of a deployment starts with its prefix as a hash tag.
            let prefix = format!("{{{}}}:", redis.prefix);
            let (keys, events, ready): (Vec<String>, u64, u64) = redis::pipe()
                .cmd("KEYS")
                .arg(format!("{prefix}*"))
                .cmd("XLEN")
                .arg(format!("{prefix}ev"))
                .cmd("XLEN")
                .arg(format!("{prefix}ready"))
                .query_async(&mut conn)
                .await
                .expect("keys and stream lengths");
            let rollups = format!("{prefix}ru:");
            let stored = keys.iter().filter(|k| !k.starts_with(&rollups)).count();
            assert!(stored > 0, "the deployment's keys are found");
            Some(Footprint {
                stored: stored as u64,
                events,
                ready,
            })
        }
    }
}

async fn storage_returns_to_the_same_size_after_each_round_expires(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut storage = None;
    let mut app = spawn_app_with(backend, |c| {
        short_sweeps(c);
        c.store.status_retention = STATUS_RETENTION;
        storage = Some(c.storage.clone());
    })
    .await;
    let storage = storage.expect("the settings were seen");
    app.register_url(sink.url("/hook")).await;
    let mut sizes = Vec::new();
    for round in 0..3 {
        let ids = app
            .publish_batch(
                (0..20)
                    .map(|i| kept_for("order.created", i, Duration::from_secs(1)))
                    .collect(),
            )
            .await;
        sink.take(ids.len()).await;
        eventually(&format!("round {round} is deleted"), || {
            let client = app.client.clone();
            let ids = ids.clone();
            async move {
                for id in ids {
                    let found = client
                        .clone()
                        .get_message(pb::GetMessageRequest {
                            message_id: id,
                            ..Default::default()
                        })
                        .await;
                    match found {
                        Err(status) if status.code() == tonic::Code::NotFound => {}
                        _ => return None,
                    }
                }
                Some(())
            }
        })
        .await;
        sizes.push(footprint(&storage).await);
    }
    let Some(last) = sizes.last().copied().flatten() else {
        return app.stop().await;
    };
    assert!(
        sizes
            .iter()
            .all(|s| s.map(|s| s.stored) == Some(last.stored)),
        "the same size after every round: {sizes:?}"
    );
    if matches!(storage, StorageConfig::Embedded { .. }) {
        assert_eq!(last.stored, 0, "no message, delivery or attempt is left");
    }
    // Three rounds of 20 messages wrote well over STATUS_RETENTION events.
    assert!(
        last.events <= STATUS_RETENTION + TRIM_SLACK,
        "status events are trimmed: {last:?}"
    );
    assert_eq!(last.ready, 0, "the ready stream keeps nothing delivered");
    app.stop().await;
}

async fn payloads_past_the_stored_bytes_budget_wait_for_retention(backend: Backend) {
    let mut app = spawn_app_with(backend, |c| {
        short_sweeps(c);
        c.service.max_stored_bytes = 100;
    })
    .await;
    // No endpoint: payloads that match nobody are stored and counted all the same.
    let brief = |data: &[u8]| pb::PublishRequest {
        retention: Some(Duration::from_secs(1).try_into().expect("a proto duration")),
        ..publish_raw("audit.recorded", data, "application/octet-stream")
    };
    app.client
        .publish(brief(&[1; 60]))
        .await
        .expect("within the budget");
    let refused = app
        .client
        .publish(brief(&[2; 60]))
        .await
        .expect_err("past the budget");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(
        refused.message().contains("WEBHOOK_MAX_STORED_BYTES"),
        "{}",
        refused.message()
    );
    let retry = tonic_types::StatusExt::get_details_retry_info(&refused).expect("RetryInfo");
    assert!(retry.retry_delay.is_some());
    eventually("retention makes room again", || {
        let mut client = app.client.clone();
        async move { client.publish(brief(&[3; 60])).await.ok() }
    })
    .await;
    app.stop().await;
}
