//! Domain values into proto messages: what every response and stream item carries.

use std::time::{Duration, SystemTime};

use prost_types::value::Kind;

use super::pb;
use crate::analytics::{Bucket, EndpointFigures, FailureKind, HealthStatus};
use crate::auth::{ApiKey, Scope};
use crate::domain::{
    Attempt, Delivery, DeliveryState, DisabledReason, Jitter, Message, RateLimitOverride,
    RetryOverride, StatusKind, TransportError,
};
use crate::health::{Overall, Report as HealthReport};
use crate::policy::protection::{CircuitStatus, EndpointStatus};
use crate::service::{Accepted, Analytics, EndpointView};
use crate::status::StatusItem;
use crate::storage::TenantSummary;

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

/// The payload as a `google.protobuf.Value`, when it is JSON.
fn json_value(content_type: &str, payload: &[u8]) -> Option<prost_types::Value> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
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
        p95_ms: f.rollup.latency_ms(0.95).unwrap_or_default(),
    }
}

fn time_bucket(b: &Bucket) -> pb::TimeBucket {
    pb::TimeBucket {
        start_time: Some(timestamp(b.start)),
        attempts: b.rollup.attempts,
        succeeded: b.rollup.succeeded,
        failed: b.rollup.failed,
        p95_ms: b.rollup.latency_ms(0.95).unwrap_or_default(),
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

pub fn message(m: &Message) -> pb::Message {
    pb::Message {
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
    }
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
    use super::*;

    #[test]
    fn json_content_is_shown_as_a_value() {
        assert!(json_value("application/json; charset=utf-8", br#"{"a":1}"#).is_some());
        assert!(json_value("application/cloudevents+json", br#"[1]"#).is_some());
        assert!(json_value("text/plain", br#"{"a":1}"#).is_none());
        assert!(json_value("application/json", b"not json").is_none());
    }
}
