//! The [`Store`] implementation: transitions as writer jobs, reads on the read pool.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{broadcast, watch};

use super::rows::{
    API_KEY_COLUMNS, DELIVERY_COLUMNS, MESSAGE_COLUMNS, api_key_row, attempt_row, delivery_row,
    endpoint_record, message_row, parsed, status_event_row,
};
use super::transitions::Unfinished;
use super::writer::Durability;
use super::{SqliteStore, backend};
use crate::analytics::RollupRow;
use crate::auth::{ApiKey, ApiKeyId};
use crate::domain::{
    Attempt, Delivery, Endpoint, EndpointId, EndpointUpdate, EventType, Message, MessageId,
    NewMessage, Secret, StatusEvent, StatusKind, TenantId,
};
use crate::storage::codec::{ms, state_code};
use crate::storage::sealing::Keyring;
use crate::storage::{
    AttemptQuery, ClaimBatch, ClaimRequest, Condition, EventPage, Expunged, Lease, Outcome,
    Published, Resealed, Store, StoreError, Swept, TenantExpunged, TenantSummary,
};

/// Endpoint ids as the JSON array a query reads with `json_each`; `None` for all.
fn endpoint_set(endpoints: Option<&[EndpointId]>) -> Result<Option<String>, StoreError> {
    Ok(endpoints.map(serde_json::to_string).transpose()?)
}

fn get_endpoint(
    conn: &Connection,
    keyring: &Keyring,
    id: &EndpointId,
) -> Result<Endpoint, StoreError> {
    conn.prepare_cached("SELECT record FROM endpoints WHERE id = ?1")?
        .query_row([id.as_str()], |row| endpoint_record(keyring, row))
        .optional()?
        .ok_or_else(|| StoreError::endpoint_not_found(id))
}

#[async_trait]
impl Store for SqliteStore {
    async fn publish(
        &self,
        batch: Vec<NewMessage>,
        now: SystemTime,
        backlog_limit: u64,
    ) -> Result<Vec<Published>, StoreError> {
        self.write(move |w| {
            // The backlog as this job finds it: committed, and changed by the jobs of its
            // group before it. The job's savepoint undoes a refused batch.
            let (committed, before) = (w.backlog.load(Ordering::Relaxed), w.backlog_delta);
            let published = batch
                .into_iter()
                .map(|m| w.publish_one(m, now))
                .collect::<Result<Vec<_>, _>>()?;
            let backlog = committed.saturating_add_signed(before);
            let incoming = u64::try_from(w.backlog_delta - before).unwrap_or(0);
            if incoming > 0 && backlog.saturating_add(incoming) > backlog_limit {
                return Err(StoreError::Backlogged {
                    backlog,
                    incoming,
                    limit: backlog_limit,
                });
            }
            Ok(published)
        })
        .await
    }

    async fn create_endpoint(
        &self,
        endpoint: Endpoint,
        max_per_tenant: u64,
    ) -> Result<Endpoint, StoreError> {
        self.write(move |w| {
            if w.endpoints.contains(&endpoint.id) {
                return Err(StoreError::AlreadyExists {
                    kind: "endpoint",
                    id: endpoint.id.to_string(),
                });
            }
            let count = w.endpoints.count(&endpoint.tenant);
            if u64::try_from(count).unwrap_or(u64::MAX) >= max_per_tenant {
                return Err(StoreError::TooManyEndpoints {
                    tenant: endpoint.tenant,
                    limit: max_per_tenant,
                });
            }
            w.save_endpoint(endpoint)
        })
        .await
    }

    async fn get_endpoint(&self, id: &EndpointId) -> Result<Endpoint, StoreError> {
        let id = id.clone();
        let keyring = self.keyring.clone();
        self.read(move |conn| get_endpoint(conn, &keyring, &id))
            .await
    }

