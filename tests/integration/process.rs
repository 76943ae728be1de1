//! The real `herald` binary as a child process: crash recovery on the embedded store,
//! graceful shutdown, configuration errors and the data directory lock.
//!
//! Each test runs its own children (see `child`) on `127.0.0.1:0` with its own data
//! directory and sink. Tests wait on the children's log lines, on the sink's channel or
//! on bounded polls of the API, never on a fixed sleep.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use herald::grpc::pb;
use tokio::sync::{Semaphore, watch};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::child::{Client, Herald, Settings, get_message, register_url, state_name};
use crate::support::{PATIENCE, Reply, Sink, eventually, publish_json, share_machine};

/// Publishers of the crash test; the kill comes once half of `TOTAL` is acknowledged.
const PUBLISHERS: usize = 3;
/// Rounds per publisher; each round is five Publish calls and one PublishBatch of five.
const ROUNDS: usize = 20;
const PER_ROUND: usize = 10;
const TOTAL: usize = PUBLISHERS * ROUNDS * PER_ROUND;
const KILL_AFTER: usize = TOTAL / 2;

/// Publishes its share until done or until the server stops answering; records every
/// message id acknowledged with OK in `acked` and its count in `count`.
async fn publisher(
    mut client: Client,
    task: usize,
    acked: Arc<Mutex<Vec<String>>>,
    count: Arc<watch::Sender<usize>>,
) -> usize {
    let mut failures = 0;
    let ack = |ids: Vec<String>| {
        let mut acked = acked.lock().unwrap();
        acked.extend(ids);
        count.send_replace(acked.len());
    };
    'rounds: for round in 0..ROUNDS {
        for i in 0..PER_ROUND / 2 {
            let req = publish_json(
                "order.created",
                serde_json::json!({"task": task, "round": round, "i": i}),
            );
            match client.publish(req).await {
                Ok(resp) => {
                    let resp = resp.into_inner();
                    assert_eq!(resp.delivery_count, 1, "one endpoint, one delivery");
                    ack(vec![resp.message_id]);
                }
                Err(_) => {
                    failures += 1;
                    break 'rounds;
                }
            }
        }
        let requests = (PER_ROUND / 2..PER_ROUND)
            .map(|i| {
                publish_json(
                    "order.created",
                    serde_json::json!({"task": task, "round": round, "i": i, "batch": true}),
                )
            })
            .collect();
        match client
            .publish_batch(pb::PublishBatchRequest { requests })
            .await
        {
            Ok(resp) => {
                let mut ids = Vec::new();
                for result in resp.into_inner().results {
                    match result.result {
                        Some(pb::publish_batch_result::Result::Published(p)) => {
                            assert_eq!(p.delivery_count, 1, "one endpoint, one delivery");
                            ids.push(p.message_id);
                        }
                        other => panic!("a valid event of a batch was refused: {other:?}"),
                    }
                }
                ack(ids);
            }
            Err(_) => {
                failures += 1;
                break 'rounds;
            }
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_recovery_delivers_every_acknowledged_message() {
    let _machine = share_machine().await;
    let started = Instant::now();
    let data = tempfile::tempdir().unwrap();
    let mut sink = Sink::start().await;
    // Mostly 200 and every tenth answer a 500 (retried); the 8th, 18th and 28th answers
    // are held until after the kill. With 4 workers, three of them stay busy on held
    // attempts (certainly in flight at the kill) and one keeps delivering, slower than
    // the publishers publish.
    let gate = Arc::new(Semaphore::new(0));
    sink.queue(
        "/hook",
        (0..4 * TOTAL).map(|i| match i {
            7 | 17 | 27 => Reply::status(200).held_by(gate.clone()),
            _ if i % 10 == 4 => Reply::status(500),
            _ => Reply::status(200),
        }),
    );

    // The held attempts make the endpoint slow after a second; it keeps the fourth
    // worker only if slow endpoints may hold them all.
    let (mut herald, mut client) = Herald::start(
        &Settings::embedded(data.path())
            .set("WEBHOOK_MAX_WORKERS", "4")
            .set("WEBHOOK_SLOW_WORKER_SHARE", "100"),
    )
    .await;
    let endpoint_id = register_url(&mut client, sink.url("/hook")).await;

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (count_tx, mut count_rx) = watch::channel(0usize);
    let count_tx = Arc::new(count_tx);
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|task| {
            tokio::spawn(publisher(
                client.clone(),
                task,
                acked.clone(),
                count_tx.clone(),
            ))
        })
        .collect();
    drop(count_tx);

    // Kill once half of the messages are acknowledged and the sink has had 30
    // requests (so the three held answers are pending), while publishing goes on.
    let mut received: HashMap<String, usize> = HashMap::new();
    let mut requests = 0usize;
    let mut publishing = true;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let acked_now = *count_rx.borrow_and_update();
        if acked_now >= KILL_AFTER && requests >= 30 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no kill point reached: {acked_now} acked, {requests} requests"
        );
        tokio::select! {
            r = sink.next() => {
                requests += 1;
                *received.entry(r.header("webhook-id").to_owned()).or_default() += 1;
            }
            changed = count_rx.changed(), if publishing => publishing = changed.is_ok(),
        }
    }
    let still_publishing = publishers.iter().filter(|p| !p.is_finished()).count();
    let status = herald.kill().await;
    assert_eq!(status.signal(), Some(9), "herald died of SIGKILL: {status}");
    let acked_at_kill = *count_rx.borrow();
    let received_at_kill: HashSet<String> = received.keys().cloned().collect();
    // Lets the sink's three held handlers finish (their connections died with herald).
    gate.add_permits(3);

    let mut failed_publishes = 0;
    for p in publishers {
        failed_publishes += tokio::time::timeout(PATIENCE, p)
            .await
            .expect("publishers stop once the server is gone")
            .expect("publisher task");
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    let acked_set: HashSet<String> = acked.iter().cloned().collect();
    assert_eq!(acked_set.len(), acked.len(), "message ids are unique");
    assert!(
        acked.len() >= KILL_AFTER,
        "at least the kill threshold was acknowledged"
    );
    let not_yet_received = acked_set
        .iter()
        .filter(|id| !received_at_kill.contains(*id))
        .count();
    println!(
        "crash: killed with {acked_at_kill}/{TOTAL} acknowledged ({} in the end), {} \
         distinct ids received in {requests} requests, {still_publishing} publishers still running, \
         {failed_publishes} publishes failed at the kill, {not_yet_received} acknowledged \
         ids not yet received",
        acked.len(),
        received_at_kill.len(),
    );
    assert!(
        still_publishing > 0 && failed_publishes > 0,
        "the kill came while publishing went on"
    );
    assert!(
        not_yet_received > 0,
        "the kill came before everything acknowledged was received"
    );

    // Same data directory, new process, new port.
    let (mut herald, client) = Herald::start(&Settings::embedded(data.path())).await;
    // The three held attempts (at least) were in flight at the kill: requeued at once
    // on open, not left to wait for their lease to expire.
    let requeued = herald
        .logged_message("requeued deliveries left in flight")
        .and_then(|line| line["deliveries"].as_u64())
        .unwrap_or_else(|| panic!("no requeue logged; stderr:\n{}", herald.stderr()));
    assert!(requeued >= 3, "{requeued} deliveries requeued");

    let mut missing: HashSet<String> = acked_set
        .iter()
        .filter(|id| !received.contains_key(*id))
        .cloned()
        .collect();
    let deadline = Instant::now() + PATIENCE;
    while !missing.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} acknowledged messages never reached the sink, e.g. {:?}",
            missing.len(),
            missing.iter().next()
        );
        let r = sink.next().await;
        requests += 1;
        let id = r.header("webhook-id").to_owned();
        missing.remove(&id);
        *received.entry(id).or_default() += 1;
    }
    assert!(
        acked_set.iter().all(|id| received.contains_key(id)),
        "acknowledged ⊆ received"
    );

    // Nothing is stuck in flight: every acknowledged delivery ends SUCCEEDED. The
    // lookups of one poll run concurrently over the one connection.
    let unfinished = Arc::new(Mutex::new(acked_set.clone()));
    let attempt_counts = Arc::new(Mutex::new(HashMap::<String, u32>::new()));
    eventually("every acknowledged delivery has succeeded", || {
        let (client, unfinished, attempt_counts, endpoint_id) = (
            client.clone(),
            unfinished.clone(),
            attempt_counts.clone(),
            endpoint_id.clone(),
        );
        async move {
            let mut lookups = tokio::task::JoinSet::new();
            for id in unfinished.lock().unwrap().iter().cloned() {
                let mut client = client.clone();
                lookups.spawn(async move {
                    let resp = get_message(&mut client, &id).await;
                    (id, resp)
                });
            }
            while let Some(lookup) = lookups.join_next().await {
                let (id, resp) = lookup.expect("lookup task");
                assert_eq!(resp.deliveries.len(), 1, "one delivery for {id}");
                let d = &resp.deliveries[0];
                assert_eq!(d.endpoint_id, endpoint_id);
                assert!(
                    d.state != pb::DeliveryState::Failed as i32
                        && d.state != pb::DeliveryState::Cancelled as i32,
                    "delivery of {id} ended {}",
                    state_name(d.state)
                );
                if d.state == pb::DeliveryState::Succeeded as i32 {
                    assert!(d.attempt_count >= 1, "{d:?}");
                    attempt_counts
                        .lock()
                        .unwrap()
                        .insert(id.clone(), d.attempt_count);
                    unfinished.lock().unwrap().remove(&id);
                }
            }
            unfinished.lock().unwrap().is_empty().then_some(())
        }
    })
    .await;

    // Every recorded attempt's request is in the sink's channel by now.
    for r in sink.drain() {
        requests += 1;
        *received
            .entry(r.header("webhook-id").to_owned())
            .or_default() += 1;
    }
    // Requests the sink received beyond the attempts recorded: attempts whose outcome
    // the kill lost, sent again after the restart (at-least-once allows them).
    let attempt_counts = attempt_counts.lock().unwrap().clone();
    let unrecorded: usize = acked_set
        .iter()
        .map(|id| received[id].saturating_sub(attempt_counts[id] as usize))
        .sum();
    let received_twice = acked_set.iter().filter(|id| received[*id] > 1).count();
    let unacked_delivered = received
        .keys()
        .filter(|id| !acked_set.contains(*id))
        .count();
    println!(
        "crash: {} acknowledged, all received and SUCCEEDED; {requests} requests in all; \
         {unrecorded} duplicates (requests beyond the recorded attempts), {received_twice} \
         acknowledged ids received more than once (retries after 500 included); \
         {unacked_delivered} unacknowledged messages delivered too; {requeued} requeued at \
         restart; {:?}",
        acked.len(),
        started.elapsed()
    );
    herald.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_records_the_in_flight_attempt() {
    let _machine = share_machine().await;
    let data = tempfile::tempdir().unwrap();
    let mut sink = Sink::start().await;
    let gate = Arc::new(Semaphore::new(0));
    sink.queue("/hook", [Reply::status(200).held_by(gate.clone())]);

    let (mut herald, mut client) = Herald::start(&Settings::embedded(data.path())).await;
    let endpoint_id = register_url(&mut client, sink.url("/hook")).await;
    let published = client
        .publish(publish_json(
            "order.created",
            serde_json::json!({"order": 1}),
        ))
        .await
        .expect("publish")
        .into_inner();
    assert_eq!(published.delivery_count, 1);
    let message_id = published.message_id;

    // The attempt is under way (its answer held) when SIGTERM arrives.
    let first = sink.next().await;
    assert_eq!(first.header("webhook-id"), message_id);
    herald.terminate();
    herald.wait_for_message("shutdown started").await;
    let stopped_claiming = herald.wait_for_message("delivery stopped claiming").await;
    assert_eq!(
        stopped_claiming["in_flight"].as_u64(),
        Some(1),
        "the held attempt is in flight when delivery stops: {stopped_claiming}"
    );
    gate.add_permits(1);
    let stopping = Instant::now();
    let status = herald.wait_exit().await;
    assert!(
        status.success(),
        "herald exits cleanly on SIGTERM, not {status}; stderr:\n{}",
        herald.stderr()
    );
    assert!(
        herald.logged_message("herald stopped").is_some(),
        "{}",
        herald.stderr()
    );
    assert!(
        !herald.logged("still in flight after the grace period")
            && !herald.logged("still open after the grace period"),
        "nothing waited for the grace period; stderr:\n{}",
        herald.stderr()
    );
    println!(
        "graceful: exited {:?} after the held answer was released",
        stopping.elapsed()
    );

    let (mut herald, mut client) = Herald::start(&Settings::embedded(data.path())).await;
    assert!(
        herald.logged_message("requeued deliveries").is_none(),
        "nothing was left in flight; stderr:\n{}",
        herald.stderr()
    );
    let resp = get_message(&mut client, &message_id).await;
    assert_eq!(resp.deliveries.len(), 1);
    let d = &resp.deliveries[0];
    assert_eq!(d.endpoint_id, endpoint_id);
    assert_eq!(
        d.state,
        pb::DeliveryState::Succeeded as i32,
        "the attempt finished during shutdown was recorded, state {}",
        state_name(d.state)
    );
    assert_eq!(d.attempt_count, 1);
    let attempts = client
        .list_attempts(pb::ListAttemptsRequest {
            message_id: message_id.clone(),
            ..Default::default()
        })
        .await
        .expect("list attempts")
        .into_inner()
        .attempts;
    assert_eq!(attempts.len(), 1, "exactly one attempt: {attempts:?}");
    assert!(attempts[0].succeeded);
    assert_eq!(attempts[0].status_code, 200);
    assert_eq!(attempts[0].attempt_number, 1);
    assert_eq!(attempts[0].endpoint_id, endpoint_id);

    // A later message goes through the restarted dispatcher; a redelivery of the first
    // would have been claimed no later than it.
    let sentinel = client
        .publish(publish_json(
            "order.created",
            serde_json::json!({"order": 2}),
        ))
        .await
        .expect("publish")
        .into_inner()
        .message_id;
    let mut seen = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(Instant::now() < deadline, "the sentinel never arrived");
        let id = sink.next().await.header("webhook-id").to_owned();
        let done = id == sentinel;
        seen.push(id);
        if done {
            break;
        }
    }
    seen.extend(
        sink.drain()
            .iter()
            .map(|r| r.header("webhook-id").to_owned()),
    );
    assert!(
        !seen.contains(&message_id),
        "the first message was delivered again: {seen:?}"
    );
    let resp = get_message(&mut client, &message_id).await;
    assert_eq!(resp.deliveries[0].attempt_count, 1);
    herald.stop().await;
}

