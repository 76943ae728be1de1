//! Proto ⇄ domain conversion: requests are parsed into domain values (each violation
//! recorded under its field path), domain values are rendered as proto messages.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use prost_types::value::Kind;

use super::ApiConfig;
use super::error::Violations;
use super::pb;
use crate::analytics::{Bucket, EndpointFigures, FailureKind, HealthStatus, Report};
use crate::delivery::guard::{CircuitStatus, EndpointStatus};
use crate::domain::{
    Attempt, CustomHeader, Delivery, DeliveryState, DisabledReason, Endpoint, EndpointId,
    EventPattern, EventType, Invalid, Jitter, MAX_CHANNEL_LEN, MAX_IDEMPOTENCY_KEY_LEN, Message,
    MessageId, NewMessage, ProtectionOverride, RateLimitOverride, RetryOverride, StatusKind,
    TransportError, parse_label,
};
use crate::status::{StatusFilter, StatusItem, WatchRequest};

/// Limits on repeated fields.
const MAX_CHANNELS: usize = 32;
const MAX_METADATA: usize = 32;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 1024;
const MAX_ENDPOINT_FILTERS: usize = 256;
pub const MAX_PAGE_SIZE: usize = 1000;
const DEFAULT_PAGE_SIZE: usize = 100;
/// Longest grace period a rotation may ask for.
const MAX_ROTATION_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
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

/// An optional timestamp; a set but unrepresentable one is a violation of `field`.
pub fn parse_time(
    v: &mut Violations,
    field: &str,
    t: Option<prost_types::Timestamp>,
) -> Option<SystemTime> {
    t.and_then(|t| {
        v.check(
            field,
            SystemTime::try_from(t).map_err(|_| Invalid("not a valid timestamp".into())),
        )
    })
}

/// A non-negative proto duration.
pub fn parse_duration(d: prost_types::Duration) -> Result<Duration, Invalid> {
    Duration::try_from(d).map_err(|_| Invalid("must be a non-negative duration".into()))
}

/// Compact JSON for a `google.protobuf.Value`. Whole numbers print without a fraction.
pub fn json_bytes(value: &prost_types::Value) -> Result<Vec<u8>, Invalid> {
    fn convert(value: &prost_types::Value) -> Result<serde_json::Value, Invalid> {
        Ok(match &value.kind {
            None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
            Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
            Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
            Some(Kind::NumberValue(n)) => {
                // 2^53: beyond it a double no longer holds every integer exactly.
                const EXACT: f64 = 9_007_199_254_740_992.0;
                if n.fract() == 0.0 && n.abs() <= EXACT {
                    serde_json::Value::from(*n as i64)
                } else {
                    serde_json::Number::from_f64(*n)
                        .map(serde_json::Value::Number)
                        .ok_or_else(|| Invalid("NaN and infinite numbers are not JSON".into()))?
                }
            }
            Some(Kind::StructValue(s)) => serde_json::Value::Object(
                s.fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), convert(v)?)))
                    .collect::<Result<_, Invalid>>()?,
            ),
            Some(Kind::ListValue(l)) => {
                serde_json::Value::Array(l.values.iter().map(convert).collect::<Result<_, _>>()?)
            }
        })
    }
    Ok(serde_json::to_vec(&convert(value)?).expect("a JSON value always serialises"))
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

fn parse_content_type(value: &str) -> Result<String, Invalid> {
    let essence = value.split(';').next().unwrap_or_default().trim();
    let valid = essence
        .split_once('/')
        .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty())
        && http::HeaderValue::from_str(value).is_ok();
    if valid {
        Ok(value.to_owned())
    } else {
        Err(Invalid(
            "must be a media type such as application/json".into(),
        ))
    }
}

fn parse_list<T>(
    v: &mut Violations,
    field: &str,
    values: Vec<String>,
    max: usize,
    parse: impl Fn(&str) -> Result<T, Invalid>,
) -> Vec<T> {
    if values.len() > max {
        v.add(field, format!("at most {max} entries"));
        return Vec::new();
    }
    values
        .iter()
        .enumerate()
        .filter_map(|(i, s)| v.check(format!("{field}[{i}]"), parse(s)))
        .collect()
}

fn parse_channels(v: &mut Violations, field: &str, values: Vec<String>) -> Vec<String> {
    parse_list(v, field, values, MAX_CHANNELS, |s| {
        parse_label(s, MAX_CHANNEL_LEN)
    })
}

