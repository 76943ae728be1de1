//! The group-commit engine: one thread owns the write connection, takes every job
//! waiting in its queue, runs each in its own savepoint, commits them in one transaction
//! (one fsync when any of them needs it) and only then answers each caller, broadcasts
//! the batch's status events and publishes its backlog change. It also keeps what the
//! transitions need at hand: every endpoint, and each endpoint's earliest due time. As
//! the one writer, it also seals endpoint records again under a new master key, so that
//! never races a user's change.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{broadcast, mpsc};

use super::faults::Monitor;
use super::rows::{DELIVERY_COLUMNS, MESSAGE_COLUMNS, delivery_row, message_row, parsed};
use super::{MAX_BATCH, StartError};
use crate::analytics::Rollup;
use crate::domain::{
    Delivery, Endpoint, EndpointId, EventType, Message, MessageId, StatusEvent, TenantId,
};
use crate::storage::codec::{kind_code, ms, reason_code, transport_code};
use crate::storage::directory::Directory;
use crate::storage::sealing::Keyring;
use crate::storage::{Resealed, StoreError};

/// Tells a caller whether the commit carrying its job succeeded.
pub(super) type Reply = Box<dyn FnOnce(Result<(), Arc<rusqlite::Error>>) + Send>;
/// A caller's work: run inside the batch's transaction (answering later, once the commit
/// is known), or refused at once when no transaction could be opened.
pub(super) type Work =
    Box<dyn FnOnce(Result<&mut Writer, Arc<rusqlite::Error>>) -> Option<Reply> + Send>;

/// How far a job's commit must reach before its caller hears of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// On disk (fsync): an acknowledged publish, an endpoint change, a requeue by hand.
    Synced,
    /// In the operating system (survives the process being killed, not a power cut):
    /// claims, attempt outcomes and events. Losing one to a power cut only means an
    /// attempt is made again, which at-least-once delivery allows.
    Written,
}

/// A job and the durability its commit needs.
pub(super) struct Job {
    pub(super) durability: Durability,
    pub(super) work: Work,
}

/// Owns the write connection; runs on its own thread.
pub(super) struct Writer {
    pub(super) conn: Connection,
    /// Whether commits fsync now (`PRAGMA synchronous = FULL`).
    pub(super) synced: bool,
    /// Every endpoint, as committed plus this batch's changes.
    pub(super) endpoints: Directory,
    /// Per endpoint with pending work: a lower bound of its earliest due time (ms). The
    /// claim visits only endpoints due by now, so endpoints without room, or with nothing
    /// due, cost no query.
    pub(super) due: HashMap<EndpointId, i64>,
    /// Lease tokens are unique within this process; a restart clears every lease.
    pub(super) next_lease: i64,
    pub(super) idempotency_ttl: Duration,
    /// How many status events are kept for watchers that reconnect.
    pub(super) status_retention: u64,
    /// Change of the backlog by this batch, published only once it commits.
    pub(super) backlog_delta: i64,
    /// Change of the stored payload bytes by this batch, published only once it commits.
    pub(super) stored_bytes_delta: i64,
    /// This batch's attempts per (minute, endpoint, event type), written at its commit.
    pub(super) rollups: HashMap<(i64, EndpointId, EventType), Rollup>,
    /// The stored rollups of the last minutes, so a flush need not read them back.
    pub(super) rollup_cache: HashMap<(i64, EndpointId, EventType), Rollup>,
    /// Status events written by this batch, broadcast only once it commits.
    pub(super) events: Vec<Arc<StatusEvent>>,
    pub(super) status: broadcast::Sender<Arc<StatusEvent>>,
    pub(super) backlog: Arc<AtomicU64>,
    /// Payload bytes stored, as committed.
    pub(super) stored_bytes: Arc<AtomicU64>,
    /// Seals the endpoint records it writes.
    pub(super) keyring: Arc<Keyring>,
    /// Endpoints whose stored record is not sealed as the keyring would seal it now.
    pub(super) stale: BTreeSet<EndpointId>,
    /// Told of every commit and failed transaction: a full disk, or a reason to stop.
    pub(super) monitor: Arc<Monitor>,
}

impl Writer {
    /// Reads every endpoint, opening its secrets, and notes which records are stale.
    pub(super) fn load_endpoints(&mut self) -> Result<(), StartError> {
        let mut stmt = self.conn.prepare("SELECT record FROM endpoints")?;
        let records = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        drop(stmt);
        self.endpoints = Directory::default();
        self.stale.clear();
        for record in records {
            let opened = self.keyring.open(&record)?;
            if !opened.current {
                self.stale.insert(opened.endpoint.id.clone());
            }
            self.endpoints.insert(Arc::new(opened.endpoint));
        }
        Ok(())
    }

    /// Writes at most `limit` stale endpoint records again, sealed under the current key.
    pub(super) fn reseal(&mut self, limit: usize) -> Result<Resealed, StoreError> {
        let ids: Vec<EndpointId> = self.stale.iter().take(limit).cloned().collect();
        for id in &ids {
            let endpoint = self.endpoint(id)?;
            self.save_endpoint(Endpoint::clone(&endpoint))?;
        }
        Ok(Resealed {
            resealed: ids.len() as u64,
            remaining: self.stale.len() as u64,
        })
    }

