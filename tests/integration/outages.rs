//! Store outages answer `UNAVAILABLE` with a `RetryInfo`, whatever their cause, so that a
//! client knows to try again: Redis killed and replaying its AOF (`LOADING`) under load,
//! Redis demoted to a replica by a failover (`READONLY`), cut off from its master
//! (`MASTERDOWN`), out of memory under `noeviction` (`OOM`); the embedded store's
//! database locked by another process past the busy timeout. Nothing acknowledged is
//! lost, and the same call works once the condition passes.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald::config::StorageConfig;
use herald::grpc::pb;
use tokio::sync::watch;
use tonic::Code;
use tonic_types::StatusExt;

use crate::redis::{RedisServer, connect};
use crate::support::{
    Backend, PATIENCE, Sink, TestApp, eventually, publish_json, redis_storage, spawn_app_with,
};

/// Microseconds Redis waits per key it loads: with [`PADDING_KEYS`], a restart replays
/// its AOF for about a second and a half, long enough to be seen from outside.
const KEY_LOAD_DELAY_US: &str = "150";
/// Keys written beside Herald's so that the replay takes a while.
const PADDING_KEYS: usize = 10_000;
/// Publishes acknowledged before the kill, and again after the restart.
const ACKED_EACH_SIDE: usize = 20;
/// The delivery request timeout of the kill test: its leases run out soon after.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the kill test waits for the sink before looking at the clock again.
const POLL_SINK: Duration = Duration::from_secs(1);
/// The most publishes the load task sends: it stops by itself.
const MAX_PUBLISHES: usize = 20_000;

/// Asserts `status` is `UNAVAILABLE` with a `RetryInfo` telling when to retry.
fn assert_retryable(status: &tonic::Status, what: &str) {
    assert_eq!(status.code(), Code::Unavailable, "{what}: {status:?}");
    let retry = status
        .get_details_retry_info()
        .unwrap_or_else(|| panic!("{what}: UNAVAILABLE carries RetryInfo: {status:?}"));
    assert!(
        retry.retry_delay.is_some_and(|d| !d.is_zero()),
        "{what}: RetryInfo names a delay: {retry:?}"
    );
}

/// A loopback port nobody listens on: the address of a master that never answers.
fn dead_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// Redis commands, each as its arguments.
type Commands<'a> = Vec<Vec<&'a str>>;

/// Sends `args` to Redis directly.
async fn redis_cmd(server: &RedisServer, args: &[&str]) {
    let mut conn = connect(server).await;
    let mut cmd = ::redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    let () = cmd
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
}

/// A Herald on `server` with one endpoint at a fresh sink.
async fn herald_on(server: &RedisServer) -> (TestApp, Sink) {
    let storage = redis_storage(server);
    let mut app = spawn_app_with(Backend::Memory, |c| c.storage = storage).await;
    let sink = Sink::start().await;
    app.register_url(sink.url("/hook")).await;
    (app, sink)
}

