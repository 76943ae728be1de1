//! Delivery over real HTTP: what the receiver sees, and what each kind of answer does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use herald::delivery::signer;
use herald::domain::Secret;
use herald::grpc::pb;
use tokio::sync::Semaphore;

use crate::each_backend;
use crate::support::{
    Backend, Received, Reply, Sink, TestApp, publish_json, publish_raw, spawn_app, spawn_app_with,
};

fn endpoint(url: String) -> pb::RegisterEndpointRequest {
    pb::RegisterEndpointRequest {
        url,
        ..Default::default()
    }
}

fn assert_verifies(secret: &Secret, r: &Received) {
    assert!(r.verify(secret).is_ok(), "the signature verifies");
}

each_backend!(
    delivers_exact_bytes_signed,
    filters_route_by_event_type_and_channel,
    failing_endpoint_gets_exactly_n_plus_one_attempts,
    exhausted_delivery_fails_then_retry_by_hand_delivers,
    redirects_are_failures_and_not_followed,
    gone_disables_the_endpoint,
    retry_after_is_honoured_and_clamped,
    timeouts_and_connection_errors_are_retried,
    rotation_signs_with_both_secrets_during_grace,
    slow_endpoint_does_not_stall_the_others,
    replay_and_delete,
);

async fn delivers_exact_bytes_signed(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let mut req = endpoint(sink.url("/hook"));
    req.headers.insert("X-Tenant".into(), "acme".into());
    let (endpoint_id, secret) = app.register(req).await;

    // A JSON payload given as a plain value arrives as compact JSON.
    let published = app
        .publish_json(
            "invoice.paid",
            serde_json::json!({"id": 42, "total": 9.5, "lines": ["a"]}),
        )
        .await;
    assert_eq!(published.delivery_count, 1);
    let r = sink.next().await;
    assert_eq!(r.body.as_ref(), br#"{"id":42,"lines":["a"],"total":9.5}"#);
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("webhook-id"), published.message_id);
    assert_eq!(r.header("webhook-event-type"), "invoice.paid");
    assert_eq!(r.header("x-tenant"), "acme");
    assert!(r.header("user-agent").starts_with("Herald/"));
    assert_verifies(&secret, &r);

    // Raw bytes arrive exactly as given, with their content type.
    let raw = b"\x00\x01binary\xff not utf-8";
    let published = app
        .client
        .publish(publish_raw(
            "file.uploaded",
            raw,
            "application/octet-stream",
        ))
        .await
        .unwrap()
        .into_inner();
    let r = sink.next().await;
    assert_eq!(r.body.as_ref(), raw);
    assert_eq!(r.header("content-type"), "application/octet-stream");
    assert_eq!(r.header("webhook-id"), published.message_id);
    assert_verifies(&secret, &r);
    let wrong = Secret::generate();
    let timestamp = r.header("webhook-timestamp").parse().unwrap();
    assert!(
        signer::verify(
            &wrong,
            r.header("webhook-signature"),
            r.header("webhook-id"),
            timestamp,
            &r.body,
            timestamp,
            300
        )
        .is_err()
    );

    let delivery = app
        .wait_for_delivery(
            &published.message_id,
            &endpoint_id,
            pb::DeliveryState::Succeeded,
        )
        .await;
    assert_eq!(delivery.attempt_count, 1);
    let message = app.message(&published.message_id).await.message.unwrap();
    assert_eq!(message.payload, raw);
    assert_eq!(message.payload_json, None);
    let attempts = app.attempts(&published.message_id).await;
    assert_eq!(attempts.len(), 1);
    assert!(attempts[0].succeeded);
    assert_eq!(attempts[0].status_code, 200);
    assert_eq!(attempts[0].response_excerpt, "sink answered 200");
    app.stop().await;
}

