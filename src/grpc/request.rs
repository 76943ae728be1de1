//! Requests into commands: every `TryFrom<pb::…Request>` here parses the wire values
//! into domain values and collects every field violation under its path in the request.
//! What depends on the server's settings (payload limit, overrides against the defaults)
//! is the service's to check; nothing here decides anything else.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use prost_types::value::Kind;

use super::pb;
use super::response::kind_proto;
use crate::auth::{ApiKey, ApiKeyId, Scope, Scopes};
use crate::domain::TenantId;
use crate::domain::{
    CustomHeader, DeliveryState, Endpoint, EndpointId, EndpointUpdate, EventPattern, EventType,
    Invalid, Jitter, MAX_CHANNEL_LEN, MAX_IDEMPOTENCY_KEY_LEN, MessageId, NewMessage,
    ProtectionOverride, RateLimitOverride, RetryOverride, Secret, StatusKind, parse_label,
};
use crate::policy::limiter::RateLimit;
use crate::service::{
    AnalyticsQuery, AttemptsQuery, NewApiKey, NewEndpoint, Publish, Tenancy, Violations, WatchQuery,
};
use crate::status::StatusFilter;

/// Most events in one PublishBatch.
pub const MAX_BATCH: usize = 1000;
/// Limits on repeated fields.
pub(super) const MAX_CHANNELS: usize = 32;
pub(super) const MAX_METADATA: usize = 32;
pub(super) const MAX_METADATA_KEY: usize = 64;
pub(super) const MAX_METADATA_VALUE: usize = 1024;
pub(super) const MAX_ENDPOINT_FILTERS: usize = 256;
/// Longest content type of a raw payload.
pub(super) const MAX_CONTENT_TYPE: usize = 256;
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

/// The range `google.protobuf.Timestamp` defines, in seconds from the Unix epoch:
/// 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z. Any time in it can be added to and
/// subtracted from without overflow.
const EARLIEST_TIMESTAMP: i64 = -62_135_596_800;
const LATEST_TIMESTAMP: i64 = 253_402_300_799;
/// The longest `google.protobuf.Duration` (about 10,000 years), in seconds.
const LONGEST_DURATION: i64 = 315_576_000_000;
const NANOS_PER_SECOND: i32 = 1_000_000_000;

/// An optional timestamp; a set one outside the range timestamps are defined on, or with
/// nanos outside a second, is a violation of `field`.
fn parse_time(
    v: &mut Violations,
    field: &str,
    t: Option<prost_types::Timestamp>,
) -> Option<SystemTime> {
    t.and_then(|t| v.check(field, timestamp(t)))
}

fn timestamp(t: prost_types::Timestamp) -> Result<SystemTime, Invalid> {
    let in_range = (EARLIEST_TIMESTAMP..=LATEST_TIMESTAMP).contains(&t.seconds)
        && (0..NANOS_PER_SECOND).contains(&t.nanos);
    in_range
        .then(|| SystemTime::try_from(t).ok())
        .flatten()
        .ok_or_else(|| {
            Invalid(
                "must be a timestamp from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z"
                    .into(),
            )
        })
}

