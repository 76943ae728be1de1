//! How values are written in Redis: endpoint overrides as the scripts read them,
//! records and stream entries back into domain values, and the circuit codes the
//! scripts share with Rust (the other shared codes are `storage::codec`'s).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use redis::Value;

use super::backend;
use crate::auth::ApiKey;
use crate::domain::{
    Attempt, AttemptRecord, Endpoint, EndpointId, EventType, Message, MessageId, RateLimitOverride,
    StatusEvent, TenantId,
};
use crate::policy::protection::ProtectionConfig;
use crate::storage::StoreError;
use crate::storage::codec::{kind_from, reason_from, time, transport_from};

/// A circuit's state in `g:<id>` field `bs`.
pub const CIRCUIT_CLOSED: i64 = 0;
pub const CIRCUIT_OPEN: i64 = 1;
pub const CIRCUIT_HALF_OPEN: i64 = 2;

pub(super) fn text(v: &Value) -> String {
    redis::from_redis_value_ref::<Option<String>>(v)
        .ok()
        .flatten()
        .unwrap_or_default()
}

pub(super) fn parse<T, E: std::error::Error + Send + Sync + 'static>(
    r: Result<T, E>,
) -> Result<T, StoreError> {
    r.map_err(backend)
}

pub(super) fn opt_ms(v: Option<&String>) -> Option<SystemTime> {
    v.and_then(|s| s.parse::<i64>().ok()).map(time)
}

/// A status event from its stream entry.
pub(super) fn event_from(
    id: &str,
    map: &HashMap<String, Value>,
) -> Result<StatusEvent, StoreError> {
    let get = |name: &str| map.get(name).map(text).filter(|s| !s.is_empty());
    let int = |name: &str| get(name).and_then(|s| s.parse::<i64>().ok());
    let cursor = id
        .split_once('-')
        .and_then(|(_, seq)| seq.parse().ok())
        .ok_or_else(|| backend(crate::domain::Invalid(format!("status event id {id}"))))?;
    Ok(StatusEvent {
        cursor,
        at: time(int("at").unwrap_or_default()),
        kind: kind_from(int("k").unwrap_or_default()),
        message_id: get("m").map(|s| parse(MessageId::parse(&s))).transpose()?,
        endpoint_id: get("e")
            .map(|s| parse(EndpointId::parse_stored(&s)))
            .transpose()?,
        event_type: get("et").map(|s| parse(EventType::parse(&s))).transpose()?,
        attempt_number: int("an").and_then(|n| u32::try_from(n).ok()),
        status_code: int("sc").and_then(|n| u16::try_from(n).ok()),
        transport_error: int("te").map(transport_from),
        error: get("er").unwrap_or_default(),
        latency: int("lat").map(|us| Duration::from_micros(u64::try_from(us).unwrap_or(0))),
        next_attempt_at: int("na").map(time),
        disabled_reason: int("dr").map(reason_from),
    })
}

/// The endpoint's protection overrides as the scripts read them ('' = the default).
pub(super) fn overrides(endpoint: &Endpoint, defaults: &ProtectionConfig) -> [String; 6] {
    let p = &endpoint.protection;
    let some = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let (rl, rw, rb) = match p.rate_limit {
        RateLimitOverride::Default => (None, None, None),
        RateLimitOverride::Unlimited => (Some(0), None, None),
        RateLimitOverride::Custom {
            limit,
            window,
            burst,
        } => (
            Some(u64::from(limit)),
            Some(millis(window.unwrap_or(defaults.rate_limit_window))),
            Some(u64::from(burst.unwrap_or(limit))),
        ),
    };
    [
        some(p.max_in_flight.map(u64::from)),
        some(rl),
        some(rw),
        some(rb),
        some(p.failure_threshold.map(u64::from)),
        some(p.breaker_timeout.map(millis)),
    ]
}

pub(super) fn message_from(id: &MessageId, map: &HashMap<String, Vec<u8>>) -> Option<Message> {
    let text = |name: &str| {
        map.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    Some(Message {
        id: id.clone(),
        // Messages written before tenants existed belong to the default tenant.
        tenant: text("tn")
            .map_or_else(|| Ok(TenantId::default()), |t| TenantId::parse(&t))
            .ok()?,
        event_type: EventType::parse(&text("et")?).ok()?,
        payload: Bytes::from(map.get("p")?.clone()),
        content_type: text("ct")?,
        idempotency_key: text("ik").filter(|k| !k.is_empty()),
        channels: serde_json::from_str(&text("ch")?).ok()?,
        metadata: serde_json::from_str(&text("md")?).ok()?,
        created_at: time(text("c")?.parse().ok()?),
        trace: text("tc")
            .filter(|t| !t.is_empty())
            .and_then(|t| serde_json::from_str(&t).ok()),
        // Messages written before expiry was kept are given one when the store opens.
        expires_at: time(text("x").or(text("c"))?.parse().ok()?),
        expunged_at: text("xp").and_then(|x| x.parse().ok()).map(time),
    })
}

pub(super) fn attempt_from(id: i64, map: &HashMap<String, String>) -> Option<Attempt> {
    let get = |name: &str| map.get(name).filter(|s| !s.is_empty());
    Some(Attempt {
        id,
        message_id: MessageId::parse(get("m")?).ok()?,
        endpoint_id: EndpointId::parse_stored(get("e")?).ok()?,
        number: get("n")?.parse().ok()?,
        succeeded: get("ok").is_some_and(|v| v == "1"),
        record: AttemptRecord {
            started_at: time(get("t")?.parse().ok()?),
            latency: Duration::from_micros(get("l")?.parse().ok()?),
            status_code: get("sc").and_then(|c| c.parse().ok()),
            transport_error: get("te").and_then(|c| c.parse().ok()).map(transport_from),
            error: get("er").cloned().unwrap_or_default(),
            response_excerpt: get("rx").cloned().unwrap_or_default(),
        },
    })
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An API key from its hash (`r` the record, `rev` revoked at, `used` last used), or
/// `None` when there is no such key.
pub(super) fn api_key_from(map: &HashMap<String, String>) -> Result<Option<ApiKey>, StoreError> {
    let Some(record) = map.get("r") else {
        return Ok(None);
    };
    let at = |name: &str| map.get(name).and_then(|v| v.parse().ok()).map(time);
    Ok(Some(ApiKey {
        revoked_at: at("rev"),
        last_used_at: at("used"),
        ..serde_json::from_str(record).map_err(super::backend)?
    }))
}