async fn filters_route_by_event_type_and_channel(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let register = |path: &str, event_types: &[&str], channels: &[&str], disabled: bool| {
        pb::RegisterEndpointRequest {
            endpoint_id: path.trim_start_matches('/').to_owned(),
            url: sink.url(path),
            event_types: event_types.iter().map(|s| s.to_string()).collect(),
            channels: channels.iter().map(|s| s.to_string()).collect(),
            disabled,
            ..Default::default()
        }
    };
    let requests = [
        register("/all", &[], &[], false),
        register("/invoices", &["invoice.*"], &[], false),
        register("/paid", &["invoice.paid"], &[], false),
        register("/eu", &[], &["eu"], false),
        register("/off", &[], &[], true),
    ];
    for req in requests {
        app.register(req).await;
    }
    let send = |event: &str, channels: &[&str]| {
        let mut req = publish_json(event, serde_json::json!({"event": event}));
        req.channels = channels.iter().map(|s| s.to_string()).collect();
        req
    };
    let cases = [
        (
            send("invoice.paid", &["eu"]),
            vec!["/all", "/invoices", "/paid", "/eu"],
        ),
        (send("invoice.created", &[]), vec!["/all", "/invoices"]),
        (
            send("invoice.paid.late", &["us"]),
            vec!["/all", "/invoices"],
        ),
        (send("invoices.paid", &[]), vec!["/all"]),
    ];
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut total = 0;
    for (req, paths) in cases {
        let resp = app.client.publish(req).await.unwrap().into_inner();
        assert_eq!(
            resp.delivery_count as usize,
            paths.len(),
            "deliveries of {resp:?}"
        );
        total += paths.len();
        for p in paths {
            expected
                .entry(p.to_owned())
                .or_default()
                .insert(resp.message_id.clone());
        }
    }
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in sink.take(total).await {
        seen.entry(r.path.clone())
            .or_default()
            .insert(r.header("webhook-id").to_owned());
    }
    assert_eq!(seen, expected);
    // Deliveries to the disabled endpoint were never created, so nothing can arrive later.
    for ids in expected.values() {
        for id in ids {
            let deliveries = app.message(id).await.deliveries;
            assert!(deliveries.iter().all(|d| d.endpoint_id != "off"));
        }
    }
    assert!(sink.drain().is_empty());
    app.stop().await;
}

async fn failing_endpoint_gets_exactly_n_plus_one_attempts(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let mut req = endpoint(sink.url("/flaky"));
    req.retry_policy = Some(pb::RetryPolicy {
        max_retries: Some(5),
        initial_delay: Some(prost_types::Duration {
            seconds: 0,
            nanos: 50_000_000,
        }),
        max_delay: Some(prost_types::Duration {
            seconds: 1,
            nanos: 0,
        }),
        multiplier: Some(2.0),
        jitter: pb::RetryJitter::Proportional as i32,
    });
    let (endpoint_id, _) = app.register(req).await;
    sink.queue(
        "/flaky",
        [Reply::status(500), Reply::status(502), Reply::status(400)],
    );
    let id = app
        .publish_json("order.created", serde_json::json!({"n": 1}))
        .await
        .message_id;

    let received = sink.take(4).await;
    let delivery = app
        .wait_for_delivery(&id, &endpoint_id, pb::DeliveryState::Succeeded)
        .await;
    assert_eq!(delivery.attempt_count, 4);
    assert!(
        received.iter().all(|r| r.header("webhook-id") == id),
        "the same webhook-id on every attempt"
    );
    // Backoff 50, 100, 200 ms with ±20 % jitter.
    for (i, pair) in received.windows(2).enumerate() {
        let gap = pair[1].at - pair[0].at;
        let backoff = Duration::from_millis(50 << i);
        assert!(
            gap >= backoff.mul_f64(0.8),
            "gap {i} was {gap:?}, backoff {backoff:?}"
        );
    }
    let attempts = app.attempts(&id).await;
    let codes: Vec<u32> = attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, vec![500, 502, 400, 200]);
    assert_eq!(
        attempts
            .iter()
            .map(|a| a.attempt_number)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(attempts.iter().filter(|a| a.succeeded).count(), 1);
    assert_eq!(attempts[0].error, "HTTP 500");
    assert!(sink.drain().is_empty());
    app.stop().await;
}

