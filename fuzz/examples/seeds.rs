//! Writes the seed corpora under `fuzz/seeds/<target>/`: a few valid inputs per target,
//! for the fuzzer to start from. Run after changing the API or a target's input format:
//! `cargo +nightly run --manifest-path fuzz/Cargo.toml --example seeds`, and commit.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use herald::auth::ApiKeyId;
use herald::domain::{EndpointId, TenantId};
use herald::grpc::pb;
use herald::grpc::request::PageToken;
use herald_fuzz::input;
use prost_types::value::Kind;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let targets: [(&str, Seeds); 6] = [
        ("request", requests()),
        ("egress", egress()),
        ("headers", headers()),
        ("retry_after", retry_after()),
        ("signature", signature()),
        ("page_token", page_tokens()),
    ];
    for (target, seeds) in targets {
        let dir = root.join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        for (name, bytes) in &seeds {
            fs::write(dir.join(name), bytes)?;
        }
        println!("{target}: {} seeds", seeds.len());
    }
    Ok(())
}

/// Named inputs of one target.
type Seeds = Vec<(&'static str, Vec<u8>)>;

const ENDPOINT: &str = "orders";
const MESSAGE: &str = "msg_01JD8X3Q5Z7N2V4B6C8D0F1G2H";

fn text(seeds: &[(&'static str, &str)]) -> Seeds {
    seeds
        .iter()
        .map(|(name, s)| (*name, s.as_bytes().to_vec()))
        .collect()
}

fn duration(seconds: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds, nanos: 0 })
}

fn timestamp(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn publish_json() -> pb::PublishRequest {
    let field = |k: &str, kind| (k.to_owned(), prost_types::Value { kind: Some(kind) });
    pb::PublishRequest {
        event_type: "invoice.paid".into(),
        payload: Some(pb::publish_request::Payload::Json(prost_types::Value {
            kind: Some(Kind::StructValue(prost_types::Struct {
                fields: [
                    field("id", Kind::NumberValue(42.0)),
                    field("total", Kind::NumberValue(9.5)),
                    field("paid", Kind::BoolValue(true)),
                    field("note", Kind::StringValue("thanks".into())),
                ]
                .into_iter()
                .collect(),
            })),
        })),
        idempotency_key: "invoice-42".into(),
        channels: vec!["billing".into()],
        metadata: HashMap::from([("source".into(), "erp".into())]),
        tenant_id: "acme".into(),
        retention: duration(3600),
    }
}

fn publish_raw() -> pb::PublishRequest {
    pb::PublishRequest {
        event_type: "file.uploaded".into(),
        payload: Some(pb::publish_request::Payload::Raw(pb::RawPayload {
            data: b"<upload/>".to_vec(),
            content_type: "application/xml; charset=utf-8".into(),
        })),
        ..Default::default()
    }
}

fn endpoint() -> pb::Endpoint {
    pb::Endpoint {
        id: ENDPOINT.into(),
        url: "https://receiver.example/hook".into(),
        description: "orders".into(),
        event_types: vec!["invoice.*".into()],
        channels: vec!["billing".into()],
        headers: HashMap::from([("x-tenant".into(), "acme".into())]),
        retry_policy: Some(retry_policy()),
        rate_limit: Some(rate_limit()),
        max_in_flight: Some(4),
        enabled: true,
        ..Default::default()
    }
}

fn retry_policy() -> pb::RetryPolicy {
    pb::RetryPolicy {
        max_retries: Some(5),
        initial_delay: duration(1),
        max_delay: duration(60),
        multiplier: Some(2.0),
        jitter: pb::RetryJitter::Full as i32,
    }
}

fn rate_limit() -> pb::RateLimit {
    pb::RateLimit {
        limit: 10,
        window: duration(1),
        burst: 20,
    }
}

fn requests() -> Seeds {
    let page_token = PageToken::Endpoints(EndpointId::parse(ENDPOINT).unwrap()).encode();
    vec![
        ("publish-json", input("Publish", &publish_json())),
        ("publish-raw", input("Publish", &publish_raw())),
        (
            "publish-batch",
            input(
                "PublishBatch",
                &pb::PublishBatchRequest {
                    requests: vec![publish_json(), publish_raw()],
                },
            ),
        ),
        (
            "register-endpoint",
            input(
                "RegisterEndpoint",
                &pb::RegisterEndpointRequest {
                    endpoint_id: ENDPOINT.into(),
                    url: "https://receiver.example/hook".into(),
                    description: "orders".into(),
                    event_types: vec!["invoice.*".into(), "order.created".into()],
                    channels: vec!["billing".into()],
                    headers: HashMap::from([("authorization".into(), "Bearer x".into())]),
                    retry_policy: Some(retry_policy()),
                    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
                    rate_limit: Some(rate_limit()),
                    circuit_breaker: Some(pb::CircuitBreakerPolicy {
                        failure_threshold: Some(5),
                        timeout: duration(30),
                    }),
                    max_in_flight: Some(8),
                    tenant_id: "acme".into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "get-endpoint",
            input(
                "GetEndpoint",
                &pb::GetEndpointRequest {
                    endpoint_id: ENDPOINT.into(),
                    all_tenants: true,
                    ..Default::default()
                },
            ),
        ),
        (
            "list-endpoints",
            input(
                "ListEndpoints",
                &pb::ListEndpointsRequest {
                    page_size: 50,
                    page_token,
                    tenant_id: "acme".into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "update-endpoint",
            input(
                "UpdateEndpoint",
                &pb::UpdateEndpointRequest {
                    endpoint: Some(endpoint()),
                    update_mask: Some(prost_types::FieldMask {
                        paths: [
                            "url",
                            "description",
                            "event_types",
                            "channels",
                            "headers",
                            "retry_policy",
                            "rate_limit",
                            "circuit_breaker",
                            "max_in_flight",
                            "enabled",
                        ]
                        .map(String::from)
                        .to_vec(),
                    }),
                    tenant_id: "acme".into(),
                },
            ),
        ),
        (
            "delete-endpoint",
            input(
                "DeleteEndpoint",
                &pb::DeleteEndpointRequest {
                    endpoint_id: ENDPOINT.into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "rotate-endpoint-secret",
            input(
                "RotateEndpointSecret",
                &pb::RotateEndpointSecretRequest {
                    endpoint_id: ENDPOINT.into(),
                    grace_period: duration(86_400),
                    ..Default::default()
                },
            ),
        ),
        (
            "get-message",
            input(
                "GetMessage",
                &pb::GetMessageRequest {
                    message_id: MESSAGE.into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "get-message-page",
            input(
                "GetMessage",
                &pb::GetMessageRequest {
                    message_id: MESSAGE.into(),
                    page_token: PageToken::Deliveries(EndpointId::parse(ENDPOINT).unwrap())
                        .encode(),
                    ..Default::default()
                },
            ),
        ),
        (
            "list-attempts",
            input(
                "ListAttempts",
                &pb::ListAttemptsRequest {
                    message_id: MESSAGE.into(),
                    endpoint_id: ENDPOINT.into(),
                    delivery_state: pb::DeliveryState::Failed as i32,
                    page_size: 10,
                    page_token: PageToken::Attempts(17).encode(),
                    ..Default::default()
                },
            ),
        ),
        (
            "retry-delivery",
            input(
                "RetryDelivery",
                &pb::RetryDeliveryRequest {
                    message_id: MESSAGE.into(),
                    endpoint_id: ENDPOINT.into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "replay-message",
            input(
                "ReplayMessage",
                &pb::ReplayMessageRequest {
                    message_id: MESSAGE.into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "expunge-message",
            input(
                "ExpungeMessage",
                &pb::ExpungeMessageRequest {
                    message_id: MESSAGE.into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "recover-endpoint",
            input(
                "RecoverEndpoint",
                &pb::RecoverEndpointRequest {
                    endpoint_id: ENDPOINT.into(),
                    since: timestamp(1_700_000_000),
                    ..Default::default()
                },
            ),
        ),
        (
            "stream-delivery-status",
            input(
                "StreamDeliveryStatus",
                &pb::StreamDeliveryStatusRequest {
                    after_cursor: Some(41),
                    endpoint_ids: vec![ENDPOINT.into()],
                    event_types: vec!["invoice.*".into()],
                    message_id: MESSAGE.into(),
                    kinds: vec![1, 2],
                    until_settled: true,
                    ..Default::default()
                },
            ),
        ),
        (
            "get-analytics",
            input(
                "GetAnalytics",
                &pb::GetAnalyticsRequest {
                    start_time: timestamp(1_700_000_000),
                    end_time: timestamp(1_700_003_600),
                    endpoint_id: ENDPOINT.into(),
                    event_type: "invoice.paid".into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "create-api-key",
            input(
                "CreateApiKey",
                &pb::CreateApiKeyRequest {
                    name: "ci".into(),
                    scopes: vec![pb::Scope::Publish as i32, pb::Scope::Read as i32],
                    tenant_id: "acme".into(),
                    expire_time: timestamp(1_900_000_000),
                    publish_rate_limit: Some(rate_limit()),
                },
            ),
        ),
        (
            "list-api-keys",
            input(
                "ListApiKeys",
                &pb::ListApiKeysRequest {
                    page_size: 20,
                    page_token: PageToken::ApiKeys(api_key_id()).encode(),
                },
            ),
        ),
        (
            "revoke-api-key",
            input(
                "RevokeApiKey",
                &pb::RevokeApiKeyRequest {
                    api_key_id: api_key_id().as_str().into(),
                },
            ),
        ),
        (
            "list-tenants",
            input(
                "ListTenants",
                &pb::ListTenantsRequest {
                    page_size: 20,
                    page_token: PageToken::Tenants(TenantId::parse("acme").unwrap()).encode(),
                },
            ),
        ),
        (
            "delete-tenant",
            input(
                "DeleteTenant",
                &pb::DeleteTenantRequest {
                    tenant_id: "acme".into(),
                },
            ),
        ),
    ]
}

fn api_key_id() -> ApiKeyId {
    ApiKeyId::parse("hk_01jd8x3q5z7n2v4b6c8d0f1g2h").unwrap()
}

fn egress() -> Seeds {
    let mut seeds = text(&[
        ("public-name", "https://receiver.example/hook"),
        ("loopback-decimal", "http://2130706433:8080/"),
        ("loopback-hex", "http://0x7f.1/"),
        ("private-octal", "http://012.0.0.1/"),
        (
            "metadata-service",
            "http://169.254.169.254/latest/meta-data/",
        ),
        ("mapped-loopback", "http://[::ffff:127.0.0.1]/"),
        ("nat64-private", "https://[64:ff9b::10.0.0.1]/"),
        ("teredo", "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/"),
        ("isatap-link-local", "http://[fe80::5efe:8.8.8.8]/"),
        ("dotted-domain", "http://127.0.0.1../"),
    ]);
    // Raw addresses: the first 4 and 16 bytes are read as IPv4 and IPv6.
    seeds.push(("v4-public", vec![8, 8, 8, 8]));
    seeds.push((
        "v6-6to4-private",
        [0x20, 0x02, 10, 0, 0, 1]
            .into_iter()
            .chain([0; 10])
            .collect(),
    ));
    seeds
}

fn headers() -> Seeds {
    let pairs = |pairs: &[(&str, &str)]| -> Vec<u8> {
        let entries: Vec<Vec<u8>> = pairs
            .iter()
            .map(|(n, v)| [n.as_bytes(), &[0xfe], v.as_bytes()].concat())
            .collect();
        entries.join(&0xff)
    };
    vec![
        ("one", pairs(&[("Authorization", "Bearer abc")])),
        (
            "several",
            pairs(&[
                ("x-tenant", "acme"),
                ("X-Trace", "1\t2"),
                ("x-utf8", "café"),
            ]),
        ),
        (
            "reserved",
            pairs(&[("Host", "internal"), ("webhook-id", "x")]),
        ),
        ("injected", pairs(&[("x-a", "1\r\nx-evil: 1")])),
        ("same-but-case", pairs(&[("X-A", "1"), ("x-a", "2")])),
    ]
}

fn retry_after() -> Seeds {
    // The first eight bytes are the clock (little-endian seconds since 1970).
    let at = |clock: u64, value: &str| [&clock.to_le_bytes()[..], value.as_bytes()].concat();
    vec![
        ("seconds", at(1_445_412_480, "120")),
        (
            "date-ahead",
            at(1_445_412_480, "Wed, 21 Oct 2015 07:28:30 GMT"),
        ),
        (
            "date-past",
            at(1_445_412_480, "Wed, 21 Oct 2015 07:27:00 GMT"),
        ),
        (
            "rfc850",
            at(1_445_412_480, "Wednesday, 21-Oct-15 07:28:30 GMT"),
        ),
        ("asctime", at(1_445_412_480, "Wed Oct 21 07:28:30 2015")),
        ("negative", at(0, "-5")),
    ]
}

fn signature() -> Seeds {
    // The specification's vector, its parts laid end to end: the target's fields take
    // their bytes in their own way, so this only starts the fuzzer near real values.
    let spec = [
        &[0x31; 32][..],
        b"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1a,x",
        b"msg_p5jXN8AQM9LWM0D4loKWxJek",
        &1_614_265_330_i64.to_le_bytes(),
        br#"{"test": 2432232314}"#,
        &1_614_265_330_i64.to_le_bytes(),
        &300_i64.to_le_bytes(),
    ]
    .concat();
    vec![("specification", spec)]
}

fn page_tokens() -> Seeds {
    vec![
        (
            "endpoints",
            PageToken::Endpoints(EndpointId::parse_stored("acme~orders").unwrap())
                .encode()
                .into_bytes(),
        ),
        (
            "deliveries",
            PageToken::Deliveries(EndpointId::parse_stored("acme~orders").unwrap())
                .encode()
                .into_bytes(),
        ),
        ("attempts", PageToken::Attempts(-17).encode().into_bytes()),
        (
            "api-keys",
            PageToken::ApiKeys(api_key_id()).encode().into_bytes(),
        ),
        ("tenants-id", b"acme".to_vec()),
        ("garbage", b"not a token!".to_vec()),
    ]
}
