//! Endpoint protection against real sinks: circuit breakers, rate limits, in-flight caps,
//! auto-disable, recovery and deletion. (Healthy endpoints beside bad ones: `starvation`.)

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use herald::grpc::pb;
use tokio::sync::Semaphore;
use tokio_stream::StreamExt;

use crate::each_backend;
use crate::support::{Backend, Reply, Sink, TestApp, eventually, spawn_app, spawn_app_with};

fn millis(ms: u64) -> prost_types::Duration {
    prost_types::Duration::try_from(Duration::from_millis(ms)).unwrap()
}

/// Retries that never run out within a test, 20 ms apart.
fn endless_retries() -> pb::RetryPolicy {
    pb::RetryPolicy {
        max_retries: Some(100),
        initial_delay: Some(millis(20)),
        max_delay: Some(millis(20)),
        ..Default::default()
    }
}

async fn status(app: &TestApp, endpoint_id: &str) -> pb::Endpoint {
    let mut client = app.client.clone();
    client
        .get_endpoint(pb::GetEndpointRequest {
            endpoint_id: endpoint_id.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap()
}

async fn wait_for_circuit(
    app: &TestApp,
    endpoint_id: &str,
    state: pb::CircuitState,
) -> pb::Endpoint {
    eventually(
        &format!("circuit of {endpoint_id} is {state:?}"),
        || async {
            let endpoint = status(app, endpoint_id).await;
            (endpoint.status.as_ref().unwrap().circuit_state == state as i32).then_some(endpoint)
        },
    )
    .await
}

each_backend!(
    circuit_opens_probes_once_per_timeout_and_closes,
    rate_limit_caps_what_the_receiver_sees,
    in_flight_cap_bounds_concurrent_requests,
    failing_endpoint_is_disabled_and_resumes_when_enabled,
    recover_endpoint_requeues_failures_since,
    deleting_an_endpoint_in_flight_stops_its_work,
);

async fn circuit_opens_probes_once_per_timeout_and_closes(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let open_for = Duration::from_millis(400);
    let (endpoint_id, _) = app
        .register(pb::RegisterEndpointRequest {
            url: sink.url("/flaky"),
            retry_policy: Some(endless_retries()),
            circuit_breaker: Some(pb::CircuitBreakerPolicy {
                failure_threshold: Some(3),
                timeout: Some(millis(400)),
            }),
            ..Default::default()
        })
        .await;
    let circuit_events = pb::StreamDeliveryStatusRequest {
        after_cursor: Some(0),
        kinds: vec![
            pb::StatusEventKind::CircuitOpened as i32,
            pb::StatusEventKind::CircuitClosed as i32,
        ],
        ..Default::default()
    };
    let mut circuit_events = app
        .client
        .clone()
        .stream_delivery_status(circuit_events)
        .await
        .unwrap()
        .into_inner();
    // Three failures open the breaker; the first probe fails too; the second succeeds.
    sink.queue("/flaky", (0..4).map(|_| Reply::status(503)));
    let first = app
        .publish_json("order.created", serde_json::json!({"n": 0}))
        .await
        .message_id;
    let opening = sink.take(3).await;
    let open = wait_for_circuit(&app, &endpoint_id, pb::CircuitState::Open).await;
    let live = open.status.unwrap();
    assert_eq!(live.consecutive_failures, 3);
    assert!(live.circuit_retry_time.is_some());

    // Work published while the circuit is open waits, and spends no attempt.
    let mut later = Vec::new();
    for n in 1..=4 {
        later.push(
            app.publish_json("order.created", serde_json::json!({"n": n}))
                .await
                .message_id,
        );
    }
    let failed_probe = sink.next().await;
    assert!(
        failed_probe.at - opening[2].at >= open_for,
        "the probe waited for the timeout: {:?}",
        failed_probe.at - opening[2].at
    );
    let probe = sink.next().await;
    assert!(
        probe.at - failed_probe.at >= open_for,
        "one probe per timeout: {:?}",
        probe.at - failed_probe.at
    );

    // The successful probe closes the circuit and the waiting work flows: five
    // deliveries, four failed attempts, no attempt spent while the circuit was open
    // (retries 20 ms apart would otherwise have made dozens).
    let rest = sink.take(4).await;
    assert!(rest.iter().all(|r| r.at >= probe.at));
    wait_for_circuit(&app, &endpoint_id, pb::CircuitState::Closed).await;
    // The stream saw the circuit open, open again after the failed probe, and close.
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let item = tokio::time::timeout(crate::support::PATIENCE, circuit_events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(pb::stream_delivery_status_response::Item::Event(e)) = item.item {
            assert_eq!(e.endpoint_id, endpoint_id);
            kinds.push(e.kind);
        }
    }
    use pb::StatusEventKind::{CircuitClosed, CircuitOpened};
    assert_eq!(
        kinds,
        vec![
            CircuitOpened as i32,
            CircuitOpened as i32,
            CircuitClosed as i32
        ]
    );
    let mut attempts = 0;
    for id in std::iter::once(&first).chain(&later) {
        attempts += app
            .wait_for_delivery(id, &endpoint_id, pb::DeliveryState::Succeeded)
            .await
            .attempt_count;
    }
    assert_eq!(attempts, 9);
    assert!(sink.drain().is_empty());
    app.stop().await;
}

async fn rate_limit_caps_what_the_receiver_sees(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let (limit, burst, window) = (40u32, 5u32, Duration::from_millis(500));
    let (endpoint_id, _) = app
        .register(pb::RegisterEndpointRequest {
            url: sink.url("/limited"),
            rate_limit: Some(pb::RateLimit {
                limit,
                window: Some(millis(500)),
                burst,
            }),
            ..Default::default()
        })
        .await;
    let total = 120;
    let ids = app.publish_many("tick", total).await;
    let first = sink.next().await;
    let live = status(&app, &endpoint_id).await.status.unwrap();
    assert_eq!(live.rate_limit_max, limit);
    assert_eq!(live.rate_limit_window, Some(millis(500)));
    assert!(
        live.rate_limit_used >= 1 && live.rate_limit_used <= limit + burst,
        "{live:?}"
    );
    let mut times = vec![first.at];
    times.extend(sink.take(total - 1).await.into_iter().map(|r| r.at));

    // No window sees more than limit + burst (a hair shorter, for loopback jitter).
    let span = window - Duration::from_millis(5);
    for (i, start) in times.iter().enumerate() {
        let seen = times[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < span)
            .count();
        assert!(
            seen <= (limit + burst) as usize,
            "{seen} requests within one window"
        );
    }
    let elapsed = times.last().unwrap().duration_since(times[0]);
    let floor = window.mul_f64(f64::from(total as u32 - burst) / f64::from(limit)) - window;
    assert!(
        elapsed >= floor,
        "{total} requests took {elapsed:?}, at least {floor:?} at this rate"
    );
    for id in ids.iter().step_by(10) {
        let delivery = app
            .wait_for_delivery(id, &endpoint_id, pb::DeliveryState::Succeeded)
            .await;
        assert_eq!(
            delivery.attempt_count, 1,
            "waiting for a token spends no attempt"
        );
    }
    app.stop().await;
}

async fn in_flight_cap_bounds_concurrent_requests(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let gate = Arc::new(Semaphore::new(0));
    sink.always("/capped", Reply::status(200).held_by(gate.clone()));
    let (endpoint_id, _) = app
        .register(pb::RegisterEndpointRequest {
            url: sink.url("/capped"),
            max_in_flight: Some(2),
            ..Default::default()
        })
        .await;
    for i in 0..6 {
        app.publish_json("job.queued", serde_json::json!({"i": i}))
            .await;
    }
    let mut received = sink.take(2).await;
    let live = eventually("two attempts in flight", || async {
        let live = status(&app, &endpoint_id).await.status.unwrap();
        (live.in_flight == 2).then_some(live)
    })
    .await;
    assert_eq!(live.in_flight, 2);
    // Each further request may only start once an earlier one has been answered.
    let mut released = Vec::new();
    for _ in 2..6 {
        released.push(Instant::now());
        gate.add_permits(1);
        let next = sink.next().await;
        let allowed_after = released[released.len() - 1];
        assert!(
            next.at >= allowed_after,
            "a third request arrived while two were held"
        );
        received.push(next);
    }
    gate.add_permits(2);
    assert_eq!(received.len(), 6);
    app.stop().await;
}

async fn failing_endpoint_is_disabled_and_resumes_when_enabled(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app_with(backend, |c| {
        c.delivery.protection.auto_disable_after = Duration::from_millis(300)
    })
    .await;
    let (endpoint_id, _) = app
        .register(pb::RegisterEndpointRequest {
            url: sink.url("/down"),
            retry_policy: Some(endless_retries()),
            circuit_breaker: Some(pb::CircuitBreakerPolicy {
                failure_threshold: Some(10_000),
                timeout: None,
            }),
            ..Default::default()
        })
        .await;
    // A success resets the failing clock.
    sink.queue("/down", [Reply::status(500)]);
    let id = app
        .publish_json("a.b", serde_json::json!({}))
        .await
        .message_id;
    sink.take(2).await;
    app.wait_for_delivery(&id, &endpoint_id, pb::DeliveryState::Succeeded)
        .await;
    assert_eq!(status(&app, &endpoint_id).await.failing_since, None);

    // Failing without a break for the period disables it, with the reason; work is kept.
    sink.always("/down", Reply::status(500));
    let started = Instant::now();
    let id = app
        .publish_json("a.b", serde_json::json!({"kept": true}))
        .await
        .message_id;
    let disabled = eventually("the endpoint is disabled", || async {
        let endpoint = status(&app, &endpoint_id).await;
        (!endpoint.enabled).then_some(endpoint)
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(disabled.disabled_reason, pb::DisabledReason::Failing as i32);
    assert!(disabled.failing_since.is_some());
    let message = app.message(&id).await;
    assert_eq!(
        message.deliveries[0].state,
        pb::DeliveryState::Pending as i32,
        "pending work is kept"
    );
    assert_eq!(
        app.publish_json("a.b", serde_json::json!({}))
            .await
            .delivery_count,
        0
    );

    // Enabled again, its kept deliveries resume.
    sink.always("/down", Reply::status(200));
    sink.drain();
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
    app.client.update_endpoint(update).await.unwrap();
    assert_eq!(sink.next().await.header("webhook-id"), id);
    app.wait_for_delivery(&id, &endpoint_id, pb::DeliveryState::Succeeded)
        .await;
    app.stop().await;
}

async fn recover_endpoint_requeues_failures_since(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let (endpoint_id, _) = app
        .register(pb::RegisterEndpointRequest {
            url: sink.url("/outage"),
            retry_policy: Some(pb::RetryPolicy {
                max_retries: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    sink.always("/outage", Reply::status(502));
    let before = SystemTime::now();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            app.publish_json("a.b", serde_json::json!({"i": i}))
                .await
                .message_id,
        );
    }
    sink.take(3).await;
    for id in &ids {
        app.wait_for_delivery(id, &endpoint_id, pb::DeliveryState::Failed)
            .await;
    }
    let recover = |since: SystemTime| pb::RecoverEndpointRequest {
        endpoint_id: endpoint_id.clone(),
        since: Some(since.into()),
        ..Default::default()
    };
    let none = app
        .client
        .recover_endpoint(recover(SystemTime::now() + Duration::from_secs(60)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.requeued, 0, "nothing failed after that time");

    sink.always("/outage", Reply::status(200));
    let recovered = app
        .client
        .recover_endpoint(recover(before))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recovered.requeued, 3);
    let mut redelivered: Vec<String> = sink
        .take(3)
        .await
        .into_iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    redelivered.sort();
    ids.sort();
    assert_eq!(redelivered, ids);
    for id in &ids {
        let delivery = app
            .wait_for_delivery(id, &endpoint_id, pb::DeliveryState::Succeeded)
            .await;
        assert_eq!(delivery.attempt_count, 2);
    }
    let status = app
        .client
        .recover_endpoint(pb::RecoverEndpointRequest {
            endpoint_id: endpoint_id.clone(),
            since: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    app.stop().await;
}

async fn deleting_an_endpoint_in_flight_stops_its_work(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let gate = Arc::new(Semaphore::new(0));
    sink.queue("/doomed", [Reply::status(500).held_by(gate.clone())]);
    let (endpoint_id, _) = app
        .register(pb::RegisterEndpointRequest {
            url: sink.url("/doomed"),
            retry_policy: Some(endless_retries()),
            ..Default::default()
        })
        .await;
    let in_flight = app
        .publish_json("a.b", serde_json::json!({}))
        .await
        .message_id;
    sink.next().await;
    let deleted = app
        .client
        .delete_endpoint(pb::DeleteEndpointRequest {
            endpoint_id: endpoint_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.cancelled_deliveries, 1);
    gate.add_permits(1);
    // The attempt that was under way is recorded; nothing retries it.
    app.attempts_when(&in_flight, |attempts| attempts.len() == 1)
        .await;
    let delivery = app.message(&in_flight).await.deliveries.pop().unwrap();
    assert_eq!(delivery.state, pb::DeliveryState::Cancelled as i32);
    assert_eq!(delivery.next_attempt_time, None);
    app.stop().await;
}
