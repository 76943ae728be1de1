//! Authentication and authorisation over every RPC: without a valid credential every
//! call is UNAUTHENTICATED with one and the same message (missing, malformed, unknown,
//! wrong secret, expired, revoked); a credential without the scope an RPC needs is
//! PERMISSION_DENIED naming the scope; a key bound to a tenant cannot name another. Keys
//! are created, listed (never with their secret) and revoked through the API; a key's
//! publish limit answers RESOURCE_EXHAUSTED with RetryInfo. On Redis a revocation made
//! on one instance is refused by another within a second. Health and reflection need no
//! credential (`api::health_and_reflection_describe_everything` calls them without one).

use std::time::{Duration, Instant, SystemTime};

use herald::cli::Client;
use herald::grpc::pb;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::child::{Herald, Settings};
use crate::each_backend;
use crate::redis::RedisServer;
use crate::support::{
    Backend, TestApp, client_with, eventually, publish_json, spawn_app, spawn_app_with,
};

/// Every RPC of `herald.v1.WebhookService`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    Publish,
    PublishBatch,
    RegisterEndpoint,
    GetEndpoint,
    ListEndpoints,
    UpdateEndpoint,
    DeleteEndpoint,
    RotateEndpointSecret,
    GetMessage,
    ListAttempts,
    RetryDelivery,
    ReplayMessage,
    RecoverEndpoint,
    StreamDeliveryStatus,
    GetAnalytics,
    GetHealth,
    CreateApiKey,
    ListApiKeys,
    RevokeApiKey,
    ListTenants,
    DeleteTenant,
}

impl Rpc {
    const ALL: [Self; 21] = [
        Self::Publish,
        Self::PublishBatch,
        Self::RegisterEndpoint,
        Self::GetEndpoint,
        Self::ListEndpoints,
        Self::UpdateEndpoint,
        Self::DeleteEndpoint,
        Self::RotateEndpointSecret,
        Self::GetMessage,
        Self::ListAttempts,
        Self::RetryDelivery,
        Self::ReplayMessage,
        Self::RecoverEndpoint,
        Self::StreamDeliveryStatus,
        Self::GetAnalytics,
        Self::GetHealth,
        Self::CreateApiKey,
        Self::ListApiKeys,
        Self::RevokeApiKey,
        Self::ListTenants,
        Self::DeleteTenant,
    ];

    /// The scope the RPC needs.
    fn scope(self) -> pb::Scope {
        match self {
            Self::Publish | Self::PublishBatch => pb::Scope::Publish,
            Self::GetEndpoint
            | Self::ListEndpoints
            | Self::GetMessage
            | Self::ListAttempts
            | Self::StreamDeliveryStatus
            | Self::GetAnalytics
            | Self::GetHealth => pb::Scope::Read,
            Self::RegisterEndpoint
            | Self::UpdateEndpoint
            | Self::DeleteEndpoint
            | Self::RotateEndpointSecret
            | Self::RetryDelivery
            | Self::ReplayMessage
            | Self::RecoverEndpoint => pb::Scope::Write,
            Self::CreateApiKey
            | Self::ListApiKeys
            | Self::RevokeApiKey
            | Self::ListTenants
            | Self::DeleteTenant => pb::Scope::Admin,
        }
    }

    /// Whether the request names a tenant (health is the service's, and the admin RPCs
    /// act across tenants).
    fn names_a_tenant(self) -> bool {
        self != Self::GetHealth && self.scope() != pb::Scope::Admin
    }

