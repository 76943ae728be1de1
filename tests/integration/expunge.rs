//! Expunging: a message's payload and its attempts' response excerpts go at once while
//! the record of what happened stays; its unfinished deliveries are cancelled, an attempt
//! in flight that ends later changes nothing, and nothing of it is sent again (replay,
//! retry and recovery refuse or skip it). Scoped like every write; DeleteTenant expunges
//! the tenant's messages and no other's.

use std::sync::Arc;

use herald::grpc::pb;
use tokio::sync::Semaphore;
use tonic::Code;

use crate::auth::create_key;
use crate::each_backend;
use crate::support::{Backend, Reply, Sink, TestApp, client_with, metric, publish_json, spawn_app};
use crate::tenants::tenant_client;

fn expunge(message_id: &str) -> pb::ExpungeMessageRequest {
    pb::ExpungeMessageRequest {
        message_id: message_id.to_owned(),
        ..Default::default()
    }
}

/// The state of the message's delivery to `endpoint`.
fn state_of(message: &pb::GetMessageResponse, endpoint: &str) -> i32 {
    message
        .deliveries
        .iter()
        .find(|d| d.endpoint_id == endpoint)
        .expect("a delivery to the endpoint")
        .state
}

/// An attempt without its response excerpt, to compare what expunging keeps.
fn record(attempt: &pb::Attempt) -> pb::Attempt {
    pb::Attempt {
        response_excerpt: String::new(),
        ..attempt.clone()
    }
}

each_backend!(expunge_keeps_the_record_and_stops_every_delivery);

