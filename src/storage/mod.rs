//! Durable state behind one trait, [`Store`], so backends are interchangeable.
//!
//! The trait is shaped by what every backend can do atomically: publish (message,
//! deliveries and idempotency record in one commit), claim due deliveries under a lease
//! that outlives the request timeout, and record an attempt together with the delivery's
//! transition. The embedded and memory backends live in `sqlite`, the shared one in
//! `redis`; a backend that cannot do one of these atomically does not implement the
//! trait. `codec` holds the codes both write (times, states, kinds, reasons), `sealing`
//! how both store an endpoint with its secrets encrypted under the master key. Nothing
//! here knows of gRPC, of the delivery core or of configuration: what a transition means
//! for an endpoint arrives decided, in the [`Outcome`].

pub mod codec;
pub mod directory;
pub mod redis;
pub mod sealing;
pub mod sqlite;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::{Notify, watch};

pub use redis::RedisStore;
pub use sqlite::SqliteStore;

use self::sealing::{Keyring, SealError};

use crate::analytics::RollupRow;
use crate::auth::{ApiKey, ApiKeyId};
use crate::domain::{
    Attempt, AttemptRecord, Delivery, DeliveryState, Endpoint, EndpointId, EndpointUpdate,
    EventType, Message, MessageId, NewMessage, Secret, StatusEvent, TenantId,
};
use crate::policy::pace::{Pace, PaceRoom};
use crate::policy::protection::{EndpointEffects, SharedRoom};

/// Settings every backend takes.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long an idempotency key is remembered.
    pub idempotency_ttl: Duration,
    /// How many status events are kept for watchers that resume from a cursor.
    pub status_retention: u64,
    /// How many live status events a watcher may fall behind before it is cut off.
    pub status_buffer: usize,
    /// How long settled messages are kept: the expiry of messages stored before
    /// messages carried their own.
    pub retention: Duration,
    /// The master keys endpoint secrets are sealed with at rest (none: in clear).
    pub keyring: Arc<Keyring>,
    /// Reader connections the embedded store opens at most (as reads need them).
    pub readers: usize,
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    #[error("{0}")]
    FailedPrecondition(String),
    /// The tenant already has as many endpoints as it may.
    #[error("tenant {tenant} has reached its limit of {limit} endpoints")]
    TooManyEndpoints { tenant: TenantId, limit: u64 },
    /// A publish would take the unfinished deliveries past `limit`: `backlog` were
    /// unfinished and it would have created `incoming` more. Nothing was written.
    #[error(
        "{backlog} deliveries are unfinished and the publish would add {incoming}, past the limit of {limit}"
    )]
    Backlogged {
        backlog: u64,
        incoming: u64,
        limit: u64,
    },
    #[error("storage backend failure")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backend cannot serve now (unreachable, restarting, failing over, locked by
    /// another process): the same call may work later.
    #[error("storage is unavailable for now")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The embedded store's file system has no room left: the call had no effect, and
    /// may work once space is freed.
    #[error("the embedded store's disk is full (data directory {dir})")]
    DiskFull {
        dir: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("storage is shut down")]
    Closed,
}

impl From<SealError> for StoreError {
    fn from(e: SealError) -> Self {
        Self::Backend(Box::new(e))
    }
}

impl StoreError {
    pub fn endpoint_not_found(id: &EndpointId) -> Self {
        Self::NotFound {
            kind: "endpoint",
            id: id.to_string(),
        }
    }

    pub fn message_not_found(id: &MessageId) -> Self {
        Self::NotFound {
            kind: "message",
            id: id.to_string(),
        }
    }

    pub fn api_key_not_found(id: &ApiKeyId) -> Self {
        Self::NotFound {
            kind: "API key",
            id: id.to_string(),
        }
    }