fn parse_metadata(
    v: &mut Violations,
    field: &str,
    metadata: std::collections::HashMap<String, String>,
) -> BTreeMap<String, String> {
    if metadata.len() > MAX_METADATA {
        v.add(field, format!("at most {MAX_METADATA} entries"));
    }
    for (key, value) in &metadata {
        if key.is_empty() || key.len() > MAX_METADATA_KEY {
            v.add(field, format!("keys must be 1–{MAX_METADATA_KEY} bytes"));
        }
        if value.len() > MAX_METADATA_VALUE {
            v.add(
                format!("{field}[{key}]"),
                format!("at most {MAX_METADATA_VALUE} bytes"),
            );
        }
    }
    metadata.into_iter().collect()
}

/// Parses one publish request; `prefix` locates it in a batch.
pub fn parse_publish(
    req: pb::PublishRequest,
    prefix: &str,
    config: &ApiConfig,
    v: &mut Violations,
) -> Option<NewMessage> {
    let before = v.len();
    let event_type = v.check(
        join(prefix, "event_type"),
        EventType::parse(&req.event_type),
    );
    let payload = match req.payload {
        None => {
            v.add(join(prefix, "payload"), "required: set json or raw");
            None
        }
        Some(pb::publish_request::Payload::Json(value)) => v
            .check(join(prefix, "json"), json_bytes(&value))
            .map(|bytes| {
                (
                    Bytes::from(bytes),
                    NewMessage::DEFAULT_CONTENT_TYPE.to_owned(),
                )
            }),
        Some(pb::publish_request::Payload::Raw(raw)) => {
            let content_type = if raw.content_type.is_empty() {
                Ok(NewMessage::DEFAULT_CONTENT_TYPE.to_owned())
            } else {
                parse_content_type(&raw.content_type)
            };
            v.check(join(prefix, "raw.content_type"), content_type)
                .map(|ct| (Bytes::from(raw.data), ct))
        }
    };
    if let Some((bytes, _)) = &payload
        && bytes.len() > config.max_payload_bytes
    {
        v.add(
            join(prefix, "payload"),
            format!(
                "{} bytes is more than the limit of {}",
                bytes.len(),
                config.max_payload_bytes
            ),
        );
    }
    let idempotency_key = if req.idempotency_key.is_empty() {
        None
    } else {
        v.check(
            join(prefix, "idempotency_key"),
            parse_label(&req.idempotency_key, MAX_IDEMPOTENCY_KEY_LEN),
        )
    };
    let channels = parse_channels(v, &join(prefix, "channels"), req.channels);
    let metadata = parse_metadata(v, &join(prefix, "metadata"), req.metadata);
    if v.len() > before {
        return None;
    }
    let (event_type, (payload, content_type)) = (event_type?, payload?);
    Some(NewMessage {
        event_type,
        payload,
        content_type,
        idempotency_key,
        channels,
        metadata,
        trace: None,
    })
}

pub fn parse_retry(
    p: pb::RetryPolicy,
    field: &str,
    config: &ApiConfig,
    v: &mut Violations,
) -> Option<RetryOverride> {
    let mut dur = |name: &str, d: Option<prost_types::Duration>| {
        d.and_then(|d| v.check(join(field, name), parse_duration(d)))
    };
    let retry = RetryOverride {
        max_retries: p.max_retries,
        initial_delay: dur("initial_delay", p.initial_delay),
        max_delay: dur("max_delay", p.max_delay),
        multiplier: p.multiplier,
        jitter: match pb::RetryJitter::try_from(p.jitter) {
            Ok(pb::RetryJitter::Unspecified) => None,
            Ok(pb::RetryJitter::Full) => Some(Jitter::Full),
            Ok(pb::RetryJitter::Proportional) => Some(Jitter::Proportional),
            Err(_) => {
                v.add(join(field, "jitter"), format!("unknown value {}", p.jitter));
                None
            }
        },
    };
    if let Err(e) = config.retry.with_override(&retry) {
        v.add(join(field, e.field()), e.to_string());
        return None;
    }
    Some(retry)
}

pub fn parse_event_types(
    v: &mut Violations,
    field: &str,
    values: Vec<String>,
) -> Vec<EventPattern> {
    parse_list(v, field, values, MAX_ENDPOINT_FILTERS, EventPattern::parse)
}

pub fn parse_endpoint_channels(
    v: &mut Violations,
    field: &str,
    values: Vec<String>,
) -> Vec<String> {
    parse_list(v, field, values, MAX_ENDPOINT_FILTERS, |s| {
        parse_label(s, MAX_CHANNEL_LEN)
    })
}

