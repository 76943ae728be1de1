//! Amplification: endpoints registered against one host, each with generous overrides of
//! its own, cannot together send that host more than the operator's host ceilings allow.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use herald::grpc::pb;
use herald::policy::limiter::RateLimit;
use herald::policy::protection::HostCeiling;

use crate::each_backend;
use crate::support::{Backend, Reply, Sink, spawn_app_with};

each_backend!(endpoints_on_one_host_share_its_ceilings);

async fn endpoints_on_one_host_share_its_ceilings(backend: Backend) {
    const ENDPOINTS: usize = 20;
    const MESSAGES: usize = 6;
    let (most_in_flight, rate) = (4, 50);
    let mut sink = Sink::start().await;
    let mut app = spawn_app_with(backend, |c| {
        c.delivery.protection.host = HostCeiling {
            max_in_flight: most_in_flight,
            rate_limit: Some(RateLimit::try_new(rate, Duration::from_secs(1), rate).unwrap()),
        };
    })
    .await;
    let mut paths = Vec::new();
    for i in 0..ENDPOINTS {
        let path = format!("/e{i}");
        // The receiver takes a while to answer, so attempts overlap.
        sink.always(&path, Reply::status(200).slow(Duration::from_millis(20)));
        app.register(pb::RegisterEndpointRequest {
            url: sink.url(&path),
            rate_limit: Some(pb::RateLimit {
                limit: 1000,
                window: Some(prost_types::Duration::try_from(Duration::from_secs(1)).unwrap()),
                burst: 1000,
            }),
            max_in_flight: Some(64),
            circuit_breaker: Some(pb::CircuitBreakerPolicy {
                failure_threshold: Some(100),
                timeout: None,
            }),
            ..Default::default()
        })
        .await;
        paths.push(path);
    }

    // Every request is admitted after this instant, when the host's bucket is full.
    let start = Instant::now();
    let messages = app.publish_many("order.created", MESSAGES).await;
    let total = ENDPOINTS * MESSAGES;
    let received = sink.take(total).await;

    let most = sink.most_concurrent();
    assert!(
        (2..=most_in_flight as usize).contains(&most),
        "the host saw {most} requests at once; its ceiling is {most_in_flight}"
    );
    let mut arrivals: Vec<Instant> = received.iter().map(|r| r.at).collect();
    arrivals.sort();
    for (i, at) in arrivals.iter().enumerate() {
        let allowed = f64::from(rate) + f64::from(rate) * at.duration_since(start).as_secs_f64();
        assert!(
            (i + 1) as f64 <= allowed,
            "{} requests within {:?}: more than a burst of {rate} and {rate} a second",
            i + 1,
            at.duration_since(start)
        );
    }
    let delivered: HashSet<(String, String)> = received
        .iter()
        .map(|r| (r.path.clone(), r.header("webhook-id").to_owned()))
        .collect();
    let expected: HashSet<(String, String)> = paths
        .iter()
        .flat_map(|p| messages.iter().map(move |m| (p.clone(), m.clone())))
        .collect();
    assert_eq!(delivered, expected, "every delivery arrived, once");

    let scrape = reqwest::get(format!("http://{}/metrics", app.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let waits: u64 = scrape
        .lines()
        .find_map(|l| l.strip_prefix("webhook_host_ceiling_waits_total "))
        .expect("the host ceiling metric is exported")
        .parse()
        .unwrap();
    assert!(waits > 0, "held-back endpoints are counted");
    app.stop().await;
}