    /// Calls the RPC with well-formed arguments naming `tenant` (empty: none). Resources
    /// it names do not exist, so a call that gets past access control answers NOT_FOUND
    /// or succeeds without changing anything that matters.
    async fn call(self, client: &mut Client, tenant: &str) -> Result<(), Status> {
        let tenant_id = tenant.to_owned();
        let endpoint_id = "ep_missing".to_owned();
        let message_id = "msg_missing".to_owned();
        match self {
            Self::Publish => {
                let mut request = publish_json("auth.check", serde_json::json!({}));
                request.tenant_id = tenant_id;
                client.publish(request).await.map(drop)
            }
            Self::PublishBatch => {
                let mut request = publish_json("auth.check", serde_json::json!({}));
                request.tenant_id = tenant_id;
                let batch = client
                    .publish_batch(pb::PublishBatchRequest {
                        requests: vec![request],
                    })
                    .await?
                    .into_inner();
                // Each event of a batch names its own tenant and answers for itself.
                match batch.results.into_iter().next().and_then(|r| r.result) {
                    Some(pb::publish_batch_result::Result::Error(e)) => {
                        Err(Status::new(Code::from(e.code), e.message))
                    }
                    _ => Ok(()),
                }
            }
            Self::RegisterEndpoint => client
                .register_endpoint(pb::RegisterEndpointRequest {
                    url: "http://127.0.0.1:9/never".into(),
                    disabled: true,
                    tenant_id,
                    ..Default::default()
                })
                .await
                .map(drop),
            Self::GetEndpoint => client
                .get_endpoint(pb::GetEndpointRequest {
                    endpoint_id,
                    tenant_id,
                    ..Default::default()
                })
                .await
                .map(drop),
            Self::ListEndpoints => client
                .list_endpoints(pb::ListEndpointsRequest {
                    tenant_id,
                    ..Default::default()
                })
                .await
                .map(drop),
            Self::UpdateEndpoint => client
                .update_endpoint(pb::UpdateEndpointRequest {
                    endpoint: Some(pb::Endpoint {
                        id: endpoint_id,
                        description: "changed".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["description".into()],
                    }),
                    tenant_id,
                })
                .await
                .map(drop),
            Self::DeleteEndpoint => client
                .delete_endpoint(pb::DeleteEndpointRequest {
                    endpoint_id,
                    tenant_id,
                })
                .await
                .map(drop),
            Self::RotateEndpointSecret => client
                .rotate_endpoint_secret(pb::RotateEndpointSecretRequest {
                    endpoint_id,
                    tenant_id,
                    ..Default::default()
                })
                .await
                .map(drop),
            Self::GetMessage => client
                .get_message(pb::GetMessageRequest {
                    message_id,
                    tenant_id,
                    ..Default::default()
                })
                .await
                .map(drop),
            Self::ListAttempts => client
                .list_attempts(pb::ListAttemptsRequest {
                    message_id,
                    tenant_id,
                    ..Default::default()
                })
                .await
                .map(drop),
            Self::RetryDelivery => client
                .retry_delivery(pb::RetryDeliveryRequest {
                    message_id,
                    endpoint_id,
                    tenant_id,
                })
                .await
                .map(drop),
            Self::ReplayMessage => client
                .replay_message(pb::ReplayMessageRequest {
                    message_id,
                    tenant_id,
                })
                .await
                .map(drop),
            Self::RecoverEndpoint => client
                .recover_endpoint(pb::RecoverEndpointRequest {
                    endpoint_id,
                    since: Some(SystemTime::UNIX_EPOCH.into()),
                    tenant_id,
                })
                .await
                .map(drop),
            Self::StreamDeliveryStatus => client
                .stream_delivery_status(pb::StreamDeliveryStatusRequest {
                    tenant_id,
                    ..Default::default()
                })
                .await
                .map(drop),
            Self::GetAnalytics => client
                .get_analytics(pb::GetAnalyticsRequest {
                    tenant_id,
                    ..Default::default()
                })
                .await
                .map(drop),
            Self::GetHealth => client.get_health(pb::GetHealthRequest {}).await.map(drop),
            Self::CreateApiKey => client
                .create_api_key(pb::CreateApiKeyRequest {
                    name: "made in a check".into(),
                    scopes: vec![pb::Scope::Read as i32],
                    ..Default::default()
                })
                .await
                .map(drop),
            Self::ListApiKeys => client
                .list_api_keys(pb::ListApiKeysRequest::default())
                .await
                .map(drop),
            Self::RevokeApiKey => client
                .revoke_api_key(pb::RevokeApiKeyRequest {
                    api_key_id: "hk_01jd8x0000000000000000000a".into(),
                })
                .await
                .map(drop),
            Self::ListTenants => client
                .list_tenants(pb::ListTenantsRequest::default())
                .await
                .map(drop),
            Self::DeleteTenant => client
                .delete_tenant(pb::DeleteTenantRequest {
                    tenant_id: "nobody".into(),
                })
                .await
                .map(drop),
        }
    }
}

/// A key made with the admin client; answers its token and id.
pub(crate) async fn create_key(
    admin: &mut Client,
    scopes: &[pb::Scope],
    tenant: &str,
    expire_time: Option<SystemTime>,
) -> (String, String) {
    let created = admin
        .create_api_key(pb::CreateApiKeyRequest {
            name: format!("{scopes:?} in {tenant:?}"),
            scopes: scopes.iter().map(|s| *s as i32).collect(),
            tenant_id: tenant.to_owned(),
            expire_time: expire_time.map(Into::into),
            ..Default::default()
        })
        .await
        .expect("an admin creates keys")
        .into_inner();
    let key = created.api_key.expect("the key");
    (created.token, key.id)
}