    /// Commits jobs in groups until asked to stop (`None`), every sender is gone, or the
    /// database cannot be written any more. Jobs still queued then are dropped unrun:
    /// their callers hear that the store closed.
    pub(super) fn run(mut self, mut jobs: mpsc::Receiver<Option<Job>>) {
        let mut stopping = false;
        while !stopping {
            let Some(Some(first)) = jobs.blocking_recv() else {
                break;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(Some(job)) => batch.push(job),
                    Ok(None) => {
                        stopping = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            let changes = self.conn.total_changes();
            let (replies, committed) = self.commit_batch(batch);
            match &committed {
                Ok(()) => {
                    // Only a commit that wrote something shows that the disk has room.
                    if self.conn.total_changes() != changes {
                        self.monitor.committed();
                    }
                    self.apply_deltas();
                    for event in self.events.drain(..) {
                        // No subscriber is fine: the events are in the store.
                        let _ = self.status.send(event);
                    }
                }
                Err(e) => {
                    self.monitor.failed(e);
                    let _ = self.conn.execute_batch("ROLLBACK");
                    self.backlog_delta = 0;
                    self.stored_bytes_delta = 0;
                    self.events.clear();
                    self.rollups.clear();
                    // It may hold what the failed commit would have written.
                    self.rollup_cache.clear();
                    if let Err(e) = self.load_endpoints() {
                        tracing::error!(error = %e, "cannot reload endpoints after a failed commit");
                    }
                }
            }
            for reply in replies {
                reply(committed.clone());
            }
            stopping |= self.monitor.stopped();
        }
    }

    pub(super) fn commit_batch(
        &mut self,
        batch: Vec<Job>,
    ) -> (Vec<Reply>, Result<(), Arc<rusqlite::Error>>) {
        if let Err(e) = self.set_durability(&batch).and_then(|()| {
            self.conn
                .prepare_cached("BEGIN IMMEDIATE")
                .and_then(|mut s| s.execute([]))
        }) {
            // Run nothing: outside a transaction each statement would commit by itself.
            let e = Arc::new(e);
            self.monitor.failed(&e);
            for job in batch {
                (job.work)(Err(e.clone()));
            }
            return (Vec::new(), Ok(()));
        }
        let replies = batch
            .into_iter()
            .filter_map(|job| (job.work)(Ok(&mut *self)))
            .collect();
        let committed = self
            .flush_rollups()
            .and_then(|()| self.conn.prepare_cached("COMMIT")?.execute([]).map(drop));
        (replies, committed.map_err(Arc::new))
    }

    /// Makes the next commit fsync when any job of the batch needs it; otherwise (WAL
    /// with `synchronous = NORMAL`) the commit reaches the operating system only, and
    /// the next synced commit takes it to disk with its own.
    pub(super) fn set_durability(&mut self, batch: &[Job]) -> rusqlite::Result<()> {
        let synced = batch.iter().any(|j| j.durability == Durability::Synced);
        if synced != self.synced {
            let level = if synced { "FULL" } else { "NORMAL" };
            self.conn.pragma_update(None, "synchronous", level)?;
            self.synced = synced;
        }
        Ok(())
    }

    /// Adds this batch's attempts to their stored per-minute rollups.
    pub(super) fn flush_rollups(&mut self) -> rusqlite::Result<()> {
        let mut newest = i64::MIN;
        for (key, rollup) in std::mem::take(&mut self.rollups) {
            let (minute, endpoint, event_type) = &key;
            newest = newest.max(*minute);
            let mut merged = match self.rollup_cache.remove(&key) {
                Some(cached) => cached,
                None => {
                    let stored: Option<String> = self
                        .conn
                        .prepare_cached("SELECT data FROM rollups WHERE minute = ?1 AND endpoint_id = ?2 AND event_type = ?3")?
                        .query_row(params![minute, endpoint.as_str(), event_type.as_str()], |r| r.get(0))
                        .optional()?;
                    match stored {
                        Some(text) => parsed(0, serde_json::from_str(&text))?,
                        None => Rollup::default(),
                    }
                }
            };
            merged.merge(&rollup);
            let data = serde_json::to_string(&merged)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            self.conn
                .prepare_cached("INSERT OR REPLACE INTO rollups (minute, endpoint_id, event_type, data) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![minute, endpoint.as_str(), event_type.as_str(), data])?;
            self.rollup_cache.insert(key, merged);
        }
        // Attempts land in the current minute (or just before it): older ones are done.
        self.rollup_cache
            .retain(|(minute, _, _), _| *minute >= newest.saturating_sub(1));
        Ok(())
    }

    /// Publishes the committed batch's change of the backlog and of the stored payload
    /// bytes.
    pub(super) fn apply_deltas(&mut self) {
        for (counter, delta) in [
            (&self.backlog, std::mem::take(&mut self.backlog_delta)),
            (
                &self.stored_bytes,
                std::mem::take(&mut self.stored_bytes_delta),
            ),
        ] {
            if delta >= 0 {
                counter.fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
            } else {
                counter.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
            }
        }
    }

    /// Runs `f` in a savepoint: its writes are undone if it fails, the batch goes on.
    pub(super) fn in_savepoint<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // Cached statements: these run for every job, a parse each would add up.
        self.conn.prepare_cached("SAVEPOINT job")?.execute([])?;
        let (backlog, bytes, events) = (
            self.backlog_delta,
            self.stored_bytes_delta,
            self.events.len(),
        );
        match f(self) {
            Ok(value) => {
                self.conn.prepare_cached("RELEASE job")?.execute([])?;
                Ok(value)
            }
            Err(e) => {
                self.conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
                self.backlog_delta = backlog;
                self.stored_bytes_delta = bytes;
                self.events.truncate(events);
                Err(e)
            }
        }
    }

    /// Writes a status event; it is broadcast once the batch commits.
    pub(super) fn emit(&mut self, mut event: StatusEvent) -> Result<(), StoreError> {
        let cursor: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO status_events (at, kind, message_id, endpoint_id, event_type, attempt_number, status_code, transport_error, error, latency_us, next_attempt_at, disabled_reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING cursor",
            )?
            .query_row(
                params![
                    ms(event.at),
                    kind_code(event.kind),
                    event.message_id.as_ref().map(MessageId::as_str),
                    event.endpoint_id.as_ref().map(EndpointId::as_str),
                    event.event_type.as_ref().map(EventType::as_str),
                    event.attempt_number,
                    event.status_code,
                    event.transport_error.map(transport_code),
                    event.error,
                    event.latency.map(|l| i64::try_from(l.as_micros()).unwrap_or(i64::MAX)),
                    event.next_attempt_at.map(ms),
                    event.disabled_reason.map(reason_code),
                ],
                |r| r.get(0),
            )?;
        event.cursor = u64::try_from(cursor).unwrap_or_default();
        self.events.push(Arc::new(event));
        // Retention: every so often, drop what is older than the newest `status_retention`.
        if cursor % 64 == 0 {
            self.conn
                .prepare_cached("DELETE FROM status_events WHERE cursor <= ?1")?
                .execute([
                    cursor.saturating_sub(i64::try_from(self.status_retention).unwrap_or(i64::MAX))
                ])?;
        }
        Ok(())
    }

    /// The enabled endpoints a message of this tenant, type and channels goes to.
    pub(super) fn subscribers(
        &self,
        tenant: &TenantId,
        event_type: &EventType,
        channels: &[String],
    ) -> Vec<EndpointId> {
        self.endpoints
            .subscribers(tenant, event_type, channels)
            .map(|e| e.id.clone())
            .collect()
    }

    pub(super) fn endpoint(&self, id: &EndpointId) -> Result<Arc<Endpoint>, StoreError> {
        self.endpoints
            .get(id)
            .cloned()
            .ok_or_else(|| StoreError::endpoint_not_found(id))
    }

    pub(super) fn save_endpoint(&mut self, endpoint: Endpoint) -> Result<Endpoint, StoreError> {
        let record = self.keyring.seal(&endpoint)?;
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO endpoints (id, enabled, record, tenant_id) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                endpoint.id.as_str(),
                endpoint.is_enabled(),
                record,
                endpoint.tenant.as_str()
            ])?;
        self.stale.remove(&endpoint.id);
        self.endpoints.insert(Arc::new(endpoint.clone()));
        Ok(endpoint)
    }

