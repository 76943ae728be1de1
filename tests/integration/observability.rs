//! The admin port: metrics that equal what happened, liveness, readiness, health report.

use herald::grpc::pb;

use crate::each_backend;
use crate::support::{Backend, PATIENCE, Reply, Sink, TestApp, publish_json, spawn_app};

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let response = tokio::time::timeout(
        PATIENCE,
        reqwest::get(format!("http://{}{path}", app.admin)),
    )
    .await
    .expect("answer in time")
    .expect("admin port answers");
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The value of one series in a Prometheus text scrape (0 when absent).
fn value(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map_or(0.0, |v| v.parse().unwrap())
}

each_backend!(metrics_count_what_happened);

async fn metrics_count_what_happened(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    // Five failures in a row: keep the breaker out of it.
    let (flaky, _) = app
        .register(pb::RegisterEndpointRequest {
            url: sink.url("/flaky"),
            event_types: vec!["order.*".into()],
            circuit_breaker: Some(pb::CircuitBreakerPolicy {
                failure_threshold: Some(100),
                timeout: None,
            }),
            retry_policy: Some(pb::RetryPolicy {
                max_retries: Some(10),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    let (ok, _) = app
        .register(pb::RegisterEndpointRequest {
            url: sink.url("/ok"),
            event_types: vec!["order.*".into()],
            ..Default::default()
        })
        .await;
    // One request uses up a limit of one per minute.
    let (limited, _) = app
        .register(pb::RegisterEndpointRequest {
            url: sink.url("/limited"),
            event_types: vec!["limit.*".into()],
            rate_limit: Some(pb::RateLimit {
                limit: 1,
                window: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
                burst: 1,
            }),
            ..Default::default()
        })
        .await;
    let limited_id = app
        .publish_json("limit.test", serde_json::json!({}))
        .await
        .message_id;
    assert_eq!(sink.next().await.path, "/limited");
    app.wait_for_delivery(&limited_id, &limited, pb::DeliveryState::Succeeded)
        .await;
    sink.queue("/flaky", (0..5).map(|_| Reply::status(503)));
    let ids = app.publish_many("order.created", 5).await;
    sink.take(15).await;
    for id in &ids {
        app.wait_for_delivery(id, &flaky, pb::DeliveryState::Succeeded)
            .await;
        app.wait_for_delivery(id, &ok, pb::DeliveryState::Succeeded)
            .await;
    }
    let invalid = app
        .client
        .publish(publish_json("Not Valid", serde_json::json!({})))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
    let mut stream = app
        .client
        .clone()
        .stream_delivery_status(pb::StreamDeliveryStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let _ = &mut stream;

    // The Redis store's backlog figure is a copy that may trail the last outcome by up to
    // a second (it is refreshed with the status events it reads): wait for it.
    let scrape = crate::support::eventually("no delivery is pending", || async {
        let (status, scrape) = get(&app, "/metrics").await;
        assert_eq!(status, 200);
        (value(&scrape, r#"webhook_queue_size{state="pending"}"#) == 0.0).then_some(scrape)
    })
    .await;
    assert_eq!(
        value(
            &scrape,
            r#"webhook_deliveries_total{event_type="order.created",status="succeeded"}"#
        ),
        10.0
    );
    assert_eq!(
        value(
            &scrape,
            r#"webhook_deliveries_total{event_type="order.created",status="failed"}"#
        ),
        5.0
    );
    assert_eq!(value(&scrape, "webhook_retry_attempts_total"), 5.0);
    // 15 attempts of order.created, 1 of limit.test.
    assert_eq!(
        value(&scrape, "webhook_delivery_duration_seconds_count"),
        16.0
    );
    assert_eq!(
        value(
            &scrape,
            r#"webhook_validation_errors_total{field="event_type"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            r#"grpc_server_handled_total{grpc_code="InvalidArgument",grpc_method="/herald.v1.WebhookService/Publish"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            r#"grpc_server_handled_total{grpc_code="Ok",grpc_method="/herald.v1.WebhookService/PublishBatch"}"#
        ),
        1.0
    );
    assert_eq!(value(&scrape, "webhook_status_stream_subscribers"), 1.0);
    assert_eq!(
        value(
            &scrape,
            &format!(r#"webhook_circuit_breaker_state{{endpoint="{flaky}"}}"#)
        ),
        0.0
    );
    assert!(scrape.contains("webhook_worker_utilization"));
    assert_eq!(
        value(
            &scrape,
            &format!(r#"webhook_rate_limit_hits_total{{endpoint="{limited}"}}"#)
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            &format!(r#"webhook_rate_limit_hits_total{{endpoint="{ok}"}}"#)
        ),
        0.0
    );

    assert_eq!(get(&app, "/livez").await, (200, "ok".to_owned()));
    assert_eq!(get(&app, "/readyz").await, (200, "ready".to_owned()));
    let (status, health) = get(&app, "/healthz").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["checks"]["storage"]["ok"], true);
    drop(stream);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_turned_off() {
    let app = crate::support::spawn_app_with(Backend::Memory, |c| c.enable_metrics = false).await;
    assert_eq!(get(&app, "/metrics").await.0, 404);
    assert_eq!(get(&app, "/livez").await.0, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_report_degrades_with_an_open_circuit() {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(Backend::Memory).await;
    let healthy = app
        .client
        .get_health(pb::GetHealthRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(healthy.health, pb::ServiceHealth::Healthy as i32);
    let names: Vec<&str> = healthy.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "storage",
            "disk",
            "serving",
            "workers",
            "worker_pool",
            "http_client",
            "backlog",
            "circuits",
            "authentication"
        ]
    );
    assert!(healthy.checks.iter().all(|c| c.ok));

    sink.always("/down", Reply::status(500));
    app.register(pb::RegisterEndpointRequest {
        url: sink.url("/down"),
        circuit_breaker: Some(pb::CircuitBreakerPolicy {
            failure_threshold: Some(1),
            timeout: Some(prost_types::Duration {
                seconds: 60,
                nanos: 0,
            }),
        }),
        ..Default::default()
    })
    .await;
    app.publish_json("a.b", serde_json::json!({})).await;
    sink.next().await;
    let degraded = crate::support::eventually("the report shows the open circuit", || {
        let mut client = app.client.clone();
        async move {
            let report = client
                .get_health(pb::GetHealthRequest {})
                .await
                .ok()?
                .into_inner();
            (report.health == pb::ServiceHealth::Degraded as i32).then_some(report)
        }
    })
    .await;
    let circuits = degraded
        .checks
        .iter()
        .find(|c| c.name == "circuits")
        .unwrap();
    assert!(
        !circuits.ok && circuits.detail.starts_with('1'),
        "{circuits:?}"
    );
    let (status, body) = get(&app, "/healthz").await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["circuits"]["ok"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_report_suspects_the_http_client_when_nothing_answers() {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(Backend::Memory).await;
    // Nothing listens there: every attempt ends without an HTTP answer.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    app.register(pb::RegisterEndpointRequest {
        url: format!("http://{closed}/gone"),
        circuit_breaker: Some(pb::CircuitBreakerPolicy {
            failure_threshold: Some(10_000),
            timeout: None,
        }),
        ..Default::default()
    })
    .await;
    app.publish_many("a.b", 20).await;
    let health_client = app.client.clone();
    let report = |wanted: bool| {
        let client = health_client.clone();
        async move {
            crate::support::eventually("the http_client check changes", || {
                let mut client = client.clone();
                async move {
                    let report = client
                        .get_health(pb::GetHealthRequest {})
                        .await
                        .ok()?
                        .into_inner();
                    let check = report.checks.iter().find(|c| c.name == "http_client")?;
                    (check.ok == wanted).then_some(report)
                }
            })
            .await
        }
    };
    // 20 messages, 4 attempts each: past the 50 unanswered in a row.
    let suspect = report(false).await;
    assert_eq!(suspect.health, pb::ServiceHealth::Degraded as i32);

    // One endpoint answering clears the suspicion.
    sink.always("/up", Reply::status(200));
    app.register_url(sink.url("/up")).await;
    app.publish_json("c.d", serde_json::json!({})).await;
    sink.next().await;
    report(true).await;
    app.stop().await;
}