/// A non-negative proto duration, at most the longest a duration may be.
fn parse_duration(d: prost_types::Duration) -> Result<Duration, Invalid> {
    match (u64::try_from(d.seconds), u32::try_from(d.nanos)) {
        (Ok(seconds), Ok(nanos)) if d.seconds <= LONGEST_DURATION && d.nanos < NANOS_PER_SECOND => {
            Ok(Duration::new(seconds, nanos))
        }
        _ => Err(Invalid(format!(
            "must be a duration from 0 to {LONGEST_DURATION} seconds, with nanos from 0 to 999999999"
        ))),
    }
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

fn parse_content_type(value: &str) -> Result<String, Invalid> {
    if value.len() > MAX_CONTENT_TYPE {
        return Err(Invalid(format!("at most {MAX_CONTENT_TYPE} bytes")));
    }
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

fn parse_metadata(
    v: &mut Violations,
    field: &str,
    metadata: HashMap<String, String>,
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

/// A tenant named in `field`; empty names none.
fn parse_tenant(v: &mut Violations, field: &str, value: &str) -> Option<TenantId> {
    if value.is_empty() {
        None
    } else {
        v.check(field, TenantId::parse(value))
    }
}

/// A request that names the tenant(s) it acts on.
pub trait Tenanted {
    /// The tenants the request names, with any violation recorded.
    fn tenancy(&self, v: &mut Violations) -> Tenancy;
}

/// Requests with a `tenant_id` only.
macro_rules! tenanted {
    ($($request:ty),* $(,)?) => {$(
        impl Tenanted for $request {
            fn tenancy(&self, v: &mut Violations) -> Tenancy {
                Tenancy {
                    tenant: parse_tenant(v, "tenant_id", &self.tenant_id),
                    all: false,
                }
            }
        }
    )*};
}

/// Reads, with a `tenant_id` and `all_tenants`.
macro_rules! tenanted_reads {
    ($($request:ty),* $(,)?) => {$(
        impl Tenanted for $request {
            fn tenancy(&self, v: &mut Violations) -> Tenancy {
                Tenancy {
                    tenant: parse_tenant(v, "tenant_id", &self.tenant_id),
                    all: self.all_tenants,
                }
            }
        }
    )*};
}

/// The tenants a request names and the command it carries.
///
/// # Errors
/// Every field violation of both.
pub fn scoped<R: Tenanted, C: TryFrom<R, Error = Violations>>(
    request: R,
) -> Result<(Tenancy, C), Violations> {
    let mut v = Violations::default();
    let tenancy = request.tenancy(&mut v);
    match C::try_from(request) {
        Ok(command) => v.or(|| (tenancy, command)),
        Err(more) => {
            v.extend(more);
            Err(v)
        }
    }
}

tenanted!(
    pb::RegisterEndpointRequest,
    pb::UpdateEndpointRequest,
    pb::DeleteEndpointRequest,
    pb::RotateEndpointSecretRequest,
    pb::RetryDeliveryRequest,
    pb::ReplayMessageRequest,
    pb::ExpungeMessageRequest,
    pb::RecoverEndpointRequest,
);
tenanted_reads!(
    pb::GetEndpointRequest,
    pb::ListEndpointsRequest,
    pb::GetMessageRequest,
    pb::ListAttemptsRequest,
    pb::StreamDeliveryStatusRequest,
    pb::GetAnalyticsRequest,
);

impl TryFrom<pb::PublishRequest> for Publish {
    type Error = Violations;

    /// A message as published, with the tenant it names; its trace context is the
    /// transport's to add, its tenant the service's to decide.
    fn try_from(req: pb::PublishRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let tenant = parse_tenant(&mut v, "tenant_id", &req.tenant_id);
        let event_type = v.check("event_type", EventType::parse(&req.event_type));
        let payload = match req.payload {
            None => {
                v.add("payload", "required: set json or raw");
                None
            }
            Some(pb::publish_request::Payload::Json(value)) => {
                let content_type = NewMessage::DEFAULT_CONTENT_TYPE;
                let json = json_bytes(&value).and_then(|bytes| {
                    NewMessage::check_json_depth(content_type, &bytes).map(|()| bytes)
                });
                v.check("json", json)
                    .map(|bytes| (Bytes::from(bytes), content_type.to_owned()))
            }
            Some(pb::publish_request::Payload::Raw(raw)) => {
                let content_type = if raw.content_type.is_empty() {
                    Ok(NewMessage::DEFAULT_CONTENT_TYPE.to_owned())
                } else {
                    parse_content_type(&raw.content_type)
                };
                v.check("raw.content_type", content_type).and_then(|ct| {
                    v.check("raw.data", NewMessage::check_json_depth(&ct, &raw.data))
                        .map(|()| (Bytes::from(raw.data), ct))
                })
            }
        };
        let idempotency_key = if req.idempotency_key.is_empty() {
            None
        } else {
            v.check(
                "idempotency_key",
                parse_label(&req.idempotency_key, MAX_IDEMPOTENCY_KEY_LEN),
            )
        };
        let channels = parse_list(&mut v, "channels", req.channels, MAX_CHANNELS, |s| {
            parse_label(s, MAX_CHANNEL_LEN)
        });
        let retention = req.retention.and_then(|d| {
            v.check(
                "retention",
                parse_duration(d).and_then(|d| {
                    if d < Duration::from_secs(1) {
                        Err(Invalid("must be at least one second".into()))
                    } else {
                        Ok(d)
                    }
                }),
            )
        });
        let metadata = parse_metadata(&mut v, "metadata", req.metadata);
        match (event_type, payload) {
            (Some(event_type), Some((payload, content_type))) if v.is_empty() => Ok(Self {
                tenant,
                retention,
                message: NewMessage {
                    tenant: TenantId::default(),
                    event_type,
                    payload,
                    content_type,
                    idempotency_key,
                    channels,
                    metadata,
                    trace: None,
                    retention: Duration::ZERO,
                },
            }),
            _ => Err(v),
        }
    }
}

/// The events of a batch, each parsed on its own: a bad one fails alone, its violations
/// named within the event (the handler places them at `requests[i]`).
pub struct PublishBatch(pub Vec<Result<Publish, Violations>>);

impl TryFrom<pb::PublishBatchRequest> for PublishBatch {
    type Error = Violations;

    fn try_from(req: pb::PublishBatchRequest) -> Result<Self, Violations> {
        let n = req.requests.len();
        if n == 0 || n > MAX_BATCH {
            let mut v = Violations::default();
            v.add(
                "requests",
                format!("must hold 1 to {MAX_BATCH} events, not {n}"),
            );
            return Err(v);
        }
        Ok(Self(
            req.requests.into_iter().map(Publish::try_from).collect(),
        ))
    }
}

fn parse_retry(v: &mut Violations, field: &str, p: pb::RetryPolicy) -> RetryOverride {
    let mut dur = |name: &str, d: Option<prost_types::Duration>| {
        d.and_then(|d| v.check(join(field, name), parse_duration(d)))
    };
    let initial_delay = dur("initial_delay", p.initial_delay);
    let max_delay = dur("max_delay", p.max_delay);
    let jitter = match pb::RetryJitter::try_from(p.jitter) {
        Ok(pb::RetryJitter::Unspecified) => None,
        Ok(pb::RetryJitter::Full) => Some(Jitter::Full),
        Ok(pb::RetryJitter::Proportional) => Some(Jitter::Proportional),
        Err(_) => {
            v.add(join(field, "jitter"), format!("unknown value {}", p.jitter));
            None
        }
    };
    RetryOverride {
        max_retries: p.max_retries,
        initial_delay,
        max_delay,
        multiplier: p.multiplier,
        jitter,
    }
}

fn parse_event_types(v: &mut Violations, field: &str, values: Vec<String>) -> Vec<EventPattern> {
    parse_list(v, field, values, MAX_ENDPOINT_FILTERS, EventPattern::parse)
}

fn parse_endpoint_channels(v: &mut Violations, field: &str, values: Vec<String>) -> Vec<String> {
    parse_list(v, field, values, MAX_ENDPOINT_FILTERS, |s| {
        parse_label(s, MAX_CHANNEL_LEN)
    })
}

/// An endpoint's custom headers, each checked on its own and all together: at most
/// [`CustomHeader::MAX_COUNT`] of them and [`CustomHeader::MAX_TOTAL_SIZE`] bytes of
/// names and values, and no two names the same but for case (the map can carry both).
/// A header's violation is named `field["Name"]`, as the caller spelled it.
fn parse_headers(
    v: &mut Violations,
    field: &str,
    headers: HashMap<String, String>,
) -> Vec<CustomHeader> {
    if headers.len() > CustomHeader::MAX_COUNT {
        v.add(
            field,
            format!(
                "at most {} headers, not {}",
                CustomHeader::MAX_COUNT,
                headers.len()
            ),
        );
        return Vec::new();
    }
    let size: usize = headers.iter().map(|(n, value)| n.len() + value.len()).sum();
    if size > CustomHeader::MAX_TOTAL_SIZE {
        v.add(
            field,
            format!(
                "at most {} bytes of names and values in all, not {size}",
                CustomHeader::MAX_TOTAL_SIZE
            ),
        );
        return Vec::new();
    }
    // In name order, so the same request always names the same duplicate.
    let mut sent: Vec<(String, String)> = headers.into_iter().collect();
    sent.sort_unstable();
    let mut parsed: Vec<(&str, CustomHeader)> = Vec::with_capacity(sent.len());
    for (name, value) in &sent {
        let Some(header) = v.check(
            format!("{field}[{name:?}]"),
            CustomHeader::parse(name, value),
        ) else {
            continue;
        };
        if let Some((first, _)) = parsed.iter().find(|(_, h)| h.name == header.name) {
            v.add(
                format!("{field}[{name:?}]"),
                format!("the same header as {first:?}: header names ignore case"),
            );
            continue;
        }
        parsed.push((name, header));
    }
    let mut parsed: Vec<CustomHeader> = parsed.into_iter().map(|(_, h)| h).collect();
    parsed.sort_by(|a, b| a.name.cmp(&b.name));
    parsed
}

/// A rate-limit override: unset keeps the server's, a limit of 0 removes the limit.
fn parse_rate_limit(
    v: &mut Violations,
    field: &str,
    value: Option<pb::RateLimit>,
) -> RateLimitOverride {
    match value {
        None => RateLimitOverride::Default,
        Some(pb::RateLimit { limit: 0, .. }) => RateLimitOverride::Unlimited,
        Some(pb::RateLimit {
            limit,
            window,
            burst,
        }) => RateLimitOverride::Custom {
            limit,
            window: window.and_then(|w| v.check(join(field, "window"), parse_duration(w))),
            burst: (burst > 0).then_some(burst),
        },
    }
}

/// A circuit-breaker override: threshold and open period, each optional.
fn parse_circuit_breaker(
    v: &mut Violations,
    field: &str,
    value: Option<pb::CircuitBreakerPolicy>,
) -> (Option<u32>, Option<Duration>) {
    let Some(p) = value else { return (None, None) };
    let timeout = p
        .timeout
        .and_then(|t| v.check(join(field, "timeout"), parse_duration(t)));
    (p.failure_threshold, timeout)
}

fn parse_description(v: &mut Violations, field: &str, value: String) -> String {
    if value.len() > Endpoint::MAX_DESCRIPTION_LEN {
        v.add(
            field,
            format!("at most {} bytes", Endpoint::MAX_DESCRIPTION_LEN),
        );
    }
    value
}

fn parse_endpoint_id(v: &mut Violations, field: &str, value: &str) -> Option<EndpointId> {
    v.check(field, EndpointId::parse(value))
}

/// An id that may be left empty.
fn parse_optional<T>(
    v: &mut Violations,
    field: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, Invalid>,
) -> Option<T> {
    (!value.is_empty())
        .then(|| v.check(field, parse(value)))
        .flatten()
}

impl TryFrom<pb::RegisterEndpointRequest> for NewEndpoint {
    type Error = Violations;

    fn try_from(req: pb::RegisterEndpointRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let id = parse_optional(&mut v, "endpoint_id", &req.endpoint_id, EndpointId::parse);
        let url = v.check("url", Endpoint::parse_url(&req.url));
        let description = parse_description(&mut v, "description", req.description);
        let event_types = parse_event_types(&mut v, "event_types", req.event_types);
        let channels = parse_endpoint_channels(&mut v, "channels", req.channels);
        let headers = parse_headers(&mut v, "headers", req.headers);
        let retry = req
            .retry_policy
            .map(|p| parse_retry(&mut v, "retry_policy", p))
            .unwrap_or_default();
        let secret = parse_optional(&mut v, "secret", &req.secret, Secret::parse);
        let (failure_threshold, breaker_timeout) =
            parse_circuit_breaker(&mut v, "circuit_breaker", req.circuit_breaker);
        let protection = ProtectionOverride {
            rate_limit: parse_rate_limit(&mut v, "rate_limit", req.rate_limit),
            failure_threshold,
            breaker_timeout,
            max_in_flight: req.max_in_flight,
        };
        match url {
            Some(url) if v.is_empty() => Ok(Self {
                id,
                url,
                description,
                event_types,
                channels,
                headers,
                retry,
                protection,
                secret,
                enabled: !req.disabled,
            }),
            _ => Err(v),
        }
    }
}

impl TryFrom<pb::GetEndpointRequest> for EndpointId {
    type Error = Violations;

    fn try_from(req: pb::GetEndpointRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        parse_endpoint_id(&mut v, "endpoint_id", &req.endpoint_id).ok_or(v)
    }
}

impl TryFrom<pb::DeleteEndpointRequest> for EndpointId {
    type Error = Violations;

    fn try_from(req: pb::DeleteEndpointRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        parse_endpoint_id(&mut v, "endpoint_id", &req.endpoint_id).ok_or(v)
    }
}

/// A message to read, and the endpoint after whose delivery its deliveries resume.
pub struct GetMessage {
    pub id: MessageId,
    pub after: Option<EndpointId>,
}

impl TryFrom<pb::GetMessageRequest> for GetMessage {
    type Error = Violations;

    fn try_from(req: pb::GetMessageRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let id = v.check("message_id", MessageId::parse(&req.message_id));
        let after = PageToken::parse_deliveries(&mut v, &req.page_token);
        match id {
            Some(id) if v.is_empty() => Ok(Self { id, after }),
            _ => Err(v),
        }
    }
}

impl TryFrom<pb::ReplayMessageRequest> for MessageId {
    type Error = Violations;

    fn try_from(req: pb::ReplayMessageRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        v.check("message_id", MessageId::parse(&req.message_id))
            .ok_or(v)
    }
}

impl TryFrom<pb::ExpungeMessageRequest> for MessageId {
    type Error = Violations;

    fn try_from(req: pb::ExpungeMessageRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        v.check("message_id", MessageId::parse(&req.message_id))
            .ok_or(v)
    }
}

/// A page size: 0 means the default; larger than the maximum is reduced to it.
fn parse_page_size(v: &mut Violations, value: i32) -> usize {
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
#[derive(Debug, PartialEq, Eq)]
pub enum PageToken {
    Endpoints(EndpointId),
    /// A message's deliveries, after the one to this endpoint.
    Deliveries(EndpointId),
    Attempts(i64),
    ApiKeys(ApiKeyId),
    Tenants(TenantId),
}

impl PageToken {
    pub fn encode(&self) -> String {
        let raw = match self {
            Self::Endpoints(id) => format!("e:{id}"),
            Self::Deliveries(id) => format!("d:{id}"),
            Self::Attempts(id) => format!("a:{id}"),
            Self::ApiKeys(id) => format!("k:{id}"),
            Self::Tenants(id) => format!("t:{id}"),
        };
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The cursor `token` carries, or `None` when it is not a token [`Self::encode`] made.
    pub fn decode(token: &str) -> Option<Self> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
        match raw.split_once(':')? {
            ("e", id) => EndpointId::parse_stored(id).ok().map(Self::Endpoints),
            ("d", id) => EndpointId::parse_stored(id).ok().map(Self::Deliveries),
            ("a", id) => id.parse().ok().map(Self::Attempts),
            ("k", id) => ApiKeyId::parse(id).ok().map(Self::ApiKeys),
            ("t", id) => TenantId::parse(id).ok().map(Self::Tenants),
            _ => None,
        }
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

    fn parse_endpoints(v: &mut Violations, token: &str) -> Option<EndpointId> {
        Self::parse(v, token, "ListEndpoints", |t| match t {
            Self::Endpoints(id) => Some(id),
            _ => None,
        })
    }

    fn parse_deliveries(v: &mut Violations, token: &str) -> Option<EndpointId> {
        Self::parse(v, token, "GetMessage", |t| match t {
            Self::Deliveries(id) => Some(id),
            _ => None,
        })
    }

    fn parse_attempts(v: &mut Violations, token: &str) -> Option<i64> {
        Self::parse(v, token, "ListAttempts", |t| match t {
            Self::Attempts(id) => Some(id),
            _ => None,
        })
    }

    fn parse_api_keys(v: &mut Violations, token: &str) -> Option<ApiKeyId> {
        Self::parse(v, token, "ListApiKeys", |t| match t {
            Self::ApiKeys(id) => Some(id),
            _ => None,
        })
    }

    fn parse_tenants(v: &mut Violations, token: &str) -> Option<TenantId> {
        Self::parse(v, token, "ListTenants", |t| match t {
            Self::Tenants(id) => Some(id),
            _ => None,
        })
    }
}

impl TryFrom<pb::ListEndpointsRequest> for ListPage<EndpointId> {
    type Error = Violations;

    fn try_from(req: pb::ListEndpointsRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let limit = parse_page_size(&mut v, req.page_size);
        let after = PageToken::parse_endpoints(&mut v, &req.page_token);
        v.or(|| Self { after, limit })
    }
}

/// The endpoint to change, and the change.
pub struct UpdateEndpoint {
    pub id: EndpointId,
    pub update: EndpointUpdate,
}

impl TryFrom<pb::UpdateEndpointRequest> for UpdateEndpoint {
    type Error = Violations;

    fn try_from(req: pb::UpdateEndpointRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let Some(fields) = req.endpoint else {
            v.add(
                "endpoint",
                "required: the endpoint with its id and the new values",
            );
            return Err(v);
        };
        let id = parse_endpoint_id(&mut v, "endpoint.id", &fields.id);
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            v.add("update_mask", "required: name the fields to change");
        }
        let mut update = EndpointUpdate::default();
        for path in paths {
            let field = format!("endpoint.{path}");
            match path.as_str() {
                "url" => update.url = v.check(field, Endpoint::parse_url(&fields.url)),
                "description" => {
                    update.description =
                        Some(parse_description(&mut v, &field, fields.description.clone()));
                }
                "event_types" => {
                    update.event_types =
                        Some(parse_event_types(&mut v, &field, fields.event_types.clone()));
                }
                "channels" => {
                    update.channels =
                        Some(parse_endpoint_channels(&mut v, &field, fields.channels.clone()));
                }
                "headers" => {
                    update.headers = Some(parse_headers(&mut v, &field, fields.headers.clone()));
                }
                "retry_policy" => {
                    update.retry = Some(
                        fields
                            .retry_policy
                            .map(|p| parse_retry(&mut v, &field, p))
                            .unwrap_or_default(),
                    );
                }
                "rate_limit" => {
                    update.rate_limit = Some(parse_rate_limit(&mut v, &field, fields.rate_limit));
                }
                "circuit_breaker" => {
                    update.circuit_breaker =
                        Some(parse_circuit_breaker(&mut v, &field, fields.circuit_breaker));
                }
                "max_in_flight" => update.max_in_flight = Some(fields.max_in_flight),
                "enabled" => update.enabled = Some(fields.enabled),
                other => v.add(
                    "update_mask",
                    format!(
                        "{other:?} cannot be updated; use url, description, event_types, channels, headers, retry_policy, rate_limit, circuit_breaker, max_in_flight or enabled"
                    ),
                ),
            }
        }
        match id {
            Some(id) if v.is_empty() => Ok(Self { id, update }),
            _ => Err(v),
        }
    }
}

/// The endpoint whose secret to rotate, and how long the old one keeps signing
/// (`None`: the server's default).
pub struct RotateSecret {
    pub id: EndpointId,
    pub grace: Option<Duration>,
}

impl TryFrom<pb::RotateEndpointSecretRequest> for RotateSecret {
    type Error = Violations;

    fn try_from(req: pb::RotateEndpointSecretRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let id = parse_endpoint_id(&mut v, "endpoint_id", &req.endpoint_id);
        let grace = req.grace_period.and_then(|g| match parse_duration(g) {
            Ok(d) if d <= MAX_ROTATION_GRACE => Some(d),
            Ok(_) => {
                v.add("grace_period", "at most 30 days");
                None
            }
            Err(Invalid(e)) => {
                v.add("grace_period", e);
                None
            }
        });
        match id {
            Some(id) if v.is_empty() => Ok(Self { id, grace }),
            _ => Err(v),
        }
    }
}

fn parse_delivery_state(v: &mut Violations, field: &str, value: i32) -> Option<DeliveryState> {
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

impl TryFrom<pb::ListAttemptsRequest> for AttemptsQuery {
    type Error = Violations;

    fn try_from(req: pb::ListAttemptsRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        if req.message_id.is_empty() && req.endpoint_id.is_empty() {
            v.add("message_id", "set message_id, endpoint_id or both");
        }
        let message_id = parse_optional(&mut v, "message_id", &req.message_id, MessageId::parse);
        let endpoint_id =
            parse_optional(&mut v, "endpoint_id", &req.endpoint_id, EndpointId::parse);
        let delivery_state = parse_delivery_state(&mut v, "delivery_state", req.delivery_state);
        let limit = parse_page_size(&mut v, req.page_size);
        let after = PageToken::parse_attempts(&mut v, &req.page_token);
        v.or(|| Self {
            message_id,
            endpoint_id,
            delivery_state,
            after,
            limit,
        })
    }
}

/// A delivery to send again by hand.
pub struct RetryDelivery {
    pub message: MessageId,
    pub endpoint: EndpointId,
}

impl TryFrom<pb::RetryDeliveryRequest> for RetryDelivery {
    type Error = Violations;

    fn try_from(req: pb::RetryDeliveryRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let message = v.check("message_id", MessageId::parse(&req.message_id));
        let endpoint = parse_endpoint_id(&mut v, "endpoint_id", &req.endpoint_id);
        match (message, endpoint) {
            (Some(message), Some(endpoint)) => Ok(Self { message, endpoint }),
            _ => Err(v),
        }
    }
}

/// An endpoint whose failed deliveries since a time to send again.
pub struct RecoverEndpoint {
    pub id: EndpointId,
    pub since: SystemTime,
}

impl TryFrom<pb::RecoverEndpointRequest> for RecoverEndpoint {
    type Error = Violations;

    fn try_from(req: pb::RecoverEndpointRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let id = parse_endpoint_id(&mut v, "endpoint_id", &req.endpoint_id);
        if req.since.is_none() {
            v.add(
                "since",
                "required: recover deliveries that failed at or after this time",
            );
        }
        let since = parse_time(&mut v, "since", req.since);
        match (id, since) {
            (Some(id), Some(since)) => Ok(Self { id, since }),
            _ => Err(v),
        }
    }
}

impl TryFrom<pb::GetAnalyticsRequest> for AnalyticsQuery {
    type Error = Violations;

    fn try_from(req: pb::GetAnalyticsRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let end = parse_time(&mut v, "end_time", req.end_time);
        let start = parse_time(&mut v, "start_time", req.start_time);
        let endpoint = parse_optional(&mut v, "endpoint_id", &req.endpoint_id, EndpointId::parse);
        let event_type = parse_optional(&mut v, "event_type", &req.event_type, EventType::parse);
        v.or(|| Self {
            start,
            end,
            endpoint,
            event_type,
        })
    }
}

impl TryFrom<pb::StreamDeliveryStatusRequest> for WatchQuery {
    type Error = Violations;

    fn try_from(req: pb::StreamDeliveryStatusRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let endpoints = parse_list(
            &mut v,
            "endpoint_ids",
            req.endpoint_ids,
            MAX_ENDPOINT_FILTERS,
            EndpointId::parse,
        );
        let event_types = parse_event_types(&mut v, "event_types", req.event_types);
        let message = parse_optional(&mut v, "message_id", &req.message_id, MessageId::parse);
        let kinds = req
            .kinds
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                let kind = StatusKind::ALL
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
        v.or(|| Self {
            filter: StatusFilter {
                // The service decides which tenants the watcher sees.
                tenant: None,
                endpoints,
                event_types,
                message,
                kinds,
            },
            after: req.after_cursor,
            until_settled: req.until_settled,
        })
    }
}

/// A page of a list keyed by `K`: after a cursor, and how many.
pub struct ListPage<K> {
    pub after: Option<K>,
    pub limit: usize,
}

impl TryFrom<pb::ListApiKeysRequest> for ListPage<ApiKeyId> {
    type Error = Violations;

    fn try_from(req: pb::ListApiKeysRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let limit = parse_page_size(&mut v, req.page_size);
        let after = PageToken::parse_api_keys(&mut v, &req.page_token);
        v.or(|| Self { after, limit })
    }
}

impl TryFrom<pb::ListTenantsRequest> for ListPage<TenantId> {
    type Error = Violations;

    fn try_from(req: pb::ListTenantsRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let limit = parse_page_size(&mut v, req.page_size);
        let after = PageToken::parse_tenants(&mut v, &req.page_token);
        v.or(|| Self { after, limit })
    }
}

fn parse_scope(value: i32) -> Result<Scope, Invalid> {
    match pb::Scope::try_from(value) {
        Ok(pb::Scope::Publish) => Ok(Scope::Publish),
        Ok(pb::Scope::Read) => Ok(Scope::Read),
        Ok(pb::Scope::Write) => Ok(Scope::Write),
        Ok(pb::Scope::Admin) => Ok(Scope::Admin),
        Ok(pb::Scope::Unspecified) | Err(_) => {
            Err(Invalid(format!("{value} is not a scope (1 to 4)")))
        }
    }
}

impl TryFrom<pb::CreateApiKeyRequest> for NewApiKey {
    type Error = Violations;

    fn try_from(req: pb::CreateApiKeyRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let name = req.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > ApiKey::MAX_NAME_LEN {
            v.add(
                "name",
                format!("must be 1 to {} characters", ApiKey::MAX_NAME_LEN),
            );
        }
        if req.scopes.is_empty() {
            v.add("scopes", "name at least one scope");
        }
        let scopes: Vec<Scope> = req
            .scopes
            .iter()
            .enumerate()
            .filter_map(|(i, s)| v.check(format!("scopes[{i}]"), parse_scope(*s)))
            .collect();
        let tenant = parse_tenant(&mut v, "tenant_id", &req.tenant_id);
        let expires_at = parse_time(&mut v, "expire_time", req.expire_time);
        let publish_limit = req.publish_rate_limit.and_then(|r| {
            let window = match r.window {
                Some(w) => v.check("publish_rate_limit.window", parse_duration(w))?,
                None => Duration::from_secs(1),
            };
            let burst = if r.burst == 0 { r.limit } else { r.burst };
            match RateLimit::try_new(r.limit, window, burst) {
                Ok(limit) => Some(limit),
                Err(e) => {
                    v.add("publish_rate_limit", e.to_string());
                    None
                }
            }
        });
        v.or(|| Self {
            name,
            scopes: Scopes::new(scopes),
            tenant,
            expires_at,
            publish_limit,
        })
    }
}

impl TryFrom<pb::RevokeApiKeyRequest> for ApiKeyId {
    type Error = Violations;

    fn try_from(req: pb::RevokeApiKeyRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        ApiKeyId::parse(&req.api_key_id)
            .map_err(|e| v.add("api_key_id", e.to_string()))
            .ok()
            .ok_or(v)
    }
}

impl TryFrom<pb::DeleteTenantRequest> for TenantId {
    type Error = Violations;

    fn try_from(req: pb::DeleteTenantRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        v.check("tenant_id", TenantId::parse(&req.tenant_id))
            .ok_or(v)
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
    fn page_tokens_belong_to_one_list() {
        let mut v = Violations::default();
        let token = PageToken::Attempts(17).encode();
        assert_eq!(PageToken::parse_attempts(&mut v, &token), Some(17));
        assert!(v.is_empty());
        assert_eq!(PageToken::parse_endpoints(&mut v, &token), None);
        assert_eq!(PageToken::parse_endpoints(&mut v, "garbage!"), None);
        assert_eq!(v.iter().count(), 2);
    }

    fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The fields violated by parsing `sent`, in order, and what was kept.
    fn header_violations(sent: HashMap<String, String>) -> (Vec<String>, Vec<CustomHeader>) {
        let mut v = Violations::default();
        let parsed = parse_headers(&mut v, "headers", sent);
        let mut fields: Vec<String> = v.iter().map(|f| f.field.clone()).collect();
        fields.sort_unstable();
        (fields, parsed)
    }

    #[test]
    fn header_violations_name_the_header_as_sent() {
        let (fields, _) = header_violations(headers(&[
            ("Proxy-Authorization", "Basic eA=="),
            ("X-Webhook-Foo", "1"),
            ("HOST", "internal"),
            ("X-Injected", "a\r\nx-evil: 1"),
            ("X-Nul", "a\0b"),
            ("bad name", "x"),
            ("X-Fine", "ok"),
        ]));
        assert_eq!(
            fields,
            [
                r#"headers["HOST"]"#,
                r#"headers["Proxy-Authorization"]"#,
                r#"headers["X-Injected"]"#,
                r#"headers["X-Nul"]"#,
                r#"headers["X-Webhook-Foo"]"#,
                r#"headers["bad name"]"#,
            ]
        );
        // A name that could break out of the quotes is shown escaped.
        let (fields, _) = header_violations(headers(&[("a\"]\n", "x")]));
        assert_eq!(fields, [r#"headers["a\"]\n"]"#]);
    }

    #[test]
    fn header_names_differing_only_in_case_are_refused() {
        let (fields, _) = header_violations(headers(&[("X-A", "1"), ("x-a", "2"), ("x-b", "3")]));
        assert_eq!(fields, [r#"headers["x-a"]"#]);
        let (fields, parsed) = header_violations(headers(&[("X-A", "1"), ("x-b", "3")]));
        assert!(fields.is_empty());
        let names: Vec<_> = parsed.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["x-a", "x-b"]);
    }

    #[test]
    fn headers_are_bounded_in_count_and_size() {
        let many = |n: usize| -> HashMap<String, String> {
            (0..n)
                .map(|i| (format!("x-h{i}"), "v".to_owned()))
                .collect()
        };
        assert_eq!(header_violations(many(32)).1.len(), 32);
        assert_eq!(header_violations(many(33)).0, ["headers"]);
        // 8 KiB of names and values in all, and not a byte more.
        let name = "x-big";
        let exactly = "a".repeat(CustomHeader::MAX_TOTAL_SIZE - name.len());
        let (fields, parsed) = header_violations(headers(&[(name, &exactly)]));
        assert!(fields.is_empty() && parsed.len() == 1);
        let over = format!("{exactly}a");
        assert_eq!(header_violations(headers(&[(name, &over)])).0, ["headers"]);
        let spread: HashMap<String, String> = (0..4)
            .map(|i| (format!("x-{i}"), "a".repeat(2048)))
            .collect();
        assert_eq!(header_violations(spread).0, ["headers"]);
    }

    #[test]
    fn every_violation_of_a_registration_is_named() {
        let e = NewEndpoint::try_from(pb::RegisterEndpointRequest {
            url: "nope".into(),
            endpoint_id: "a b".into(),
            rate_limit: Some(pb::RateLimit {
                limit: 5,
                window: Some(prost_types::Duration {
                    seconds: -1,
                    nanos: 0,
                }),
                burst: 0,
            }),
            ..Default::default()
        })
        .unwrap_err();
        let mut fields: Vec<_> = e.iter().map(|f| f.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["endpoint_id", "rate_limit.window", "url"]);
    }
}