pub fn parse_headers(
    v: &mut Violations,
    field: &str,
    headers: std::collections::HashMap<String, String>,
) -> Vec<CustomHeader> {
    if headers.len() > CustomHeader::MAX_COUNT {
        v.add(
            field,
            format!("at most {} headers", CustomHeader::MAX_COUNT),
        );
        return Vec::new();
    }
    let mut parsed: Vec<CustomHeader> = headers
        .iter()
        .filter_map(|(name, value)| {
            v.check(format!("{field}[{name}]"), CustomHeader::parse(name, value))
        })
        .collect();
    parsed.sort_by(|a, b| a.name.cmp(&b.name));
    parsed
}

/// A rate-limit override: unset keeps the server's, a limit of 0 removes the limit.
pub fn parse_rate_limit(
    v: &mut Violations,
    field: &str,
    value: Option<pb::RateLimit>,
    config: &ApiConfig,
) -> RateLimitOverride {
    let parsed = match value {
        None => RateLimitOverride::Default,
        Some(pb::RateLimit { limit: 0, .. }) => RateLimitOverride::Unlimited,
        Some(pb::RateLimit {
            limit,
            window,
            burst,
        }) => {
            let window = window.and_then(|w| v.check(join(field, "window"), parse_duration(w)));
            RateLimitOverride::Custom {
                limit,
                window,
                burst: (burst > 0).then_some(burst),
            }
        }
    };
    check_protection(
        v,
        field,
        ProtectionOverride {
            rate_limit: parsed,
            ..Default::default()
        },
        config,
    );
    parsed
}

/// A circuit-breaker override: threshold and open period, each optional.
pub fn parse_circuit_breaker(
    v: &mut Violations,
    field: &str,
    value: Option<pb::CircuitBreakerPolicy>,
    config: &ApiConfig,
) -> (Option<u32>, Option<Duration>) {
    let Some(p) = value else { return (None, None) };
    let timeout = p
        .timeout
        .and_then(|t| v.check(join(field, "timeout"), parse_duration(t)));
    let o = ProtectionOverride {
        failure_threshold: p.failure_threshold,
        breaker_timeout: timeout,
        ..Default::default()
    };
    check_protection(v, field, o, config);
    (p.failure_threshold, timeout)
}

pub fn parse_max_in_flight(
    v: &mut Violations,
    field: &str,
    value: Option<u32>,
    config: &ApiConfig,
) -> Option<u32> {
    check_protection(
        v,
        field,
        ProtectionOverride {
            max_in_flight: value,
            ..Default::default()
        },
        config,
    );
    value
}

/// Records a violation when the override cannot work with the server's defaults. The
/// error names its field below the endpoint (`rate_limit.burst`); `field` is where the
/// override sits in the request (`endpoint.rate_limit` in an update).
fn check_protection(v: &mut Violations, field: &str, o: ProtectionOverride, config: &ApiConfig) {
    if let Err(e) = config.protection.resolve(&o) {
        let prefix = field.rsplit_once('.').map_or("", |(p, _)| p);
        v.add(join(prefix, e.field), e.message);
    }
}

pub fn parse_description(v: &mut Violations, field: &str, value: String) -> String {
    if value.len() > Endpoint::MAX_DESCRIPTION_LEN {
        v.add(
            field,
            format!("at most {} bytes", Endpoint::MAX_DESCRIPTION_LEN),
        );
    }
    value
}

pub fn parse_endpoint_id(v: &mut Violations, field: &str, value: &str) -> Option<EndpointId> {
    v.check(field, EndpointId::parse(value))
}

pub fn parse_rotation_grace(
    v: &mut Violations,
    grace: Option<prost_types::Duration>,
    default: Duration,
) -> Duration {
    let Some(grace) = grace else { return default };
    match parse_duration(grace) {
        Ok(d) if d <= MAX_ROTATION_GRACE => d,
        Ok(_) => {
            v.add("grace_period", "at most 30 days");
            default
        }
        Err(Invalid(e)) => {
            v.add("grace_period", e);
            default
        }
    }
}

pub fn parse_delivery_state(v: &mut Violations, field: &str, value: i32) -> Option<DeliveryState> {
    match pb::DeliveryState::try_from(value) {
        Ok(pb::DeliveryState::Unspecified) => None,
        Ok(pb::DeliveryState::Pending) => Some(DeliveryState::Pending),
        Ok(pb::DeliveryState::InFlight) => Some(DeliveryState::InFlight),
        Ok(pb::DeliveryState::Succeeded) => Some(DeliveryState::Succeeded),
        Ok(pb::DeliveryState::Failed) => Some(DeliveryState::Failed),
        Ok(pb::DeliveryState::Cancelled) => Some(DeliveryState::Cancelled),
        Err(_) => {
            v.add(field, format!("unknown value {value}"));
            None
        }
    }
}

