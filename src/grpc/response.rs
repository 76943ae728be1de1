//! Domain values into proto messages: what every response and stream item carries, and
//! how much of a list one answer carries.
//!
//! Every answer fits in the 4 MiB stock gRPC clients accept by default: the items of a
//! page are taken while they fit in [`ANSWER_BUDGET`], and the rest is left to the next
//! page. No item comes near the 512 KiB left between the budget and 4 MiB (the largest,
//! an endpoint with every field at its limit, takes 78 KiB), so a page always holds at
//! least one and moves on. A message with a payload at its limit and every other field at
//! its own takes 3.04 MiB, which leaves room for about 3,000 of its deliveries per page.

use std::time::{Duration, SystemTime};

use prost::Message as _;
use prost_types::value::Kind;

use super::pb;
use crate::analytics::{Bucket, EndpointFigures, FailureKind, HealthStatus};
use crate::auth::{ApiKey, Scope};
use crate::domain::{
    Attempt, Delivery, DeliveryState, DisabledReason, Jitter, Message, NewMessage,
    RateLimitOverride, RetryOverride, StatusKind, TransportError, is_json,
};
use crate::health::{Overall, Report as HealthReport};
use crate::policy::protection::{CircuitStatus, EndpointStatus};
use crate::service::{Accepted, Analytics, EndpointView};
use crate::status::StatusItem;
use crate::storage::TenantSummary;

/// How much of an answer its items may take: 3.5 MiB, so that with its other fields the
/// answer stays under the 4 MiB stock clients accept.
pub const ANSWER_BUDGET: usize = 3_670_016;

/// The largest payload a message may carry, and so the most `WEBHOOK_MAX_PAYLOAD_BYTES`
/// may allow: 3 MiB. A message with it and every other field at its limit fits in
/// [`ANSWER_BUDGET`] (its `payload_json` is left out when it would not), and a Publish
/// carrying it fits in the 4 MiB the server accepts.
pub const MAX_PAYLOAD_BYTES: u32 = 3 * 1024 * 1024;

/// The bytes `item` takes as a field of an answer (numbered below 16, as every field of
/// an answer's items is), or as an element of a repeated one.
pub fn field_len(item: &impl prost::Message) -> usize {
    let len = item.encoded_len();
    1 + prost::length_delimiter_len(len) + len
}

/// The items of a page as protos, as many as fit in [`ANSWER_BUDGET`] beside the `used`
/// bytes of the answer's other fields (at least one), and the cursor after the last one
/// answered: `next` when every item was. A page token is small enough for the room above
/// the budget.
pub fn fit<T, C, P: prost::Message>(
    items: &[T],
    next: Option<C>,
    used: usize,
    convert: impl Fn(&T) -> P,
    key: impl Fn(&T) -> C,
) -> (Vec<P>, Option<C>) {
    let mut answered = Vec::with_capacity(items.len());
    let mut size = used;
    for (i, item) in items.iter().enumerate() {
        let proto = convert(item);
        size += field_len(&proto);
        if size > ANSWER_BUDGET && i > 0 {
            return (answered, Some(key(&items[i - 1])));
        }
        answered.push(proto);
    }
    (answered, next)
}

pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    t.into()
}

pub fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration::try_from(d).unwrap_or(prost_types::Duration {
        seconds: i64::MAX,
        nanos: 0,
    })
}