/// Refused as unauthenticated, with the message every such refusal has.
fn assert_unauthenticated(result: Result<(), Status>, what: &str) -> String {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
    status.message().to_owned()
}

/// Refused for lacking `scope`, named in an ErrorInfo.
fn assert_missing_scope(result: Result<(), Status>, scope: pb::Scope, what: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::PermissionDenied, "{what}: {status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("{what}: ErrorInfo in {status:?}"));
    assert_eq!(info.reason, "MISSING_SCOPE", "{what}");
    let name = scope
        .as_str_name()
        .trim_start_matches("SCOPE_")
        .to_lowercase();
    assert_eq!(info.metadata.get("scope"), Some(&name), "{what}");
}

/// Got past access control: whatever the answer, it is not about the credential.
fn assert_allowed(result: Result<(), Status>, what: &str) {
    if let Err(status) = result {
        assert!(
            !matches!(
                status.code(),
                Code::Unauthenticated | Code::PermissionDenied
            ),
            "{what}: {status:?}"
        );
    }
}

each_backend!(
    every_rpc_needs_a_valid_credential,
    every_rpc_needs_its_scope,
    a_bound_key_acts_only_in_its_tenant,
    keys_are_listed_without_secrets_and_revoked,
);

async fn every_rpc_needs_a_valid_credential(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let (token, _) = create_key(&mut app.client, &[pb::Scope::Admin], "", None).await;
    let (id, secret) = token.split_once('.').expect("id.secret");
    let wrong_secret = format!("{id}.{}", "A".repeat(secret.len()));
    let unknown_key = format!("hk_01jd8x0000000000000000000a.{secret}");
    let credentials = [
        ("no credential", None),
        ("an empty bearer", Some("")),
        ("garbage", Some("not-a-credential")),
        ("a wrong secret", Some(wrong_secret.as_str())),
        ("an unknown key", Some(unknown_key.as_str())),
        (
            "a wrong admin key",
            Some("test-admin-key-0123456789abcdefghijklmnopqrstuX"),
        ),
    ];
    let mut messages = Vec::new();
    for (what, credential) in credentials {
        let mut client = client_with(app.addr, credential).await;
        for rpc in Rpc::ALL {
            messages.push(assert_unauthenticated(
                rpc.call(&mut client, "").await,
                &format!("{rpc:?} with {what}"),
            ));
        }
    }
    messages.dedup();
    assert_eq!(
        messages.len(),
        1,
        "one message for every failure: {messages:?}"
    );

    // The same token works, so the refusals above were about the credential.
    let mut client = client_with(app.addr, Some(&token)).await;
    for rpc in Rpc::ALL {
        assert_allowed(
            rpc.call(&mut client, "").await,
            &format!("{rpc:?} as admin"),
        );
    }
    let scrape = app.scrape().await;
    for reason in [
        "missing",
        "unknown_credential",
        "wrong_secret",
        "unknown_key",
    ] {
        assert!(
            scrape.contains(&format!(
                "webhook_auth_failures_total{{reason=\"{reason}\"}}"
            )),
            "failures counted by reason {reason}"
        );
    }
    app.stop().await;
}

async fn every_rpc_needs_its_scope(backend: Backend) {
    let mut app = spawn_app(backend).await;
    for scope in [pb::Scope::Publish, pb::Scope::Read, pb::Scope::Write] {
        let (token, _) = create_key(&mut app.client, &[scope], "", None).await;
        let mut client = client_with(app.addr, Some(&token)).await;
        for rpc in Rpc::ALL {
            let what = format!("{rpc:?} with a {scope:?} key");
            let result = rpc.call(&mut client, "").await;
            if rpc.scope() == scope {
                assert_allowed(result, &what);
            } else {
                assert_missing_scope(result, rpc.scope(), &what);
            }
        }
    }
    app.stop().await;
}

