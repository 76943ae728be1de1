//! The gRPC surface: validation, idempotency, endpoints, pagination, batches, errors,
//! backpressure, health and reflection.

use std::collections::BTreeSet;
use std::sync::Arc;

use herald::grpc::pb;
use tokio::sync::Semaphore;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_types::StatusExt;

use crate::each_backend;
use crate::support::{Backend, Reply, Sink, publish_json, publish_raw, spawn_app, spawn_app_with};

/// The fields named by the `BadRequest` details of an `INVALID_ARGUMENT` status.
fn violated_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status
        .get_details_bad_request()
        .expect("BadRequest details");
    details
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

each_backend!(
    idempotency_returns_the_original_and_refuses_other_content,
    every_validation_error_names_its_field,
    not_found_carries_resource_info,
    endpoints_list_update_and_paginate,
    batches_answer_each_event,
    attempts_paginate,
    backlog_limit_answers_resource_exhausted,
);

async fn idempotency_returns_the_original_and_refuses_other_content(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    app.register_url(sink.url("/hook")).await;
    let mut req = publish_json("order.created", serde_json::json!({"order": 7}));
    req.idempotency_key = "order-7".into();
    let first = app.client.publish(req.clone()).await.unwrap().into_inner();
    assert!(!first.duplicate);
    let again = app.client.publish(req.clone()).await.unwrap().into_inner();
    assert_eq!(again.message_id, first.message_id);
    assert!(again.duplicate);
    assert_eq!(again.delivery_count, first.delivery_count);
    assert_eq!(
        app.message(&first.message_id).await.deliveries.len(),
        1,
        "a duplicate creates nothing"
    );

    req.payload = Some(pb::publish_request::Payload::Json(
        herald::grpc::response::proto_value(serde_json::json!({"order": 8})),
    ));
    let status = app.client.publish(req).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let info = status
        .get_details_resource_info()
        .expect("ResourceInfo details");
    assert_eq!(info.resource_type, "idempotency_key");
    assert_eq!(info.resource_name, "order-7");

    // Delivered once: the duplicate and the conflict added nothing.
    assert_eq!(sink.next().await.header("webhook-id"), first.message_id);
    let mut other = publish_json("order.created", serde_json::json!({}));
    other.idempotency_key = "order-9".into();
    let other = app.client.publish(other).await.unwrap().into_inner();
    assert_eq!(sink.next().await.header("webhook-id"), other.message_id);
    app.stop().await;
}