/// A page size: 0 means the default; larger than the maximum is reduced to it.
pub fn parse_page_size(v: &mut Violations, value: i32) -> usize {
    match usize::try_from(value) {
        Ok(0) => DEFAULT_PAGE_SIZE,
        Ok(n) => n.min(MAX_PAGE_SIZE),
        Err(_) => {
            v.add("page_size", "must not be negative");
            DEFAULT_PAGE_SIZE
        }
    }
}

/// Opaque cursors: which list they belong to, and the last key returned.
pub enum PageToken {
    Endpoints(EndpointId),
    Attempts(i64),
}

impl PageToken {
    pub fn encode(&self) -> String {
        let raw = match self {
            Self::Endpoints(id) => format!("e:{id}"),
            Self::Attempts(id) => format!("a:{id}"),
        };
        URL_SAFE_NO_PAD.encode(raw)
    }

    fn decode(token: &str) -> Option<Self> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
        match raw.split_once(':')? {
            ("e", id) => EndpointId::parse(id).ok().map(Self::Endpoints),
            ("a", id) => id.parse().ok().map(Self::Attempts),
            _ => None,
        }
    }

    /// Cuts a page fetched with one item too many back to `limit`; the token of the next
    /// page, empty when this is the last one.
    pub fn next<T>(items: &mut Vec<T>, limit: usize, token: impl FnOnce(&T) -> Self) -> String {
        if items.len() <= limit {
            return String::new();
        }
        items.truncate(limit);
        items
            .last()
            .map(|last| token(last).encode())
            .unwrap_or_default()
    }

    /// The cursor of `list` in `token` (empty: the first page).
    fn parse<T>(
        v: &mut Violations,
        token: &str,
        list: &str,
        cursor: impl FnOnce(Self) -> Option<T>,
    ) -> Option<T> {
        if token.is_empty() {
            return None;
        }
        let parsed = Self::decode(token).and_then(cursor);
        if parsed.is_none() {
            v.add("page_token", format!("not a token returned by {list}"));
        }
        parsed
    }

    pub fn parse_endpoints(v: &mut Violations, token: &str) -> Option<EndpointId> {
        Self::parse(v, token, "ListEndpoints", |t| match t {
            Self::Endpoints(id) => Some(id),
            Self::Attempts(_) => None,
        })
    }

    pub fn parse_attempts(v: &mut Violations, token: &str) -> Option<i64> {
        Self::parse(v, token, "ListAttempts", |t| match t {
            Self::Attempts(id) => Some(id),
            Self::Endpoints(_) => None,
        })
    }
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

