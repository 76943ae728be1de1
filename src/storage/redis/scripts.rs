//! The Lua scripts, one per state transition, each loaded with a prelude: the status
//! retention, how long an idle host's shared state is kept, the codes every script uses (delivery states, status kinds, disabling
//! reasons, circuit states), generated here from the tables Rust itself reads with, so
//! both sides always mean the same by a number, and the helpers of `common.lua`.

use std::fmt::Write;
use std::time::Duration;

use redis::Script;

use super::codec::{CIRCUIT_CLOSED, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN};
use crate::domain::{DeliveryState, DisabledReason, StatusKind};
use crate::storage::codec::{kind_code, reason_code, state_code};

/// How long a destination host's shared state (`hg:<host>`) outlives its last attempt in
/// flight: longer than its bucket takes to refill (one window), after which a fresh one
/// would be the same.
const HOST_IDLE: Duration = Duration::from_secs(60);

/// The scripts of the store.
pub(super) struct Scripts {
    pub publish: Script,
    pub promote: Script,
    pub claim: Script,
    pub complete: Script,
    pub release: Script,
    pub requeue: Script,
    pub delete_endpoint: Script,
    /// Empties messages' payloads and excerpts and cancels their unfinished deliveries.
    pub expunge: Script,
    pub save_endpoint: Script,
    /// Writes an endpoint's record sealed anew, unless it changed since it was read.
    pub reseal_endpoint: Script,
    /// Indexes endpoints by tenant and scopes idempotency records, once (for
    /// deployments older than tenants).
    pub index_tenants: Script,
    /// Stores the destination host of endpoints saved before hosts had ceilings.
    pub index_hosts: Script,
    /// Reads an endpoint's shared protection (no transition).
    pub status: Script,
    /// Deletes settled messages past their expiry, with everything below them.
    pub sweep: Script,
}

fn state_name(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "STATE_PENDING",
        DeliveryState::InFlight => "STATE_IN_FLIGHT",
        DeliveryState::Succeeded => "STATE_SUCCEEDED",
        DeliveryState::Failed => "STATE_FAILED",
        DeliveryState::Cancelled => "STATE_CANCELLED",
    }
}

fn kind_name(kind: StatusKind) -> &'static str {
    match kind {
        StatusKind::AttemptStarted => "KIND_ATTEMPT_STARTED",
        StatusKind::AttemptSucceeded => "KIND_ATTEMPT_SUCCEEDED",
        StatusKind::AttemptFailed => "KIND_ATTEMPT_FAILED",
        StatusKind::RetryScheduled => "KIND_RETRY_SCHEDULED",
        StatusKind::DeliveryExhausted => "KIND_DELIVERY_EXHAUSTED",
        StatusKind::DeliveryCancelled => "KIND_DELIVERY_CANCELLED",
        StatusKind::EndpointDisabled => "KIND_ENDPOINT_DISABLED",
        StatusKind::EndpointEnabled => "KIND_ENDPOINT_ENABLED",
        StatusKind::CircuitOpened => "KIND_CIRCUIT_OPENED",
        StatusKind::CircuitClosed => "KIND_CIRCUIT_CLOSED",
    }
}

fn reason_name(reason: DisabledReason) -> &'static str {
    match reason {
        DisabledReason::Manual => "REASON_MANUAL",
        DisabledReason::Gone => "REASON_GONE",
        DisabledReason::Failing => "REASON_FAILING",
    }
}

/// Every code as a Lua string constant: Redis hands fields back as strings, so the
/// scripts compare with `==` directly.
fn codes() -> Vec<(&'static str, i64)> {
    let states = [
        DeliveryState::Pending,
        DeliveryState::InFlight,
        DeliveryState::Succeeded,
        DeliveryState::Failed,
        DeliveryState::Cancelled,
    ];
    let reasons = [
        DisabledReason::Manual,
        DisabledReason::Gone,
        DisabledReason::Failing,
    ];
    states
        .into_iter()
        .map(|s| (state_name(s), state_code(s)))
        .chain(
            StatusKind::ALL
                .into_iter()
                .map(|k| (kind_name(k), kind_code(k))),
        )
        .chain(
            reasons
                .into_iter()
                .map(|r| (reason_name(r), reason_code(r))),
        )
        .chain([
            ("CIRCUIT_CLOSED", CIRCUIT_CLOSED),
            ("CIRCUIT_OPEN", CIRCUIT_OPEN),
            ("CIRCUIT_HALF_OPEN", CIRCUIT_HALF_OPEN),
        ])
        .collect()
}

/// What every script starts with.
fn prelude(retention: u64) -> String {
    let mut prelude = format!(
        "local RETENTION = {retention}\nlocal HOST_IDLE_MS = {}\n",
        HOST_IDLE.as_millis()
    );
    for (name, code) in codes() {
        writeln!(prelude, "local {name} = '{code}'").expect("writing to a string");
    }
    prelude.push_str(include_str!("common.lua"));
    prelude
}

impl Scripts {
    /// The scripts, keeping `retention` status events.
    pub fn new(retention: u64) -> Self {
        let prelude = prelude(retention);
        let script = |body: &str| Script::new(&format!("{prelude}\n{body}"));
        Self {
            publish: script(include_str!("publish.lua")),
            promote: script(include_str!("promote.lua")),
            claim: script(include_str!("claim.lua")),
            complete: script(include_str!("complete.lua")),
            release: script(include_str!("release.lua")),
            requeue: script(include_str!("requeue.lua")),
            delete_endpoint: script(include_str!("delete_endpoint.lua")),
            expunge: script(include_str!("expunge.lua")),
            save_endpoint: script(include_str!("save_endpoint.lua")),
            reseal_endpoint: script(include_str!("reseal_endpoint.lua")),
            index_tenants: script(include_str!("index_tenants.lua")),
            index_hosts: script(include_str!("index_hosts.lua")),
            status: script(include_str!("status.lua")),
            sweep: script(include_str!("sweep.lua")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every upper-case name a script uses is defined by the prelude (Lua would read an
    /// undefined one as nil, silently).
    #[test]
    fn every_code_the_scripts_use_is_defined() {
        let defined: Vec<&str> = codes().iter().map(|(name, _)| *name).collect();
        let sources = [
            include_str!("common.lua"),
            include_str!("publish.lua"),
            include_str!("promote.lua"),
            include_str!("claim.lua"),
            include_str!("complete.lua"),
            include_str!("release.lua"),
            include_str!("requeue.lua"),
            include_str!("delete_endpoint.lua"),
            include_str!("expunge.lua"),
            include_str!("save_endpoint.lua"),
            include_str!("reseal_endpoint.lua"),
            include_str!("index_tenants.lua"),
            include_str!("index_hosts.lua"),
            include_str!("status.lua"),
            include_str!("sweep.lua"),
        ];
        let prefixes = ["STATE_", "KIND_", "REASON_", "CIRCUIT_"];
        for source in sources {
            for word in source.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if prefixes
                    .iter()
                    .any(|p| word.len() > p.len() && word.starts_with(p))
                {
                    assert!(defined.contains(&word), "{word} is used but not defined");
                }
            }
        }
        let mut names = defined.clone();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), defined.len(), "a name is defined twice");
    }
}