/// A JSON value as a `google.protobuf.Value`.
pub fn proto_value(value: serde_json::Value) -> prost_types::Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.into_iter().map(proto_value).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(prost_types::Struct {
            fields: o.into_iter().map(|(k, v)| (k, proto_value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// The payload as a `google.protobuf.Value`, when it is JSON nested no deeper than a
/// client can decode (a message stored before the limit may be).
fn json_value(content_type: &str, payload: &[u8]) -> Option<prost_types::Value> {
    NewMessage::check_json_depth(content_type, payload).ok()?;
    if !is_json(content_type) {
        return None;
    }
    serde_json::from_slice(payload).ok().map(proto_value)
}

fn retry_proto(r: &RetryOverride) -> pb::RetryPolicy {
    pb::RetryPolicy {
        max_retries: r.max_retries,
        initial_delay: r.initial_delay.map(duration),
        max_delay: r.max_delay.map(duration),
        multiplier: r.multiplier,
        jitter: match r.jitter {
            None => pb::RetryJitter::Unspecified,
            Some(Jitter::Full) => pb::RetryJitter::Full,
            Some(Jitter::Proportional) => pb::RetryJitter::Proportional,
        } as i32,
    }
}

pub fn kind_proto(kind: StatusKind) -> pb::StatusEventKind {
    match kind {
        StatusKind::AttemptStarted => pb::StatusEventKind::AttemptStarted,
        StatusKind::AttemptSucceeded => pb::StatusEventKind::AttemptSucceeded,
        StatusKind::AttemptFailed => pb::StatusEventKind::AttemptFailed,
        StatusKind::RetryScheduled => pb::StatusEventKind::RetryScheduled,
        StatusKind::DeliveryExhausted => pb::StatusEventKind::DeliveryExhausted,
        StatusKind::DeliveryCancelled => pb::StatusEventKind::DeliveryCancelled,
        StatusKind::EndpointDisabled => pb::StatusEventKind::EndpointDisabled,
        StatusKind::EndpointEnabled => pb::StatusEventKind::EndpointEnabled,
        StatusKind::CircuitOpened => pb::StatusEventKind::CircuitOpened,
        StatusKind::CircuitClosed => pb::StatusEventKind::CircuitClosed,
    }
}

pub fn status_item(item: StatusItem) -> pb::StreamDeliveryStatusResponse {
    use pb::stream_delivery_status_response::Item;
    let item = match item {
        StatusItem::Heartbeat { at, cursor } => Item::Heartbeat(pb::Heartbeat {
            time: Some(timestamp(at)),
            cursor,
        }),
        StatusItem::Event(e) => Item::Event(pb::DeliveryStatusEvent {
            cursor: e.cursor,
            time: Some(timestamp(e.at)),
            kind: kind_proto(e.kind) as i32,
            message_id: e
                .message_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            endpoint_id: e
                .endpoint_id
                .as_ref()
                .map(|id| id.public().to_owned())
                .unwrap_or_default(),
            event_type: e
                .event_type
                .as_ref()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
            attempt_number: e.attempt_number.unwrap_or_default(),
            status_code: e.status_code.map_or(0, u32::from),
            error_kind: error_kind(e.transport_error) as i32,
            error: e.error.clone(),
            latency: e.latency.map(duration),
            next_attempt_time: e.next_attempt_at.map(timestamp),
            disabled_reason: disabled_reason(e.disabled_reason) as i32,
        }),
    };
    pb::StreamDeliveryStatusResponse { item: Some(item) }
}

fn failure_kind_proto(kind: FailureKind) -> pb::FailureKind {
    match kind {
        FailureKind::Timeout => pb::FailureKind::Timeout,
        FailureKind::Connection => pb::FailureKind::Connection,
        FailureKind::Dns => pb::FailureKind::Dns,
        FailureKind::Tls => pb::FailureKind::Tls,
        FailureKind::Transport => pb::FailureKind::Transport,
        FailureKind::Redirect => pb::FailureKind::Redirect,
        FailureKind::ClientError => pb::FailureKind::ClientError,
        FailureKind::ServerError => pb::FailureKind::ServerError,
        FailureKind::Blocked => pb::FailureKind::Blocked,
    }
}

fn endpoint_figures(f: &EndpointFigures) -> pb::EndpointFigures {
    pb::EndpointFigures {
        endpoint_id: f.endpoint.public().to_owned(),
        attempts: f.rollup.attempts,
        succeeded: f.rollup.succeeded,
        failed: f.rollup.failed,
        success_rate: f.rollup.success_rate().unwrap_or_default(),
        p50_ms: f.rollup.latency_ms(0.5).unwrap_or_default(),
        p95_ms: f.rollup.latency_ms(0.95).unwrap_or_default(),
        p99_ms: f.rollup.latency_ms(0.99).unwrap_or_default(),
    }
}

fn time_bucket(b: &Bucket) -> pb::TimeBucket {
    pb::TimeBucket {
        start_time: Some(timestamp(b.start)),
        attempts: b.rollup.attempts,
        succeeded: b.rollup.succeeded,
        failed: b.rollup.failed,
        p50_ms: b.rollup.latency_ms(0.5).unwrap_or_default(),
        p95_ms: b.rollup.latency_ms(0.95).unwrap_or_default(),
        p99_ms: b.rollup.latency_ms(0.99).unwrap_or_default(),
    }
}

pub fn analytics(a: &Analytics) -> pb::GetAnalyticsResponse {
    let Analytics { report, pending } = a;
    let total = &report.total;
    let ms = |q: f64| total.latency_ms(q).unwrap_or_default();
    let trend = report.trend();
    pb::GetAnalyticsResponse {
        start_time: Some(timestamp(report.from)),
        end_time: Some(timestamp(report.to)),
        totals: Some(pb::DeliveryTotals {
            deliveries: total.deliveries,
            attempts: total.attempts,
            succeeded: total.succeeded,
            failed: total.failed,
            exhausted: total.exhausted,
            pending: *pending,
        }),
        success_rate: total.success_rate().unwrap_or_default(),
        latency: Some(pb::LatencySummary {
            avg_ms: total.latency_avg_ms(),
            p50_ms: ms(0.5),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            max_ms: total.latency_max_us as f64 / 1000.0,
            min_ms: total.latency_min_ms().unwrap_or_default(),
        }),
        status_codes: total
            .status_codes
            .iter()
            .map(|(code, count)| pb::StatusCodeCount {
                status_code: u32::from(*code),
                count: *count,
            })
            .collect(),
        failure_kinds: total
            .failure_kinds
            .iter()
            .map(|(kind, count)| pb::FailureKindCount {
                kind: failure_kind_proto(*kind) as i32,
                count: *count,
            })
            .collect(),
        top_endpoints_by_volume: report.top_by_volume.iter().map(endpoint_figures).collect(),
        top_endpoints_by_failure_rate: report
            .top_by_failure_rate
            .iter()
            .map(endpoint_figures)
            .collect(),
        hourly: report.hourly.iter().map(time_bucket).collect(),
        daily: report.daily.iter().map(time_bucket).collect(),
        trend: Some(pb::Trend {
            previous_attempts: report.previous.attempts,
            previous_success_rate: report.previous.success_rate().unwrap_or_default(),
            previous_p95_ms: report.previous.latency_ms(0.95).unwrap_or_default(),
            attempts_change: trend.attempts_change,
            success_rate_change: trend.success_rate_change,
        }),
        health_score: report.health.score,
        health_status: match report.health.status {
            HealthStatus::Excellent => pb::HealthStatus::Excellent,
            HealthStatus::Good => pb::HealthStatus::Good,
            HealthStatus::Fair => pb::HealthStatus::Fair,
            HealthStatus::Poor => pb::HealthStatus::Poor,
            HealthStatus::Critical => pb::HealthStatus::Critical,
        } as i32,
    }
}

fn rate_limit_proto(o: RateLimitOverride) -> Option<pb::RateLimit> {
    match o {
        RateLimitOverride::Default => None,
        RateLimitOverride::Unlimited => Some(pb::RateLimit::default()),
        RateLimitOverride::Custom {
            limit,
            window,
            burst,
        } => Some(pb::RateLimit {
            limit,
            window: window.map(duration),
            burst: burst.unwrap_or(0),
        }),
    }
}

fn status_proto(s: &EndpointStatus) -> pb::EndpointStatus {
    let (circuit_state, circuit_retry_time) = match s.circuit {
        CircuitStatus::Closed => (pb::CircuitState::Closed, None),
        CircuitStatus::Open { until } => (pb::CircuitState::Open, Some(timestamp(until))),
        CircuitStatus::HalfOpen => (pb::CircuitState::HalfOpen, None),
    };
    pb::EndpointStatus {
        circuit_state: circuit_state as i32,
        circuit_retry_time,
        consecutive_failures: s.consecutive_failures,
        in_flight: s.in_flight,
        rate_limit_used: s.rate_used,
        rate_limit_max: s.rate_limit.map_or(0, |l| l.limit()),
        rate_limit_window: s.rate_limit.map(|l| duration(l.window())),
    }
}

pub fn endpoint(view: &EndpointView) -> pb::Endpoint {
    let EndpointView {
        endpoint: e,
        status,
    } = view;
    pb::Endpoint {
        rate_limit: rate_limit_proto(e.protection.rate_limit),
        circuit_breaker: (e.protection.failure_threshold.is_some()
            || e.protection.breaker_timeout.is_some())
        .then(|| pb::CircuitBreakerPolicy {
            failure_threshold: e.protection.failure_threshold,
            timeout: e.protection.breaker_timeout.map(duration),
        }),
        max_in_flight: e.protection.max_in_flight,
        failing_since: e.failing_since.map(timestamp),
        status: Some(status_proto(status)),
        id: e.id.public().to_owned(),
        tenant_id: e.tenant.to_string(),
        url: e.url.to_string(),
        description: e.description.clone(),
        event_types: e
            .event_types
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        channels: e.channels.clone(),
        headers: e
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect(),
        retry_policy: Some(retry_proto(&e.retry)),
        enabled: e.is_enabled(),
        disabled_reason: disabled_reason(e.disabled) as i32,
        create_time: Some(timestamp(e.created_at)),
        update_time: Some(timestamp(e.updated_at)),
        previous_secret_expire_time: e
            .secrets
            .previous_expires_at()
            .filter(|t| *t > SystemTime::now())
            .map(timestamp),
    }
}

/// The message, with its payload as JSON only when the message still fits in
/// [`ANSWER_BUDGET`] with it.
pub fn message(m: &Message) -> pb::Message {
    let mut message = pb::Message {
        id: m.id.to_string(),
        tenant_id: m.tenant.to_string(),
        event_type: m.event_type.as_str().to_owned(),
        payload: m.payload.to_vec(),
        content_type: m.content_type.clone(),
        payload_json: json_value(&m.content_type, &m.payload),
        channels: m.channels.clone(),
        metadata: m.metadata.clone().into_iter().collect(),
        idempotency_key: m.idempotency_key.clone().unwrap_or_default(),
        create_time: Some(timestamp(m.created_at)),
        expire_time: Some(timestamp(m.expires_at)),
        expunge_time: m.expunged_at.map(timestamp),
    };
    if message.encoded_len() > ANSWER_BUDGET {
        message.payload_json = None;
    }
    message
}

pub fn delivery(d: &Delivery) -> pb::Delivery {
    pb::Delivery {
        message_id: d.message_id.to_string(),
        endpoint_id: d.endpoint_id.public().to_owned(),
        state: match d.state {
            DeliveryState::Pending => pb::DeliveryState::Pending,
            DeliveryState::InFlight => pb::DeliveryState::InFlight,
            DeliveryState::Succeeded => pb::DeliveryState::Succeeded,
            DeliveryState::Failed => pb::DeliveryState::Failed,
            DeliveryState::Cancelled => pb::DeliveryState::Cancelled,
        } as i32,
        attempt_count: d.attempt_count,
        next_attempt_time: d.next_attempt_at.map(timestamp),
        create_time: Some(timestamp(d.created_at)),
        update_time: Some(timestamp(d.updated_at)),
    }
}

fn error_kind(e: Option<TransportError>) -> pb::AttemptErrorKind {
    match e {
        None => pb::AttemptErrorKind::Unspecified,
        Some(TransportError::Timeout) => pb::AttemptErrorKind::Timeout,
        Some(TransportError::Dns) => pb::AttemptErrorKind::Dns,
        Some(TransportError::Connection) => pb::AttemptErrorKind::Connection,
        Some(TransportError::Tls) => pb::AttemptErrorKind::Tls,
        Some(TransportError::Other) => pb::AttemptErrorKind::Transport,
        Some(TransportError::Blocked) => pb::AttemptErrorKind::Blocked,
    }
}

fn disabled_reason(reason: Option<DisabledReason>) -> pb::DisabledReason {
    match reason {
        None => pb::DisabledReason::Unspecified,
        Some(DisabledReason::Manual) => pb::DisabledReason::Manual,
        Some(DisabledReason::Gone) => pb::DisabledReason::Gone,
        Some(DisabledReason::Failing) => pb::DisabledReason::Failing,
    }
}

pub fn attempt(a: &Attempt) -> pb::Attempt {
    pb::Attempt {
        id: a.id.to_string(),
        message_id: a.message_id.to_string(),
        endpoint_id: a.endpoint_id.public().to_owned(),
        attempt_number: a.number,
        start_time: Some(timestamp(a.record.started_at)),
        latency: Some(duration(a.record.latency)),
        status_code: a.record.status_code.map_or(0, u32::from),
        error_kind: error_kind(a.record.transport_error) as i32,
        error: a.record.error.clone(),
        response_excerpt: a.record.response_excerpt.clone(),
        succeeded: a.succeeded,
    }
}

pub fn accepted(a: Accepted) -> pb::PublishResponse {
    pb::PublishResponse {
        message_id: a.message_id.to_string(),
        delivery_count: a.deliveries,
        duplicate: a.duplicate,
    }
}

pub fn health(report: HealthReport) -> pb::GetHealthResponse {
    let health = match report.overall {
        Overall::Healthy => pb::ServiceHealth::Healthy,
        Overall::Degraded => pb::ServiceHealth::Degraded,
        Overall::Unhealthy => pb::ServiceHealth::Unhealthy,
    };
    pb::GetHealthResponse {
        health: health as i32,
        checks: report
            .checks
            .into_iter()
            .map(|c| pb::HealthCheck {
                name: c.name.to_owned(),
                ok: c.ok,
                detail: c.detail,
            })
            .collect(),
        profile: report.profile,
    }
}

fn scope_proto(scope: Scope) -> pb::Scope {
    match scope {
        Scope::Publish => pb::Scope::Publish,
        Scope::Read => pb::Scope::Read,
        Scope::Write => pb::Scope::Write,
        Scope::Admin => pb::Scope::Admin,
    }
}

pub fn api_key(k: &ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: k.id.to_string(),
        name: k.name.clone(),
        scopes: k.scopes.iter().map(|s| scope_proto(s) as i32).collect(),
        tenant_id: k
            .tenant
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        create_time: Some(timestamp(k.created_at)),
        expire_time: k.expires_at.map(timestamp),
        last_used_time: k.last_used_at.map(timestamp),
        revoke_time: k.revoked_at.map(timestamp),
        publish_rate_limit: k.publish_limit.map(|r| pb::RateLimit {
            limit: r.limit(),
            window: Some(duration(r.window())),
            burst: r.burst(),
        }),
    }
}

pub fn tenant(t: &TenantSummary) -> pb::Tenant {
    pb::Tenant {
        tenant_id: t.tenant.to_string(),
        endpoint_count: t.endpoints,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::Bytes;

    use super::*;
    use crate::domain::{
        CustomHeader, EndpointId, EventType, MAX_CHANNEL_LEN, MessageId, TenantId,
    };
    use crate::grpc::request::{
        MAX_CHANNELS, MAX_CONTENT_TYPE, MAX_ENDPOINT_FILTERS, MAX_METADATA, MAX_METADATA_KEY,
        MAX_METADATA_VALUE,
    };

    /// What stock clients accept in one message.
    const CLIENT_LIMIT: usize = 4 * 1024 * 1024;

    fn text(len: usize, i: usize) -> String {
        format!("{i:06}{}", "a".repeat(len - 6))
    }

    /// An endpoint as answered with every field at its limit.
    fn largest_endpoint() -> pb::Endpoint {
        let header_value = CustomHeader::MAX_TOTAL_SIZE / CustomHeader::MAX_COUNT - 8;
        pb::Endpoint {
            id: text(EndpointId::MAX_LEN, 0),
            url: format!("https://{}", text(2048 - 8, 0)),
            description: text(crate::domain::Endpoint::MAX_DESCRIPTION_LEN, 0),
            event_types: (0..MAX_ENDPOINT_FILTERS)
                .map(|i| format!("{}.*", text(EventType::MAX_LEN, i)))
                .collect(),
            channels: (0..MAX_ENDPOINT_FILTERS)
                .map(|i| text(MAX_CHANNEL_LEN, i))
                .collect(),
            headers: (0..CustomHeader::MAX_COUNT)
                .map(|i| (format!("x-h{i:04}"), text(header_value, i)))
                .collect(),
            retry_policy: Some(pb::RetryPolicy::default()),
            previous_secret_expire_time: Some(timestamp(SystemTime::now())),
            create_time: Some(timestamp(SystemTime::now())),
            update_time: Some(timestamp(SystemTime::now())),
            failing_since: Some(timestamp(SystemTime::now())),
            rate_limit: Some(pb::RateLimit::default()),
            circuit_breaker: Some(pb::CircuitBreakerPolicy::default()),
            max_in_flight: Some(u32::MAX),
            status: Some(pb::EndpointStatus {
                circuit_retry_time: Some(timestamp(SystemTime::now())),
                rate_limit_window: Some(duration(Duration::from_secs(1))),
                ..Default::default()
            }),
            tenant_id: text(TenantId::MAX_LEN, 0),
            ..Default::default()
        }
    }

    #[test]
    fn the_largest_item_fits_above_the_budget() {
        let len = field_len(&largest_endpoint());
        assert!(
            ANSWER_BUDGET + len < CLIENT_LIMIT,
            "an endpoint at its limits takes {len} bytes"
        );
    }

    #[test]
    fn the_largest_message_fits_in_the_budget() {
        let payload = format!("\"{}\"", "a".repeat(MAX_PAYLOAD_BYTES as usize - 2));
        let m = Message {
            id: MessageId::generate(),
            tenant: TenantId::parse(&text(TenantId::MAX_LEN, 0)).unwrap(),
            event_type: EventType::parse(&text(EventType::MAX_LEN, 0)).unwrap(),
            payload: Bytes::from(payload),
            content_type: format!("application/{}+json", text(MAX_CONTENT_TYPE - 17, 0)),
            idempotency_key: Some(text(crate::domain::MAX_IDEMPOTENCY_KEY_LEN, 0)),
            channels: (0..MAX_CHANNELS)
                .map(|i| text(MAX_CHANNEL_LEN, i))
                .collect(),
            metadata: (0..MAX_METADATA)
                .map(|i| (text(MAX_METADATA_KEY, i), text(MAX_METADATA_VALUE, i)))
                .collect::<BTreeMap<_, _>>(),
            created_at: SystemTime::now(),
            trace: None,
            expires_at: SystemTime::now(),
            expunged_at: Some(SystemTime::now()),
        };
        let answered = message(&m);
        assert!(
            answered.payload_json.is_none(),
            "too large beside the payload"
        );
        let len = field_len(&answered);
        assert!(
            len <= ANSWER_BUDGET,
            "the largest message takes {len} bytes"
        );
        // With a small JSON payload, its Value form is answered too.
        let small = message(&Message {
            payload: Bytes::from_static(br#"{"a":[1,2]}"#),
            ..m
        });
        assert!(small.payload_json.is_some());
    }

    #[test]
    fn json_at_the_depth_limit_decodes_in_a_stock_client() {
        use prost::Message as _;
        let nested = |depth: usize| format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        let answer = |depth: usize| pb::GetMessageResponse {
            message: Some(pb::Message {
                payload_json: json_value("application/json", nested(depth).as_bytes()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let deepest = answer(NewMessage::MAX_JSON_DEPTH);
        assert!(deepest.message.as_ref().unwrap().payload_json.is_some());
        pb::GetMessageResponse::decode(deepest.encode_to_vec().as_slice())
            .expect("prost's default recursion limit decodes it");
        // One level more would not decode: it is neither accepted nor answered.
        let mut deeper = deepest.clone();
        deeper.message.as_mut().unwrap().payload_json =
            serde_json::from_str(&nested(NewMessage::MAX_JSON_DEPTH + 1))
                .ok()
                .map(proto_value);
        assert!(pb::GetMessageResponse::decode(deeper.encode_to_vec().as_slice()).is_err());
        assert!(
            answer(NewMessage::MAX_JSON_DEPTH + 1)
                .message
                .unwrap()
                .payload_json
                .is_none()
        );
    }

    #[test]
    fn a_page_ends_before_the_budget_with_one_item_at_least() {
        let mib = 1024 * 1024;
        let blob = |n: &usize| pb::RawPayload {
            data: vec![0; *n],
            content_type: String::new(),
        };
        let sizes = [mib, mib, mib, mib, mib];
        let (page, next) = fit(&sizes[..], Some(99), 0, blob, |_| 7);
        assert_eq!(page.len(), 3, "3 MiB and a little fit in 3.5 MiB; 4 do not");
        assert_eq!(
            next,
            Some(7),
            "the next page starts after the last answered"
        );
        let (page, next) = fit(&sizes[..2], Some(99), 0, blob, |_| 7);
        assert_eq!(
            (page.len(), next),
            (2, Some(99)),
            "all fit: the page's own cursor"
        );
        let (page, next) = fit(&sizes[..2], None, ANSWER_BUDGET, blob, |_| 7);
        assert_eq!((page.len(), next), (1, Some(7)), "one item at least");
    }

    #[test]
    fn json_content_is_shown_as_a_value() {
        assert!(json_value("application/json; charset=utf-8", br#"{"a":1}"#).is_some());
        assert!(json_value("application/cloudevents+json", br#"[1]"#).is_some());
        assert!(json_value("text/plain", br#"{"a":1}"#).is_none());
        assert!(json_value("application/json", b"not json").is_none());
    }
}