fn kind_proto(kind: StatusKind) -> pb::StatusEventKind {
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

const STATUS_KINDS: [StatusKind; 10] = [
    StatusKind::AttemptStarted,
    StatusKind::AttemptSucceeded,
    StatusKind::AttemptFailed,
    StatusKind::RetryScheduled,
    StatusKind::DeliveryExhausted,
    StatusKind::DeliveryCancelled,
    StatusKind::EndpointDisabled,
    StatusKind::EndpointEnabled,
    StatusKind::CircuitOpened,
    StatusKind::CircuitClosed,
];

/// Parses a status stream request into a watch.
pub fn parse_watch(
    v: &mut Violations,
    req: pb::StreamDeliveryStatusRequest,
    heartbeat: Duration,
) -> WatchRequest {
    let endpoints = parse_list(
        v,
        "endpoint_ids",
        req.endpoint_ids,
        MAX_ENDPOINT_FILTERS,
        EndpointId::parse,
    );
    let event_types = parse_event_types(v, "event_types", req.event_types);
    let message = (!req.message_id.is_empty())
        .then(|| v.check("message_id", MessageId::parse(&req.message_id)))
        .flatten();
    let kinds = req
        .kinds
        .iter()
        .enumerate()
        .filter_map(|(i, k)| {
            let kind = STATUS_KINDS
                .into_iter()
                .find(|s| kind_proto(*s) as i32 == *k);
            if kind.is_none() {
                v.add(format!("kinds[{i}]"), format!("unknown value {k}"));
            }
            kind
        })
        .collect();
    if req.until_settled && req.message_id.is_empty() {
        v.add("until_settled", "needs message_id");
    }
    WatchRequest {
        filter: StatusFilter {
            endpoints,
            event_types,
            message,
            kinds,
        },
        after: req.after_cursor,
        until_settled: req.until_settled,
        heartbeat,
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
                .map(ToString::to_string)
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
    }
}

fn endpoint_figures(f: &EndpointFigures) -> pb::EndpointFigures {
    pb::EndpointFigures {
        endpoint_id: f.endpoint.to_string(),
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

pub fn analytics(report: &Report, pending: u64) -> pb::GetAnalyticsResponse {
    let total = &report.total;
    let ms = |q: f64| total.latency_ms(q).unwrap_or_default();
    let success_rate = total.success_rate().unwrap_or_default();
    let previous_rate = report.previous.success_rate().unwrap_or_default();
    pb::GetAnalyticsResponse {
        start_time: Some(timestamp(report.from)),
        end_time: Some(timestamp(report.to)),
        totals: Some(pb::DeliveryTotals {
            deliveries: total.deliveries,
            attempts: total.attempts,
            succeeded: total.succeeded,
            failed: total.failed,
            exhausted: total.exhausted,
            pending,
        }),
        success_rate,
        latency: Some(pb::LatencySummary {
            avg_ms: if total.attempts == 0 {
                0.0
            } else {
                total.latency_sum_us as f64 / total.attempts as f64 / 1000.0
            },
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
            previous_success_rate: previous_rate,
            previous_p95_ms: report.previous.latency_ms(0.95).unwrap_or_default(),
            attempts_change: if report.previous.attempts == 0 {
                0.0
            } else {
                (total.attempts as f64 - report.previous.attempts as f64)
                    / report.previous.attempts as f64
            },
            success_rate_change: if report.previous.attempts == 0 {
                0.0
            } else {
                success_rate - previous_rate
            },
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

pub fn endpoint(e: &Endpoint, status: &EndpointStatus) -> pb::Endpoint {
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
        id: e.id.to_string(),
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
        event_type: m.event_type.as_str().to_owned(),
        payload: m.payload.to_vec(),
        content_type: m.content_type.clone(),
        payload_json: json_value(&m.content_type, &m.payload),
        channels: m.channels.clone(),
        metadata: m.metadata.clone().into_iter().collect(),
        idempotency_key: m.idempotency_key.clone().unwrap_or_default(),
        create_time: Some(timestamp(m.created_at)),
    }
}

pub fn delivery(d: &Delivery) -> pb::Delivery {
    pb::Delivery {
        message_id: d.message_id.to_string(),
        endpoint_id: d.endpoint_id.to_string(),
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
        endpoint_id: a.endpoint_id.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::{ListValue, Struct, Value};

    fn num(n: f64) -> Value {
        Value {
            kind: Some(Kind::NumberValue(n)),
        }
    }

    #[test]
    fn json_payloads_are_compact_and_keep_integers_whole() {
        let value = Value {
            kind: Some(Kind::StructValue(Struct {
                fields: [
                    ("id".to_owned(), num(42.0)),
                    ("price".to_owned(), num(9.5)),
                    (
                        "tags".to_owned(),
                        Value {
                            kind: Some(Kind::ListValue(ListValue {
                                values: vec![Value {
                                    kind: Some(Kind::StringValue("a".into())),
                                }],
                            })),
                        },
                    ),
                    (
                        "none".to_owned(),
                        Value {
                            kind: Some(Kind::NullValue(0)),
                        },
                    ),
                ]
                .into_iter()
                .collect(),
            })),
        };
        assert_eq!(
            String::from_utf8(json_bytes(&value).unwrap()).unwrap(),
            r#"{"id":42,"none":null,"price":9.5,"tags":["a"]}"#
        );
        assert!(json_bytes(&num(f64::NAN)).is_err());
    }

    #[test]
    fn json_content_is_shown_as_a_value() {
        assert!(json_value("application/json; charset=utf-8", br#"{"a":1}"#).is_some());
        assert!(json_value("application/cloudevents+json", br#"[1]"#).is_some());
        assert!(json_value("text/plain", br#"{"a":1}"#).is_none());
        assert!(json_value("application/json", b"not json").is_none());
    }

    #[test]
    fn page_tokens_belong_to_one_list() {
        let mut v = Violations::default();
        let token = PageToken::Attempts(17).encode();
        assert_eq!(PageToken::parse_attempts(&mut v, &token), Some(17));
        assert!(v.is_empty());
        assert_eq!(PageToken::parse_endpoints(&mut v, &token), None);
        assert_eq!(PageToken::parse_endpoints(&mut v, "garbage!"), None);
        assert_eq!(v.into_inner().len(), 2);
    }
}