    /// The message's payload was expunged at `at`: it cannot be sent again.
    pub fn expunged(id: &MessageId, at: SystemTime) -> Self {
        Self::FailedPrecondition(format!(
            "message {id} was expunged at {}: its payload is gone",
            humantime::format_rfc3339_millis(at)
        ))
    }
}

/// Why a store cannot go on: the process must restart.
pub type Failure = Arc<dyn std::error::Error + Send + Sync>;

/// What a store knows of itself beyond each call's answer, kept current in a `watch`.
#[derive(Debug, Clone, Default)]
pub enum Condition {
    #[default]
    Sound,
    /// Writes fail for want of disk space in `dir`; reads still answer, and writes work
    /// again by themselves once space is freed.
    Full { dir: PathBuf },
    /// The store cannot go on (its writer is gone); every later write fails.
    Failed(Failure),
}

impl Condition {
    /// Why the store failed for good, if it did.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Failed(why) => Some(why),
            _ => None,
        }
    }
}

/// The key under which an idempotency key is remembered: keys are per tenant, so one
/// tenant's key neither collides with nor reveals another's. A tenant id has no `/`.
pub fn idempotency_scope(message: &NewMessage) -> Option<String> {
    message
        .idempotency_key
        .as_ref()
        .map(|key| format!("{}/{key}", message.tenant))
}

/// A tenant and how many endpoints it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSummary {
    pub tenant: TenantId,
    pub endpoints: u64,
}

/// What expunging one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expunged {
    /// When its payload was removed: by this call, or by an earlier one.
    pub at: SystemTime,
    /// Whether this call removed it; false when an earlier call did (and nothing changed).
    pub fresh: bool,
    /// Unfinished deliveries of the message this call cancelled.
    pub cancelled: u32,
}

/// What expunging a tenant's messages did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantExpunged {
    /// Messages expunged (those expunged before are not counted).
    pub messages: u32,
    /// Unfinished deliveries of those messages that were cancelled.
    pub cancelled: u32,
}

/// The result of one publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    Created {
        message_id: MessageId,
        deliveries: u32,
    },
    /// The idempotency key was seen before with the same content.
    Duplicate {
        message_id: MessageId,
        deliveries: u32,
    },
    /// The idempotency key was seen before with different content.
    Conflict { message_id: MessageId },
}

/// Which attempts to list, oldest first, after a cursor.
#[derive(Debug, Clone)]
pub struct AttemptQuery {
    pub message_id: Option<MessageId>,
    pub endpoint_id: Option<EndpointId>,
    pub delivery_state: Option<DeliveryState>,
    pub after_id: Option<i64>,
    pub limit: usize,
}

/// Proof that a worker holds a delivery; outcomes are accepted only with a current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub delivery: i64,
    pub token: i64,
}

/// A delivery handed to a worker, with everything the attempt needs.
#[derive(Debug, Clone)]
pub struct Claim {
    pub lease: Lease,
    pub message: Arc<Message>,
    pub endpoint: Arc<Endpoint>,
    /// Number of this attempt over the delivery's life (1-based).
    pub attempt_number: u32,
    /// Attempts already made since the delivery was last (re)queued by hand: retry `n`
    /// of the schedule is attempt `n + 1` of the round.
    pub attempts_in_round: u32,
}

/// What may be claimed: at most `limit` deliveries, per endpoint at most its entry in
/// `per_endpoint` (`unknown` for an endpoint not listed), and per group of endpoints in
/// `hosts` (those pointing at one host) at most the group's room; and, as `pace` has it,
/// per slow endpoint at most its room and over all of them at most the slow room.
/// Endpoints with no room cost nothing to skip. The Redis store applies each endpoint's
/// and host's shared limits itself and reads none of `per_endpoint`, `unknown` and
/// `hosts` (its protection asks for unlimited room); every store applies `pace`.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub now: SystemTime,
    /// How long the claimed deliveries stay reserved.
    pub lease: Duration,
    pub limit: usize,
    pub per_endpoint: HashMap<EndpointId, usize>,
    pub unknown: usize,
    pub hosts: SharedRoom,
    /// What the claiming process's pacing allows: its workers are its own.
    pub pace: PaceRoom,
}