async fn a_bound_key_acts_only_in_its_tenant(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let every = [pb::Scope::Publish, pb::Scope::Read, pb::Scope::Write];
    let (token, _) = create_key(&mut app.client, &every, "acme", None).await;
    let mut client = client_with(app.addr, Some(&token)).await;
    for rpc in Rpc::ALL.into_iter().filter(|r| r.names_a_tenant()) {
        let status = rpc
            .call(&mut client, "globex")
            .await
            .expect_err(&format!("{rpc:?} in another tenant is refused"));
        assert_eq!(status.code(), Code::PermissionDenied, "{rpc:?}: {status:?}");
        if rpc != Rpc::PublishBatch {
            let info = status.get_details_error_info().expect("ErrorInfo");
            assert_eq!(info.reason, "TENANT_NOT_ALLOWED", "{rpc:?}");
        }
        for tenant in ["", "acme"] {
            assert_allowed(
                rpc.call(&mut client, tenant).await,
                &format!("{rpc:?} in {tenant:?}"),
            );
        }
    }
    // Naming no tenant, the key acts in its own: the publish above went to acme.
    let acme = app
        .client
        .list_endpoints(pb::ListEndpointsRequest {
            tenant_id: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acme.endpoints.len(), 2, "registered twice, both in acme");
    assert!(acme.endpoints.iter().all(|e| e.tenant_id == "acme"));

    // An admin key cannot be bound to a tenant; a bad scope value is named.
    for (scopes, field) in [
        (vec![pb::Scope::Admin as i32], "tenant_id"),
        (vec![pb::Scope::Read as i32, 9], "scopes[1]"),
    ] {
        let status = app
            .client
            .create_api_key(pb::CreateApiKeyRequest {
                name: "refused".into(),
                scopes,
                tenant_id: "acme".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let fields: Vec<String> = status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, [field]);
    }
    app.stop().await;
}

async fn keys_are_listed_without_secrets_and_revoked(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let (token, id) = create_key(&mut app.client, &[pb::Scope::Read], "acme", None).await;
    let secret = token.split_once('.').unwrap().1.to_owned();
    let mut reader = client_with(app.addr, Some(&token)).await;
    assert_allowed(Rpc::GetHealth.call(&mut reader, "").await, "a live key");

    let listed = app
        .client
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .unwrap()
        .into_inner();
    let key = listed
        .api_keys
        .iter()
        .find(|k| k.id == id)
        .expect("the key is listed");
    assert_eq!(key.scopes, [pb::Scope::Read as i32]);
    assert_eq!(key.tenant_id, "acme");
    assert!(key.last_used_time.is_some(), "its use is recorded");
    assert!(key.revoke_time.is_none());
    assert!(
        !format!("{listed:?}").contains(&secret),
        "the secret is never listed"
    );

    let revoked = app
        .client
        .revoke_api_key(pb::RevokeApiKeyRequest {
            api_key_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    assert!(revoked.revoke_time.is_some());
    assert_unauthenticated(
        Rpc::GetHealth.call(&mut reader, "").await,
        "a revoked key, on the instance that revoked it",
    );
    let status = app
        .client
        .revoke_api_key(pb::RevokeApiKeyRequest {
            api_key_id: "hk_01jd8x0000000000000000000a".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_is_refused() {
    let mut app = spawn_app(Backend::Memory).await;
    let status = app
        .client
        .create_api_key(pb::CreateApiKeyRequest {
            name: "already over".into(),
            scopes: vec![pb::Scope::Read as i32],
            expire_time: Some((SystemTime::now() - Duration::from_secs(1)).into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let expiry = SystemTime::now() + Duration::from_millis(300);
    let (token, _) = create_key(&mut app.client, &[pb::Scope::Read], "", Some(expiry)).await;
    let mut client = client_with(app.addr, Some(&token)).await;
    // Whether the first call lands before the expiry depends on the machine; the key
    // must stop working once the expiry has passed, and stay refused.
    eventually("the key expires", || {
        let mut client = client.clone();
        async move {
            let refused = Rpc::GetHealth.call(&mut client, "").await.is_err();
            (refused && SystemTime::now() >= expiry).then_some(())
        }
    })
    .await;
    assert_unauthenticated(Rpc::GetHealth.call(&mut client, "").await, "an expired key");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_limit_answers_resource_exhausted_with_retry_info() {
    let mut app = spawn_app(Backend::Memory).await;
    let created = app
        .client
        .create_api_key(pb::CreateApiKeyRequest {
            name: "slow publisher".into(),
            scopes: vec![pb::Scope::Publish as i32],
            publish_rate_limit: Some(pb::RateLimit {
                limit: 2,
                window: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
                burst: 2,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        created.api_key.unwrap().publish_rate_limit.map(|r| r.limit),
        Some(2)
    );
    let mut publisher = client_with(app.addr, Some(&created.token)).await;
    for _ in 0..2 {
        Rpc::Publish
            .call(&mut publisher, "")
            .await
            .expect("within the limit");
    }
    for rpc in [Rpc::Publish, Rpc::PublishBatch] {
        let status = rpc.call(&mut publisher, "").await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{rpc:?}");
        let retry = status.get_details_retry_info().expect("RetryInfo");
        assert!(
            retry.retry_delay.is_some_and(|d| d > Duration::ZERO),
            "{retry:?}"
        );
    }
    // The limit is the key's: the admin key publishes on.
    Rpc::Publish.call(&mut app.client, "").await.unwrap();
    app.stop().await;
}

/// A tenant's endpoint cap answers RESOURCE_EXHAUSTED naming the limit; other tenants
/// are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_has_at_most_its_endpoint_limit() {
    let mut app = spawn_app_with(Backend::Memory, |c| c.service.max_endpoints_per_tenant = 2).await;
    let register = |tenant: &str| pb::RegisterEndpointRequest {
        url: "http://127.0.0.1:9/never".into(),
        disabled: true,
        tenant_id: tenant.to_owned(),
        ..Default::default()
    };
    for _ in 0..2 {
        app.client
            .register_endpoint(register("acme"))
            .await
            .unwrap();
    }
    let status = app
        .client
        .register_endpoint(register("acme"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("limit of 2 endpoints")
            && status
                .message()
                .contains("WEBHOOK_MAX_ENDPOINTS_PER_TENANT"),
        "{status:?}"
    );
    app.client
        .register_endpoint(register("globex"))
        .await
        .unwrap();
    app.stop().await;
}

/// Two instances share a Redis: a key revoked through one is refused by the other
/// within a second (each instance trusts what it read of a key for half a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_every_instance_within_a_second() {
    let redis = RedisServer::start().await;
    let prefix = format!("auth-{}", ulid::Ulid::new()).to_lowercase();
    let (mut a, mut admin) = Herald::start(&Settings::redis(&redis.url(), &prefix, "a")).await;
    let (mut b, _) = Herald::start(&Settings::redis(&redis.url(), &prefix, "b")).await;
    let (token, id) = create_key(&mut admin, &[pb::Scope::Read], "", None).await;
    let mut on_b = client_with(b.grpc_addr(), Some(&token)).await;
    assert_allowed(
        Rpc::GetHealth.call(&mut on_b, "").await,
        "a key made on a works on b at once",
    );
    admin
        .revoke_api_key(pb::RevokeApiKeyRequest { api_key_id: id })
        .await
        .unwrap();
    let revoked = Instant::now();
    eventually("b refuses the revoked key", || {
        let mut on_b = on_b.clone();
        async move {
            Rpc::GetHealth
                .call(&mut on_b, "")
                .await
                .is_err()
                .then_some(())
        }
    })
    .await;
    assert!(
        revoked.elapsed() <= Duration::from_millis(1500),
        "refused after {:?}",
        revoked.elapsed()
    );
    assert_unauthenticated(Rpc::GetHealth.call(&mut on_b, "").await, "revoked, on b");
    a.stop().await;
    b.stop().await;
}

/// With authentication off, anyone is an admin, and the health report says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_off_is_loud() {
    let app: TestApp = spawn_app_with(Backend::Memory, |c| c.auth.enabled = false).await;
    let mut anyone = client_with(app.addr, None).await;
    for rpc in Rpc::ALL {
        assert_allowed(
            rpc.call(&mut anyone, "").await,
            &format!("{rpc:?} without a key"),
        );
    }
    let health = anyone
        .get_health(pb::GetHealthRequest {})
        .await
        .unwrap()
        .into_inner();
    let check = health
        .checks
        .iter()
        .find(|c| c.name == "authentication")
        .expect("the report has an authentication check");
    assert!(!check.ok && check.detail.contains("OFF"), "{check:?}");
    assert_eq!(health.health, pb::ServiceHealth::Degraded as i32);
    app.stop().await;
}

/// The operator's admin key is a credential like any other, and a key generated on a
/// first start is printed once and kept (mode 0600) in the data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_without_keys_makes_one_admin_key() {
    use std::os::unix::fs::PermissionsExt;

    let data = tempfile::tempdir().unwrap();
    let settings = Settings::embedded(data.path()).without("WEBHOOK_ADMIN_API_KEY");
    let mut first = Herald::spawn(&settings);
    first.wait_for_message("herald serving").await;
    let stderr = first.stderr();
    assert!(stderr.contains("It is shown only now"), "{stderr}");
    let key = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("hk_") && l.contains('.'))
        .expect("the key is printed")
        .to_owned();
    let file = data.path().join("admin.key");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), key);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    first.stop().await;

    let (mut second, _) = Herald::start(&settings).await;
    let mut client = client_with(second.grpc_addr(), Some(&key)).await;
    let keys = client
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .expect("the generated key is an admin key")
        .into_inner();
    assert_eq!(keys.api_keys.len(), 1, "no second key on the next start");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        key,
        "not replaced"
    );
    assert!(!second.logged("It is shown only now"), "printed only once");
    second.stop().await;
}
