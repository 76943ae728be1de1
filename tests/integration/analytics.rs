//! `GetAnalytics` checked against the attempts actually made and listed by `ListAttempts`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use herald::grpc::pb;

use crate::each_backend;
use crate::support::{Backend, Reply, Sink, TestApp, spawn_app};

async fn all_attempts(app: &TestApp, endpoint_id: &str) -> Vec<pb::Attempt> {
    let mut client = app.client.clone();
    let mut attempts = Vec::new();
    let mut page_token = String::new();
    loop {
        let req = pb::ListAttemptsRequest {
            endpoint_id: endpoint_id.to_owned(),
            page_size: 1000,
            page_token,
            ..Default::default()
        };
        let page = client.list_attempts(req).await.unwrap().into_inner();
        attempts.extend(page.attempts);
        if page.next_page_token.is_empty() {
            return attempts;
        }
        page_token = page.next_page_token;
    }
}

/// The `q`-quantile by nearest rank: the value at 1-based rank ⌈q·n⌉ (at least 1).
fn exact_ms(sorted_us: &[u64], q: f64) -> f64 {
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).max(1);
    sorted_us[rank - 1] as f64 / 1000.0
}

each_backend!(analytics_match_the_attempts_made);

async fn analytics_match_the_attempts_made(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let retries = |n| {
        Some(pb::RetryPolicy {
            max_retries: Some(n),
            ..Default::default()
        })
    };
    let (ok, _) = app.register_url(sink.url("/ok")).await;
    let (flaky, _) = app
        .register(pb::RegisterEndpointRequest {
            url: sink.url("/flaky"),
            retry_policy: retries(10),
            ..Default::default()
        })
        .await;
    let (broken, _) = app
        .register(pb::RegisterEndpointRequest {
            url: sink.url("/broken"),
            retry_policy: retries(1),
            ..Default::default()
        })
        .await;
    // Varied latencies on the healthy endpoint, a failure before each success on the
    // flaky one, and nothing but 404s on the broken one.
    sink.queue(
        "/ok",
        (0..40u64).map(|i| Reply::status(200).slow(Duration::from_millis(i % 8))),
    );
    sink.queue(
        "/flaky",
        (0..40).flat_map(|_| [Reply::status(503), Reply::status(200)]),
    );
    sink.always("/broken", Reply::status(404));
    let ids = app.publish_many("order.created", 40).await;
    sink.take(40 + 80 + 80).await;
    for id in &ids {
        app.wait_for_delivery(id, &ok, pb::DeliveryState::Succeeded)
            .await;
        app.wait_for_delivery(id, &flaky, pb::DeliveryState::Succeeded)
            .await;
        app.wait_for_delivery(id, &broken, pb::DeliveryState::Failed)
            .await;
    }

    let report = app
        .client
        .get_analytics(pb::GetAnalyticsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut attempts = Vec::new();
    for endpoint in [&ok, &flaky, &broken] {
        attempts.extend(all_attempts(&app, endpoint).await);
    }
    let totals = report.totals.unwrap();
    let succeeded = attempts.iter().filter(|a| a.succeeded).count() as u64;
    let deliveries: HashSet<(&str, &str)> = attempts
        .iter()
        .map(|a| (a.message_id.as_str(), a.endpoint_id.as_str()))
        .collect();
    assert_eq!(totals.attempts, attempts.len() as u64);
    assert_eq!(totals.attempts, 40 + 80 + 80);
    assert_eq!(totals.succeeded, succeeded);
    assert_eq!(totals.failed, attempts.len() as u64 - succeeded);
    assert_eq!(totals.deliveries, deliveries.len() as u64);
    assert_eq!(
        totals.exhausted, 40,
        "every delivery to the broken endpoint"
    );
    assert_eq!(totals.pending, 0);
    assert!((report.success_rate - succeeded as f64 / attempts.len() as f64).abs() < 1e-9);

    let mut by_status: BTreeMap<u32, u64> = BTreeMap::new();
    for a in &attempts {
        *by_status.entry(a.status_code).or_default() += 1;
    }
    let reported: BTreeMap<u32, u64> = report
        .status_codes
        .iter()
        .map(|s| (s.status_code, s.count))
        .collect();
    assert_eq!(reported, by_status);
    let kinds: BTreeMap<i32, u64> = report
        .failure_kinds
        .iter()
        .map(|k| (k.kind, k.count))
        .collect();
    assert_eq!(
        kinds,
        BTreeMap::from([
            (pb::FailureKind::ClientError as i32, 80),
            (pb::FailureKind::ServerError as i32, 40)
        ])
    );

    // Percentiles within 1 % of the exact ones over the same attempts.
    let mut micros: Vec<u64> = attempts
        .iter()
        .map(|a| Duration::try_from(a.latency.unwrap()).unwrap().as_micros() as u64)
        .collect();
    micros.sort();
    let latency = report.latency.unwrap();
    for (q, reported) in [
        (0.5, latency.p50_ms),
        (0.95, latency.p95_ms),
        (0.99, latency.p99_ms),
    ] {
        let exact = exact_ms(&micros, q);
        assert!(
            (reported - exact).abs() <= exact * 0.01 + 0.001,
            "p{q}: {reported} ms vs {exact} ms"
        );
    }
    assert!((latency.max_ms - *micros.last().unwrap() as f64 / 1000.0).abs() < 1e-9);
    assert!((latency.min_ms - micros[0] as f64 / 1000.0).abs() < 1e-9);
    for p in [latency.p50_ms, latency.p95_ms, latency.p99_ms] {
        assert!(
            (latency.min_ms..=latency.max_ms).contains(&p),
            "{p} ms outside {latency:?}"
        );
    }
    // Per bucket and per endpoint: ordered, and within the window's fastest and slowest.
    let within = |p50: f64, p95: f64, p99: f64| {
        latency.min_ms <= p50 && p50 <= p95 && p95 <= p99 && p99 <= latency.max_ms
    };
    let buckets: Vec<_> = report.hourly.iter().filter(|b| b.attempts > 0).collect();
    assert!(!buckets.is_empty());
    for b in buckets {
        assert!(within(b.p50_ms, b.p95_ms, b.p99_ms), "{b:?}");
    }
    for e in &report.top_endpoints_by_volume {
        assert!(within(e.p50_ms, e.p95_ms, e.p99_ms), "{e:?}");
    }

    let volume: Vec<(String, u64)> = report
        .top_endpoints_by_volume
        .iter()
        .map(|e| (e.endpoint_id.clone(), e.attempts))
        .collect();
    assert_eq!(volume[2], (ok.clone(), 40));
    assert_eq!(report.top_endpoints_by_failure_rate[0].endpoint_id, broken);
    assert_eq!(
        report.hourly.iter().map(|b| b.attempts).sum::<u64>(),
        totals.attempts
    );
    assert!(report.daily.is_empty());
    assert_eq!(report.trend.unwrap().previous_attempts, 0);
    // 40 % of attempts succeeded: a poor health score.
    assert_eq!(report.health_score, 40);
    assert_eq!(report.health_status, pb::HealthStatus::Poor as i32);

    // One endpoint, one event type.
    let one = app
        .client
        .get_analytics(pb::GetAnalyticsRequest {
            endpoint_id: flaky.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.totals.unwrap().attempts, 80);
    let other_type = app
        .client
        .get_analytics(pb::GetAnalyticsRequest {
            event_type: "user.created".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(other_type.totals.unwrap().attempts, 0);
    assert_eq!(other_type.health_score, 100);
    let backwards = pb::GetAnalyticsRequest {
        start_time: Some(std::time::SystemTime::now().into()),
        end_time: Some(std::time::SystemTime::UNIX_EPOCH.into()),
        ..Default::default()
    };
    assert_eq!(
        app.client
            .get_analytics(backwards)
            .await
            .unwrap_err()
            .code(),
        tonic::Code::InvalidArgument
    );
    app.stop().await;
}
