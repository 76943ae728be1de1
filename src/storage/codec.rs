//! How domain values are written in the stores: times as Unix milliseconds, enums as
//! small integers, and the content hash that tells an idempotent retry from a conflict.
//! Both backends use these codes, so their records mean the same.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::domain::{DeliveryState, DisabledReason, NewMessage, StatusKind, TransportError};

pub fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `d` after `t`, in milliseconds since the epoch; saturates rather than overflowing.
pub fn ms_after(t: SystemTime, d: Duration) -> i64 {
    ms(t).saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

pub fn state_code(state: DeliveryState) -> i64 {
    match state {
        DeliveryState::Pending => 1,
        DeliveryState::InFlight => 2,
        DeliveryState::Succeeded => 3,
        DeliveryState::Failed => 4,
        DeliveryState::Cancelled => 5,
    }
}

pub fn state_from(code: i64) -> DeliveryState {
    match code {
        1 => DeliveryState::Pending,
        2 => DeliveryState::InFlight,
        3 => DeliveryState::Succeeded,
        4 => DeliveryState::Failed,
        _ => DeliveryState::Cancelled,
    }
}

pub fn kind_code(kind: StatusKind) -> i64 {
    match kind {
        StatusKind::AttemptStarted => 1,
        StatusKind::AttemptSucceeded => 2,
        StatusKind::AttemptFailed => 3,
        StatusKind::RetryScheduled => 4,
        StatusKind::DeliveryExhausted => 5,
        StatusKind::DeliveryCancelled => 6,
        StatusKind::EndpointDisabled => 7,
        StatusKind::EndpointEnabled => 8,
        StatusKind::CircuitOpened => 9,
        StatusKind::CircuitClosed => 10,
    }
}

pub fn kind_from(code: i64) -> StatusKind {
    match code {
        1 => StatusKind::AttemptStarted,
        2 => StatusKind::AttemptSucceeded,
        3 => StatusKind::AttemptFailed,
        4 => StatusKind::RetryScheduled,
        5 => StatusKind::DeliveryExhausted,
        6 => StatusKind::DeliveryCancelled,
        7 => StatusKind::EndpointDisabled,
        8 => StatusKind::EndpointEnabled,
        9 => StatusKind::CircuitOpened,
        _ => StatusKind::CircuitClosed,
    }
}

pub fn reason_code(reason: DisabledReason) -> i64 {
    match reason {
        DisabledReason::Manual => 1,
        DisabledReason::Gone => 2,
        DisabledReason::Failing => 3,
    }
}

pub fn reason_from(code: i64) -> DisabledReason {
    match code {
        2 => DisabledReason::Gone,
        3 => DisabledReason::Failing,
        _ => DisabledReason::Manual,
    }
}

pub fn transport_code(e: TransportError) -> i64 {
    match e {
        TransportError::Timeout => 1,
        TransportError::Dns => 2,
        TransportError::Connection => 3,
        TransportError::Tls => 4,
        TransportError::Other => 5,
        TransportError::Blocked => 6,
    }
}

pub fn transport_from(code: i64) -> TransportError {
    match code {
        1 => TransportError::Timeout,
        2 => TransportError::Dns,
        3 => TransportError::Connection,
        4 => TransportError::Tls,
        6 => TransportError::Blocked,
        _ => TransportError::Other,
    }
}

pub fn content_hash(m: &NewMessage) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(m.event_type.as_str());
    h.update([0]);
    h.update(&m.content_type);
    h.update([0]);
    h.update(&m.payload);
    h.finalize().to_vec()
}
