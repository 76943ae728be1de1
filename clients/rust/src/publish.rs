//! An event to publish: its type, its payload (a JSON value or exact bytes) and the
//! options Herald keeps with it. Turning it into a `PublishRequest` is all it does.

use std::collections::BTreeMap;

use crate::pb;
use prost_types::value::Kind;

/// One event for [`Client::publish`](crate::Client::publish) or
/// [`Client::publish_batch`](crate::Client::publish_batch).
///
/// ```
/// # use herald_client::Event;
/// let event = Event::json("invoice.paid", serde_json::json!({"invoice": "in_1", "cents": 4200}))
///     .idempotency_key("in_1/paid")
///     .channel("billing")
///     .metadata("source", "billing-service");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    request: pb::PublishRequest,
}

impl Event {
    /// An event whose webhooks carry `value` as compact JSON (`application/json`).
    ///
    /// Numbers travel as `google.protobuf.Value` doubles: integers beyond 2^53 lose
    /// precision. Send those as [`Event::raw`] bytes.
    pub fn json(event_type: impl Into<String>, value: serde_json::Value) -> Self {
        Self::with_payload(
            event_type,
            pb::publish_request::Payload::Json(to_value(value)),
        )
    }

    /// An event whose webhooks carry `data` unchanged, with its content type.
    pub fn raw(
        event_type: impl Into<String>,
        data: impl Into<Vec<u8>>,
        content_type: impl Into<String>,
    ) -> Self {
        Self::with_payload(
            event_type,
            pb::publish_request::Payload::Raw(pb::RawPayload {
                data: data.into(),
                content_type: content_type.into(),
            }),
        )
    }

    fn with_payload(event_type: impl Into<String>, payload: pb::publish_request::Payload) -> Self {
        Event {
            request: pb::PublishRequest {
                event_type: event_type.into(),
                payload: Some(payload),
                ..Default::default()
            },
        }
    }

    /// Publishing again with the same key returns the first message and creates nothing.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.request.idempotency_key = key.into();
        self
    }

    /// Adds a channel: only endpoints subscribed to one of the event's channels (or to
    /// none) receive it.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.request.channels.push(channel.into());
        self
    }

    /// Adds a label kept with the message.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.request.metadata.insert(key.into(), value.into());
        self
    }

    /// Publishes in this tenant rather than the client's default.
    pub fn tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.request.tenant_id = tenant_id.into();
        self
    }

    /// The request as sent (before the client fills in its default tenant).
    pub fn into_request(self) -> pb::PublishRequest {
        self.request
    }
}

impl From<Event> for pb::PublishRequest {
    fn from(event: Event) -> Self {
        event.into_request()
    }
}

/// `serde_json::Value` → `google.protobuf.Value`, one to one but for numbers (doubles).
fn to_value(value: serde_json::Value) -> prost_types::Value {
    use serde_json::Value as Json;
    let kind = match value {
        Json::Null => Kind::NullValue(prost_types::NullValue::NullValue.into()),
        Json::Bool(b) => Kind::BoolValue(b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Kind::StringValue(s),
        Json::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        Json::Object(fields) => Kind::StructValue(prost_types::Struct {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k, to_value(v)))
                .collect::<BTreeMap<_, _>>(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_json_as_a_protobuf_value() {
        let request = Event::json(
            "a.b",
            serde_json::json!({"n": 1, "list": [true, null, "x"]}),
        )
        .into_request();
        let Some(pb::publish_request::Payload::Json(value)) = request.payload else {
            panic!("not JSON: {request:?}");
        };
        let Some(Kind::StructValue(object)) = value.kind else {
            panic!("not an object");
        };
        assert_eq!(object.fields["n"].kind, Some(Kind::NumberValue(1.0)));
        let Some(Kind::ListValue(list)) = &object.fields["list"].kind else {
            panic!("not a list");
        };
        assert_eq!(list.values.len(), 3);
        assert_eq!(list.values[0].kind, Some(Kind::BoolValue(true)));
    }

    #[test]
    fn keeps_raw_bytes_and_options() {
        let request = Event::raw("a.b", vec![0, 255], "application/octet-stream")
            .idempotency_key("k")
            .channel("c1")
            .channel("c2")
            .metadata("m", "v")
            .tenant("t")
            .into_request();
        assert_eq!(
            request.payload,
            Some(pb::publish_request::Payload::Raw(pb::RawPayload {
                data: vec![0, 255],
                content_type: "application/octet-stream".into(),
            }))
        );
        assert_eq!(request.idempotency_key, "k");
        assert_eq!(request.channels, ["c1", "c2"]);
        assert_eq!(request.metadata["m"], "v");
        assert_eq!(request.tenant_id, "t");
    }
}
