//! Bearer JWTs against a real server configured for them, with tokens signed here: an
//! HS256 secret shared with the server, and Ed25519 keys whose public halves a JWKS
//! server on loopback hands out. A token acts with its scopes and in its tenant; every
//! way a token can be wrong is refused alike, and counted by reason on the admin port.
//! The verifier's rules one by one are the unit tests' business (`herald::auth::jwt`);
//! here it is the path from the `authorization` header to what a call may do.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use herald::auth::jwt::{JwtKeys, JwtSettings};
use herald::grpc::pb;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::support::{Backend, TestApp, client_with, metric, publish_json, spawn_app_with};

const ISSUER: &str = "https://idp.example.test/";
const AUDIENCE: &str = "herald";
const HS_SECRET: &[u8] = b"test-only-hs256-secret-0123456789abcdef";
const LEEWAY: Duration = Duration::from_secs(30);
/// Well beyond [`LEEWAY`], so that a slow machine cannot make a bad time look good.
const FAR: i64 = 600;

// Fixed Ed25519 test keys (PKCS#8 DER in base64) with their public halves as JWK `x`
// members; generated keys would need a second library to express as a JWK.
const ED1_PKCS8: &str = "MC4CAQAwBQYDK2VwBCIEIJxMH6SV9b7+BQUwi2dpw4UTduYf2a6gbC8EjXiag+v3";
const ED1_X: &str = "Swf9kH99pp_scUBchf5qTpH88Tcx80gaOtuUImXKJW0";
const ED2_PKCS8: &str = "MC4CAQAwBQYDK2VwBCIEIIPtYK5wn1RrhSHIVSz0dGKdUe1zfPwyaDqQAzOrkt67";

fn now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since_epoch.as_secs()).unwrap()
}

/// Claims every check accepts, valid for five minutes.
fn claims(scope: &str) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "publisher-1",
        "iat": now,
        "exp": now + 300,
        "scope": scope,
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn settings(keys: JwtKeys) -> JwtSettings {
    JwtSettings {
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        leeway: LEEWAY,
        keys,
        tenant_claim: "tenant_id".to_owned(),
    }
}

