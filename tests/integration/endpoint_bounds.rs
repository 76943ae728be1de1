//! What an endpoint may set, through the real API: custom headers within their rules,
//! their values shown only to credentials that may change the endpoint, and overrides
//! within the server's bounds (here the production defaults, not the test suite's loose
//! ones), each violation named by its field with the bound in its description.

use std::collections::HashMap;
use std::time::Duration;

use herald::config::{Config, StorageConfig};
use herald::grpc::pb;
use herald::policy::bounds::OverrideBounds;

use crate::each_backend;
use crate::support::{Backend, TestApp, client_with, spawn_app, spawn_app_with, violations};

/// The bounds a server started with every default has.
fn default_bounds() -> OverrideBounds {
    Config::with_storage(StorageConfig::Memory)
        .delivery
        .protection
        .bounds
}

fn fields(status: &tonic::Status) -> Vec<String> {
    violations(status).into_iter().map(|(f, _)| f).collect()
}

fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn duration(d: Duration) -> Option<prost_types::Duration> {
    Some(prost_types::Duration::try_from(d).unwrap())
}

each_backend!(
    header_rules_name_each_header_as_sent,
    header_values_are_shown_only_to_writers,
    overrides_past_the_bounds_are_refused_naming_the_bound,
    overrides_at_the_bounds_are_accepted,
);