/// Publishes one probe; panics unless it is acknowledged.
async fn publish_ok(app: &mut TestApp, what: &str) {
    app.client
        .publish(publish_json("outage.probe", serde_json::json!({})))
        .await
        .unwrap_or_else(|status| panic!("{what}: {status:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_refusing_writes_for_now_is_unavailable() {
    let server = RedisServer::start().await;
    let (mut app, _sink) = herald_on(&server).await;
    publish_ok(&mut app, "before any refusal").await;

    let master = dead_port().to_string();
    // Each condition: the commands that bring it about, and those that end it.
    let conditions: [(&str, Commands, Commands); 3] = [
        (
            "READONLY: demoted to a replica by a failover",
            vec![vec!["REPLICAOF", "127.0.0.1", &master]],
            vec![vec!["REPLICAOF", "NO", "ONE"]],
        ),
        (
            "MASTERDOWN: a replica cut off from its master",
            vec![
                vec!["REPLICAOF", "127.0.0.1", &master],
                vec!["CONFIG", "SET", "replica-serve-stale-data", "no"],
            ],
            vec![
                vec!["REPLICAOF", "NO", "ONE"],
                vec!["CONFIG", "SET", "replica-serve-stale-data", "yes"],
            ],
        ),
        (
            "OOM: out of memory under noeviction",
            vec![vec!["CONFIG", "SET", "maxmemory", "1"]],
            vec![vec!["CONFIG", "SET", "maxmemory", "0"]],
        ),
    ];
    for (condition, enter, leave) in conditions {
        for args in &enter {
            redis_cmd(&server, args).await;
        }
        let refused = app
            .client
            .publish(publish_json("outage.probe", serde_json::json!({})))
            .await
            .expect_err(condition);
        assert_retryable(&refused, condition);
        for args in &leave {
            redis_cmd(&server, args).await;
        }
        publish_ok(&mut app, &format!("once {condition} passed")).await;
    }
    app.stop().await;
}

/// What the load task saw.
#[derive(Default)]
struct Outcomes {
    acked: Vec<String>,
    refused: Vec<tonic::Status>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_replaying_its_aof_under_load_is_only_ever_unavailable() {
    let mut server = RedisServer::start_with(&["--key-load-delay", KEY_LOAD_DELAY_US]).await;
    let storage = redis_storage(&server);
    let mut lease = Duration::ZERO;
    let mut app = spawn_app_with(Backend::Memory, |c| {
        c.storage = storage;
        c.delivery.request_timeout = REQUEST_TIMEOUT;
        lease = c.delivery.lease();
    })
    .await;
    let mut sink = Sink::start().await;
    app.register_url(sink.url("/hook")).await;

    let mut pipe = ::redis::pipe();
    for i in 0..PADDING_KEYS {
        pipe.cmd("SET").arg(format!("padding:{i}")).arg(i).ignore();
    }
    let () = pipe
        .query_async(&mut connect(&server).await)
        .await
        .expect("padding written");

    // Publishes one at a time, as fast as answers come, until told to stop.
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let (stop_tx, stop) = watch::channel(false);
    let load = tokio::spawn({
        let (mut client, outcomes) = (app.client.clone(), outcomes.clone());
        async move {
            for i in 0..MAX_PUBLISHES {
                if *stop.borrow() {
                    return;
                }
                let request = publish_json("outage.load", serde_json::json!({ "i": i }));
                match tokio::time::timeout(PATIENCE, client.publish(request)).await {
                    Ok(Ok(answer)) => {
                        let id = answer.into_inner().message_id;
                        outcomes.lock().unwrap().acked.push(id);
                    }
                    Ok(Err(status)) => outcomes.lock().unwrap().refused.push(status),
                    Err(_) => panic!("publish {i} did not answer within {PATIENCE:?}"),
                }
            }
        }
    });
    let acked = || outcomes.lock().unwrap().acked.len();
    eventually("publishes acknowledged before the kill", || async {
        (acked() >= ACKED_EACH_SIDE).then_some(())
    })
    .await;

    let killed = server.kill();
    assert!(!killed.success(), "redis was killed: {killed}");
    eventually("a publish refused while Redis is down", || async {
        (!outcomes.lock().unwrap().refused.is_empty()).then_some(())
    })
    .await;
    server.restart().await;

    // Redis answers again but is still replaying its AOF: a publish now meets LOADING.
    let mut conn = connect(&server).await;
    let loading = ::redis::cmd("GET")
        .arg("padding:0")
        .query_async::<Option<String>>(&mut conn)
        .await
        .expect_err("Redis replays its AOF for a while after the restart");
    assert_eq!(loading.code(), Some("LOADING"), "{loading}");
    let refused = app
        .client
        .publish(publish_json("outage.probe", serde_json::json!({})))
        .await
        .expect_err("no publish is acknowledged while Redis loads");
    assert_retryable(&refused, "publish while Redis loads its AOF");

    let acked_at_restart = acked();
    let restarted = Instant::now();
    eventually("publishes acknowledged after the restart", || async {
        (acked() >= acked_at_restart + ACKED_EACH_SIDE).then_some(())
    })
    .await;
    stop_tx.send_replace(true);
    load.await.expect("the load task ends");

    let Outcomes { acked, refused } = std::mem::take(&mut *outcomes.lock().unwrap());
    for status in &refused {
        assert_retryable(status, "publish during the outage");
    }
    println!(
        "redis kill and replay under load: {} acknowledged, {} refused (all UNAVAILABLE \
         with RetryInfo), {:?} from the restart until publishes were acknowledged again",
        acked.len(),
        refused.len(),
        restarted.elapsed()
    );

    // Every acknowledged message reaches the endpoint: those whose outcome could not be
    // recorded while Redis was down go again once their lease runs out.
    let mut missing: HashSet<String> = acked.into_iter().collect();
    let deadline = restarted + lease + PATIENCE;
    while !missing.is_empty() && Instant::now() < deadline {
        if let Ok(received) = tokio::time::timeout(POLL_SINK, sink.next()).await {
            missing.remove(received.header("webhook-id"));
        }
    }
    let mut undelivered = Vec::new();
    for id in &missing {
        undelivered.push(app.message(id).await.deliveries);
    }
    assert!(
        undelivered.is_empty(),
        "acknowledged messages never delivered: {undelivered:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_locked_by_another_process_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_owned();
    let mut app = spawn_app_with(Backend::Memory, |c| {
        c.storage = StorageConfig::Embedded {
            data_dir: data_dir.clone(),
        }
    })
    .await;
    let mut sink = Sink::start().await;
    let (endpoint, _) = app.register_url(sink.url("/hook")).await;
    let before = app
        .publish_json("outage.probe", serde_json::json!({}))
        .await;
    app.wait_for_delivery(&before.message_id, &endpoint, pb::DeliveryState::Succeeded)
        .await;
    sink.next().await;

    // A backup tool, or an operator's `sqlite3` shell, takes the write lock and holds it.
    let lock = rusqlite::Connection::open_with_flags(
        data_dir.join("herald.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
    )
    .expect("open Herald's database");
    lock.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let started = Instant::now();
    let refused = app
        .client
        .publish(publish_json("outage.probe", serde_json::json!({})))
        .await
        .expect_err("no publish is acknowledged while another process holds the lock");
    assert_retryable(&refused, "publish while the database is locked");
    println!(
        "locked database: refused after {:?} (the busy timeout)",
        started.elapsed()
    );
    lock.execute_batch("ROLLBACK").expect("let go of the lock");
    drop(lock);

    let after = app
        .publish_json("outage.probe", serde_json::json!({}))
        .await;
    app.wait_for_delivery(&after.message_id, &endpoint, pb::DeliveryState::Succeeded)
        .await;
    assert_eq!(
        sink.next().await.header("webhook-id"),
        after.message_id,
        "the refused publish was not stored; the next one is delivered"
    );
    drop(dir);
    app.stop().await;
}