impl ClaimRequest {
    /// How many deliveries to `endpoint` this request allows, the slow endpoints'
    /// shared room aside.
    pub fn room(&self, endpoint: &EndpointId) -> usize {
        let own = self
            .per_endpoint
            .get(endpoint)
            .copied()
            .unwrap_or(self.unknown);
        match self.pace.of(endpoint) {
            Pace::Timely => own,
            Pace::Slow { room } => own.min(room),
        }
    }

    /// Whether `endpoint` takes from the slow endpoints' shared room.
    pub fn is_slow(&self, endpoint: &EndpointId) -> bool {
        self.pace.of(endpoint) != Pace::Timely
    }
}

/// Claimed deliveries, and when more would fall due under the same request.
#[derive(Debug, Clone)]
pub struct ClaimBatch {
    pub claims: Vec<Claim>,
    /// The earliest due time of pending work to an enabled endpoint with room left.
    pub next_due: Option<SystemTime>,
    /// Endpoints whose shared rate limit this claim used up (the Redis store's shared
    /// protection; the in-process guards count such hits themselves).
    pub rate_limited: Vec<EndpointId>,
    /// Endpoints with due work that their host's ceiling held back in this claim.
    pub host_waits: u64,
}

/// The delivery's next state after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Succeeded,
    RetryAt(SystemTime),
    /// Retries exhausted, or the endpoint is gone.
    Failed,
}

/// An attempt's record with what it means for its delivery and its endpoint, as the
/// delivery core decided it; the store applies it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub record: AttemptRecord,
    pub transition: Transition,
    /// The message's event type, for the status events of the attempt.
    pub event_type: EventType,
    /// Whether the attempt counts against the endpoint's breaker.
    pub endpoint_failure: bool,
    /// Circuit change, failing-since clock and disabling, to record with the attempt. The
    /// Redis store's shared protection decides the first two in its own script.
    pub endpoint: EndpointEffects,
}

/// How far sealing endpoint records again under the current master key has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Records sealed again by this call.
    pub resealed: u64,
    /// Records still not sealed under the current key (or in clear while a key is set).
    pub remaining: u64,
}

/// How long after a sweep found an expired message unsettled it looks at it again.
pub const RECHECK_UNSETTLED: Duration = Duration::from_secs(60);

/// What one retention sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Settled messages past their expiry, deleted with everything below.
    pub messages: u64,
    pub deliveries: u64,
    pub attempts: u64,
    /// Payload bytes freed.
    pub payload_bytes: u64,
    /// The batch was full: more may be due now.
    pub more: bool,
}

/// Retained status events after a cursor.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<StatusEvent>,
    /// Some events right after the cursor are no longer retained.
    pub pruned: bool,
    /// The cursor of the newest event ever written.
    pub latest: u64,
}