async fn every_validation_error_names_its_field(backend: Backend) {
    let mut app = spawn_app_with(backend, |c| c.service.max_payload_bytes = 64).await;
    let publishes: Vec<(pb::PublishRequest, &str)> = vec![
        (
            publish_json("Bad Type", serde_json::json!({})),
            "event_type",
        ),
        (
            publish_json(&"a".repeat(129), serde_json::json!({})),
            "event_type",
        ),
        (publish_json("", serde_json::json!({})), "event_type"),
        (
            pb::PublishRequest {
                event_type: "a.b".into(),
                ..Default::default()
            },
            "payload",
        ),
        (
            publish_raw("a.b", b"x", "not a media type"),
            "raw.content_type",
        ),
        (publish_raw("a.b", &[b'x'; 65], "text/plain"), "payload"),
        (
            pb::PublishRequest {
                idempotency_key: "has space".into(),
                ..publish_json("a.b", serde_json::json!({}))
            },
            "idempotency_key",
        ),
        (
            pb::PublishRequest {
                channels: vec!["ok".into(), "".into()],
                ..publish_json("a.b", serde_json::json!({}))
            },
            "channels[1]",
        ),
        (
            pb::PublishRequest {
                payload: Some(pb::publish_request::Payload::Json(prost_types::Value {
                    kind: Some(prost_types::value::Kind::NumberValue(f64::NAN)),
                })),
                ..publish_json("a.b", serde_json::json!({}))
            },
            "json",
        ),
    ];
    for (req, field) in publishes {
        let status = app.client.publish(req).await.unwrap_err();
        assert_eq!(violated_fields(&status), vec![field], "{status:?}");
    }

    // Each case: a valid registration with one field spoiled, and the field to be named.
    let registration = |spoil: &dyn Fn(&mut pb::RegisterEndpointRequest)| {
        let mut req = pb::RegisterEndpointRequest {
            url: "http://x".into(),
            ..Default::default()
        };
        spoil(&mut req);
        req
    };
    let registrations: Vec<(pb::RegisterEndpointRequest, &str)> = vec![
        (registration(&|r| r.url = "ftp://example.com".into()), "url"),
        (registration(&|r| r.url = String::new()), "url"),
        (
            registration(&|r| r.endpoint_id = "bad id".into()),
            "endpoint_id",
        ),
        (
            registration(&|r| r.event_types = vec!["ok.*".into(), "*".into()]),
            "event_types[1]",
        ),
        (
            registration(&|r| r.headers = [("webhook-id".to_owned(), "x".to_owned())].into()),
            r#"headers["webhook-id"]"#,
        ),
        (registration(&|r| r.secret = "whsec_short".into()), "secret"),
        (
            registration(&|r| {
                r.retry_policy = Some(pb::RetryPolicy {
                    multiplier: Some(0.1),
                    ..Default::default()
                })
            }),
            "retry_policy.multiplier",
        ),
        (
            registration(&|r| {
                r.retry_policy = Some(pb::RetryPolicy {
                    max_retries: Some(1000),
                    ..Default::default()
                })
            }),
            "retry_policy.max_retries",
        ),
    ];
    for (req, field) in registrations {
        let status = app.client.register_endpoint(req).await.unwrap_err();
        assert_eq!(violated_fields(&status), vec![field], "{status:?}");
    }

    // Several violations in one request are all named.
    let status = app
        .client
        .register_endpoint(pb::RegisterEndpointRequest {
            url: "nope".into(),
            endpoint_id: "a b".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status)
            .into_iter()
            .collect::<BTreeSet<_>>(),
        BTreeSet::from(["url".to_owned(), "endpoint_id".to_owned()])
    );

    let status = app
        .client
        .get_message(pb::GetMessageRequest {
            message_id: "".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), vec!["message_id"]);
    let status = app
        .client
        .list_attempts(pb::ListAttemptsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), vec!["message_id"]);
    let status = app
        .client
        .list_attempts(pb::ListAttemptsRequest {
            message_id: "msg_x".into(),
            page_token: "junk".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), vec!["page_token"]);
    let status = app
        .client
        .list_endpoints(pb::ListEndpointsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), vec!["page_size"]);
    let status = app
        .client
        .update_endpoint(pb::UpdateEndpointRequest {
            tenant_id: String::new(),
            endpoint: Some(pb::Endpoint {
                id: "e".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["secret".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), vec!["update_mask"]);
    let status = app
        .client
        .update_endpoint(pb::UpdateEndpointRequest {
            tenant_id: String::new(),
            endpoint: Some(pb::Endpoint {
                id: "e".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), vec!["update_mask"]);
    let status = app
        .client
        .rotate_endpoint_secret(pb::RotateEndpointSecretRequest {
            endpoint_id: "e".into(),
            grace_period: Some(prost_types::Duration {
                seconds: -1,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), vec!["grace_period"]);
    app.stop().await;
}

async fn not_found_carries_resource_info(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let status = app
        .client
        .get_endpoint(pb::GetEndpointRequest {
            endpoint_id: "missing".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let info = status.get_details_resource_info().expect("ResourceInfo");
    assert_eq!(
        (info.resource_type.as_str(), info.resource_name.as_str()),
        ("endpoint", "missing")
    );
    let status = app
        .client
        .get_message(pb::GetMessageRequest {
            message_id: "msg_missing".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status
            .get_details_resource_info()
            .expect("ResourceInfo")
            .resource_type,
        "message"
    );
    let status = app
        .client
        .replay_message(pb::ReplayMessageRequest {
            message_id: "msg_missing".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = app
        .client
        .delete_endpoint(pb::DeleteEndpointRequest {
            endpoint_id: "missing".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    app.stop().await;
}

async fn endpoints_list_update_and_paginate(backend: Backend) {
    let mut app = spawn_app(backend).await;
    for i in 0..7 {
        app.register(pb::RegisterEndpointRequest {
            endpoint_id: format!("ep-{i}"),
            url: format!("http://127.0.0.1:9/{i}"),
            ..Default::default()
        })
        .await;
    }
    let status = app
        .client
        .register_endpoint(pb::RegisterEndpointRequest {
            endpoint_id: "ep-3".into(),
            url: "http://127.0.0.1:9/".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let generated = app.register_url("http://127.0.0.1:9/gen".into()).await.0;
    assert!(generated.starts_with("ep_"));

    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .client
            .list_endpoints(pb::ListEndpointsRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.endpoints.len() <= 3);
        ids.extend(page.endpoints.into_iter().map(|e| e.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut expected: Vec<String> = (0..7).map(|i| format!("ep-{i}")).collect();
    expected.push(generated);
    expected.sort();
    assert_eq!(ids, expected);

    let update = pb::UpdateEndpointRequest {
        tenant_id: String::new(),
        endpoint: Some(pb::Endpoint {
            id: "ep-1".into(),
            url: "https://example.com/new".into(),
            description: "ignored: not in the mask".into(),
            event_types: vec!["invoice.*".into()],
            enabled: false,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["url".into(), "event_types".into(), "enabled".into()],
        }),
    };
    let updated = app
        .client
        .update_endpoint(update)
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    assert_eq!(updated.url, "https://example.com/new");
    assert_eq!(updated.event_types, vec!["invoice.*"]);
    assert_eq!(updated.description, "");
    assert!(!updated.enabled);
    assert_eq!(updated.disabled_reason, pb::DisabledReason::Manual as i32);
    let fetched = app
        .client
        .get_endpoint(pb::GetEndpointRequest {
            endpoint_id: "ep-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    assert_eq!(fetched, updated);
    let time =
        |t: Option<prost_types::Timestamp>| std::time::SystemTime::try_from(t.unwrap()).unwrap();
    assert!(time(fetched.update_time) > time(fetched.create_time));
    app.stop().await;
}

async fn batches_answer_each_event(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    app.register_url(sink.url("/hook")).await;
    let mut keyed = publish_json("a.b", serde_json::json!({"k": 1}));
    keyed.idempotency_key = "k1".into();
    let mut conflicting = publish_json("a.b", serde_json::json!({"k": 2}));
    conflicting.idempotency_key = "k1".into();
    let requests = vec![
        publish_json("a.b", serde_json::json!({"i": 0})),
        publish_json("Not Valid", serde_json::json!({})),
        keyed.clone(),
        keyed,
        conflicting,
    ];
    let results = app
        .client
        .publish_batch(pb::PublishBatchRequest { requests })
        .await
        .unwrap()
        .into_inner()
        .results;
    use pb::publish_batch_result::Result as R;
    let outcome: Vec<&R> = results.iter().map(|r| r.result.as_ref().unwrap()).collect();
    let R::Published(first) = outcome[0] else {
        panic!("{:?}", outcome[0])
    };
    let R::Error(invalid) = outcome[1] else {
        panic!("{:?}", outcome[1])
    };
    assert_eq!(invalid.code, Code::InvalidArgument as i32);
    assert_eq!(invalid.field_violations[0].field, "requests[1].event_type");
    let (R::Published(keyed), R::Published(repeat)) = (outcome[2], outcome[3]) else {
        panic!("{outcome:?}")
    };
    assert_eq!(keyed.message_id, repeat.message_id);
    assert!(repeat.duplicate);
    let R::Error(conflict) = outcome[4] else {
        panic!("{:?}", outcome[4])
    };
    assert_eq!(conflict.code, Code::AlreadyExists as i32);
    let delivered: BTreeSet<String> = sink
        .take(2)
        .await
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!(
        delivered,
        BTreeSet::from([first.message_id.clone(), keyed.message_id.clone()])
    );

    let too_many = pb::PublishBatchRequest {
        requests: vec![publish_json("a.b", serde_json::json!({})); 1001],
    };
    assert_eq!(
        violated_fields(&app.client.publish_batch(too_many).await.unwrap_err()),
        vec!["requests"]
    );
    assert_eq!(
        violated_fields(
            &app.client
                .publish_batch(pb::PublishBatchRequest::default())
                .await
                .unwrap_err()
        ),
        vec!["requests"]
    );
    app.stop().await;
}

async fn attempts_paginate(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let (endpoint_id, _) = app.register_url(sink.url("/hook")).await;
    let mut published = Vec::new();
    for i in 0..5 {
        let id = app
            .publish_json("a.b", serde_json::json!({"i": i}))
            .await
            .message_id;
        sink.next().await;
        app.wait_for_delivery(&id, &endpoint_id, pb::DeliveryState::Succeeded)
            .await;
        published.push(id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let req = pb::ListAttemptsRequest {
            endpoint_id: endpoint_id.clone(),
            page_size: 2,
            page_token: token.clone(),
            ..Default::default()
        };
        let page = app.client.list_attempts(req).await.unwrap().into_inner();
        seen.extend(page.attempts.into_iter().map(|a| a.message_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, published, "oldest first, each once");
    let pending = pb::ListAttemptsRequest {
        endpoint_id,
        delivery_state: pb::DeliveryState::Pending as i32,
        ..Default::default()
    };
    assert!(
        app.client
            .list_attempts(pending)
            .await
            .unwrap()
            .into_inner()
            .attempts
            .is_empty()
    );
    app.stop().await;
}

async fn backlog_limit_answers_resource_exhausted(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app_with(backend, |c| c.service.max_queue_size = 2).await;
    let gate = Arc::new(Semaphore::new(0));
    sink.always("/hook", Reply::status(200).held_by(gate.clone()));
    let (endpoint_id, _) = app.register_url(sink.url("/hook")).await;
    let first = app
        .publish_json("a.b", serde_json::json!({}))
        .await
        .message_id;
    app.publish_json("a.b", serde_json::json!({})).await;
    let status = app
        .client
        .publish(publish_json("a.b", serde_json::json!({})))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status
            .get_details_retry_info()
            .expect("RetryInfo")
            .retry_delay
            .is_some()
    );

    // Once the backlog drains, publishing works again.
    sink.take(2).await;
    gate.add_permits(2);
    app.wait_for_delivery(&first, &endpoint_id, pb::DeliveryState::Succeeded)
        .await;
    crate::support::eventually("publishing is accepted again", || {
        let mut client = app.client.clone();
        async move {
            client
                .publish(publish_json("a.b", serde_json::json!({})))
                .await
                .ok()
        }
    })
    .await;
    gate.add_permits(1);
    app.stop().await;
}

#[tokio::test]
async fn health_and_reflection_describe_everything() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1;
    use tonic_reflection::pb::v1alpha;

    let app = spawn_app(Backend::Memory).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "herald.v1.WebhookService"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }

    // v1: list services, and resolve the symbols grpcurl needs to describe and call them.
    let mut reflection = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let ask =
        |request: v1::server_reflection_request::MessageRequest| v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        };
    let requests = vec![
        ask(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
        ask(
            v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                "herald.v1.WebhookService".into(),
            ),
        ),
        ask(
            v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                "grpc.health.v1.Health".into(),
            ),
        ),
        ask(
            v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                "google.rpc.BadRequest".into(),
            ),
        ),
        ask(
            v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                "google.protobuf.Struct".into(),
            ),
        ),
    ];
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answers.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list")
    };
    let services: BTreeSet<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        services.contains("herald.v1.WebhookService") && services.contains("grpc.health.v1.Health"),
        "{services:?}"
    );
    for _ in 0..4 {
        let answer = answers.next().await.unwrap().unwrap().message_response;
        let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
            answer
        else {
            panic!("expected descriptors, got {answer:?}")
        };
        assert!(!files.file_descriptor_proto.is_empty());
    }

    // v1alpha, for older tools.
    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "herald.v1.WebhookService.Publish".into(),
            ),
        ),
    };
    let mut answers = alpha
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.next().await.unwrap().unwrap().message_response;
    assert!(
        matches!(
            answer,
            Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
        ),
        "{answer:?}"
    );
    app.stop().await;
}