async fn expunge_keeps_the_record_and_stops_every_delivery(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let gate = Arc::new(Semaphore::new(0));
    sink.queue("/held", [Reply::status(200).held_by(gate.clone())]);
    sink.always("/failing", Reply::status(500));
    let (ok, _) = app.register_url(sink.url("/ok")).await;
    let (held, _) = app.register_url(sink.url("/held")).await;
    let (failing, _) = app
        .register(pb::RegisterEndpointRequest {
            url: sink.url("/failing"),
            retry_policy: Some(pb::RetryPolicy {
                max_retries: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    let id = app
        .publish_json("card.charged", serde_json::json!({"card": "4111 1111"}))
        .await
        .message_id;
    sink.take(3).await;
    app.wait_for_delivery(&id, &ok, pb::DeliveryState::Succeeded)
        .await;
    app.wait_for_delivery(&id, &failing, pb::DeliveryState::Failed)
        .await;
    app.wait_for_delivery(&id, &held, pb::DeliveryState::InFlight)
        .await;
    let before = app.message(&id).await.message.unwrap();
    assert!(before.payload_json.is_some() && before.expunge_time.is_none());
    let attempts = app.attempts_when(&id, |a| a.len() == 2).await;
    assert!(attempts.iter().all(|a| !a.response_excerpt.is_empty()));

    // The attempt to /held is in flight: it is cancelled with the message.
    let expunged = app
        .client
        .expunge_message(expunge(&id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(expunged.cancelled_deliveries, 1);
    let at = expunged.expunge_time.expect("an expunge time");
    let after = app.message(&id).await;
    let message = after.message.clone().unwrap();
    assert!(message.payload.is_empty() && message.payload_json.is_none());
    assert_eq!(message.expunge_time, Some(at));
    assert_eq!(
        pb::Message {
            payload: before.payload.clone(),
            payload_json: before.payload_json.clone(),
            expunge_time: None,
            ..message
        },
        before,
        "everything but the payload is kept"
    );
    assert_eq!(state_of(&after, &ok), pb::DeliveryState::Succeeded as i32);
    assert_eq!(state_of(&after, &failing), pb::DeliveryState::Failed as i32);
    assert_eq!(state_of(&after, &held), pb::DeliveryState::Cancelled as i32);
    let kept = app.attempts(&id).await;
    assert!(kept.iter().all(|a| a.response_excerpt.is_empty()));
    assert_eq!(
        kept.iter().map(record).collect::<Vec<_>>(),
        attempts.iter().map(record).collect::<Vec<_>>(),
        "attempts keep their outcome, status and latency"
    );

    // The attempt in flight ends: it is recorded without excerpt, and the delivery stays
    // cancelled although the endpoint answered 200.
    gate.add_permits(1);
    let attempts = app.attempts_when(&id, |a| a.len() == 3).await;
    let late = attempts.iter().find(|a| a.endpoint_id == held).unwrap();
    assert_eq!(late.status_code, 200);
    assert!(attempts.iter().all(|a| a.response_excerpt.is_empty()));
    assert_eq!(
        state_of(&app.message(&id).await, &held),
        pb::DeliveryState::Cancelled as i32
    );

    // Expunging again changes nothing and answers the first time.
    let again = app
        .client
        .expunge_message(expunge(&id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.expunge_time, Some(at));
    assert_eq!(again.cancelled_deliveries, 0);

    // Nothing of it is sent again.
    let replay = app
        .client
        .replay_message(pb::ReplayMessageRequest {
            message_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(replay.code(), Code::FailedPrecondition, "{replay:?}");
    assert!(replay.message().contains("expunged"), "{replay:?}");
    let retry = app
        .client
        .retry_delivery(pb::RetryDeliveryRequest {
            message_id: id.clone(),
            endpoint_id: failing.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(retry.code(), Code::FailedPrecondition, "{retry:?}");
    assert!(retry.message().contains("expunged"), "{retry:?}");
    let recovered = app
        .client
        .recover_endpoint(pb::RecoverEndpointRequest {
            endpoint_id: failing.clone(),
            since: Some(std::time::UNIX_EPOCH.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        recovered.requeued, 0,
        "a failed delivery of it stays failed"
    );
    assert_eq!(
        state_of(&app.message(&id).await, &failing),
        pb::DeliveryState::Failed as i32
    );
    assert_eq!(
        metric(&app.scrape().await, "webhook_messages_expunged_total"),
        Some(1.0)
    );
    assert!(
        sink.drain().is_empty(),
        "nothing was sent after the expunge"
    );
    app.stop().await;
}

each_backend!(a_pending_delivery_of_an_expunged_message_is_never_sent);

/// The delivery waits behind another attempt (the endpoint takes one at a time); once
/// the endpoint has room, a later message goes and the expunged one never does.
async fn a_pending_delivery_of_an_expunged_message_is_never_sent(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let gate = Arc::new(Semaphore::new(0));
    sink.queue("/one", [Reply::status(200).held_by(gate.clone())]);
    let (one, _) = app
        .register(pb::RegisterEndpointRequest {
            url: sink.url("/one"),
            max_in_flight: Some(1),
            ..Default::default()
        })
        .await;
    let first = app
        .publish_json("order.created", serde_json::json!({"n": 1}))
        .await
        .message_id;
    assert_eq!(sink.next().await.header("webhook-id"), first);
    let waiting = app
        .publish_json("order.created", serde_json::json!({"n": 2}))
        .await
        .message_id;
    app.wait_for_delivery(&waiting, &one, pb::DeliveryState::Pending)
        .await;
    let expunged = app
        .client
        .expunge_message(expunge(&waiting))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(expunged.cancelled_deliveries, 1);
    app.wait_for_delivery(&waiting, &one, pb::DeliveryState::Cancelled)
        .await;

    gate.add_permits(1);
    app.wait_for_delivery(&first, &one, pb::DeliveryState::Succeeded)
        .await;
    let last = app
        .publish_json("order.created", serde_json::json!({"n": 3}))
        .await
        .message_id;
    // Due after the expunged one, so it would have gone first.
    assert_eq!(sink.next().await.header("webhook-id"), last);
    app.wait_for_delivery(&last, &one, pb::DeliveryState::Succeeded)
        .await;
    assert!(sink.drain().is_empty());
    assert_eq!(
        state_of(&app.message(&waiting).await, &one),
        pb::DeliveryState::Cancelled as i32
    );
    app.stop().await;
}

each_backend!(expunging_is_a_write_in_the_callers_tenant);

async fn expunging_is_a_write_in_the_callers_tenant(backend: Backend) {
    let sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let mut acme = tenant_client(&mut app, "acme").await;
    let mut globex = tenant_client(&mut app, "globex").await;
    acme.register_endpoint(pb::RegisterEndpointRequest {
        url: sink.url("/acme"),
        ..Default::default()
    })
    .await
    .unwrap();
    let id = acme
        .publish(publish_json("order.created", serde_json::json!({"n": 1})))
        .await
        .unwrap()
        .into_inner()
        .message_id;
    let (token, _) = create_key(&mut app.client, &[pb::Scope::Read], "acme", None).await;
    let mut reader = client_with(app.addr, Some(&token)).await;

    let denied = reader.expunge_message(expunge(&id)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("write"), "{denied:?}");
    let hidden = globex.expunge_message(expunge(&id)).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
    let missing = acme
        .expunge_message(expunge("msg_missing"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let message = acme
        .get_message(pb::GetMessageRequest {
            message_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert!(message.expunge_time.is_none() && !message.payload.is_empty());

    let expunged = acme
        .expunge_message(expunge(&id))
        .await
        .unwrap()
        .into_inner();
    assert!(expunged.expunge_time.is_some());
    app.stop().await;
}

each_backend!(deleting_a_tenant_expunges_its_messages_only);

async fn deleting_a_tenant_expunges_its_messages_only(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(backend).await;
    let mut published = Vec::new();
    for tenant in ["acme", "globex"] {
        let mut client = tenant_client(&mut app, tenant).await;
        let endpoint = client
            .register_endpoint(pb::RegisterEndpointRequest {
                url: sink.url(&format!("/{tenant}")),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .endpoint
            .unwrap()
            .id;
        for n in 0..3 {
            let id = client
                .publish(publish_json("order.created", serde_json::json!({ "n": n })))
                .await
                .unwrap()
                .into_inner()
                .message_id;
            app.wait_for_delivery(&id, &endpoint, pb::DeliveryState::Succeeded)
                .await;
            published.push((tenant, id));
        }
    }
    sink.take(published.len()).await;

    let deleted = app
        .client
        .delete_tenant(pb::DeleteTenantRequest {
            tenant_id: "acme".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted_endpoints, 1);
    assert_eq!(deleted.expunged_messages, 3);
    for (tenant, id) in &published {
        let (message, attempts) = admin_view(&mut app, id).await;
        if *tenant == "acme" {
            assert!(message.payload.is_empty() && message.expunge_time.is_some());
            assert!(attempts[0].response_excerpt.is_empty());
        } else {
            assert!(!message.payload.is_empty() && message.expunge_time.is_none());
            assert!(!attempts[0].response_excerpt.is_empty());
        }
        assert_eq!(attempts.len(), 1, "the record of every attempt stays");
    }
    let again = app
        .client
        .delete_tenant(pb::DeleteTenantRequest {
            tenant_id: "acme".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.expunged_messages, 0,
        "expunged before: not counted again"
    );
    assert_eq!(
        metric(&app.scrape().await, "webhook_messages_expunged_total"),
        Some(3.0)
    );
    app.stop().await;
}

/// The message and its attempts, whatever its tenant, as an admin reads them.
async fn admin_view(app: &mut TestApp, id: &str) -> (pb::Message, Vec<pb::Attempt>) {
    let message = app
        .client
        .get_message(pb::GetMessageRequest {
            message_id: id.to_owned(),
            all_tenants: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    let attempts = app
        .client
        .list_attempts(pb::ListAttemptsRequest {
            message_id: id.to_owned(),
            all_tenants: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .attempts;
    (message, attempts)
}