/// Durable state of the service.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Commits each message with its deliveries and idempotency record, atomically per
    /// message, durably before returning. Results are in input order. A batch whose
    /// deliveries would take the unfinished ones past `backlog_limit` is refused as a
    /// whole ([`StoreError::Backlogged`]); the count and the commit are one step.
    async fn publish(
        &self,
        batch: Vec<NewMessage>,
        now: SystemTime,
        backlog_limit: u64,
    ) -> Result<Vec<Published>, StoreError>;

    /// Creates the endpoint unless its tenant already has `max_per_tenant` endpoints
    /// ([`StoreError::TooManyEndpoints`]); the count and the creation are one step.
    async fn create_endpoint(
        &self,
        endpoint: Endpoint,
        max_per_tenant: u64,
    ) -> Result<Endpoint, StoreError>;
    async fn get_endpoint(&self, id: &EndpointId) -> Result<Endpoint, StoreError>;
    /// Endpoints in id order, after `after`; of one tenant, or of all.
    async fn list_endpoints(
        &self,
        tenant: Option<TenantId>,
        after: Option<EndpointId>,
        limit: usize,
    ) -> Result<Vec<Endpoint>, StoreError>;
    /// Tenants that have endpoints, in id order after `after`, with their endpoint count.
    async fn list_tenants(
        &self,
        after: Option<TenantId>,
        limit: usize,
    ) -> Result<Vec<TenantSummary>, StoreError>;
    async fn update_endpoint(
        &self,
        id: &EndpointId,
        update: EndpointUpdate,
        now: SystemTime,
    ) -> Result<Endpoint, StoreError>;
    /// Deletes the endpoint and cancels its unfinished deliveries; returns how many.
    async fn delete_endpoint(&self, id: &EndpointId, now: SystemTime) -> Result<u32, StoreError>;
    async fn rotate_secret(
        &self,
        id: &EndpointId,
        next: Secret,
        previous_until: SystemTime,
        now: SystemTime,
    ) -> Result<Endpoint, StoreError>;
    /// Seals again, under the current master key, at most `limit` endpoint records that
    /// are sealed under another key (or in clear while a key is set), never overwriting a
    /// change made meanwhile; `limit` 0 only counts them.
    async fn reseal_endpoints(&self, limit: usize) -> Result<Resealed, StoreError>;

    async fn get_message(&self, id: &MessageId) -> Result<(Message, Vec<Delivery>), StoreError>;
    async fn list_attempts(&self, query: AttemptQuery) -> Result<Vec<Attempt>, StoreError>;
    /// Queues the delivery of a message to an endpoint now, creating it if needed. An
    /// expunged message is [`StoreError::FailedPrecondition`] ([`StoreError::expunged`]).
    async fn retry_delivery(
        &self,
        message: &MessageId,
        endpoint: &EndpointId,
        now: SystemTime,
    ) -> Result<Delivery, StoreError>;
    /// Queues the message now for every enabled endpoint that matches it; returns how many.
    /// An expunged message is [`StoreError::FailedPrecondition`] ([`StoreError::expunged`]).
    async fn replay_message(&self, message: &MessageId, now: SystemTime)
    -> Result<u32, StoreError>;
    /// Expunges the message in one transition: empties its payload and every response
    /// excerpt of its attempts (keeping everything else: ids, times, outcomes), records
    /// `now` as its expunge time, and cancels its unfinished deliveries as deleting their
    /// endpoint would (an attempt in flight is recorded when it ends, without its excerpt,
    /// and changes nothing). A message expunged before is left as it is.
    async fn expunge_message(
        &self,
        id: &MessageId,
        now: SystemTime,
    ) -> Result<Expunged, StoreError>;
    /// Expunges, as [`Store::expunge_message`] does, every message of the tenant not yet
    /// expunged, at most `batch` messages per transition so that other writes are not
    /// held up for long. Messages published meanwhile may be left.
    async fn expunge_tenant(
        &self,
        tenant: &TenantId,
        batch: usize,
        now: SystemTime,
    ) -> Result<TenantExpunged, StoreError>;

    /// Leases deliveries due at `now` to enabled endpoints, within the request's limits;
    /// deliveries whose lease expired are due again first.
    async fn claim_due(&self, request: ClaimRequest) -> Result<ClaimBatch, StoreError>;
    /// Hands claimed deliveries back, due now, without an attempt.
    async fn release(&self, leases: Vec<Lease>, now: SystemTime) -> Result<(), StoreError>;
    /// Records an attempt and applies its transition if `lease` is still current, with
    /// what it means for the endpoint (circuit events, failing-since clock, disabling).
    async fn complete(
        &self,
        lease: Lease,
        outcome: Outcome,
        now: SystemTime,
    ) -> Result<(), StoreError>;
    /// Queues again, now, every failed delivery of the endpoint that failed since `since`;
    /// returns how many.
    async fn recover_endpoint(
        &self,
        id: &EndpointId,
        since: SystemTime,
        now: SystemTime,
    ) -> Result<u32, StoreError>;

    /// Status events committed from now on, in cursor order. A receiver more than the
    /// channel's capacity behind is told it lagged.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<StatusEvent>>;
    /// Retained status events after `cursor`, oldest first, at most `limit`.
    async fn events_after(&self, cursor: u64, limit: usize) -> Result<EventPage, StoreError>;
    /// The per-minute rollups of `[from_minute, to_minute)`, optionally only of some
    /// endpoints and of one event type.
    async fn rollups(
        &self,
        from_minute: i64,
        to_minute: i64,
        endpoints: Option<Vec<EndpointId>>,
        event_type: Option<EventType>,
    ) -> Result<Vec<RollupRow>, StoreError>;
    /// Deliveries not yet finished, optionally only to some endpoints and of one event
    /// type.
    async fn pending(
        &self,
        endpoints: Option<Vec<EndpointId>>,
        event_type: Option<EventType>,
    ) -> Result<u64, StoreError>;
    /// Drops rollups older than `before_minute`; returns how many.
    async fn prune_rollups(&self, before_minute: i64) -> Result<u64, StoreError>;

    /// Deletes at most `limit` settled messages whose expiry is at or before `now`, with
    /// their deliveries, attempts and payloads. A message with an unfinished delivery is
    /// kept, however old, and looked at again [`RECHECK_UNSETTLED`] later.
    async fn sweep(&self, now: SystemTime, limit: usize) -> Result<Swept, StoreError>;

    /// Forgets idempotency keys that expired by `now`; returns how many.
    async fn purge_expired_keys(&self, now: SystemTime) -> Result<u64, StoreError>;
    /// Deliveries not yet finished (pending or in flight).
    fn backlog(&self) -> u64;
    /// Answers once the store serves a read: the smallest question that reaches it, so
    /// asking often costs nothing and holds nothing back (health checks).
    async fn probe(&self) -> Result<(), StoreError>;
    /// Bytes of the payloads stored (of every message not yet deleted or expunged).
    fn stored_bytes(&self) -> u64;

    /// Stores a new API key.
    async fn create_api_key(&self, key: ApiKey) -> Result<(), StoreError>;
    /// The key with its revocation and last use.
    async fn get_api_key(&self, id: &ApiKeyId) -> Result<ApiKey, StoreError>;
    /// Keys in id order (creation order) after `after`, revoked ones included.
    async fn list_api_keys(
        &self,
        after: Option<ApiKeyId>,
        limit: usize,
    ) -> Result<Vec<ApiKey>, StoreError>;
    /// Marks the key revoked at `now` (an earlier revocation stands); returns it.
    async fn revoke_api_key(&self, id: &ApiKeyId, now: SystemTime) -> Result<ApiKey, StoreError>;
    /// Records that the key was used at `at`.
    async fn touch_api_key(&self, id: &ApiKeyId, at: SystemTime) -> Result<(), StoreError>;

    /// Signalled when work is queued by another process sharing this store, so the
    /// scheduler need not wait for its timer. `None` when no other process can.
    fn remote_work(&self) -> Option<Arc<Notify>> {
        None
    }

    /// The store's [`Condition`], kept current. A store that cannot fail that way (Redis:
    /// an unreachable server is a passing [`StoreError::Unavailable`]) stays `Sound`,
    /// and its sender is gone.
    fn condition(&self) -> watch::Receiver<Condition> {
        watch::channel(Condition::Sound).1
    }

    /// Ends the store's background work and waits for it: the embedded and memory
    /// stores commit what was sent before and stop their writer thread (later calls
    /// answer [`StoreError::Closed`]); the Redis store stops following other instances'
    /// events and work (calls still go to Redis). Closing twice is harmless.
    async fn close(&self);
}