    async fn list_endpoints(
        &self,
        tenant: Option<TenantId>,
        after: Option<EndpointId>,
        limit: usize,
    ) -> Result<Vec<Endpoint>, StoreError> {
        let keyring = self.keyring.clone();
        self.read(move |conn| {
            let after = after.as_ref().map_or("", EndpointId::as_str).to_owned();
            let mut stmt = conn.prepare_cached(
                "SELECT record FROM endpoints WHERE (?1 IS NULL OR tenant_id = ?1) AND id > ?2
                 ORDER BY id LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![tenant.as_ref().map(TenantId::as_str), after, limit],
                |row| endpoint_record(&keyring, row),
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn list_tenants(
        &self,
        after: Option<TenantId>,
        limit: usize,
    ) -> Result<Vec<TenantSummary>, StoreError> {
        self.read(move |conn| {
            let after = after.as_ref().map_or("", TenantId::as_str).to_owned();
            let mut stmt = conn.prepare_cached(
                "SELECT tenant_id, COUNT(*) FROM endpoints WHERE tenant_id > ?1
                 GROUP BY tenant_id ORDER BY tenant_id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit], |r| {
                Ok(TenantSummary {
                    tenant: parsed(0, TenantId::parse(&r.get::<_, String>(0)?))?,
                    endpoints: r.get(1)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn update_endpoint(
        &self,
        id: &EndpointId,
        update: EndpointUpdate,
        now: SystemTime,
    ) -> Result<Endpoint, StoreError> {
        let id = id.clone();
        self.write(move |w| {
            let mut endpoint = Endpoint::clone(&*w.endpoint(&id)?);
            let was_enabled = endpoint.is_enabled();
            update.apply(&mut endpoint, now);
            if was_enabled != endpoint.is_enabled() {
                let kind = if was_enabled {
                    StatusKind::EndpointDisabled
                } else {
                    StatusKind::EndpointEnabled
                };
                let mut event = StatusEvent::new(kind, now);
                event.endpoint_id = Some(endpoint.id.clone());
                event.disabled_reason = endpoint.disabled;
                w.emit(event)?;
            }
            w.save_endpoint(endpoint)
        })
        .await
    }

    async fn delete_endpoint(&self, id: &EndpointId, now: SystemTime) -> Result<u32, StoreError> {
        let id = id.clone();
        self.write(move |w| {
            w.endpoint(&id)?;
            w.conn
                .prepare_cached("DELETE FROM endpoints WHERE id = ?1")?
                .execute([id.as_str()])?;
            let cancelled = w.cancel(Unfinished::ToEndpoint(&id), now)?;
            w.endpoints.remove(&id);
            w.stale.remove(&id);
            w.due.remove(&id);
            Ok(cancelled)
        })
        .await
    }

    async fn rotate_secret(
        &self,
        id: &EndpointId,
        next: Secret,
        previous_until: SystemTime,
        now: SystemTime,
    ) -> Result<Endpoint, StoreError> {
        let id = id.clone();
        self.write(move |w| {
            let mut endpoint = Endpoint::clone(&*w.endpoint(&id)?);
            endpoint.secrets.rotate(next, previous_until);
            endpoint.updated_at = now;
            w.save_endpoint(endpoint)
        })
        .await
    }

    async fn reseal_endpoints(&self, limit: usize) -> Result<Resealed, StoreError> {
        self.write(move |w| w.reseal(limit)).await
    }

    async fn get_message(&self, id: &MessageId) -> Result<(Message, Vec<Delivery>), StoreError> {
        let id = id.clone();
        self.read(move |conn| {
            let message = conn
                .prepare_cached(&format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"))?
                .query_row([id.as_str()], message_row)
                .optional()?
                .ok_or_else(|| StoreError::message_not_found(&id))?;
            let mut stmt = conn.prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE message_id = ?1 ORDER BY endpoint_id"))?;
            let deliveries = stmt.query_map([id.as_str()], delivery_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((message, deliveries))
        })
        .await
    }

    async fn list_attempts(&self, query: AttemptQuery) -> Result<Vec<Attempt>, StoreError> {
        self.read(move |conn| {
            let mut sql = String::from(
                "SELECT a.id, a.message_id, a.endpoint_id, a.number, a.started_at, a.latency_us, a.status_code, a.transport_error, a.error, a.response_excerpt, a.succeeded
                 FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE a.id > ?",
            );
            let mut args = vec![Value::Integer(query.after_id.unwrap_or(0))];
            if let Some(m) = &query.message_id {
                sql.push_str(" AND a.message_id = ?");
                args.push(Value::Text(m.to_string()));
            }
            if let Some(e) = &query.endpoint_id {
                sql.push_str(" AND a.endpoint_id = ?");
                args.push(Value::Text(e.to_string()));
            }
            if let Some(s) = query.delivery_state {
                sql.push_str(" AND d.state = ?");
                args.push(Value::Integer(state_code(s)));
            }
            sql.push_str(" ORDER BY a.id LIMIT ?");
            args.push(Value::Integer(i64::try_from(query.limit).unwrap_or(i64::MAX)));
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), attempt_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn retry_delivery(
        &self,
        message: &MessageId,
        endpoint: &EndpointId,
        now: SystemTime,
    ) -> Result<Delivery, StoreError> {
        let (message, endpoint) = (message.clone(), endpoint.clone());
        self.write(move |w| {
            w.sendable(&message)?;
            w.endpoint(&endpoint)?;
            if !w.requeue(&message, &endpoint, now)? {
                return Err(StoreError::FailedPrecondition(format!(
                    "an attempt to deliver {message} to {endpoint} is in flight"
                )));
            }
            w.delivery(&message, &endpoint)
        })
        .await
    }

    async fn replay_message(
        &self,
        message: &MessageId,
        now: SystemTime,
    ) -> Result<u32, StoreError> {
        let message = message.clone();
        self.write(move |w| {
            let m = w.sendable(&message)?;
            let targets = w.subscribers(&m.tenant, &m.event_type, &m.channels);
            let mut queued = 0;
            for endpoint in &targets {
                if w.requeue(&message, endpoint, now)? {
                    queued += 1;
                }
            }
            Ok(queued)
        })
        .await
    }

    async fn expunge_message(
        &self,
        id: &MessageId,
        now: SystemTime,
    ) -> Result<Expunged, StoreError> {
        let id = id.clone();
        self.write(move |w| w.expunge(&id, now)).await
    }

    async fn expunge_tenant(
        &self,
        tenant: &TenantId,
        batch: usize,
        now: SystemTime,
    ) -> Result<TenantExpunged, StoreError> {
        let mut done = TenantExpunged::default();
        let mut after = String::new();
        loop {
            // Found on a reader, so the writer only ever holds one batch's work.
            let (tenant, from) = (tenant.clone(), after.clone());
            let ids: Vec<String> = self
                .read(move |conn| {
                    let mut stmt = conn.prepare_cached(
                        "SELECT id FROM messages WHERE tenant_id = ?1 AND id > ?2 AND expunged_at IS NULL
                         ORDER BY id LIMIT ?3",
                    )?;
                    let rows = stmt.query_map(params![tenant.as_str(), from, batch], |r| r.get(0))?;
                    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
                })
                .await?;
            let Some(last) = ids.last() else {
                return Ok(done);
            };
            after.clone_from(last);
            let round = self
                .write(move |w| {
                    let mut round = TenantExpunged::default();
                    for id in ids {
                        let expunged = w.expunge(&MessageId::parse(&id).map_err(backend)?, now)?;
                        round.messages += u32::from(expunged.fresh);
                        round.cancelled += expunged.cancelled;
                    }
                    Ok(round)
                })
                .await?;
            done.messages += round.messages;
            done.cancelled += round.cancelled;
        }
    }

    async fn claim_due(&self, request: ClaimRequest) -> Result<ClaimBatch, StoreError> {
        self.write_with(Durability::Written, move |w| w.claim(&request))
            .await
    }

    async fn release(&self, leases: Vec<Lease>, now: SystemTime) -> Result<(), StoreError> {
        self.write_with(Durability::Written, move |w| w.release(&leases, now))
            .await
    }

    async fn complete(
        &self,
        lease: Lease,
        outcome: Outcome,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.write_with(Durability::Written, move |w| {
            w.complete(lease, outcome, now)
        })
        .await
    }

    async fn recover_endpoint(
        &self,
        id: &EndpointId,
        since: SystemTime,
        now: SystemTime,
    ) -> Result<u32, StoreError> {
        let id = id.clone();
        self.write(move |w| {
            w.endpoint(&id)?;
            let failed: Vec<String> = w
                .conn
                .prepare_cached(
                    "SELECT d.message_id FROM deliveries d JOIN messages m ON m.id = d.message_id
                     WHERE d.endpoint_id = ?1 AND d.state = 4 AND d.updated_at >= ?2 AND m.expunged_at IS NULL",
                )?
                .query_map(params![id.as_str(), ms(since)], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut requeued = 0;
            for message in failed {
                if w.requeue(&MessageId::parse(&message).map_err(backend)?, &id, now)? {
                    requeued += 1;
                }
            }
            Ok(requeued)
        })
        .await
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<StatusEvent>> {
        self.status.subscribe()
    }

    fn condition(&self) -> watch::Receiver<Condition> {
        self.monitor.subscribe()
    }

    async fn events_after(&self, cursor: u64, limit: usize) -> Result<EventPage, StoreError> {
        self.read(move |conn| {
            let after = i64::try_from(cursor).unwrap_or(i64::MAX);
            let mut stmt = conn.prepare_cached(
                "SELECT cursor, at, kind, message_id, endpoint_id, event_type, attempt_number, status_code, transport_error, error, latency_us, next_attempt_at, disabled_reason
                 FROM status_events WHERE cursor > ?1 ORDER BY cursor LIMIT ?2",
            )?;
            let events = stmt.query_map(params![after, limit], status_event_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            let (oldest, latest): (Option<i64>, Option<i64>) = conn
                .prepare_cached("SELECT (SELECT MIN(cursor) FROM status_events), (SELECT seq FROM sqlite_sequence WHERE name = 'status_events')")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let latest = latest.unwrap_or(0);
            // Events after `cursor` were pruned when the oldest kept one is further on.
            let pruned = after < latest && oldest.is_none_or(|oldest| oldest > after + 1);
            Ok(EventPage { events, pruned, latest: u64::try_from(latest).unwrap_or_default() })
        })
        .await
    }

    async fn rollups(
        &self,
        from_minute: i64,
        to_minute: i64,
        endpoints: Option<Vec<EndpointId>>,
        event_type: Option<EventType>,
    ) -> Result<Vec<RollupRow>, StoreError> {
        let endpoints = endpoint_set(endpoints.as_deref())?;
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT minute, endpoint_id, data FROM rollups WHERE minute >= ?1 AND minute < ?2
                 AND (?3 IS NULL OR endpoint_id IN (SELECT value FROM json_each(?3)))
                 AND (?4 IS NULL OR event_type = ?4)",
            )?;
            let rows = stmt.query_map(
                params![
                    from_minute,
                    to_minute,
                    endpoints,
                    event_type.as_ref().map(EventType::as_str)
                ],
                |r| {
                    Ok(RollupRow {
                        minute: r.get(0)?,
                        endpoint: parsed(1, EndpointId::parse_stored(&r.get::<_, String>(1)?))?,
                        rollup: parsed(2, serde_json::from_str(&r.get::<_, String>(2)?))?,
                    })
                },
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn pending(
        &self,
        endpoints: Option<Vec<EndpointId>>,
        event_type: Option<EventType>,
    ) -> Result<u64, StoreError> {
        let endpoints = endpoint_set(endpoints.as_deref())?;
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM deliveries d JOIN messages m ON m.id = d.message_id
                     WHERE d.state IN (1, 2)
                     AND (?1 IS NULL OR d.endpoint_id IN (SELECT value FROM json_each(?1)))
                     AND (?2 IS NULL OR m.event_type = ?2)",
                )?
                .query_row(
                    params![endpoints, event_type.as_ref().map(EventType::as_str)],
                    |r| r.get(0),
                )?)
        })
        .await
    }

    async fn probe(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT 1 FROM endpoints LIMIT 1")?
                .query_row([], |_| Ok(()))
                .optional()
                .map(drop)?)
        })
        .await
    }

    async fn prune_rollups(&self, before_minute: i64) -> Result<u64, StoreError> {
        self.write(move |w| {
            Ok(w.conn
                .prepare_cached("DELETE FROM rollups WHERE minute < ?1")?
                .execute([before_minute])? as u64)
        })
        .await
    }

    async fn sweep(&self, now: SystemTime, limit: usize) -> Result<Swept, StoreError> {
        // A sweep lost to a power cut is simply made again.
        self.write_with(Durability::Written, move |w| w.sweep(ms(now), limit))
            .await
    }

    async fn purge_expired_keys(&self, now: SystemTime) -> Result<u64, StoreError> {
        self.write(move |w| {
            Ok(w.conn
                .prepare_cached("DELETE FROM idempotency WHERE expires_at <= ?1")?
                .execute([ms(now)])? as u64)
        })
        .await
    }

    fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    fn stored_bytes(&self) -> u64 {
        self.stored_bytes.load(Ordering::Relaxed)
    }

    async fn create_api_key(&self, key: ApiKey) -> Result<(), StoreError> {
        self.write(move |w| {
            let inserted = w
                .conn
                .prepare_cached("INSERT OR IGNORE INTO api_keys (id, record) VALUES (?1, ?2)")?
                .execute(params![key.id.as_str(), serde_json::to_string(&key)?])?;
            if inserted == 0 {
                return Err(StoreError::AlreadyExists {
                    kind: "API key",
                    id: key.id.to_string(),
                });
            }
            Ok(())
        })
        .await
    }

    async fn get_api_key(&self, id: &ApiKeyId) -> Result<ApiKey, StoreError> {
        let id = id.clone();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?1"
            ))?
            .query_row([id.as_str()], api_key_row)
            .optional()?
            .ok_or_else(|| StoreError::api_key_not_found(&id))
        })
        .await
    }

    async fn list_api_keys(
        &self,
        after: Option<ApiKeyId>,
        limit: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        self.read(move |conn| {
            let after = after.as_ref().map_or("", ApiKeyId::as_str).to_owned();
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![after, limit], api_key_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn revoke_api_key(&self, id: &ApiKeyId, now: SystemTime) -> Result<ApiKey, StoreError> {
        let id = id.clone();
        self.write(move |w| {
            w.conn
                .prepare_cached(&format!(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1
                     RETURNING {API_KEY_COLUMNS}"
                ))?
                .query_row(params![id.as_str(), ms(now)], api_key_row)
                .optional()?
                .ok_or_else(|| StoreError::api_key_not_found(&id))
        })
        .await
    }

    async fn touch_api_key(&self, id: &ApiKeyId, at: SystemTime) -> Result<(), StoreError> {
        let id = id.clone();
        self.write(move |w| {
            w.conn
                .prepare_cached("UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) WHERE id = ?1")?
                .execute(params![id.as_str(), ms(at)])?;
            Ok(())
        })
        .await
    }

    async fn close(&self) {
        // The stop queues behind every job sent before it, so those are committed.
        let _ = self.jobs.send(None).await;
        let thread = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            // The thread catches its own panic and reports it in the store's condition.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}
