//! The delivery state machine, as the writer runs it inside one job's savepoint:
//! publish (with idempotency), requeue, claim under a lease, release, complete (the
//! attempt, the delivery's next state and what it means for the endpoint), cancel,
//! expunge, disable.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use rusqlite::{OptionalExtension, params};

use super::backend;
use super::writer::Writer;
use crate::analytics::minute_of;
use crate::domain::{
    DeliveryState, DisabledReason, Endpoint, EndpointId, Message, MessageId, NewMessage,
    StatusEvent, StatusKind,
};
use crate::policy::protection::{CircuitChange, EndpointEffects, FailingClock};
use crate::storage::codec::{
    content_hash, ms, ms_after, state_code, state_from, time, transport_code,
};
use crate::storage::{
    Claim, ClaimBatch, ClaimRequest, Expunged, Lease, Outcome, Published, StoreError, Transition,
    idempotency_scope,
};

/// Whose unfinished deliveries to cancel.
#[derive(Debug, Clone, Copy)]
pub(super) enum Unfinished<'a> {
    /// Those to an endpoint being deleted.
    ToEndpoint(&'a EndpointId),
    /// Those of a message being expunged.
    OfMessage(&'a MessageId),
}

impl Writer {
    pub(super) fn publish_one(
        &mut self,
        message: NewMessage,
        now: SystemTime,
    ) -> Result<Published, StoreError> {
        let hash = content_hash(&message);
        let idempotency = idempotency_scope(&message);
        if let Some(key) = &idempotency {
            let seen: Option<(String, Vec<u8>, u32)> = self
                .conn
                .prepare_cached("SELECT message_id, content_hash, deliveries FROM idempotency WHERE key = ?1 AND expires_at > ?2")?
                .query_row(params![key, ms(now)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            if let Some((id, seen_hash, deliveries)) = seen {
                let message_id = MessageId::parse(&id).map_err(backend)?;
                return Ok(if seen_hash == hash {
                    Published::Duplicate {
                        message_id,
                        deliveries,
                    }
                } else {
                    Published::Conflict { message_id }
                });
            }
        }
        let id = MessageId::generate();
        self.conn
            .prepare_cached(
                "INSERT INTO messages (id, event_type, content_type, payload, channels, metadata, idempotency_key, created_at, trace, tenant_id, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                id.as_str(),
                message.event_type.as_str(),
                message.content_type,
                message.payload.as_ref(),
                serde_json::to_string(&message.channels)?,
                serde_json::to_string(&message.metadata)?,
                message.idempotency_key,
                ms(now),
                message.trace.as_ref().map(serde_json::to_string).transpose()?,
                message.tenant.as_str(),
                ms_after(now, message.retention),
            ])?;
        let targets = self.subscribers(&message.tenant, &message.event_type, &message.channels);
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO deliveries (message_id, endpoint_id, state, next_attempt_at, created_at, updated_at) VALUES (?1, ?2, 1, ?3, ?3, ?3)",
        )?;
        for endpoint in &targets {
            insert.execute(params![id.as_str(), endpoint.as_str(), ms(now)])?;
        }
        drop(insert);
        for endpoint in &targets {
            self.mark_due(endpoint, ms(now));
        }
        let deliveries = u32::try_from(targets.len()).unwrap_or(u32::MAX);
        if let Some(key) = &idempotency {
            let expires = ms(now + self.idempotency_ttl);
            self.conn
                .prepare_cached("INSERT OR REPLACE INTO idempotency (key, message_id, content_hash, deliveries, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![key, id.as_str(), hash, deliveries, expires])?;
        }
        self.backlog_delta += i64::from(deliveries);
        self.stored_bytes_delta += i64::try_from(message.payload.len()).unwrap_or(i64::MAX);
        Ok(Published::Created {
            message_id: id,
            deliveries,
        })
    }

    /// Makes the delivery of `message` to `endpoint` due now, creating it if needed.
    /// Returns false (and changes nothing) when an attempt is in flight.
    pub(super) fn requeue(
        &mut self,
        message: &MessageId,
        endpoint: &EndpointId,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let existing: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT state FROM deliveries WHERE message_id = ?1 AND endpoint_id = ?2",
            )?
            .query_row(params![message.as_str(), endpoint.as_str()], |r| r.get(0))
            .optional()?;
        match existing.map(state_from) {
            Some(DeliveryState::InFlight) => return Ok(false),
            Some(state) => {
                self.conn
                    .prepare_cached(
                        "UPDATE deliveries SET state = 1, next_attempt_at = ?3, round_start = attempt_count, updated_at = ?3 WHERE message_id = ?1 AND endpoint_id = ?2",
                    )?
                    .execute(params![message.as_str(), endpoint.as_str(), ms(now)])?;
                if state.is_terminal() {
                    self.backlog_delta += 1;
                }
            }
            None => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO deliveries (message_id, endpoint_id, state, next_attempt_at, created_at, updated_at) VALUES (?1, ?2, 1, ?3, ?3, ?3)",
                    )?
                    .execute(params![message.as_str(), endpoint.as_str(), ms(now)])?;
                self.backlog_delta += 1;
            }
        }
        self.mark_due(endpoint, ms(now));
        Ok(true)
    }

    /// The message, unless its payload was expunged: what may be sent again.
    pub(super) fn sendable(&self, id: &MessageId) -> Result<Message, StoreError> {
        let message = self.message(id)?;
        match message.expunged_at {
            Some(at) => Err(StoreError::expunged(id, at)),
            None => Ok(message),
        }
    }

    /// Cancels the unfinished (pending or in-flight) deliveries `which` names, each with a
    /// status event; returns how many. An attempt in flight is recorded when it ends and
    /// changes nothing: its lease is gone.
    pub(super) fn cancel(
        &mut self,
        which: Unfinished<'_>,
        now: SystemTime,
    ) -> Result<u32, StoreError> {
        let (sql, key) = match which {
            Unfinished::ToEndpoint(id) => (
                "UPDATE deliveries SET state = 5, next_attempt_at = NULL, lease_token = NULL, updated_at = ?2 WHERE endpoint_id = ?1 AND state IN (1, 2) RETURNING message_id, endpoint_id",
                id.as_str(),
            ),
            Unfinished::OfMessage(id) => (
                "UPDATE deliveries SET state = 5, next_attempt_at = NULL, lease_token = NULL, updated_at = ?2 WHERE message_id = ?1 AND state IN (1, 2) RETURNING message_id, endpoint_id",
                id.as_str(),
            ),
        };
        let cancelled: Vec<(String, String)> = self
            .conn
            .prepare_cached(sql)?
            .query_map(params![key, ms(now)], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (message, endpoint) in &cancelled {
            let mut event = StatusEvent::new(StatusKind::DeliveryCancelled, now);
            event.message_id = Some(MessageId::parse(message).map_err(backend)?);
            event.endpoint_id = Some(EndpointId::parse_stored(endpoint).map_err(backend)?);
            self.emit(event)?;
        }
        let cancelled = cancelled.len();
        self.backlog_delta -= i64::try_from(cancelled).unwrap_or(i64::MAX);
        Ok(u32::try_from(cancelled).unwrap_or(u32::MAX))
    }

    /// Empties the message's payload and its attempts' response excerpts, records `now`
    /// as its expunge time and cancels its unfinished deliveries; a message expunged
    /// before is left as it is.
    pub(super) fn expunge(
        &mut self,
        id: &MessageId,
        now: SystemTime,
    ) -> Result<Expunged, StoreError> {
        let (before, bytes): (Option<i64>, i64) = self
            .conn
            .prepare_cached("SELECT expunged_at, length(payload) FROM messages WHERE id = ?1")?
            .query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .ok_or_else(|| StoreError::message_not_found(id))?;
        if let Some(at) = before {
            return Ok(Expunged {
                at: time(at),
                fresh: false,
                cancelled: 0,
            });
        }
        self.conn
            .prepare_cached("UPDATE messages SET payload = x'', expunged_at = ?2 WHERE id = ?1")?
            .execute(params![id.as_str(), ms(now)])?;
        self.stored_bytes_delta -= bytes;
        self.conn
            .prepare_cached("UPDATE attempts SET response_excerpt = '' WHERE message_id = ?1")?
            .execute([id.as_str()])?;
        let cancelled = self.cancel(Unfinished::OfMessage(id), now)?;
        Ok(Expunged {
            // As stored: a time read back later compares equal.
            at: time(ms(now)),
            fresh: true,
            cancelled,
        })
    }

    /// Makes deliveries whose lease expired (their worker is gone) pending again.
    pub(super) fn reclaim_expired(&mut self, now: SystemTime) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE deliveries SET state = 1, lease_token = NULL WHERE state = 2 AND next_attempt_at <= ?1 RETURNING endpoint_id, next_attempt_at",
        )?;
        let expired = stmt
            .query_map([ms(now)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        for (endpoint, at) in expired {
            tracing::warn!(endpoint = %endpoint, "a delivery's lease expired; it is due again");
            self.mark_due(&EndpointId::parse_stored(&endpoint).map_err(backend)?, at);
        }
        Ok(())
    }

    pub(super) fn claim(&mut self, request: &ClaimRequest) -> Result<ClaimBatch, StoreError> {
        let now = ms(request.now);
        self.reclaim_expired(request.now)?;
        let mut candidates: Vec<(i64, EndpointId)> = self
            .due
            .iter()
            .filter(|(endpoint, at)| {
                **at <= now
                    && request.room(endpoint) > 0
                    && self.endpoints.get(endpoint).is_some_and(|e| e.is_enabled())
            })
            .map(|(endpoint, at)| (*at, endpoint.clone()))
            .collect();
        candidates.sort();
        let mut claims = Vec::new();
        let mut taken: HashMap<EndpointId, usize> = HashMap::new();
        let mut messages: HashMap<String, Arc<Message>> = HashMap::new();
        let mut host_room = request.hosts.room.clone();
        let group = |endpoint: &EndpointId| request.hosts.group_of.get(endpoint).copied();
        let host_left =
            |room: &[usize], endpoint: &EndpointId| group(endpoint).map_or(usize::MAX, |g| room[g]);
        let mut host_waits = 0;
        let mut slow_room = request.pace.slow_room;
        let slow_left = |slow_room: usize, endpoint: &EndpointId| {
            if request.is_slow(endpoint) {
                slow_room
            } else {
                usize::MAX
            }
        };
        for (_, endpoint_id) in candidates {
            if claims.len() == request.limit {
                break;
            }
            let own = request.room(&endpoint_id).min(request.limit - claims.len());
            let slow = slow_left(slow_room, &endpoint_id);
            if slow == 0 {
                continue;
            }
            let host = host_left(&host_room, &endpoint_id);
            if host == 0 {
                host_waits += 1;
                continue;
            }
            let room = own.min(host).min(slow);
            let endpoint = self.endpoint(&endpoint_id)?;
            let rows: Vec<(i64, String, u32, u32)> = self
                .conn
                .prepare_cached(
                    "SELECT id, message_id, attempt_count, round_start FROM deliveries
                     WHERE endpoint_id = ?1 AND state = 1 AND next_attempt_at <= ?2 ORDER BY next_attempt_at LIMIT ?3",
                )?
                .query_map(params![endpoint_id.as_str(), now, room], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?;
            taken.insert(endpoint_id.clone(), rows.len());
            if let Some(g) = group(&endpoint_id) {
                host_room[g] -= rows.len();
            }
            if request.is_slow(&endpoint_id) {
                slow_room -= rows.len();
            }
            if host < own.min(slow) && rows.len() == room {
                host_waits += 1;
            }
            for (delivery, message_id, attempt_count, round_start) in rows {
                let message = match messages.get(&message_id) {
                    Some(m) => m.clone(),
                    None => {
                        let m = Arc::new(
                            self.message(&MessageId::parse(&message_id).map_err(backend)?)?,
                        );
                        messages.insert(message_id, m.clone());
                        m
                    }
                };
                self.next_lease += 1;
                let token = self.next_lease;
                self.conn
                    .prepare_cached("UPDATE deliveries SET state = 2, next_attempt_at = ?2, lease_token = ?3 WHERE id = ?1")?
                    .execute(params![delivery, ms(request.now + request.lease), token])?;
                let mut started = StatusEvent::new(StatusKind::AttemptStarted, request.now);
                started.message_id = Some(message.id.clone());
                started.endpoint_id = Some(endpoint_id.clone());
                started.event_type = Some(message.event_type.clone());
                started.attempt_number = Some(attempt_count + 1);
                self.emit(started)?;
                claims.push(Claim {
                    lease: Lease { delivery, token },
                    message,
                    endpoint: endpoint.clone(),
                    attempt_number: attempt_count + 1,
                    attempts_in_round: attempt_count.saturating_sub(round_start),
                });
            }
            self.refresh_due(&endpoint_id)?;
        }
        let next_due = if claims.len() == request.limit {
            Some(request.now)
        } else {
            self.due
                .iter()
                .filter(|(endpoint, _)| {
                    let room = request
                        .room(endpoint)
                        .saturating_sub(taken.get(*endpoint).copied().unwrap_or(0))
                        .min(host_left(&host_room, endpoint))
                        .min(slow_left(slow_room, endpoint));
                    room > 0 && self.endpoints.get(endpoint).is_some_and(|e| e.is_enabled())
                })
                .map(|(_, at)| *at)
                .min()
                .map(time)
        };
        Ok(ClaimBatch {
            claims,
            next_due,
            rate_limited: Vec::new(),
            host_waits,
        })
    }

    pub(super) fn release(&mut self, leases: &[Lease], now: SystemTime) -> Result<(), StoreError> {
        for lease in leases {
            let endpoint: Option<String> = self
                .conn
                .prepare_cached(
                    "UPDATE deliveries SET state = 1, next_attempt_at = ?3, lease_token = NULL WHERE id = ?1 AND state = 2 AND lease_token = ?2 RETURNING endpoint_id",
                )?
                .query_row(params![lease.delivery, lease.token, ms(now)], |r| r.get(0))
                .optional()?;
            if let Some(endpoint) = endpoint {
                self.mark_due(
                    &EndpointId::parse_stored(&endpoint).map_err(backend)?,
                    ms(now),
                );
            }
        }
        Ok(())
    }

    pub(super) fn complete(
        &mut self,
        lease: Lease,
        outcome: Outcome,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let Outcome {
            record,
            transition,
            event_type,
            endpoint_failure: _,
            endpoint: effects,
        } = outcome;
        let succeeded = transition == Transition::Succeeded;
        let rollup_type = event_type.clone();
        let mut result = StatusEvent::new(
            if succeeded {
                StatusKind::AttemptSucceeded
            } else {
                StatusKind::AttemptFailed
            },
            now,
        );
        result.event_type = Some(event_type);
        result.status_code = record.status_code;
        result.transport_error = record.transport_error;
        result.error.clone_from(&record.error);
        result.latency = Some(record.latency);
        let recorded: Option<(String, String, u32)> = self
            .conn
            .prepare_cached(
                // A delivery still under this lease cannot have been expunged (that
                // cancels it): only a lost lease costs the message lookup.
                "INSERT INTO attempts (delivery_id, message_id, endpoint_id, number, started_at, latency_us, status_code, transport_error, error, response_excerpt, succeeded)
                 SELECT d.id, d.message_id, d.endpoint_id, d.attempt_count + 1, ?2, ?3, ?4, ?5, ?6,
                   CASE WHEN d.lease_token IS ?9 OR NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = d.message_id AND m.expunged_at IS NOT NULL) THEN ?7 ELSE '' END,
                   ?8 FROM deliveries d WHERE d.id = ?1 RETURNING endpoint_id, message_id, number",
            )?
            .query_row(
                params![
                    lease.delivery,
                    ms(record.started_at),
                    i64::try_from(record.latency.as_micros()).unwrap_or(i64::MAX),
                    record.status_code,
                    record.transport_error.map(transport_code),
                    record.error,
                    record.response_excerpt,
                    succeeded,
                    lease.token,
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        // The delivery is gone (its message was purged): nothing to record against.
        let Some((endpoint_id, message_id, number)) = recorded else {
            return Ok(());
        };
        let endpoint_id = EndpointId::parse_stored(&endpoint_id).map_err(backend)?;
        result.endpoint_id = Some(endpoint_id.clone());
        result.message_id = Some(MessageId::parse(&message_id).map_err(backend)?);
        result.attempt_number = Some(number);
        let follow_up = StatusEvent {
            cursor: 0,
            at: now,
            ..result.clone()
        };
        self.emit(result)?;
        let (state, next) = match transition {
            Transition::Succeeded => (DeliveryState::Succeeded, None),
            Transition::RetryAt(at) => (DeliveryState::Pending, Some(ms(at))),
            Transition::Failed => (DeliveryState::Failed, None),
        };
        // One statement in the usual case: the lease is still current.
        let applied = self
            .conn
            .prepare_cached("UPDATE deliveries SET state = ?3, next_attempt_at = ?4, lease_token = NULL, attempt_count = attempt_count + 1, updated_at = ?5 WHERE id = ?1 AND state = 2 AND lease_token = ?2")?
            .execute(params![lease.delivery, lease.token, state_code(state), next, ms(now)])?;
        if applied == 0 {
            self.conn
                .prepare_cached("UPDATE deliveries SET attempt_count = attempt_count + 1, updated_at = ?2 WHERE id = ?1")?
                .execute(params![lease.delivery, ms(now)])?;
            tracing::debug!(
                delivery = lease.delivery,
                "lease no longer current; attempt recorded without transition"
            );
        } else {
            if state.is_terminal() {
                self.backlog_delta -= 1;
            }
            if let Some(next) = next {
                self.mark_due(&endpoint_id, next);
            }
            let kind = match transition {
                Transition::Succeeded => None,
                Transition::RetryAt(_) => Some(StatusKind::RetryScheduled),
                Transition::Failed => Some(StatusKind::DeliveryExhausted),
            };
            if let Some(kind) = kind {
                self.emit(StatusEvent {
                    kind,
                    next_attempt_at: next.map(time),
                    ..follow_up
                })?;
            }
        }
        self.apply_effects(&endpoint_id, effects, now)?;
        let exhausted = applied > 0 && state == DeliveryState::Failed;
        self.rollups
            .entry((minute_of(record.started_at), endpoint_id, rollup_type))
            .or_default()
            .record(number, &record, succeeded, exhausted);
        Ok(())
    }

    /// Records what an attempt meant for its endpoint, as the protection decided it:
    /// the circuit change, the failing-since clock, the disabling.
    pub(super) fn apply_effects(
        &mut self,
        id: &EndpointId,
        effects: EndpointEffects,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let EndpointEffects {
            circuit,
            failing,
            disable,
        } = effects;
        if let Some(change) = circuit {
            let mut event = match change {
                CircuitChange::Opened { until } => StatusEvent {
                    next_attempt_at: Some(until),
                    ..StatusEvent::new(StatusKind::CircuitOpened, now)
                },
                CircuitChange::Closed => StatusEvent::new(StatusKind::CircuitClosed, now),
            };
            event.endpoint_id = Some(id.clone());
            self.emit(event)?;
        }
        let failing_since = match failing {
            FailingClock::Unchanged => None,
            FailingClock::Started(at) => Some(Some(at)),
            FailingClock::Cleared => Some(None),
        };
        if let Some(failing_since) = failing_since
            && let Some(current) = self.endpoints.get(id)
        {
            let mut endpoint = Endpoint::clone(current);
            endpoint.failing_since = failing_since;
            self.save_endpoint(endpoint)?;
        }
        if let Some(reason) = disable {
            self.disable(id, reason, now)?;
        }
        Ok(())
    }

    pub(super) fn disable(
        &mut self,
        id: &EndpointId,
        reason: DisabledReason,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let Some(current) = self.endpoints.get(id) else {
            return Ok(());
        };
        if !current.is_enabled() {
            return Ok(());
        }
        let mut endpoint = Endpoint::clone(current);
        endpoint.disabled = Some(reason);
        endpoint.updated_at = now;
        tracing::warn!(endpoint = %id, ?reason, failing_since = ?endpoint.failing_since, "endpoint disabled");
        let mut event = StatusEvent::new(StatusKind::EndpointDisabled, now);
        event.endpoint_id = Some(id.clone());
        event.disabled_reason = Some(reason);
        self.emit(event)?;
        self.save_endpoint(endpoint)?;
        Ok(())
    }
}
