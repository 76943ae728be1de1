//! Tenant isolation: two tenants with endpoints on one sink. Each tenant's publishes
//! reach only its own endpoints; listing, get, attempts, the status stream and
//! analytics with one tenant's key never show anything of the other, and another
//! tenant's resource is NOT_FOUND exactly as a missing one. Admins read across tenants,
//! list tenants and delete one.

use herald::cli::Client;
use herald::grpc::pb;
use tokio_stream::StreamExt;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::each_backend;
use crate::support::{Backend, PATIENCE, Sink, TestApp, client_with, publish_json, spawn_app};

/// A client acting only in `tenant`, with every scope but admin.
pub(crate) async fn tenant_client(app: &mut TestApp, tenant: &str) -> Client {
    let token = app
        .client
        .create_api_key(pb::CreateApiKeyRequest {
            name: format!("{tenant} service"),
            scopes: [pb::Scope::Publish, pb::Scope::Read, pb::Scope::Write]
                .map(|s| s as i32)
                .to_vec(),
            tenant_id: tenant.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    client_with(app.addr, Some(&token)).await
}

async fn register(client: &mut Client, url: String) -> pb::Endpoint {
    client
        .register_endpoint(pb::RegisterEndpointRequest {
            url,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap()
}

async fn publish(client: &mut Client, key: &str) -> pb::PublishResponse {
    let mut request = publish_json("order.created", serde_json::json!({"n": 1}));
    request.idempotency_key = key.to_owned();
    client.publish(request).await.unwrap().into_inner()
}

/// NOT_FOUND with the same message and details as for a resource that does not exist,
/// once the ids are set aside.
fn assert_hidden(hidden: Status, hidden_id: &str, missing: Status, missing_id: &str) {
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    assert_eq!(
        hidden.message().replace(hidden_id, "ID"),
        missing.message().replace(missing_id, "ID")
    );
    let info = |s: &Status| {
        let info = s.get_details_resource_info().expect("ResourceInfo");
        (info.resource_type, info.description)
    };
    let (hidden_type, hidden_description) = info(&hidden);
    let (missing_type, missing_description) = info(&missing);
    assert_eq!(hidden_type, missing_type);
    assert_eq!(
        hidden_description.replace(hidden_id, "ID"),
        missing_description.replace(missing_id, "ID")
    );
}

/// The status events of a stream from the first retained one, until `last` has
/// succeeded.
async fn events_until_success(
    client: &mut Client,
    request: pb::StreamDeliveryStatusRequest,
    last: &str,
) -> Vec<pb::DeliveryStatusEvent> {
    let mut stream = client
        .stream_delivery_status(pb::StreamDeliveryStatusRequest {
            after_cursor: Some(0),
            ..request
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    // One bound for the whole wait: heartbeats alone must not keep it going.
    tokio::time::timeout(PATIENCE, async {
        loop {
            let item = stream.next().await.expect("the stream goes on").unwrap();
            if let Some(pb::stream_delivery_status_response::Item::Event(e)) = item.item {
                let done =
                    e.message_id == last && e.kind == pb::StatusEventKind::AttemptSucceeded as i32;
                events.push(e);
                if done {
                    return;
                }
            }
        }
    })
    .await
    .expect("the success arrives in time");
    events
}

each_backend!(tenants_never_see_each_other);

async fn tenants_never_see_each_other(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let mut acme = tenant_client(&mut app, "acme").await;
    let mut globex = tenant_client(&mut app, "globex").await;
    let ep_acme = register(&mut acme, sink.url("/acme")).await;
    let ep_globex = register(&mut globex, sink.url("/globex")).await;
    assert_eq!(
        (ep_acme.tenant_id.as_str(), ep_globex.tenant_id.as_str()),
        ("acme", "globex")
    );

    // Both endpoints take every event, yet each publish reaches only its own tenant.
    let globex_message = publish(&mut globex, "same-key").await;
    assert_eq!(globex_message.delivery_count, 1);
    assert_eq!(sink.next().await.path, "/globex");
    app.wait_for_delivery(
        &globex_message.message_id,
        &ep_globex.id,
        pb::DeliveryState::Succeeded,
    )
    .await;
    let acme_message = publish(&mut acme, "same-key").await;
    assert_eq!(acme_message.delivery_count, 1);
    assert!(
        !acme_message.duplicate && acme_message.message_id != globex_message.message_id,
        "idempotency keys are per tenant"
    );
    assert_eq!(sink.next().await.path, "/acme");
    app.wait_for_delivery(
        &acme_message.message_id,
        &ep_acme.id,
        pb::DeliveryState::Succeeded,
    )
    .await;
    assert!(sink.drain().is_empty(), "nothing crossed over");

    // Lists show one tenant.
    let listed = acme
        .list_endpoints(pb::ListEndpointsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = listed.endpoints.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [ep_acme.id.as_str()]);

    // Another tenant's resources are missing, whatever the call.
    let missing_endpoint = "ep_does_not_exist";
    let missing_message = "msg_does_not_exist";
    let get_endpoint = |id: &str| pb::GetEndpointRequest {
        endpoint_id: id.to_owned(),
        ..Default::default()
    };
    assert_hidden(
        acme.get_endpoint(get_endpoint(&ep_globex.id))
            .await
            .unwrap_err(),
        &ep_globex.id,
        acme.get_endpoint(get_endpoint(missing_endpoint))
            .await
            .unwrap_err(),
        missing_endpoint,
    );
    let get_message = |id: &str| pb::GetMessageRequest {
        message_id: id.to_owned(),
        ..Default::default()
    };
    assert_hidden(
        acme.get_message(get_message(&globex_message.message_id))
            .await
            .unwrap_err(),
        &globex_message.message_id,
        acme.get_message(get_message(missing_message))
            .await
            .unwrap_err(),
        missing_message,
    );
    let attempts_of = |message: &str, endpoint: &str| pb::ListAttemptsRequest {
        message_id: message.to_owned(),
        endpoint_id: endpoint.to_owned(),
        ..Default::default()
    };
    for request in [
        attempts_of(&globex_message.message_id, ""),
        attempts_of("", &ep_globex.id),
    ] {
        let status = acme.list_attempts(request).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    let own = acme
        .list_attempts(attempts_of(&acme_message.message_id, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.attempts.len(), 1);
    let writes: Vec<Result<(), Status>> = vec![
        acme.retry_delivery(pb::RetryDeliveryRequest {
            message_id: globex_message.message_id.clone(),
            endpoint_id: ep_globex.id.clone(),
            ..Default::default()
        })
        .await
        .map(drop),
        acme.replay_message(pb::ReplayMessageRequest {
            message_id: globex_message.message_id.clone(),
            ..Default::default()
        })
        .await
        .map(drop),
        acme.delete_endpoint(pb::DeleteEndpointRequest {
            endpoint_id: ep_globex.id.clone(),
            ..Default::default()
        })
        .await
        .map(drop),
        acme.rotate_endpoint_secret(pb::RotateEndpointSecretRequest {
            endpoint_id: ep_globex.id.clone(),
            ..Default::default()
        })
        .await
        .map(drop),
        acme.recover_endpoint(pb::RecoverEndpointRequest {
            endpoint_id: ep_globex.id.clone(),
            since: Some(std::time::SystemTime::UNIX_EPOCH.into()),
            ..Default::default()
        })
        .await
        .map(drop),
    ];
    for result in writes {
        assert_eq!(result.unwrap_err().code(), Code::NotFound);
    }
    assert!(sink.drain().is_empty(), "no write reached the other tenant");

    // The status stream shows one tenant's events; an admin's shows both.
    let seen = events_until_success(
        &mut acme,
        pb::StreamDeliveryStatusRequest::default(),
        &acme_message.message_id,
    )
    .await;
    assert!(
        seen.iter().all(|e| e.endpoint_id == ep_acme.id),
        "only acme's events: {seen:?}"
    );
    let all = events_until_success(
        &mut app.client,
        pb::StreamDeliveryStatusRequest {
            all_tenants: true,
            ..Default::default()
        },
        &acme_message.message_id,
    )
    .await;
    assert!(all.iter().any(|e| e.endpoint_id == ep_globex.id));
    let status = acme
        .stream_delivery_status(pb::StreamDeliveryStatusRequest {
            message_id: globex_message.message_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "watching another's message");

    // Analytics count one tenant's attempts; an admin's all of them.
    let attempts = |report: pb::GetAnalyticsResponse| report.totals.unwrap().attempts;
    let own = acme
        .get_analytics(pb::GetAnalyticsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(attempts(own), 1);
    let everyone = app
        .client
        .get_analytics(pb::GetAnalyticsRequest {
            all_tenants: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(attempts(everyone), 2);
    let status = acme
        .get_analytics(pb::GetAnalyticsRequest {
            all_tenants: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "only admins span tenants"
    );

    // Admins list across tenants, or one tenant.
    let every_endpoint = app
        .client
        .list_endpoints(pb::ListEndpointsRequest {
            all_tenants: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(every_endpoint.endpoints.len(), 2);
    let tenants = app
        .client
        .list_tenants(pb::ListTenantsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let summary: Vec<(&str, u64)> = tenants
        .tenants
        .iter()
        .map(|t| (t.tenant_id.as_str(), t.endpoint_count))
        .collect();
    assert_eq!(summary, [("acme", 1), ("globex", 1)]);

    // Deleting a tenant deletes its endpoints, and nothing of the other.
    let deleted = app
        .client
        .delete_tenant(pb::DeleteTenantRequest {
            tenant_id: "acme".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted_endpoints, 1);
    let tenants = app
        .client
        .list_tenants(pb::ListTenantsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tenants.tenants.len(), 1);
    assert_eq!(tenants.tenants[0].tenant_id, "globex");
    assert!(
        acme.list_endpoints(pb::ListEndpointsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .endpoints
            .is_empty()
    );
    let still = globex
        .get_endpoint(get_endpoint(&ep_globex.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.endpoint.unwrap().id, ep_globex.id);
    app.stop().await;
}

/// Endpoint ids are chosen per tenant: two tenants may both have `orders`, and
/// registering one says nothing about the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_ids_are_chosen_per_tenant() {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(Backend::Memory).await;
    let mut acme = tenant_client(&mut app, "acme").await;
    let mut globex = tenant_client(&mut app, "globex").await;
    let orders = |url: String| pb::RegisterEndpointRequest {
        endpoint_id: "orders".into(),
        url,
        ..Default::default()
    };
    for (client, path) in [(&mut acme, "/acme"), (&mut globex, "/globex")] {
        let endpoint = client
            .register_endpoint(orders(sink.url(path)))
            .await
            .expect("the id is free in this tenant")
            .into_inner()
            .endpoint
            .unwrap();
        assert_eq!(endpoint.id, "orders");
    }
    let again = acme
        .register_endpoint(orders(sink.url("/acme")))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    assert!(again.message().contains("endpoint orders "), "{again:?}");

    // Each tenant's `orders` is its own: its deliveries, its attempts, its changes.
    let message = publish(&mut globex, "").await;
    assert_eq!(sink.next().await.path, "/globex");
    let delivered = app
        .wait_for_delivery(&message.message_id, "orders", pb::DeliveryState::Succeeded)
        .await;
    assert_eq!(delivered.endpoint_id, "orders");
    let attempts = globex
        .list_attempts(pb::ListAttemptsRequest {
            endpoint_id: "orders".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .attempts;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].endpoint_id, "orders");
    let empty = acme
        .list_attempts(pb::ListAttemptsRequest {
            endpoint_id: "orders".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .attempts;
    assert!(empty.is_empty(), "acme's orders made no attempt");
    acme.delete_endpoint(pb::DeleteEndpointRequest {
        endpoint_id: "orders".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let still = globex
        .get_endpoint(pb::GetEndpointRequest {
            endpoint_id: "orders".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    assert_eq!(
        (still.id.as_str(), still.tenant_id.as_str()),
        ("orders", "globex")
    );
    app.stop().await;
}
