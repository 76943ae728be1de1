//! Amplification: endpoints registered against one host, each with every override at the
//! server's bound (past it, registration is refused), cannot together send that host more
//! than the operator's host ceilings allow; on Redis, not even from several instances
//! together.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald::config::{Config, StorageConfig};
use herald::grpc::pb;
use herald::policy::bounds::OverrideBounds;
use herald::policy::limiter::RateLimit;
use herald::policy::protection::HostCeiling;
use tokio::sync::Semaphore;

use crate::child::{Herald, Settings};
use crate::each_backend;
use crate::redis::{RedisServer, connect};
use crate::support::{
    Backend, Reply, Sink, eventually, metric, publish_json, spawn_app_with, violations,
};

each_backend!(
    endpoints_on_one_host_share_its_ceilings,
    an_attempt_frees_the_slot_of_the_host_it_went_to,
);

/// The bounds of a server started with every default.
fn default_bounds() -> OverrideBounds {
    Config::with_storage(StorageConfig::Memory)
        .delivery
        .protection
        .bounds
}

/// An endpoint at `url` whose own limits are as loose as `bounds` let them be: the
/// highest rate, the most attempts in flight, the breaker that opens last, the shortest
/// retry delays and the most retries.
fn at_the_bounds(url: String, bounds: &OverrideBounds) -> pb::RegisterEndpointRequest {
    let rate = bounds.max_rate.expect("a rate bound");
    let second = || Some(prost_types::Duration::try_from(Duration::from_secs(1)).unwrap());
    let floor = Some(prost_types::Duration::try_from(bounds.min_delay).unwrap());
    pb::RegisterEndpointRequest {
        url,
        rate_limit: Some(pb::RateLimit {
            limit: rate,
            window: second(),
            burst: rate,
        }),
        max_in_flight: Some(bounds.max_in_flight),
        circuit_breaker: Some(pb::CircuitBreakerPolicy {
            failure_threshold: Some(bounds.max_failure_threshold),
            timeout: floor,
        }),
        retry_policy: Some(pb::RetryPolicy {
            max_retries: Some(bounds.max_retries),
            initial_delay: floor,
            max_delay: floor,
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn endpoints_on_one_host_share_its_ceilings(backend: Backend) {
    const ENDPOINTS: usize = 20;
    const MESSAGES: usize = 6;
    let (most_in_flight, rate) = (4, 50);
    let mut sink = Sink::start().await;
    let bounds = default_bounds();
    let mut app = spawn_app_with(backend, |c| {
        c.delivery.protection.bounds = bounds;
        c.delivery.protection.host = HostCeiling {
            max_in_flight: most_in_flight,
            rate_limit: Some(RateLimit::try_new(rate, Duration::from_secs(1), rate).unwrap()),
        };
    })
    .await;
    // One step past a bound is refused.
    let mut past = at_the_bounds(sink.url("/past"), &bounds);
    past.max_in_flight = Some(bounds.max_in_flight + 1);
    let refused = app.client.register_endpoint(past).await.unwrap_err();
    assert_eq!(
        violations(&refused)
            .into_iter()
            .map(|(f, _)| f)
            .collect::<Vec<_>>(),
        ["max_in_flight"]
    );
    let mut paths = Vec::new();
    for i in 0..ENDPOINTS {
        let path = format!("/e{i}");
        // The receiver takes a while to answer, so attempts overlap.
        sink.always(&path, Reply::status(200).slow(Duration::from_millis(20)));
        app.register(at_the_bounds(sink.url(&path), &bounds)).await;
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

    let waits = metric(&app.scrape().await, "webhook_host_ceiling_waits_total")
        .expect("the host ceiling metric is exported");
    assert!(waits > 0.0, "held-back endpoints are counted");
    app.stop().await;
}

/// An endpoint moved to another host while an attempt to the old one is in flight: that
/// attempt's end frees the old host's slot (a host with room for one would otherwise be
/// blocked for good), and the endpoint's next attempt goes to the new host.
async fn an_attempt_frees_the_slot_of_the_host_it_went_to(backend: Backend) {
    let mut old = Sink::start().await;
    let mut new = Sink::start().await;
    let gate = Arc::new(Semaphore::new(0));
    old.always("/moving", Reply::status(200).held_by(gate.clone()));
    let mut app = spawn_app_with(backend, |c| {
        c.delivery.protection.host = HostCeiling {
            max_in_flight: 1,
            rate_limit: None,
        };
    })
    .await;
    let (moving, _) = app
        .register(pb::RegisterEndpointRequest {
            url: old.url("/moving"),
            event_types: vec!["moving.*".into()],
            ..Default::default()
        })
        .await;
    app.register(pb::RegisterEndpointRequest {
        url: old.url("/staying"),
        event_types: vec!["staying.*".into()],
        ..Default::default()
    })
    .await;
    app.publish_json("moving.first", serde_json::json!({}))
        .await;
    assert_eq!(
        old.next().await.path,
        "/moving",
        "held: the old host is full"
    );
    app.client
        .update_endpoint(pb::UpdateEndpointRequest {
            endpoint: Some(pb::Endpoint {
                id: moving,
                url: new.url("/moving"),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["url".into()],
            }),
            tenant_id: String::new(),
        })
        .await
        .unwrap();
    app.publish_json("staying.ping", serde_json::json!({}))
        .await;
    gate.add_permits(1);
    assert_eq!(
        old.next().await.path,
        "/staying",
        "the moved endpoint's attempt gave the old host its slot back"
    );
    app.publish_json("moving.second", serde_json::json!({}))
        .await;
    assert_eq!(new.next().await.path, "/moving");
    app.stop().await;
}

/// Two instances on one Redis share each host's ceiling: together they never have more
/// attempts in flight to the host than it allows, and once idle its shared state expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_redis_share_each_hosts_ceiling() {
    const ENDPOINTS: usize = 10;
    const MESSAGES: usize = 5;
    let most_in_flight = 3;
    let redis = RedisServer::start().await;
    let prefix = format!("hosts-{}", ulid::Ulid::new()).to_lowercase();
    let mut sink = Sink::start().await;
    let mut nodes = Vec::new();
    for id in ["a", "b"] {
        let settings = Settings::redis(&redis.url(), &prefix, id)
            .set("WEBHOOK_HOST_MAX_IN_FLIGHT", &most_in_flight.to_string())
            .set("WEBHOOK_HOST_RATE_LIMIT", "0");
        nodes.push(Herald::start(&settings).await);
    }
    for i in 0..ENDPOINTS {
        let path = format!("/e{i}");
        sink.always(&path, Reply::status(200).slow(Duration::from_millis(20)));
        let client = &mut nodes[0].1;
        client
            .register_endpoint(at_the_bounds(sink.url(&path), &default_bounds()))
            .await
            .unwrap();
    }
    for n in 0..MESSAGES {
        // Both instances publish, and both deliver.
        let client = &mut nodes[n % 2].1;
        let event = publish_json("order.created", serde_json::json!({ "n": n }));
        client.publish(event).await.unwrap();
    }
    sink.take(ENDPOINTS * MESSAGES).await;
    let most = sink.most_concurrent();
    assert!(
        (2..=most_in_flight).contains(&most),
        "the host saw {most} requests at once; its ceiling is {most_in_flight}"
    );

    let conn = connect(&redis).await;
    let host = format!("{{{prefix}}}:hg:{}", sink.addr);
    eventually("the idle host's state is set to expire", || {
        let (mut conn, host) = (conn.clone(), host.clone());
        async move {
            let in_flight: Option<i64> = ::redis::cmd("HGET")
                .arg(&host)
                .arg("inf")
                .query_async(&mut conn)
                .await
                .unwrap();
            let expires_in: i64 = ::redis::cmd("PTTL")
                .arg(&host)
                .query_async(&mut conn)
                .await
                .unwrap();
            (in_flight == Some(0) && expires_in > 0).then_some(())
        }
    })
    .await;
    let mut conn = conn.clone();
    let waiting: i64 = ::redis::cmd("EXISTS")
        .arg(format!("{{{prefix}}}:hw:{}", sink.addr))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(waiting, 0, "no endpoint is left waiting for the host");
    for (mut node, _) in nodes {
        node.stop().await;
    }
}
