//! The [`Store`] implementation: every transition through its script, every read
//! straight from the keys.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use async_trait::async_trait;
use redis::streams::StreamRangeReply;
use redis::{AsyncCommands, Value};
use tokio::sync::{Notify, broadcast};

use super::codec::{api_key_from, attempt_from, event_from, hex, message_from, parse, text};
use super::{GROUP, PACE_WAIT, RECLAIM_EVERY, RedisStore, Requeued, STALE_RETRIES, Save, backend};
use crate::analytics::{Rollup, RollupRow, minute_of};
use crate::auth::{ApiKey, ApiKeyId};
use crate::domain::{
    Attempt, Delivery, DeliveryState, Endpoint, EndpointId, EndpointUpdate, EventType, Message,
    MessageId, NewMessage, Secret, StatusEvent, TenantId,
};
use crate::policy::pace::Pace;
use crate::storage::codec::{
    content_hash, ms, ms_after, reason_code, state_from, time, transport_code,
};
use crate::storage::{
    AttemptQuery, Claim, ClaimBatch, ClaimRequest, EventPage, Expunged, Lease, Outcome, Published,
    RECHECK_UNSETTLED, Resealed, Store, StoreError, Swept, TenantExpunged, TenantSummary,
    Transition, idempotency_scope,
};

/// Whether the endpoint named `ep` is among `endpoints` (`None`: all are).
fn selected(endpoints: Option<&HashSet<EndpointId>>, ep: &str) -> bool {
    endpoints.is_none_or(|set| EndpointId::parse_stored(ep).is_ok_and(|id| set.contains(&id)))
}