async fn header_rules_name_each_header_as_sent(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let register = |headers| pb::RegisterEndpointRequest {
        url: "http://127.0.0.1:9/hook".into(),
        headers,
        ..Default::default()
    };
    let status = app
        .client
        .register_endpoint(register(headers(&[
            ("Proxy-Authorization", "Basic eA=="),
            ("X-Webhook-Foo", "1"),
            ("Content-Length", "0"),
            ("TE", "trailers"),
            ("X-A", "1"),
            ("x-a", "2"),
            ("X-Split", "a\r\nx-injected: 1"),
            ("X-Nul", "a\0b"),
            ("Bad Name", "x"),
            ("X-Fine", "ok"),
        ])))
        .await
        .unwrap_err();
    assert_eq!(
        fields(&status),
        [
            r#"headers["Bad Name"]"#,
            r#"headers["Content-Length"]"#,
            r#"headers["Proxy-Authorization"]"#,
            r#"headers["TE"]"#,
            r#"headers["X-Nul"]"#,
            r#"headers["X-Split"]"#,
            r#"headers["X-Webhook-Foo"]"#,
            r#"headers["x-a"]"#,
        ]
    );

    // 32 headers and 8 KiB in all are the most.
    let many = |n: usize, size: usize| -> HashMap<String, String> {
        (0..n)
            .map(|i| {
                let name = format!("x-h{i:02}");
                let value = "v".repeat(size - name.len());
                (name, value)
            })
            .collect()
    };
    app.register(register(many(32, 256))).await;
    let status = app
        .client
        .register_endpoint(register(many(33, 10)))
        .await
        .unwrap_err();
    let found = violations(&status);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "headers");
    assert!(found[0].1.contains("32"), "{found:?}");
    let mut too_big = many(32, 256);
    too_big.insert("x-h00".into(), "v".repeat(252));
    let status = app
        .client
        .register_endpoint(register(too_big))
        .await
        .unwrap_err();
    let found = violations(&status);
    assert_eq!(found[0].0, "headers");
    assert!(found[0].1.contains("8192"), "{found:?}");

    // An update is held to the same rules, named within the endpoint.
    let (id, _) = app.register(register(HashMap::new())).await;
    let status = app
        .client
        .update_endpoint(pb::UpdateEndpointRequest {
            endpoint: Some(pb::Endpoint {
                id,
                headers: headers(&[("Host", "internal"), ("X-Ok", "1")]),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["headers".into()],
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), [r#"endpoint.headers["Host"]"#]);
    app.stop().await;
}

async fn header_values_are_shown_only_to_writers(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let (id, _) = app
        .register(pb::RegisterEndpointRequest {
            url: "http://127.0.0.1:9/hook".into(),
            headers: headers(&[("Authorization", "Bearer s3cret"), ("X-Tenant", "acme")]),
            ..Default::default()
        })
        .await;
    let key = |scopes: Vec<pb::Scope>| {
        let mut admin = app.client.clone();
        async move {
            admin
                .create_api_key(pb::CreateApiKeyRequest {
                    name: format!("{scopes:?}"),
                    scopes: scopes.into_iter().map(|s| s as i32).collect(),
                    ..Default::default()
                })
                .await
                .expect("an admin creates keys")
                .into_inner()
                .token
        }
    };
    let reader = key(vec![pb::Scope::Read]).await;
    let writer = key(vec![pb::Scope::Read, pb::Scope::Write]).await;
    let shown = headers(&[("authorization", "Bearer s3cret"), ("x-tenant", "acme")]);
    let redacted = headers(&[("authorization", ""), ("x-tenant", "")]);
    for (token, expected) in [(&reader, &redacted), (&writer, &shown)] {
        let mut client = client_with(app.addr, Some(token)).await;
        let got = client
            .get_endpoint(pb::GetEndpointRequest {
                endpoint_id: id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .endpoint
            .unwrap();
        assert_eq!(&got.headers, expected, "GetEndpoint");
        let listed = client
            .list_endpoints(pb::ListEndpointsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .endpoints;
        assert_eq!(listed.len(), 1);
        assert_eq!(&listed[0].headers, expected, "ListEndpoints");
    }
    app.stop().await;
}

/// Whether `desc` names `bound`: the violation says how far the field may go.
fn assert_names(found: &[(String, String)], field: &str, bound: &str) {
    match found {
        [(f, desc)] => {
            assert_eq!(f, field, "{found:?}");
            assert!(desc.contains(bound), "{field}: {desc:?} names no {bound}");
        }
        _ => panic!("{field}: one violation expected, got {found:?}"),
    }
}

async fn spawn_bounded(backend: Backend) -> TestApp {
    spawn_app_with(backend, |c| c.delivery.protection.bounds = default_bounds()).await
}

async fn overrides_past_the_bounds_are_refused_naming_the_bound(backend: Backend) {
    let mut app = spawn_bounded(backend).await;
    let bounds = default_bounds();
    let max_rate = bounds.max_rate.expect("a default rate bound");
    let rate = |limit, window, burst| {
        Some(pb::RateLimit {
            limit,
            window,
            burst,
        })
    };
    let retry = |max_retries, initial_delay, max_delay| {
        Some(pb::RetryPolicy {
            max_retries,
            initial_delay,
            max_delay,
            ..Default::default()
        })
    };
    let breaker = |failure_threshold, timeout| {
        Some(pb::CircuitBreakerPolicy {
            failure_threshold,
            timeout,
        })
    };
    let ms = |n| duration(Duration::from_millis(n));
    let base = || pb::RegisterEndpointRequest {
        url: "http://127.0.0.1:9/hook".into(),
        ..Default::default()
    };
    let max_rate_text = max_rate.to_string();
    let cases: Vec<(pb::RegisterEndpointRequest, &str, &str)> = vec![
        (
            pb::RegisterEndpointRequest {
                rate_limit: rate(0, None, 0),
                ..base()
            },
            "rate_limit.limit",
            &max_rate_text,
        ),
        (
            pb::RegisterEndpointRequest {
                rate_limit: rate(max_rate + 1, None, 0),
                ..base()
            },
            "rate_limit.limit",
            &max_rate_text,
        ),
        (
            // A hundredth of the bound per millisecond is ten times the bound per second.
            pb::RegisterEndpointRequest {
                rate_limit: rate(max_rate / 100, ms(1), 1),
                ..base()
            },
            "rate_limit.limit",
            &max_rate_text,
        ),
        (
            pb::RegisterEndpointRequest {
                rate_limit: rate(1, None, max_rate + 1),
                ..base()
            },
            "rate_limit.burst",
            &max_rate_text,
        ),
        (
            pb::RegisterEndpointRequest {
                retry_policy: retry(Some(bounds.max_retries + 1), None, None),
                ..base()
            },
            "retry_policy.max_retries",
            "20",
        ),
        (
            pb::RegisterEndpointRequest {
                retry_policy: retry(None, ms(999), duration(Duration::from_secs(10))),
                ..base()
            },
            "retry_policy.initial_delay",
            "1s",
        ),
        (
            // The test server's own initial delay (20 ms) is below it: only the cap is set.
            pb::RegisterEndpointRequest {
                retry_policy: retry(None, None, ms(500)),
                ..base()
            },
            "retry_policy.max_delay",
            "1s",
        ),
        (
            pb::RegisterEndpointRequest {
                circuit_breaker: breaker(Some(bounds.max_failure_threshold + 1), None),
                ..base()
            },
            "circuit_breaker.failure_threshold",
            "100",
        ),
        (
            pb::RegisterEndpointRequest {
                circuit_breaker: breaker(None, ms(10)),
                ..base()
            },
            "circuit_breaker.timeout",
            "1s",
        ),
        (
            pb::RegisterEndpointRequest {
                max_in_flight: Some(bounds.max_in_flight + 1),
                ..base()
            },
            "max_in_flight",
            "64",
        ),
    ];
    for (req, field, bound) in cases {
        let status = app.client.register_endpoint(req).await.unwrap_err();
        assert_names(&violations(&status), field, bound);
    }

    // An update is held to the same bounds, each field named within the endpoint.
    let (id, _) = app.register(base()).await;
    let status = app
        .client
        .update_endpoint(pb::UpdateEndpointRequest {
            endpoint: Some(pb::Endpoint {
                id,
                max_in_flight: Some(bounds.max_in_flight + 1),
                rate_limit: rate(0, None, 0),
                circuit_breaker: breaker(Some(bounds.max_failure_threshold + 1), ms(10)),
                retry_policy: retry(Some(bounds.max_retries + 1), None, None),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: [
                    "max_in_flight",
                    "rate_limit",
                    "circuit_breaker",
                    "retry_policy",
                ]
                .map(String::from)
                .into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        fields(&status),
        [
            "endpoint.circuit_breaker.failure_threshold",
            "endpoint.circuit_breaker.timeout",
            "endpoint.max_in_flight",
            "endpoint.rate_limit.limit",
            "endpoint.retry_policy.max_retries",
        ]
    );
    app.stop().await;
}

async fn overrides_at_the_bounds_are_accepted(backend: Backend) {
    let mut app = spawn_bounded(backend).await;
    let bounds = default_bounds();
    let max_rate = bounds.max_rate.expect("a default rate bound");
    let resp = app
        .client
        .register_endpoint(pb::RegisterEndpointRequest {
            url: "http://127.0.0.1:9/hook".into(),
            rate_limit: Some(pb::RateLimit {
                limit: max_rate,
                window: duration(Duration::from_secs(1)),
                burst: max_rate,
            }),
            retry_policy: Some(pb::RetryPolicy {
                max_retries: Some(bounds.max_retries),
                initial_delay: duration(bounds.min_delay),
                max_delay: duration(bounds.min_delay),
                ..Default::default()
            }),
            circuit_breaker: Some(pb::CircuitBreakerPolicy {
                failure_threshold: Some(bounds.max_failure_threshold),
                timeout: duration(bounds.min_delay),
            }),
            max_in_flight: Some(bounds.max_in_flight),
            ..Default::default()
        })
        .await
        .expect("overrides at the bounds are accepted")
        .into_inner();
    let endpoint = resp.endpoint.unwrap();
    assert_eq!(endpoint.max_in_flight, Some(bounds.max_in_flight));
    let status = endpoint.status.expect("live status");
    assert_eq!(
        (status.rate_limit_max, status.in_flight),
        (max_rate, 0),
        "{status:?}"
    );
    // The same rate as a slower window with its burst: 10 s at the bound per second.
    app.register(pb::RegisterEndpointRequest {
        url: "http://127.0.0.1:9/hook".into(),
        rate_limit: Some(pb::RateLimit {
            limit: max_rate * 10,
            window: duration(Duration::from_secs(10)),
            burst: max_rate,
        }),
        ..Default::default()
    })
    .await;
    app.stop().await;
}
