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

/// The series of a scrape that the PromQL selector `name{label="value",...}` picks (only
/// equality matchers), as their labels and values.
fn select(
    scrape: &str,
    name: &str,
    matchers: &[(&str, &str)],
) -> Vec<(Vec<(String, String)>, f64)> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, labels_of(rest.strip_suffix('}')?)),
                None => (series, Vec::new()),
            };
            (series_name == name
                && matchers
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v)))
            .then(|| (labels, value.parse().unwrap()))
        })
        .collect()
}

/// `a="x",b="y"` as pairs; values as Prometheus escapes them (`\"`, `\\`, `\n`).
fn labels_of(text: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.push((key.trim_start_matches(',').to_owned(), value));
        rest = &after[end..];
    }
    labels
}

/// PromQL's `histogram_quantile(q, name_bucket)` over every series of the histogram
/// summed by `le`: linear within the bucket the rank falls in.
fn histogram_quantile(scrape: &str, q: f64, bucket: &str) -> f64 {
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for (labels, count) in select(scrape, bucket, &[]) {
        let le = labels
            .iter()
            .find(|(k, _)| k == "le")
            .expect("every bucket has le");
        let bound = if le.1 == "+Inf" {
            f64::INFINITY
        } else {
            le.1.parse().unwrap()
        };
        match buckets.iter_mut().find(|(b, _)| *b == bound) {
            Some((_, c)) => *c += count,
            None => buckets.push((bound, count)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().expect("a +Inf bucket").1;
    let rank = q * total;
    let mut below = (0.0, 0.0);
    for &(bound, count) in &buckets {
        if count >= rank {
            if bound.is_infinite() {
                return below.0;
            }
            return below.0 + (bound - below.0) * (rank - below.1) / (count - below.1);
        }
        below = (bound, count);
    }
    unreachable!("the +Inf bucket holds every observation")
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
            r#"webhook_deliveries_total{event_type="order.created",status="success"}"#
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
    // The replaced service's documented queries work as written: the success rate
    // `rate(webhook_deliveries_total{status="success"}[5m]) / rate(webhook_deliveries_total[5m])`
    // (11 of the 16 attempts delivered: 10 of order.created, 1 of limit.test) and the
    // latency `histogram_quantile(0.95, webhook_delivery_duration_seconds_bucket)`.
    let total = |matchers: &[(&str, &str)]| -> f64 {
        select(&scrape, "webhook_deliveries_total", matchers)
            .iter()
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(total(&[("status", "success")]) / total(&[]), 11.0 / 16.0);
    let p95 = histogram_quantile(&scrape, 0.95, "webhook_delivery_duration_seconds_bucket");
    assert!(p95 > 0.0 && p95 < 10.0, "p95 of the attempts: {p95} s");
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