async fn exhausted_delivery_fails_then_retry_by_hand_delivers(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let mut req = endpoint(sink.url("/down"));
    req.retry_policy = Some(pb::RetryPolicy {
        max_retries: Some(2),
        ..Default::default()
    });
    let (endpoint_id, _) = app.register(req).await;
    sink.always("/down", Reply::status(500));
    let id = app
        .publish_json("order.created", serde_json::json!({}))
        .await
        .message_id;

    sink.take(3).await;
    let delivery = app
        .wait_for_delivery(&id, &endpoint_id, pb::DeliveryState::Failed)
        .await;
    assert_eq!(delivery.attempt_count, 3);
    assert_eq!(delivery.next_attempt_time, None);
    let failed = pb::ListAttemptsRequest {
        endpoint_id: endpoint_id.clone(),
        delivery_state: pb::DeliveryState::Failed as i32,
        ..Default::default()
    };
    assert_eq!(
        app.client
            .list_attempts(failed.clone())
            .await
            .unwrap()
            .into_inner()
            .attempts
            .len(),
        3
    );

    sink.always("/down", Reply::status(204));
    let retried = app
        .client
        .retry_delivery(pb::RetryDeliveryRequest {
            message_id: id.clone(),
            endpoint_id: endpoint_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        retried.delivery.unwrap().state,
        pb::DeliveryState::Pending as i32
    );
    assert_eq!(sink.next().await.header("webhook-id"), id);
    let delivery = app
        .wait_for_delivery(&id, &endpoint_id, pb::DeliveryState::Succeeded)
        .await;
    assert_eq!(delivery.attempt_count, 4);
    assert!(
        app.client
            .list_attempts(failed)
            .await
            .unwrap()
            .into_inner()
            .attempts
            .is_empty(),
        "no attempt belongs to a failed delivery any more"
    );
    app.stop().await;
}

async fn redirects_are_failures_and_not_followed(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let mut req = endpoint(sink.url("/moved"));
    req.retry_policy = Some(pb::RetryPolicy {
        max_retries: Some(0),
        ..Default::default()
    });
    let (endpoint_id, _) = app.register(req).await;
    sink.always(
        "/moved",
        Reply::status(302).with_header("location", sink.url("/elsewhere")),
    );
    let id = app
        .publish_json("user.created", serde_json::json!({}))
        .await
        .message_id;

    app.wait_for_delivery(&id, &endpoint_id, pb::DeliveryState::Failed)
        .await;
    let attempts = app.attempts(&id).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status_code, 302);
    assert!(!attempts[0].succeeded);
    assert!(attempts[0].error.contains("redirects are not followed"));
    let paths: Vec<String> = sink.drain().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/moved"]);
    app.stop().await;
}