/// Shutdown has one deadline: a client's open `grpc.health.v1` watch (which holds the
/// server's drain) and an attempt that never ends (which holds delivery) together delay
/// the exit by the grace period once, not once per phase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_spends_the_grace_period_once() {
    const GRACE_SECS: u64 = 3;
    let _machine = share_machine().await;
    let data = tempfile::tempdir().unwrap();
    let mut sink = Sink::start().await;
    // Never released: the attempt outlives the grace period.
    let gate = Arc::new(Semaphore::new(0));
    sink.queue("/hook", [Reply::status(200).held_by(gate.clone())]);
    let settings =
        Settings::embedded(data.path()).set("WEBHOOK_SHUTDOWN_GRACE", &format!("{GRACE_SECS}s"));
    let (mut herald, mut client) = Herald::start(&settings).await;
    register_url(&mut client, sink.url("/hook")).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", herald.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .expect("a second connection");
    let _watch = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("a health watch opens")
        .into_inner();
    client
        .publish(publish_json(
            "order.created",
            serde_json::json!({"order": 1}),
        ))
        .await
        .expect("publish");
    sink.next().await;

    let stopping = Instant::now();
    herald.terminate();
    let status = herald.wait_exit().await;
    let took = stopping.elapsed();
    assert!(status.success(), "{status}; stderr:\n{}", herald.stderr());
    assert!(
        herald.logged("still in flight after the grace period"),
        "the held attempt was given up at the deadline; stderr:\n{}",
        herald.stderr()
    );
    assert!(herald.logged_message("herald stopped").is_some());
    // One grace period and the time to start and stop, well below two grace periods.
    assert!(
        took.as_secs() < 2 * GRACE_SECS,
        "exited {took:?} after SIGTERM with a grace period of {GRACE_SECS} s"
    );
    drop(gate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configuration_exits_before_listening() {
    let _machine = share_machine().await;
    // (variable, value, its flag, what the error says about the value)
    let cases = [
        ("WEBHOOK_MAX_WORKERS", "0", "--max-workers", "'0'"),
        (
            "WEBHOOK_RETRY_MULTIPLIER",
            "0.5",
            "--retry-multiplier",
            "0.5",
        ),
        (
            "WEBHOOK_DEFAULT_TIMEOUT",
            "soon",
            "--default-timeout",
            "'soon'",
        ),
        (
            "WEBHOOK_STORAGE_TYPE",
            "nonsense",
            "--storage-type",
            "'nonsense'",
        ),
        (
            "WEBHOOK_SHUTDOWN_GRACE",
            "0",
            "--shutdown-grace",
            "more than zero",
        ),
        (
            "WEBHOOK_ADMIN_API_KEY",
            "too-short",
            "--admin-api-key",
            "at least 32",
        ),
        ("WEBHOOK_AUTH", "maybe", "--auth", "'maybe'"),
        (
            "WEBHOOK_EGRESS_ALLOW_CIDRS",
            "127.0.0.0/8,localhost",
            "--egress-allow-cidrs",
            "neither a CIDR block",
        ),
        (
            "WEBHOOK_EGRESS_PROXY",
            "ftp://proxy.internal:21",
            "--egress-proxy",
            "not one of http, https, socks5, socks5h",
        ),
        (
            "WEBHOOK_EGRESS_CA_FILE",
            "/nonexistent/ca.pem",
            "--egress-ca-file",
            "cannot read",
        ),
        (
            "WEBHOOK_TLS_CERT",
            "/nonexistent/cert.pem",
            "--tls-key",
            "private key",
        ),
        (
            "WEBHOOK_JWT_ISSUER",
            "https://id.example",
            "--jwt-jwks-url",
            "key source",
        ),
    ];
    for (env, value, flag, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        // Not created yet: a process that opened its store would create it.
        let data_dir = dir.path().join("data");
        let mut herald = Herald::spawn(&Settings::embedded(&data_dir).set(env, value));
        let status = herald.wait_exit().await;
        let stderr = herald.stderr();
        println!("config {env}={value}: exit {status}, stderr:\n{stderr}");
        assert!(
            status.code().is_some_and(|c| c != 0),
            "{env}={value} must fail with an exit code, not {status}; stderr:\n{stderr}"
        );
        // The value may come from the flag or the variable: the error names both.
        assert!(
            stderr.contains(flag) && stderr.contains(env),
            "{env}={value}: stderr names the flag and the variable:\n{stderr}"
        );
        assert!(
            stderr.contains(reason),
            "{env}={value}: stderr says {reason:?}:\n{stderr}"
        );
        assert!(
            !herald.logged("herald serving"),
            "{env}={value} must not serve; stderr:\n{stderr}"
        );
        assert!(
            !data_dir.exists(),
            "{env}={value}: the store was not opened"
        );
    }
}

/// Files a setting names are read before the store opens, and their errors say which
/// settings to look at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_tls_files_stop_the_start() {
    let _machine = share_machine().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let settings = Settings::embedded(&data_dir)
        .set("WEBHOOK_TLS_CERT", "/nonexistent/cert.pem")
        .set("WEBHOOK_TLS_KEY", "/nonexistent/key.pem");
    let mut herald = Herald::spawn(&settings);
    let status = herald.wait_exit().await;
    let stderr = herald.stderr();
    assert!(status.code().is_some_and(|c| c != 0), "{status}: {stderr}");
    assert!(
        stderr.contains("WEBHOOK_TLS_CERT") && stderr.contains("/nonexistent/cert.pem"),
        "{stderr}"
    );
    assert!(!data_dir.exists(), "the store was not opened");
}

