//! Page tokens, from arbitrary text and from arbitrary cursors.
//!
//! Decoding any text never panics, and a token that decodes encodes to one that decodes to
//! the same cursor. A cursor built from the input (an attempt id, or a key the list could
//! hold, a message's deliveries included) survives encode then decode. Each list takes its own tokens only: a token given
//! to another list is refused naming `page_token`.
#![no_main]

use herald::auth::ApiKeyId;
use herald::domain::{EndpointId, TenantId};
use herald::grpc::pb;
use herald::grpc::request::{GetMessage, ListPage, PageToken};
use herald::service::{AttemptsQuery, Violations};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    if let Some(token) = PageToken::decode(&text) {
        round_trip(&token);
    }
    if let Some(id) = input.first_chunk::<8>() {
        round_trip(&PageToken::Attempts(i64::from_le_bytes(*id)));
    }
    if let Ok(id) = EndpointId::parse_stored(&text) {
        round_trip(&PageToken::Endpoints(id.clone()));
        round_trip(&PageToken::Deliveries(id));
    }
    if let Ok(id) = ApiKeyId::parse(&text) {
        round_trip(&PageToken::ApiKeys(id));
    }
    if let Ok(id) = TenantId::parse(&text) {
        round_trip(&PageToken::Tenants(id));
    }
});

fn round_trip(token: &PageToken) {
    let encoded = token.encode();
    assert_eq!(PageToken::decode(&encoded).as_ref(), Some(token));
    let accepted = [
        matches!(token, PageToken::Endpoints(_))
            == accepts(ListPage::<EndpointId>::try_from(pb::ListEndpointsRequest {
                page_token: encoded.clone(),
                ..Default::default()
            })),
        matches!(token, PageToken::Deliveries(_))
            == accepts(GetMessage::try_from(pb::GetMessageRequest {
                message_id: "msg_1".into(),
                page_token: encoded.clone(),
                ..Default::default()
            })),
        matches!(token, PageToken::Attempts(_))
            == accepts(AttemptsQuery::try_from(pb::ListAttemptsRequest {
                message_id: "msg_1".into(),
                page_token: encoded.clone(),
                ..Default::default()
            })),
        matches!(token, PageToken::ApiKeys(_))
            == accepts(ListPage::<ApiKeyId>::try_from(pb::ListApiKeysRequest {
                page_token: encoded.clone(),
                ..Default::default()
            })),
        matches!(token, PageToken::Tenants(_))
            == accepts(ListPage::<TenantId>::try_from(pb::ListTenantsRequest {
                page_token: encoded.clone(),
                ..Default::default()
            })),
    ];
    assert!(
        accepted.iter().all(|ok| *ok),
        "{token:?} as {encoded}: {accepted:?}"
    );
}

/// Whether a list took the token; a refusal names it.
fn accepts<T>(result: Result<T, Violations>) -> bool {
    match result {
        Ok(_) => true,
        Err(v) => {
            assert!(v.iter().all(|f| f.field == "page_token"), "{v:?}");
            false
        }
    }
}