async fn gone_disables_the_endpoint(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let (endpoint_id, _) = app.register(endpoint(sink.url("/gone"))).await;
    sink.always("/gone", Reply::status(410));
    let id = app
        .publish_json("user.created", serde_json::json!({}))
        .await
        .message_id;

    sink.next().await;
    let delivery = app
        .wait_for_delivery(&id, &endpoint_id, pb::DeliveryState::Failed)
        .await;
    assert_eq!(delivery.attempt_count, 1, "410 is not retried");
    let ep = app
        .client
        .get_endpoint(pb::GetEndpointRequest {
            endpoint_id: endpoint_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    assert!(!ep.enabled);
    assert_eq!(ep.disabled_reason, pb::DisabledReason::Gone as i32);
    assert_eq!(
        app.publish_json("user.created", serde_json::json!({}))
            .await
            .delivery_count,
        0
    );

    // Re-enabled by hand, it receives again.
    let update = pb::UpdateEndpointRequest {
        tenant_id: String::new(),
        endpoint: Some(pb::Endpoint {
            id: endpoint_id.clone(),
            enabled: true,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["enabled".into()],
        }),
    };
    let ep = app
        .client
        .update_endpoint(update)
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    assert!(ep.enabled);
    assert_eq!(ep.disabled_reason, pb::DisabledReason::Unspecified as i32);
    sink.always("/gone", Reply::status(200));
    assert_eq!(
        app.publish_json("user.created", serde_json::json!({}))
            .await
            .delivery_count,
        1
    );
    sink.next().await;
    app.stop().await;
}

async fn retry_after_is_honoured_and_clamped(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let policy = |max_delay: prost_types::Duration| pb::RetryPolicy {
        initial_delay: Some(prost_types::Duration {
            seconds: 0,
            nanos: 10_000_000,
        }),
        max_delay: Some(max_delay),
        ..Default::default()
    };
    let mut honoured = endpoint(sink.url("/busy"));
    honoured.retry_policy = Some(policy(prost_types::Duration {
        seconds: 5,
        nanos: 0,
    }));
    let mut clamped = endpoint(sink.url("/asleep"));
    clamped.retry_policy = Some(policy(prost_types::Duration {
        seconds: 0,
        nanos: 300_000_000,
    }));
    app.register(honoured).await;
    app.register(clamped).await;
    // Without Retry-After the backoff would be ~10 ms. 429 asks for 1 s, under the 5 s
    // cap; 503 asks for an hour and is clamped to the endpoint's 300 ms cap.
    sink.queue(
        "/busy",
        [Reply::status(429).with_header("retry-after", "1")],
    );
    sink.queue(
        "/asleep",
        [Reply::status(503).with_header("retry-after", "3600")],
    );
    app.publish_json("report.ready", serde_json::json!({}))
        .await;

    let mut firsts = BTreeMap::new();
    let mut gaps = BTreeMap::new();
    for r in sink.take(4).await {
        match firsts.get(&r.path) {
            None => {
                firsts.insert(r.path.clone(), r.at);
            }
            Some(first) => {
                gaps.insert(r.path.clone(), r.at - *first);
            }
        }
    }
    assert!(
        gaps["/busy"] >= Duration::from_secs(1),
        "429 gap {:?}",
        gaps["/busy"]
    );
    assert!(
        gaps["/asleep"] >= Duration::from_millis(300),
        "503 gap {:?}",
        gaps["/asleep"]
    );
    assert!(
        gaps["/asleep"] < Duration::from_secs(60),
        "Retry-After is clamped to the cap"
    );
    app.stop().await;
}

async fn timeouts_and_connection_errors_are_retried(backend: Backend) {
    let sink = Sink::start().await;
    let mut app = spawn_app_with(backend, |c| {
        c.delivery.request_timeout = Duration::from_millis(300)
    })
    .await;
    let gate = Arc::new(Semaphore::new(0));
    sink.queue("/slow", [Reply::status(200).held_by(gate.clone())]);
    let (slow, _) = app.register(endpoint(sink.url("/slow"))).await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut refused = endpoint(format!("http://127.0.0.1:{closed_port}/nobody"));
    refused.retry_policy = Some(pb::RetryPolicy {
        max_retries: Some(1),
        ..Default::default()
    });
    let (refused, _) = app.register(refused).await;
    let mut unknown = endpoint("http://no-such-host.invalid/hook".into());
    unknown.retry_policy = Some(pb::RetryPolicy {
        max_retries: Some(1),
        ..Default::default()
    });
    let (unknown, _) = app.register(unknown).await;

    let id = app
        .publish_json("job.done", serde_json::json!({}))
        .await
        .message_id;
    app.wait_for_delivery(&id, &slow, pb::DeliveryState::Succeeded)
        .await;
    gate.add_permits(1);
    app.wait_for_delivery(&id, &refused, pb::DeliveryState::Failed)
        .await;
    app.wait_for_delivery(&id, &unknown, pb::DeliveryState::Failed)
        .await;

    let attempts = app.attempts(&id).await;
    let kinds = |endpoint: &str| -> Vec<(i32, bool)> {
        attempts
            .iter()
            .filter(|a| a.endpoint_id == endpoint)
            .map(|a| (a.error_kind, a.succeeded))
            .collect()
    };
    assert_eq!(
        kinds(&slow),
        vec![
            (pb::AttemptErrorKind::Timeout as i32, false),
            (pb::AttemptErrorKind::Unspecified as i32, true)
        ]
    );
    assert_eq!(
        kinds(&refused),
        vec![(pb::AttemptErrorKind::Connection as i32, false); 2]
    );
    assert_eq!(
        kinds(&unknown),
        vec![(pb::AttemptErrorKind::Dns as i32, false); 2]
    );
    assert!(
        attempts
            .iter()
            .filter(|a| !a.succeeded)
            .all(|a| a.status_code == 0 && !a.error.is_empty())
    );
    app.stop().await;
}

/// Rotates the endpoint's secret, the old one signing for `grace`; the new secret.
async fn rotate(
    app: &mut TestApp,
    endpoint_id: &str,
    grace: Duration,
) -> (Secret, Option<SystemTime>) {
    let rotated = app
        .client
        .rotate_endpoint_secret(pb::RotateEndpointSecretRequest {
            endpoint_id: endpoint_id.to_owned(),
            grace_period: Some(prost_types::Duration::try_from(grace).unwrap()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let expiry = rotated
        .endpoint
        .unwrap()
        .previous_secret_expire_time
        .map(|t| t.try_into().unwrap());
    (Secret::parse(&rotated.secret).unwrap(), expiry)
}

/// Both phases of a rotation, each checked every run: during the grace period (an hour,
/// which no run outlasts) the old and the new secret sign; once it is over (a rotation
/// whose grace period is zero ends it at once) only the newest does. The grace period is
/// the request's own parameter, so no test waits for the wall clock.
async fn rotation_signs_with_both_secrets_during_grace(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let (endpoint_id, first) = app.register(endpoint(sink.url("/hook"))).await;

    let hour = Duration::from_secs(3600);
    let (second, expiry) = rotate(&mut app, &endpoint_id, hour).await;
    assert_ne!(second, first);
    let expiry = expiry.expect("the end of the grace period is shown");
    let shown = expiry.duration_since(SystemTime::now()).unwrap();
    assert!(
        shown > hour - Duration::from_secs(60) && shown <= hour,
        "{shown:?}"
    );
    app.publish_json("a.b", serde_json::json!({"during": true}))
        .await;
    let during = sink.next().await;
    assert_eq!(
        during.header("webhook-signature").split(' ').count(),
        2,
        "one signature per valid secret"
    );
    assert!(during.verify(&second).is_ok() && during.verify(&first).is_ok());

    let (third, expiry) = rotate(&mut app, &endpoint_id, Duration::ZERO).await;
    assert_eq!(expiry, None, "no grace period left to show");
    app.publish_json("a.b", serde_json::json!({"after": true}))
        .await;
    let after = sink.next().await;
    assert_eq!(after.header("webhook-signature").split(' ').count(), 1);
    assert!(after.verify(&third).is_ok());
    assert!(after.verify(&second).is_err(), "the grace period is over");
    assert!(after.verify(&first).is_err());
    app.stop().await;
}

async fn slow_endpoint_does_not_stall_the_others(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app_with(backend, |c| c.delivery.max_workers = 8).await;
    let gate = Arc::new(Semaphore::new(0));
    sink.always("/slow", Reply::status(200).held_by(gate.clone()));
    let mut slow = endpoint(sink.url("/slow"));
    slow.event_types = vec!["slow.thing".into()];
    app.register(slow).await;
    let mut fast = endpoint(sink.url("/fast"));
    fast.event_types = vec!["fast.thing".into()];
    app.register(fast).await;

    for i in 0..3 {
        app.publish_json("slow.thing", serde_json::json!({"i": i}))
            .await;
    }
    let held = sink.take(3).await;
    assert!(held.iter().all(|r| r.path == "/slow"));
    let ids = app.publish_many("fast.thing", 50).await;
    assert_eq!(ids.len(), 50);
    let fast_received = sink.take(50).await;
    assert!(
        fast_received.iter().all(|r| r.path == "/fast"),
        "the slow endpoint's held requests do not delay the fast one"
    );
    gate.add_permits(3);
    app.stop().await;
}

async fn replay_and_delete(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let (a, _) = app.register(endpoint(sink.url("/a"))).await;
    let id = app
        .publish_json("thing.happened", serde_json::json!({}))
        .await
        .message_id;
    sink.next().await;
    app.wait_for_delivery(&id, &a, pb::DeliveryState::Succeeded)
        .await;

    // A message replays to every endpoint matching it now, including new ones.
    let (b, _) = app.register(endpoint(sink.url("/b"))).await;
    let replayed = app
        .client
        .replay_message(pb::ReplayMessageRequest {
            message_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.delivery_count, 2);
    let paths: BTreeSet<String> = sink.take(2).await.into_iter().map(|r| r.path).collect();
    assert_eq!(paths, BTreeSet::from(["/a".to_owned(), "/b".to_owned()]));
    app.wait_for_delivery(&id, &a, pb::DeliveryState::Succeeded)
        .await;
    app.wait_for_delivery(&id, &b, pb::DeliveryState::Succeeded)
        .await;

    // Deleting an endpoint cancels its unfinished deliveries.
    sink.always("/b", Reply::status(500));
    let mut slow_retry = pb::RetryPolicy {
        max_retries: Some(5),
        ..Default::default()
    };
    slow_retry.initial_delay = Some(prost_types::Duration {
        seconds: 0,
        nanos: 150_000_000,
    });
    let update = pb::UpdateEndpointRequest {
        tenant_id: String::new(),
        endpoint: Some(pb::Endpoint {
            id: b.clone(),
            retry_policy: Some(slow_retry),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["retry_policy".into()],
        }),
    };
    app.client.update_endpoint(update).await.unwrap();
    let id = app
        .publish_json("thing.happened", serde_json::json!({}))
        .await
        .message_id;
    sink.take(2).await;
    let deleted = app
        .client
        .delete_endpoint(pb::DeleteEndpointRequest {
            endpoint_id: b.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.cancelled_deliveries, 1);
    app.wait_for_delivery(&id, &b, pb::DeliveryState::Cancelled)
        .await;
    let err = app
        .client
        .get_endpoint(pb::GetEndpointRequest {
            endpoint_id: b,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    app.stop().await;
}