#[async_trait]
impl Store for RedisStore {
    async fn publish(
        &self,
        batch: Vec<NewMessage>,
        now: SystemTime,
        backlog_limit: u64,
    ) -> Result<Vec<Published>, StoreError> {
        let ids: Vec<MessageId> = batch.iter().map(|_| MessageId::generate()).collect();
        for _ in 0..STALE_RETRIES {
            let mut invocation = self.invoke(&self.scripts.publish);
            {
                let cache = self
                    .cache
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                invocation
                    .arg(ms(now))
                    .arg(cache.version)
                    .arg(
                        u64::try_from(self.options.idempotency_ttl.as_millis()).unwrap_or(u64::MAX),
                    )
                    .arg(batch.len())
                    .arg(backlog_limit);
                for (m, id) in batch.iter().zip(&ids) {
                    let targets: Vec<&str> = cache
                        .endpoints
                        .subscribers(&m.tenant, &m.event_type, &m.channels)
                        .map(|e| e.id.as_str())
                        .collect();
                    invocation
                        .arg(id.as_str())
                        .arg(m.tenant.as_str())
                        .arg(m.event_type.as_str())
                        .arg(&m.content_type)
                        .arg(m.payload.as_ref())
                        .arg(serde_json::to_string(&m.channels).map_err(backend)?)
                        .arg(serde_json::to_string(&m.metadata).map_err(backend)?)
                        .arg(m.idempotency_key.as_deref().unwrap_or(""))
                        .arg(idempotency_scope(m).unwrap_or_default())
                        .arg(
                            m.trace
                                .as_ref()
                                .map(serde_json::to_string)
                                .transpose()
                                .map_err(backend)?
                                .unwrap_or_default(),
                        )
                        .arg(hex(&content_hash(m)))
                        .arg(ms_after(now, m.retention))
                        .arg(targets.len())
                        .arg(targets);
                }
            }
            let reply: Vec<Value> = invocation.invoke_async(&mut self.conn()).await?;
            if reply.first().is_some_and(|v| text(v) == "stale") {
                self.reload_endpoints().await?;
                continue;
            }
            if let [kind, backlog, incoming] = reply.as_slice()
                && text(kind) == "backlogged"
            {
                let count = |v: &Value| text(v).parse().unwrap_or(u64::MAX);
                return Err(StoreError::Backlogged {
                    backlog: count(backlog),
                    incoming: count(incoming),
                    limit: backlog_limit,
                });
            }
            let results = reply
                .iter()
                .map(|r| {
                    let parts: Vec<String> = redis::from_redis_value_ref(r).map_err(backend)?;
                    let [kind, id, n] = parts.as_slice() else {
                        return Err(backend(crate::domain::Invalid("publish reply".into())));
                    };
                    let message_id = parse(MessageId::parse(id))?;
                    let deliveries = n.parse().unwrap_or(0);
                    Ok(match kind.as_str() {
                        "c" => Published::Created {
                            message_id,
                            deliveries,
                        },
                        "d" => Published::Duplicate {
                            message_id,
                            deliveries,
                        },
                        _ => Published::Conflict { message_id },
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let (mut deliveries, mut bytes) = (0, 0);
            for (result, message) in results.iter().zip(&batch) {
                if let Published::Created { deliveries: n, .. } = result {
                    deliveries += u64::from(*n);
                    bytes += message.payload.len() as u64;
                }
            }
            let counters = &self.counters;
            counters.backlog.fetch_add(deliveries, Ordering::Relaxed);
            counters.stored_bytes.fetch_add(bytes, Ordering::Relaxed);
            return Ok(results);
        }
        Err(StoreError::Unavailable(Box::new(crate::domain::Invalid(
            "endpoints kept changing during the publish".into(),
        ))))
    }

    async fn create_endpoint(
        &self,
        endpoint: Endpoint,
        max_per_tenant: u64,
    ) -> Result<Endpoint, StoreError> {
        let enabled = if endpoint.is_enabled() { "1" } else { "0" };
        match self
            .save(
                &endpoint,
                Save::Create { max_per_tenant },
                enabled,
                endpoint.created_at,
            )
            .await?
            .as_str()
        {
            "exists" => Err(StoreError::AlreadyExists {
                kind: "endpoint",
                id: endpoint.id.to_string(),
            }),
            "full" => Err(StoreError::TooManyEndpoints {
                tenant: endpoint.tenant,
                limit: max_per_tenant,
            }),
            _ => Ok(endpoint),
        }
    }

    async fn get_endpoint(&self, id: &EndpointId) -> Result<Endpoint, StoreError> {
        self.endpoint(id).await
    }

    async fn list_endpoints(
        &self,
        tenant: Option<TenantId>,
        after: Option<EndpointId>,
        limit: usize,
    ) -> Result<Vec<Endpoint>, StoreError> {
        let index = tenant.map_or_else(
            || self.keys.endpoint_ids(),
            |t| self.keys.tenant_endpoints(&t),
        );
        let ids = self.ids_after(index, after, limit).await?;
        Ok(self
            .load_endpoints(&ids)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn list_tenants(
        &self,
        after: Option<TenantId>,
        limit: usize,
    ) -> Result<Vec<TenantSummary>, StoreError> {
        let counts: HashMap<String, u64> = self.conn().hgetall(self.keys.tenants()).await?;
        let mut tenants = counts
            .into_iter()
            .filter(|(t, n)| *n > 0 && after.as_ref().is_none_or(|a| t.as_str() > a.as_str()))
            .map(|(t, endpoints)| {
                Ok(TenantSummary {
                    tenant: parse(TenantId::parse(&t))?,
                    endpoints,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tenants.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        tenants.truncate(limit);
        Ok(tenants)
    }

    async fn update_endpoint(
        &self,
        id: &EndpointId,
        update: EndpointUpdate,
        now: SystemTime,
    ) -> Result<Endpoint, StoreError> {
        let mut endpoint = self.endpoint(id).await?;
        let enabled = update.enabled;
        update.apply(&mut endpoint, now);
        let flag = match enabled {
            Some(true) => "1",
            Some(false) => "0",
            None => "",
        };
        if self.save(&endpoint, Save::Update, flag, now).await? == "missing" {
            return Err(StoreError::endpoint_not_found(id));
        }
        self.endpoint(id).await
    }

    async fn delete_endpoint(&self, id: &EndpointId, now: SystemTime) -> Result<u32, StoreError> {
        let cancelled: i64 = self
            .invoke(&self.scripts.delete_endpoint)
            .arg(ms(now))
            .arg(id.as_str())
            .invoke_async(&mut self.conn())
            .await?;
        if cancelled < 0 {
            return Err(StoreError::endpoint_not_found(id));
        }
        self.refresh_counters().await?;
        Ok(u32::try_from(cancelled).unwrap_or(u32::MAX))
    }

    async fn rotate_secret(
        &self,
        id: &EndpointId,
        next: Secret,
        previous_until: SystemTime,
        now: SystemTime,
    ) -> Result<Endpoint, StoreError> {
        let mut endpoint = self.endpoint(id).await?;
        endpoint.secrets.rotate(next, previous_until);
        endpoint.updated_at = now;
        if self.save(&endpoint, Save::Update, "", now).await? == "missing" {
            return Err(StoreError::endpoint_not_found(id));
        }
        Ok(endpoint)
    }

    async fn reseal_endpoints(&self, limit: usize) -> Result<Resealed, StoreError> {
        let stale: Vec<EndpointId> = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .stale
            .iter()
            .take(limit)
            .cloned()
            .collect();
        let mut resealed = 0;
        for id in &stale {
            let record: Option<String> = self.conn().get(self.keys.endpoint(id)).await?;
            if let Some(record) = record {
                let opened = self.options.keyring.open(&record)?;
                if !opened.current {
                    let sealed = self.options.keyring.seal(&opened.endpoint)?;
                    let written: u64 = self
                        .invoke(&self.scripts.reseal_endpoint)
                        .arg(id.as_str())
                        .arg(record)
                        .arg(sealed)
                        .invoke_async(&mut self.conn())
                        .await?;
                    resealed += written;
                }
            }
            // Resealed, changed (and so sealed by whoever changed it) or deleted: done
            // here; a change under an older key bumps the version and a reload finds it.
            self.cache
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .stale
                .remove(id);
        }
        let remaining = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .stale
            .len();
        Ok(Resealed {
            resealed,
            remaining: remaining as u64,
        })
    }

    async fn get_message(&self, id: &MessageId) -> Result<(Message, Vec<Delivery>), StoreError> {
        let message = self.message(id).await?;
        let by_endpoint: HashMap<String, String> = self
            .conn()
            .hgetall(self.keys.message_deliveries(id))
            .await?;
        let mut endpoints: Vec<(String, String)> = by_endpoint.into_iter().collect();
        endpoints.sort();
        let mut pipe = redis::pipe();
        for (_, d) in &endpoints {
            pipe.cmd("HMGET")
                .arg(self.keys.delivery(d))
                .arg(&["s", "n", "na", "c", "u"]);
        }
        let rows: Vec<Vec<Option<String>>> = self.run(&pipe).await?;
        let deliveries = endpoints
            .iter()
            .zip(rows)
            .map(|((endpoint, _), row)| {
                let field = |i: usize| row.get(i).cloned().flatten();
                let int = |i: usize| field(i).and_then(|v| v.parse::<i64>().ok());
                Ok(Delivery {
                    message_id: id.clone(),
                    endpoint_id: parse(EndpointId::parse_stored(endpoint))?,
                    state: state_from(int(0).unwrap_or(5)),
                    attempt_count: u32::try_from(int(1).unwrap_or(0)).unwrap_or(0),
                    next_attempt_at: int(2).map(time),
                    created_at: time(int(3).unwrap_or(0)),
                    updated_at: time(int(4).unwrap_or(0)),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((message, deliveries))
    }

    async fn list_attempts(&self, query: AttemptQuery) -> Result<Vec<Attempt>, StoreError> {
        let index = match (&query.message_id, &query.endpoint_id) {
            (Some(m), _) => self.keys.message_attempts(m),
            (None, Some(e)) => self.keys.endpoint_attempts(e),
            (None, None) => self.keys.attempts(),
        };
        let mut after = query.after_id.unwrap_or(0);
        let mut found = Vec::new();
        let page = query.limit.clamp(1, 1000);
        while found.len() < query.limit {
            let ids: Vec<i64> = self
                .conn()
                .zrangebyscore_limit(
                    &index,
                    format!("({after}"),
                    "+inf",
                    0,
                    isize::try_from(page).unwrap_or(1000),
                )
                .await?;
            let Some(last) = ids.last() else { break };
            after = *last;
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.hgetall(self.keys.attempt(id));
            }
            let maps: Vec<HashMap<String, String>> = self.run(&pipe).await?;
            let states: Vec<Option<String>> = if query.delivery_state.is_some() {
                let mut pipe = redis::pipe();
                for map in &maps {
                    pipe.hget(
                        self.keys.delivery(map.get("d").map_or("", String::as_str)),
                        "s",
                    );
                }
                self.run(&pipe).await?
            } else {
                vec![None; maps.len()]
            };
            for ((id, map), state) in ids.iter().zip(&maps).zip(states) {
                let Some(attempt) = attempt_from(*id, map) else {
                    continue;
                };
                if query
                    .endpoint_id
                    .as_ref()
                    .is_some_and(|e| *e != attempt.endpoint_id)
                {
                    continue;
                }
                if let Some(wanted) = query.delivery_state
                    && state.and_then(|s| s.parse().ok()).map(state_from) != Some(wanted)
                {
                    continue;
                }
                found.push(attempt);
                if found.len() == query.limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    async fn retry_delivery(
        &self,
        message: &MessageId,
        endpoint: &EndpointId,
        now: SystemTime,
    ) -> Result<Delivery, StoreError> {
        self.sendable(message).await?;
        self.endpoint(endpoint).await?;
        let requeued = self
            .requeue(message, std::slice::from_ref(endpoint), now)
            .await?;
        self.refresh_counters().await?;
        match requeued.first() {
            Some(Requeued::Queued {
                attempts,
                created_at,
            }) => Ok(Delivery {
                message_id: message.clone(),
                endpoint_id: endpoint.clone(),
                state: DeliveryState::Pending,
                attempt_count: *attempts,
                next_attempt_at: Some(now),
                created_at: *created_at,
                updated_at: now,
            }),
            Some(Requeued::InFlight) => Err(StoreError::FailedPrecondition(format!(
                "an attempt to deliver {message} to {endpoint} is in flight"
            ))),
            Some(Requeued::Expunged(at)) => Err(StoreError::expunged(message, *at)),
            Some(Requeued::NoEndpoint) | None => Err(StoreError::endpoint_not_found(endpoint)),
        }
    }

    async fn replay_message(
        &self,
        message: &MessageId,
        now: SystemTime,
    ) -> Result<u32, StoreError> {
        let m = self.sendable(message).await?;
        self.reload_endpoints().await?;
        let targets: Vec<EndpointId> = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .endpoints
            .subscribers(&m.tenant, &m.event_type, &m.channels)
            .map(|e| e.id.clone())
            .collect();
        let queued = self.requeue(message, &targets, now).await?;
        self.refresh_counters().await?;
        if let Some(Requeued::Expunged(at)) = queued.first() {
            return Err(StoreError::expunged(message, *at));
        }
        Ok(u32::try_from(
            queued
                .iter()
                .filter(|q| matches!(q, Requeued::Queued { .. }))
                .count(),
        )
        .unwrap_or(u32::MAX))
    }

    async fn expunge_message(
        &self,
        id: &MessageId,
        now: SystemTime,
    ) -> Result<Expunged, StoreError> {
        let expunged = self
            .expunge(&[id.to_string()], None, now)
            .await?
            .into_iter()
            .next()
            .flatten();
        expunged.ok_or_else(|| StoreError::message_not_found(id))
    }

    async fn expunge_tenant(
        &self,
        tenant: &TenantId,
        batch: usize,
        now: SystemTime,
    ) -> Result<TenantExpunged, StoreError> {
        // Every message is indexed by expiry: scanning that index visits each at least
        // once, whatever is published or purged meanwhile, and the script skips other
        // tenants' messages and those expunged before.
        let mut done = TenantExpunged::default();
        let mut cursor = 0_u64;
        loop {
            let (next, found): (u64, Vec<String>) = redis::cmd("ZSCAN")
                .arg(self.keys.messages_by_expiry())
                .arg(cursor)
                .arg("COUNT")
                .arg(batch)
                .query_async(&mut self.conn())
                .await?;
            let ids: Vec<String> = found.into_iter().step_by(2).collect();
            if !ids.is_empty() {
                for expunged in self
                    .expunge(&ids, Some(tenant), now)
                    .await?
                    .into_iter()
                    .flatten()
                {
                    done.messages += u32::from(expunged.fresh);
                    done.cancelled += expunged.cancelled;
                }
            }
            if next == 0 {
                return Ok(done);
            }
            cursor = next;
        }
    }

    async fn claim_due(&self, request: ClaimRequest) -> Result<ClaimBatch, StoreError> {
        let now = ms(request.now);
        let p = &self.protection;
        let (limit, window, burst) = p.rate_limit.map_or((0, 1000, 0), |l| {
            (
                l.limit(),
                u64::try_from(l.window().as_millis()).unwrap_or(u64::MAX),
                l.burst(),
            )
        });
        let (host_limit, host_window, host_burst) = p.host.rate_limit.map_or((0, 1000, 0), |l| {
            (
                l.limit(),
                u64::try_from(l.window().as_millis()).unwrap_or(u64::MAX),
                l.burst(),
            )
        });
        // A pace as the script reads it: a slow endpoint's room, or -1 for a timely one.
        let pace = |pace: Pace| match pace {
            Pace::Timely => -1,
            Pace::Slow { room } => i64::try_from(room).unwrap_or(i64::MAX),
        };
        let mut promote = self.invoke(&self.scripts.promote);
        promote
            .arg(now)
            .arg(request.limit)
            .arg(p.max_in_flight)
            .arg(limit)
            .arg(window)
            .arg(burst)
            .arg(p.host.max_in_flight)
            .arg(host_limit)
            .arg(host_window)
            .arg(host_burst)
            .arg(request.pace.slow_room)
            .arg(pace(request.pace.unknown))
            .arg(PACE_WAIT.as_millis() as u64);
        for (endpoint, &room) in &request.pace.endpoints {
            promote.arg(endpoint.as_str()).arg(pace(room));
        }
        let promoted: (Vec<String>, String, i64, u64) =
            promote.invoke_async(&mut self.conn()).await?;
        let (rate_limited, next_scheduled, version, host_waits) = promoted;
        let rate_limited = rate_limited
            .iter()
            .map(|e| parse(EndpointId::parse_stored(e)))
            .collect::<Result<Vec<_>, _>>()?;
        if version
            != self
                .cache
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .version
        {
            self.reload_endpoints().await?;
        }
        let lease = u64::try_from(request.lease.as_millis()).unwrap_or(u64::MAX);
        let now_ms = u64::try_from(now).unwrap_or(0);
        let last = self.last_reclaim.load(Ordering::Relaxed);
        let reclaim = now_ms.saturating_sub(last) >= RECLAIM_EVERY.as_millis() as u64
            && self
                .last_reclaim
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        let claim = || {
            let mut invocation = self.invoke(&self.scripts.claim);
            invocation
                .arg(now)
                .arg(lease)
                .arg(&self.consumer)
                .arg(request.limit)
                .arg(u8::from(reclaim));
            invocation
        };
        let rows: Vec<(i64, i64, String, String, u32, u32, String)> =
            match claim().invoke_async(&mut self.conn()).await {
                Err(e) if e.code() == Some("NOGROUP") => {
                    // Redis lost the group (restarted without its data): make it again.
                    tracing::warn!("the ready stream's consumer group is missing; recreating it");
                    let _: Result<(), _> = redis::cmd("XGROUP")
                        .arg("CREATE")
                        .arg(self.keys.ready())
                        .arg(GROUP)
                        .arg("0")
                        .arg("MKSTREAM")
                        .query_async(&mut self.conn())
                        .await;
                    claim().invoke_async(&mut self.conn()).await?
                }
                other => other?,
            };
        let mut wanted: Vec<&String> = rows.iter().map(|r| &r.2).collect();
        wanted.sort();
        wanted.dedup();
        let mut pipe = redis::pipe();
        for id in &wanted {
            pipe.hgetall(self.keys.message(id));
        }
        let maps: Vec<HashMap<String, Vec<u8>>> = self.run(&pipe).await?;
        let mut messages: HashMap<String, Arc<Message>> = HashMap::new();
        for (id, map) in wanted.into_iter().zip(maps) {
            let message_id = parse(MessageId::parse(id))?;
            let message = message_from(&message_id, &map)
                .ok_or_else(|| StoreError::message_not_found(&message_id))?;
            messages.insert(id.clone(), Arc::new(message));
        }
        let mut claims = Vec::with_capacity(rows.len());
        for (delivery, token, message_id, endpoint_id, attempts, round_start, _probe) in rows {
            let endpoint_id = parse(EndpointId::parse_stored(&endpoint_id))?;
            let endpoint = match self.cached_endpoint(&endpoint_id) {
                Some(e) => e,
                None => {
                    self.reload_endpoints().await?;
                    match self.cached_endpoint(&endpoint_id) {
                        Some(e) => e,
                        None => continue,
                    }
                }
            };
            let Some(message) = messages.get(&message_id).cloned() else {
                continue;
            };
            claims.push(Claim {
                lease: Lease { delivery, token },
                message,
                endpoint,
                attempt_number: attempts + 1,
                attempts_in_round: attempts.saturating_sub(round_start),
            });
        }
        let next_due = if claims.len() == request.limit {
            Some(request.now)
        } else {
            next_scheduled.parse::<i64>().ok().map(time)
        };
        Ok(ClaimBatch {
            claims,
            next_due,
            rate_limited,
            host_waits,
        })
    }

    async fn release(&self, leases: Vec<Lease>, now: SystemTime) -> Result<(), StoreError> {
        let mut invocation = self.invoke(&self.scripts.release);
        invocation.arg(ms(now));
        for lease in &leases {
            invocation.arg(lease.delivery).arg(lease.token);
        }
        let _: i64 = invocation.invoke_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn complete(
        &self,
        lease: Lease,
        outcome: Outcome,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        // The shared protection decides circuit changes and the failing-since clock in
        // the script, for every instance at once; only a disabling comes from the core.
        let Outcome {
            record,
            transition,
            event_type: _,
            endpoint_failure,
            endpoint: effects,
        } = outcome;
        let succeeded = transition == Transition::Succeeded;
        let (code, retry_at) = match transition {
            Transition::Succeeded => ("s", 0),
            Transition::RetryAt(at) => ("r", ms(at)),
            Transition::Failed => ("f", 0),
        };
        let reason = effects.disable.map_or(0, reason_code);
        // The script knows the attempt number, so it counts first attempts (deliveries)
        // and exhausted deliveries itself; the rest of the rollup is counted here.
        let mut rollup = Rollup::default();
        rollup.record(0, &record, succeeded, false);
        let p = &self.protection;
        let mut invocation = self.invoke(&self.scripts.complete);
        invocation
            .arg(ms(now))
            .arg(lease.delivery)
            .arg(lease.token)
            .arg(code)
            .arg(retry_at)
            .arg(reason)
            .arg(u8::from(succeeded))
            .arg(u8::from(endpoint_failure))
            .arg(u64::try_from(p.auto_disable_after.as_millis()).unwrap_or(u64::MAX))
            .arg(p.breaker.failure_threshold())
            .arg(u64::try_from(p.breaker.open_for().as_millis()).unwrap_or(u64::MAX))
            .arg(ms(record.started_at))
            .arg(u64::try_from(record.latency.as_micros()).unwrap_or(u64::MAX))
            .arg(
                record
                    .status_code
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            )
            .arg(
                record
                    .transport_error
                    .map(|t| transport_code(t).to_string())
                    .unwrap_or_default(),
            )
            .arg(&record.error)
            .arg(&record.response_excerpt)
            .arg(minute_of(record.started_at));
        let counters = rollup.counters();
        invocation.arg(counters.len());
        for (name, n) in &counters {
            invocation.arg(name).arg(n);
        }
        let (_applied, change, disabled, backlog): (i64, i64, i64, i64) =
            invocation.invoke_async(&mut self.conn()).await?;
        self.counters
            .backlog
            .store(u64::try_from(backlog).unwrap_or(0), Ordering::Relaxed);
        match change {
            1 => tracing::warn!(delivery = lease.delivery, "circuit opened (shared)"),
            2 => tracing::info!(delivery = lease.delivery, "circuit closed (shared)"),
            _ => {}
        }
        if disabled == 1 {
            tracing::warn!(delivery = lease.delivery, "endpoint disabled");
        }
        Ok(())
    }

    async fn recover_endpoint(
        &self,
        id: &EndpointId,
        since: SystemTime,
        now: SystemTime,
    ) -> Result<u32, StoreError> {
        self.endpoint(id).await?;
        let failed: Vec<i64> = self
            .conn()
            .zrangebyscore(self.keys.endpoint_failed(id), ms(since), "+inf")
            .await?;
        let mut pipe = redis::pipe();
        for d in &failed {
            pipe.hget(self.keys.delivery(d), "m");
        }
        let messages: Vec<Option<String>> = self.run(&pipe).await?;
        let mut requeued = 0;
        for message in messages.into_iter().flatten() {
            let queued = self
                .requeue(
                    &parse(MessageId::parse(&message))?,
                    std::slice::from_ref(id),
                    now,
                )
                .await?;
            requeued += u32::from(matches!(queued.first(), Some(Requeued::Queued { .. })));
        }
        self.refresh_counters().await?;
        Ok(requeued)
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<StatusEvent>> {
        self.status.subscribe()
    }

    async fn events_after(&self, cursor: u64, limit: usize) -> Result<EventPage, StoreError> {
        let mut conn = self.conn();
        // The newest cursor first: events written after it are then in the range read
        // next, and never mistaken for a gap.
        let latest: Option<u64> = conn.get(self.keys.last_event()).await?;
        let reply: StreamRangeReply = conn
            .xrange_count(
                self.keys.events(),
                format!("0-{}", cursor.saturating_add(1)),
                "+",
                limit,
            )
            .await?;
        let events = reply
            .ids
            .iter()
            .map(|e| event_from(&e.id, &e.map))
            .collect::<Result<Vec<_>, _>>()?;
        let latest = events
            .last()
            .map_or(0, |e| e.cursor)
            .max(latest.unwrap_or(0));
        let pruned = cursor < latest
            && events
                .first()
                .is_none_or(|e| e.cursor > cursor.saturating_add(1));
        Ok(EventPage {
            events,
            pruned,
            latest,
        })
    }

    async fn rollups(
        &self,
        from_minute: i64,
        to_minute: i64,
        endpoints: Option<Vec<EndpointId>>,
        event_type: Option<EventType>,
    ) -> Result<Vec<RollupRow>, StoreError> {
        let endpoints = endpoints.map(|e| e.into_iter().collect::<HashSet<_>>());
        let minutes: Vec<i64> = self
            .conn()
            .zrangebyscore(
                self.keys.rollup_minutes(),
                from_minute,
                format!("({to_minute}"),
            )
            .await?;
        let mut pipe = redis::pipe();
        for minute in &minutes {
            pipe.hgetall(self.keys.rollup(*minute));
        }
        let maps: Vec<HashMap<String, u64>> = self.run(&pipe).await?;
        let mut rows: HashMap<(i64, String, String), Rollup> = HashMap::new();
        for (minute, map) in minutes.iter().zip(maps) {
            for (field, n) in map {
                let mut parts = field.splitn(3, '\n');
                let (Some(ep), Some(et), Some(name)) = (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                if !selected(endpoints.as_ref(), ep)
                    || event_type.as_ref().is_some_and(|t| t.as_str() != et)
                {
                    continue;
                }
                rows.entry((*minute, ep.to_owned(), et.to_owned()))
                    .or_default()
                    .add_counter(name, n);
            }
        }
        rows.into_iter()
            .map(|((minute, ep, _), rollup)| {
                Ok(RollupRow {
                    minute,
                    endpoint: parse(EndpointId::parse_stored(&ep))?,
                    rollup,
                })
            })
            .collect()
    }

    async fn pending(
        &self,
        endpoints: Option<Vec<EndpointId>>,
        event_type: Option<EventType>,
    ) -> Result<u64, StoreError> {
        let endpoints = endpoints.map(|e| e.into_iter().collect::<HashSet<_>>());
        let counts: HashMap<String, i64> = self.conn().hgetall(self.keys.pending()).await?;
        Ok(counts
            .iter()
            .filter(|(field, _)| {
                let (ep, et) = field.split_once('\n').unwrap_or((field.as_str(), ""));
                selected(endpoints.as_ref(), ep)
                    && event_type.as_ref().is_none_or(|t| t.as_str() == et)
            })
            .map(|(_, n)| u64::try_from(*n).unwrap_or(0))
            .sum())
    }

    async fn probe(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn prune_rollups(&self, before_minute: i64) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let minutes: Vec<i64> = conn
            .zrangebyscore(
                self.keys.rollup_minutes(),
                "-inf",
                format!("({before_minute}"),
            )
            .await?;
        if minutes.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for minute in &minutes {
            pipe.del(self.keys.rollup(minute)).ignore();
            pipe.zrem(self.keys.rollup_minutes(), minute).ignore();
        }
        let () = pipe.query_async(&mut conn).await?;
        Ok(minutes.len() as u64)
    }

    async fn sweep(&self, now: SystemTime, limit: usize) -> Result<Swept, StoreError> {
        let (messages, deliveries, attempts, payload_bytes, more): (u64, u64, u64, u64, u8) = self
            .invoke(&self.scripts.sweep)
            .arg(ms(now))
            .arg(limit)
            .arg(u64::try_from(RECHECK_UNSETTLED.as_millis()).unwrap_or(u64::MAX))
            .invoke_async(&mut self.conn())
            .await?;
        self.refresh_counters().await?;
        Ok(Swept {
            messages,
            deliveries,
            attempts,
            payload_bytes,
            more: more == 1,
        })
    }

    async fn purge_expired_keys(&self, _now: SystemTime) -> Result<u64, StoreError> {
        // Idempotency records carry their own expiry in Redis.
        Ok(0)
    }

    async fn create_api_key(&self, key: ApiKey) -> Result<(), StoreError> {
        let record = serde_json::to_string(&key).map_err(backend)?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_nx(self.keys.api_key(&key.id), "r", record)
            .zadd(self.keys.api_keys(), key.id.as_str(), 0)
            .ignore();
        let created: Vec<bool> = self.run(&pipe).await?;
        if created.first() == Some(&true) {
            Ok(())
        } else {
            Err(StoreError::AlreadyExists {
                kind: "API key",
                id: key.id.to_string(),
            })
        }
    }

    async fn get_api_key(&self, id: &ApiKeyId) -> Result<ApiKey, StoreError> {
        let map: HashMap<String, String> = self.conn().hgetall(self.keys.api_key(id)).await?;
        api_key_from(&map)?.ok_or_else(|| StoreError::api_key_not_found(id))
    }

    async fn list_api_keys(
        &self,
        after: Option<ApiKeyId>,
        limit: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let ids = self.ids_after(self.keys.api_keys(), after, limit).await?;
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.keys.api_key(id));
        }
        let maps: Vec<HashMap<String, String>> = self.run(&pipe).await?;
        Ok(maps
            .iter()
            .map(api_key_from)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn revoke_api_key(&self, id: &ApiKeyId, now: SystemTime) -> Result<ApiKey, StoreError> {
        // Keys are never deleted, so a key that exists now exists after the HSETNX.
        self.get_api_key(id).await?;
        let _: bool = self
            .conn()
            .hset_nx(self.keys.api_key(id), "rev", ms(now))
            .await?;
        self.get_api_key(id).await
    }

    async fn touch_api_key(&self, id: &ApiKeyId, at: SystemTime) -> Result<(), StoreError> {
        let _: () = self
            .conn()
            .hset(self.keys.api_key(id), "used", ms(at))
            .await?;
        Ok(())
    }

    fn backlog(&self) -> u64 {
        self.counters.backlog.load(Ordering::Relaxed)
    }

    fn stored_bytes(&self) -> u64 {
        self.counters.stored_bytes.load(Ordering::Relaxed)
    }

    fn remote_work(&self) -> Option<Arc<Notify>> {
        Some(self.work.clone())
    }

    async fn close(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