fn sign_hs(claims: &Value) -> String {
    let key = EncodingKey::from_secret(HS_SECRET).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

fn sign_ed(pkcs8: &str, kid: &str, claims: &Value) -> String {
    let key = EncodingKey::from_ed_der(&STANDARD.decode(pkcs8).unwrap());
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// `token` with its claims replaced by `claims` and its header and signature kept: what
/// someone who holds a token but not the key can make of it.
fn with_claims_swapped(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

async fn hs256_app() -> TestApp {
    spawn_app_with(Backend::Memory, |config| {
        config.auth.jwt = Some(settings(JwtKeys::Hs256(HS_SECRET.to_vec())));
    })
    .await
}

async fn health(addr: SocketAddr, token: &str) -> Result<pb::GetHealthResponse, Status> {
    client_with(addr, Some(token))
        .await
        .get_health(pb::GetHealthRequest {})
        .await
        .map(tonic::Response::into_inner)
}

/// `webhook_auth_failures_total` for `reason`, from the admin port (0 when absent).
async fn auth_failures(app: &TestApp, reason: &str) -> f64 {
    let series = format!("webhook_auth_failures_total{{reason=\"{reason}\"}}");
    metric(&app.scrape().await, &series).unwrap_or(0.0)
}

/// The `ErrorInfo` of a PERMISSION_DENIED status.
fn denied(status: &Status) -> tonic_types::ErrorInfo {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    status
        .get_details_error_info()
        .expect("the refusal carries an ErrorInfo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_token_acts_with_its_scopes_only() {
    let app = hs256_app().await;
    let mut client = client_with(app.addr, Some(&sign_hs(&claims("read publish")))).await;

    client
        .get_health(pb::GetHealthRequest {})
        .await
        .expect("read allows GetHealth");
    let published = client
        .publish(publish_json("order.created", json!({"id": 1})))
        .await
        .expect("publish allows Publish")
        .into_inner();
    assert!(!published.message_id.is_empty());

    let status = client
        .register_endpoint(pb::RegisterEndpointRequest {
            url: "https://example.test/hook".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("registering needs write");
    let info = denied(&status);
    assert_eq!(info.reason, "MISSING_SCOPE");
    assert_eq!(info.metadata["scope"], "write");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_alike_and_counted_by_reason() {
    let app = hs256_app().await;
    let now = now();
    let good = claims("read");
    // Each is wrong in one way only, so that its reason is the one counted.
    let bad = [
        (
            "wrong_issuer",
            sign_hs(&with(
                good.clone(),
                "iss",
                json!("https://other.example.test/"),
            )),
        ),
        (
            "wrong_audience",
            sign_hs(&with(good.clone(), "aud", json!("someone-else"))),
        ),
        (
            "expired",
            sign_hs(&with(
                with(good.clone(), "iat", json!(now - 2 * FAR)),
                "exp",
                json!(now - FAR),
            )),
        ),
        (
            "not_yet_valid",
            sign_hs(&with(good.clone(), "nbf", json!(now + FAR))),
        ),
        // A read-only token turned into an admin one: the signature no longer fits.
        (
            "bad_signature",
            with_claims_swapped(
                &sign_hs(&good),
                &with(good.clone(), "scope", json!("admin")),
            ),
        ),
    ];

    // What a caller without any credential is told: a bad token must learn no more.
    let missing = client_with(app.addr, None)
        .await
        .get_health(pb::GetHealthRequest {})
        .await
        .expect_err("no credential");
    assert_eq!(missing.code(), Code::Unauthenticated);
    for (reason, token) in &bad {
        let before = auth_failures(&app, reason).await;
        let status = health(app.addr, token).await.expect_err(reason);
        assert_eq!(status.code(), Code::Unauthenticated, "{reason}: {status:?}");
        assert_eq!(status.message(), missing.message(), "{reason}");
        assert_eq!(
            auth_failures(&app, reason).await,
            before + 1.0,
            "{reason} is counted under its own reason"
        );
    }
    // Counted once more each, to tell a count from a flag.
    for (reason, token) in &bad {
        health(app.addr, token).await.expect_err(reason);
        assert_eq!(auth_failures(&app, reason).await, 2.0, "{reason}");
    }
    health(app.addr, &sign_hs(&good))
        .await
        .expect("the unaltered token is accepted");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_claim_binds_the_token_to_its_tenant() {
    let mut app = hs256_app().await;
    let token = sign_hs(&with(claims("publish"), "tenant_id", json!("acme")));
    let mut client = client_with(app.addr, Some(&token)).await;

    // No tenant named: the token's own.
    let id = client
        .publish(publish_json("order.created", json!({"id": 1})))
        .await
        .expect("publish in the token's tenant")
        .into_inner()
        .message_id;
    let found = app
        .client
        .get_message(pb::GetMessageRequest {
            message_id: id.clone(),
            tenant_id: "acme".to_owned(),
            ..Default::default()
        })
        .await
        .expect("the message is in acme")
        .into_inner();
    assert_eq!(found.message.unwrap().tenant_id, "acme");
    // And only there: the default tenant does not have it.
    let elsewhere = app
        .client
        .get_message(pb::GetMessageRequest {
            message_id: id,
            ..Default::default()
        })
        .await
        .expect_err("not in the default tenant");
    assert_eq!(elsewhere.code(), Code::NotFound);

    let status = client
        .publish(pb::PublishRequest {
            tenant_id: "other".to_owned(),
            ..publish_json("order.created", json!({"id": 2}))
        })
        .await
        .expect_err("another tenant is refused");
    assert_eq!(denied(&status).reason, "TENANT_NOT_ALLOWED");
    app.stop().await;
}

/// A JWKS document served over HTTP on loopback, as an identity provider does; the
/// server task ends when this is dropped, so it ends with the test.
struct JwksServer {
    url: url::Url,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start(jwks: Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let router = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || async move { axum::Json(jwks) }),
        );
        let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            url: url.parse().unwrap(),
            task,
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eddsa_tokens_are_verified_with_keys_from_a_jwks_url() {
    let jwks = JwksServer::start(json!({
        "keys": [{"kty": "OKP", "crv": "Ed25519", "x": ED1_X, "kid": "ed-1", "alg": "EdDSA"}]
    }))
    .await;
    let app = spawn_app_with(Backend::Memory, |config| {
        config.auth.jwt = Some(settings(JwtKeys::JwksUrl(jwks.url.clone())));
    })
    .await;

    let valid = sign_ed(ED1_PKCS8, "ed-1", &claims("read"));
    health(app.addr, &valid)
        .await
        .expect("a token signed with the published key");

    // Signed with a key the provider never published: however often asked, the set
    // has no such `kid`.
    let unknown = sign_ed(ED2_PKCS8, "ed-unknown", &claims("read"));
    let status = health(app.addr, &unknown)
        .await
        .expect_err("an unknown key");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(auth_failures(&app, "unknown_key").await, 1.0);
    // The same key claiming a published `kid` fails on its signature instead.
    let impostor = sign_ed(ED2_PKCS8, "ed-1", &claims("read"));
    let status = health(app.addr, &impostor)
        .await
        .expect_err("a key that is not the one published");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(auth_failures(&app, "bad_signature").await, 1.0);
    app.stop().await;
}
