//! Rows into domain values: the columns each read selects and how each is decoded.

use std::time::Duration;

use bytes::Bytes;
use rusqlite::Row;

use crate::auth::ApiKey;
use crate::domain::{
    Attempt, AttemptRecord, Delivery, DeliveryState, Endpoint, EndpointId, EventType, Message,
    MessageId, StatusEvent, TenantId,
};
use crate::storage::codec::{kind_from, reason_from, state_from, time, transport_from};
use crate::storage::sealing::Keyring;

pub(super) fn status_event_row(row: &Row<'_>) -> rusqlite::Result<StatusEvent> {
    let text = |i: usize| row.get::<_, Option<String>>(i);
    Ok(StatusEvent {
        cursor: u64::try_from(row.get::<_, i64>(0)?).unwrap_or_default(),
        at: time(row.get(1)?),
        kind: kind_from(row.get(2)?),
        message_id: text(3)?
            .map(|s| parsed(3, MessageId::parse(&s)))
            .transpose()?,
        endpoint_id: text(4)?
            .map(|s| parsed(4, EndpointId::parse_stored(&s)))
            .transpose()?,
        event_type: text(5)?
            .map(|s| parsed(5, EventType::parse(&s)))
            .transpose()?,
        attempt_number: row.get(6)?,
        status_code: row.get(7)?,
        transport_error: row.get::<_, Option<i64>>(8)?.map(transport_from),
        error: row.get(9)?,
        latency: row.get::<_, Option<u64>>(10)?.map(Duration::from_micros),
        next_attempt_at: row.get::<_, Option<i64>>(11)?.map(time),
        disabled_reason: row.get::<_, Option<i64>>(12)?.map(reason_from),
    })
}

/// A column that must hold a valid domain value; a bad one means a corrupt database.
pub(super) fn parsed<T, E: std::error::Error + Send + Sync + 'static>(
    index: usize,
    r: Result<T, E>,
) -> rusqlite::Result<T> {
    r.map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(super) const MESSAGE_COLUMNS: &str = "id, event_type, content_type, payload, channels, metadata, idempotency_key, created_at, trace, tenant_id, expires_at, expunged_at";

pub(super) fn message_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: parsed(0, MessageId::parse(&row.get::<_, String>(0)?))?,
        tenant: parsed(9, TenantId::parse(&row.get::<_, String>(9)?))?,
        event_type: parsed(1, EventType::parse(&row.get::<_, String>(1)?))?,
        content_type: row.get(2)?,
        payload: Bytes::from(row.get::<_, Vec<u8>>(3)?),
        channels: parsed(4, serde_json::from_str(&row.get::<_, String>(4)?))?,
        metadata: parsed(5, serde_json::from_str(&row.get::<_, String>(5)?))?,
        idempotency_key: row.get(6)?,
        created_at: time(row.get(7)?),
        trace: row
            .get::<_, Option<String>>(8)?
            .map(|t| parsed(8, serde_json::from_str(&t)))
            .transpose()?,
        expires_at: time(row.get(10)?),
        expunged_at: row.get::<_, Option<i64>>(11)?.map(time),
    })
}

pub(super) const DELIVERY_COLUMNS: &str =
    "message_id, endpoint_id, state, attempt_count, next_attempt_at, created_at, updated_at";

pub(super) fn delivery_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let state = state_from(row.get(2)?);
    Ok(Delivery {
        message_id: parsed(0, MessageId::parse(&row.get::<_, String>(0)?))?,
        endpoint_id: parsed(1, EndpointId::parse_stored(&row.get::<_, String>(1)?))?,
        state,
        attempt_count: row.get(3)?,
        next_attempt_at: row
            .get::<_, Option<i64>>(4)?
            .filter(|_| state == DeliveryState::Pending)
            .map(time),
        created_at: time(row.get(5)?),
        updated_at: time(row.get(6)?),
    })
}

pub(super) fn attempt_row(row: &Row<'_>) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        id: row.get(0)?,
        message_id: parsed(1, MessageId::parse(&row.get::<_, String>(1)?))?,
        endpoint_id: parsed(2, EndpointId::parse_stored(&row.get::<_, String>(2)?))?,
        number: row.get(3)?,
        succeeded: row.get(10)?,
        record: AttemptRecord {
            started_at: time(row.get(4)?),
            latency: Duration::from_micros(row.get(5)?),
            status_code: row.get(6)?,
            transport_error: row.get::<_, Option<i64>>(7)?.map(transport_from),
            error: row.get(8)?,
            response_excerpt: row.get(9)?,
        },
    })
}

/// The endpoint of a `record` column, its secrets opened with `keyring`.
pub(super) fn endpoint_record(keyring: &Keyring, row: &Row<'_>) -> rusqlite::Result<Endpoint> {
    parsed(0, keyring.open(&row.get::<_, String>(0)?)).map(|opened| opened.endpoint)
}

pub(super) const API_KEY_COLUMNS: &str = "record, revoked_at, last_used_at";

pub(super) fn api_key_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        revoked_at: row.get::<_, Option<i64>>(1)?.map(time),
        last_used_at: row.get::<_, Option<i64>>(2)?.map(time),
        ..parsed(0, serde_json::from_str(&row.get::<_, String>(0)?))?
    })
}
