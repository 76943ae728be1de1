//! What the fuzz targets and the seed generator share: every RPC whose request the server
//! converts, each with the conversion its handler runs, and the contract every conversion
//! keeps.
//!
//! An input of the `request` target is one byte choosing the RPC (modulo their count) and
//! the request's protobuf encoding. Bytes that do not decode are the codec's to refuse;
//! a request that decodes must convert into a command, or into a refusal that names at
//! least one field and says what is wrong with it. `GetHealth` has no fields and no
//! conversion, so it is not here.

use herald::auth::ApiKeyId;
use herald::domain::{EndpointId, MessageId, NewMessage, TenantId};
use herald::grpc::pb;
use herald::grpc::request::{
    self, GetMessage, ListPage, PublishBatch, RecoverEndpoint, RetryDelivery, RotateSecret,
    Tenanted, UpdateEndpoint,
};
use herald::service::{
    AnalyticsQuery, AttemptsQuery, NewApiKey, NewEndpoint, Publish, Violations, WatchQuery,
};
use prost::Message;

/// One RPC, and how the server turns bytes into its command.
pub struct Rpc {
    pub name: &'static str,
    /// Decodes the request and converts it as the handler does, panicking when the
    /// conversion breaks its contract.
    pub convert: fn(&[u8]),
}

/// Every RPC with a conversion, in the order the selector byte picks them.
pub const RPCS: &[Rpc] = &[
    Rpc {
        name: "Publish",
        convert: publish,
    },
    Rpc {
        name: "PublishBatch",
        convert: publish_batch,
    },
    Rpc {
        name: "RegisterEndpoint",
        convert: scoped::<pb::RegisterEndpointRequest, NewEndpoint>,
    },
    Rpc {
        name: "GetEndpoint",
        convert: scoped::<pb::GetEndpointRequest, EndpointId>,
    },
    Rpc {
        name: "ListEndpoints",
        convert: scoped::<pb::ListEndpointsRequest, ListPage<EndpointId>>,
    },
    Rpc {
        name: "UpdateEndpoint",
        convert: scoped::<pb::UpdateEndpointRequest, UpdateEndpoint>,
    },
    Rpc {
        name: "DeleteEndpoint",
        convert: scoped::<pb::DeleteEndpointRequest, EndpointId>,
    },
    Rpc {
        name: "RotateEndpointSecret",
        convert: scoped::<pb::RotateEndpointSecretRequest, RotateSecret>,
    },
    Rpc {
        name: "GetMessage",
        convert: scoped::<pb::GetMessageRequest, GetMessage>,
    },
    Rpc {
        name: "ListAttempts",
        convert: scoped::<pb::ListAttemptsRequest, AttemptsQuery>,
    },
    Rpc {
        name: "RetryDelivery",
        convert: scoped::<pb::RetryDeliveryRequest, RetryDelivery>,
    },
    Rpc {
        name: "ReplayMessage",
        convert: scoped::<pb::ReplayMessageRequest, MessageId>,
    },
    Rpc {
        name: "ExpungeMessage",
        convert: scoped::<pb::ExpungeMessageRequest, MessageId>,
    },
    Rpc {
        name: "RecoverEndpoint",
        convert: scoped::<pb::RecoverEndpointRequest, RecoverEndpoint>,
    },
    Rpc {
        name: "StreamDeliveryStatus",
        convert: scoped::<pb::StreamDeliveryStatusRequest, WatchQuery>,
    },
    Rpc {
        name: "GetAnalytics",
        convert: scoped::<pb::GetAnalyticsRequest, AnalyticsQuery>,
    },
    Rpc {
        name: "CreateApiKey",
        convert: plain::<pb::CreateApiKeyRequest, NewApiKey>,
    },
    Rpc {
        name: "ListApiKeys",
        convert: plain::<pb::ListApiKeysRequest, ListPage<ApiKeyId>>,
    },
    Rpc {
        name: "RevokeApiKey",
        convert: plain::<pb::RevokeApiKeyRequest, ApiKeyId>,
    },
    Rpc {
        name: "ListTenants",
        convert: plain::<pb::ListTenantsRequest, ListPage<TenantId>>,
    },
    Rpc {
        name: "DeleteTenant",
        convert: plain::<pb::DeleteTenantRequest, TenantId>,
    },
];

/// Runs the conversion an input of the `request` target chooses.
pub fn convert(input: &[u8]) {
    if let Some((&selector, bytes)) = input.split_first() {
        (RPCS[usize::from(selector) % RPCS.len()].convert)(bytes);
    }
}

/// The `request` target's input for `request` sent to the RPC `name`.
///
/// # Panics
/// When no RPC is called `name`.
pub fn input(name: &str, request: &impl Message) -> Vec<u8> {
    let selector = RPCS
        .iter()
        .position(|rpc| rpc.name == name)
        .unwrap_or_else(|| panic!("no RPC {name}"));
    let mut input = vec![u8::try_from(selector).expect("fewer than 256 RPCs")];
    request.encode(&mut input).expect("a Vec grows to any size");
    input
}

/// A refusal names every violated field, and says why each is wrong.
fn check_refusal(v: &Violations) {
    assert!(
        !v.is_empty(),
        "a request was refused without naming a field"
    );
    for f in v.iter() {
        assert!(!f.field.is_empty(), "a violation names no field: {f:?}");
        assert!(!f.description.is_empty(), "a violation says nothing: {f:?}");
    }
}

/// What a handler does with a request that names no tenant: `parse`.
fn plain<R: Message + Default, C: TryFrom<R, Error = Violations>>(bytes: &[u8]) {
    let Ok(request) = R::decode(bytes) else {
        return;
    };
    if let Err(v) = C::try_from(request) {
        check_refusal(&v);
    }
}

/// What a handler does with a request that names tenants: `parse_scoped`.
fn scoped<R: Message + Default + Tenanted, C: TryFrom<R, Error = Violations>>(bytes: &[u8]) {
    let Ok(request) = R::decode(bytes) else {
        return;
    };
    if let Err(v) = request::scoped::<R, C>(request) {
        check_refusal(&v);
    }
}

/// A published message's JSON payload is valid JSON, whatever value it came from.
fn check_publish(from: &pb::PublishRequest, result: &Result<Publish, Violations>) {
    match result {
        Ok(publish) => {
            if let Some(pb::publish_request::Payload::Json(_)) = from.payload {
                assert_eq!(
                    publish.message.content_type,
                    NewMessage::DEFAULT_CONTENT_TYPE
                );
                if let Err(e) =
                    serde_json::from_slice::<serde_json::Value>(&publish.message.payload)
                {
                    panic!(
                        "a JSON payload is not JSON ({e}): {:?}",
                        publish.message.payload
                    );
                }
            }
        }
        Err(v) => check_refusal(v),
    }
}

fn publish(bytes: &[u8]) {
    let Ok(request) = pb::PublishRequest::decode(bytes) else {
        return;
    };
    check_publish(&request, &Publish::try_from(request.clone()));
}

/// A batch is refused as a whole, or each of its events converts on its own.
fn publish_batch(bytes: &[u8]) {
    let Ok(request) = pb::PublishBatchRequest::decode(bytes) else {
        return;
    };
    let events = request.requests.clone();
    match PublishBatch::try_from(request) {
        Ok(PublishBatch(results)) => {
            assert_eq!(results.len(), events.len());
            for (event, result) in events.iter().zip(&results) {
                check_publish(event, result);
            }
        }
        Err(v) => check_refusal(&v),
    }
}