    pub(super) fn delivery(
        &self,
        message: &MessageId,
        endpoint: &EndpointId,
    ) -> Result<Delivery, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE message_id = ?1 AND endpoint_id = ?2"))?
            .query_row(params![message.as_str(), endpoint.as_str()], delivery_row)?)
    }

    pub(super) fn message(&self, id: &MessageId) -> Result<Message, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"
            ))?
            .query_row([id.as_str()], message_row)
            .optional()?
            .ok_or_else(|| StoreError::message_not_found(id))
    }

    pub(super) fn load_due(&mut self) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT endpoint_id, MIN(next_attempt_at) FROM deliveries WHERE state = 1 GROUP BY endpoint_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut due = HashMap::new();
        for row in rows {
            let (endpoint, at) = row?;
            due.insert(parsed(0, EndpointId::parse_stored(&endpoint))?, at);
        }
        drop(stmt);
        self.due = due;
        Ok(())
    }

    /// Notes that `endpoint` has pending work due at `at`.
    pub(super) fn mark_due(&mut self, endpoint: &EndpointId, at: i64) {
        self.due
            .entry(endpoint.clone())
            .and_modify(|t| *t = (*t).min(at))
            .or_insert(at);
    }

    /// Reads the endpoint's earliest pending due time back from the index.
    pub(super) fn refresh_due(&mut self, endpoint: &EndpointId) -> Result<(), StoreError> {
        let at: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE endpoint_id = ?1 AND state = 1",
            )?
            .query_row([endpoint.as_str()], |r| r.get(0))?;
        match at {
            Some(at) => self.due.insert(endpoint.clone(), at),
            None => self.due.remove(endpoint),
        };
        Ok(())
    }
}