/// Herald says loudly when anyone may call it, when credentials would cross the network
/// in clear, and which ways out past the egress rules the operator opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_access_is_announced() {
    let _machine = share_machine().await;
    let dir = tempfile::tempdir().unwrap();
    let mut off = Herald::spawn(&Settings::embedded(dir.path()).set("WEBHOOK_AUTH", "off"));
    let warning = off.wait_for_message("AUTHENTICATION IS OFF").await;
    assert_eq!(warning["level"], "WARN", "{warning}");
    // The suite's allow-list lets webhooks reach loopback.
    let warning = off
        .wait_for_message("webhooks may reach these non-public addresses")
        .await;
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert!(warning.to_string().contains("127.0.0.0/8"), "{warning}");
    off.wait_for_message("herald serving").await;
    off.stop().await;

    // Listening beyond loopback without TLS, webhooks through a proxy; the test sends
    // nothing to either address.
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::embedded(dir.path())
        .set("WEBHOOK_GRPC_ADDR", "0.0.0.0:0")
        .set("WEBHOOK_EGRESS_PROXY", "http://user:secret@127.0.0.1:9/");
    let mut clear = Herald::spawn(&settings);
    let warning = clear.wait_for_message("webhooks go through a proxy").await;
    assert!(
        warning.to_string().contains("http://127.0.0.1:9"),
        "{warning}"
    );
    assert!(!warning.to_string().contains("secret"), "{warning}");
    let warning = clear.wait_for_message("gRPC is served without TLS").await;
    assert!(
        warning["message"]
            .as_str()
            .is_some_and(|m| m.contains("credentials travel in clear")),
        "{warning}"
    );
    clear.wait_for_message("herald serving").await;
    clear.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_process_on_the_same_data_dir_is_refused() {
    let _machine = share_machine().await;
    let data = tempfile::tempdir().unwrap();
    let (mut first, mut client) = Herald::start(&Settings::embedded(data.path())).await;

    let mut second = Herald::spawn(&Settings::embedded(data.path()));
    let status = second.wait_exit().await;
    let stderr = second.stderr();
    println!("second process: exit {status}, stderr:\n{stderr}");
    assert!(
        status.code().is_some_and(|c| c != 0),
        "the second process fails, not {status}; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("is in use by another Herald process"),
        "says why: {stderr}"
    );
    assert!(
        stderr.contains(&data.path().display().to_string()),
        "names the directory: {stderr}"
    );
    assert!(!second.logged("herald serving"), "{stderr}");

    // The first is undisturbed, and its lock goes with it.
    client
        .list_endpoints(pb::ListEndpointsRequest::default())
        .await
        .expect("the first process still serves");
    first.stop().await;
    let (mut third, _client) = Herald::start(&Settings::embedded(data.path())).await;
    third.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_and_on_the_log_lines() {
    let _machine = share_machine().await;
    let data = tempfile::tempdir().unwrap();
    let (mut herald, mut client) = Herald::start(&Settings::embedded(data.path())).await;
    let mut request = tonic::Request::new(pb::RegisterEndpointRequest {
        url: "http://127.0.0.1:9/hook".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-request-id", "req-7f3a".parse().unwrap());
    let response = client.register_endpoint(request).await.unwrap();
    assert_eq!(response.metadata().get("x-request-id").unwrap(), "req-7f3a");
    // Without one, the server makes one up and returns it.
    let generated = client
        .get_endpoint(pb::GetEndpointRequest {
            endpoint_id: response.get_ref().endpoint.as_ref().unwrap().id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!generated.metadata().get("x-request-id").unwrap().is_empty());

    // The registration's audit line names who made it, inside the request's span.
    let line = herald.wait_for_message("audit").await;
    assert_eq!(
        (
            line["action"].as_str(),
            line["actor"].as_str(),
            line["tenant"].as_str()
        ),
        (Some("endpoint.register"), Some("operator"), Some("default")),
        "{line}"
    );
    assert_eq!(line["span"]["request_id"], "req-7f3a", "{line}");
    assert_eq!(
        line["span"]["method"],
        "/herald.v1.WebhookService/RegisterEndpoint"
    );
    assert!(
        !line.to_string().contains("whsec_"),
        "secrets are never logged"
    );
    herald.stop().await;
}
