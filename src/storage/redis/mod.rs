//! The Redis store: several Herald instances share one queue and every piece of state.
//!
//! Layout (every key starts with `{prefix}:`, one hash tag, so a Redis Cluster keeps a
//! deployment in one slot and tests isolate themselves by prefix):
//! - `ep:<id>` the endpoint's record (JSON); `eps` the ids in order; `epver` a counter
//!   bumped by every endpoint change, so instances know when their cache is stale;
//! - `g:<id>` the endpoint's live, shared protection: enabled, protection overrides,
//!   attempts in flight, token bucket, breaker state, failing-since;
//! - `m:<id>` a message, `m:<id>:d` its deliveries by endpoint, `d:<n>` a delivery;
//! - `due:<endpoint>` pending deliveries by due time, `sched` endpoints by the time the
//!   scheduler should look at them, `ready` the stream of deliveries ready to attempt,
//!   read by the consumer group `workers` (consumer = instance id), `inf:<endpoint>` the
//!   endpoint's deliveries in the stream or in flight;
//! - `a:<n>` attempts with indexes `att`, `m:<id>:a`, `e:<id>:a`; `e:<id>:failed`;
//! - `idem:<key>` idempotency records (expiring); `ev` status events (stream ids
//!   `0-<cursor>`); `ru:<minute>` rollups; `pend` and `backlog` counters.
//!
//! Every state transition is one Lua script (publish, promote, claim, complete, release,
//! requeue, delete), so no crash between two commands can leave a delivery half-moved,
//! and with `appendfsync always` a reply means the transition is on disk. A claim leases
//! a delivery for longer than the request timeout; a dead instance's leases are taken
//! over by the living with `XAUTOCLAIM` once they run out. Breakers and token buckets
//! live in `g:<id>` and are applied by the promote script, so the limits hold across all
//! instances together and one probe goes out, not one per instance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::streams::{StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, IntoConnectionInfo, RedisError, Script, Value};
use tokio::sync::{Notify, broadcast};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use super::codec::{
    content_hash, kind_code, kind_from, ms, reason_code, reason_from, state_from, time,
    transport_code, transport_from,
};
use super::{
    AttemptQuery, Claim, ClaimBatch, ClaimRequest, EndpointUpdate, EventPage, Lease, Outcome,
    Published, Store, StoreError, StoreOptions, Transition,
};
use crate::analytics::{Rollup, RollupRow, minute_of};
use crate::config::RedisConfig;
use crate::delivery::guard::{
    CircuitStatus, EndpointStatus, ProtectionConfig, is_endpoint_failure,
};
use crate::domain::{
    Attempt, AttemptRecord, Delivery, DeliveryState, DisabledReason, Endpoint, EndpointId,
    EventType, Message, MessageId, NewMessage, RateLimitOverride, Secret, StatusEvent,
};
use crate::telemetry::ErrorChain;

/// Consumer group of the ready stream.
const GROUP: &str = "workers";
/// Times a publish is retried when endpoints change under it.
const STALE_RETRIES: usize = 8;
/// Pause of the background readers after a Redis error.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);
/// How often an instance looks for deliveries whose holder's lease ran out: leases last
/// at least 10 s, so a second's delay matters little, and the scan is not free.
const RECLAIM_EVERY: Duration = Duration::from_secs(1);
/// Longest a status-event read waits in Redis before asking again.
const EVENT_BLOCK: Duration = Duration::from_millis(1000);

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

impl From<RedisError> for StoreError {
    fn from(e: RedisError) -> Self {
        if e.is_io_error()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_connection_dropped()
        {
            Self::Unavailable(Box::new(e))
        } else {
            backend(e)
        }
    }
}

/// Why the Redis store could not start.
#[derive(Debug, thiserror::Error)]
pub enum RedisOpenError {
    #[error("invalid Redis URL")]
    Url(#[source] RedisError),
    #[error("cannot reach Redis at {address}")]
    Unreachable {
        address: String,
        #[source]
        source: RedisError,
    },
    #[error(
        "Redis maxmemory-policy is {policy}: Redis may evict Herald's keys and lose messages; set it to noeviction, or allow it explicitly with WEBHOOK_REDIS_ALLOW_EVICTION=true"
    )]
    Eviction { policy: String },
    #[error("cannot prepare Redis")]
    Setup(#[source] StoreError),
}

/// The Lua scripts, one per transition, each with the shared helpers in front.
struct Scripts {
    publish: Script,
    promote: Script,
    claim: Script,
    complete: Script,
    release: Script,
    requeue: Script,
    delete_endpoint: Script,
    save_endpoint: Script,
    emit: Script,
}

impl Scripts {
    fn new(retention: u64) -> Self {
        let prelude = format!(
            "local RETENTION = {retention}\n{}",
            include_str!("common.lua")
        );
        let script = |body: &str| Script::new(&format!("{prelude}\n{body}"));
        Self {
            publish: script(include_str!("publish.lua")),
            promote: script(include_str!("promote.lua")),
            claim: script(include_str!("claim.lua")),
            complete: script(include_str!("complete.lua")),
            release: script(include_str!("release.lua")),
            requeue: script(include_str!("requeue.lua")),
            delete_endpoint: script(include_str!("delete_endpoint.lua")),
            save_endpoint: script(include_str!("save_endpoint.lua")),
            emit: script(include_str!("emit.lua")),
        }
    }
}

/// This instance's copy of every endpoint, and the `epver` it was read at.
#[derive(Default)]
struct EndpointCache {
    version: i64,
    endpoints: HashMap<EndpointId, Arc<Endpoint>>,
}

/// What the requeue script did for one endpoint.
enum Requeued {
    /// Due now; the delivery has made `attempts` attempts so far.
    Queued {
        attempts: u32,
        created_at: SystemTime,
    },
    /// An attempt is in flight: nothing changed.
    InFlight,
    NoEndpoint,
}

/// The Redis-backed [`Store`].
pub struct RedisStore {
    conn: ConnectionManager,
    /// `{prefix}:`
    prefix: String,
    consumer: String,
    options: StoreOptions,
    protection: ProtectionConfig,
    scripts: Scripts,
    cache: RwLock<EndpointCache>,
    backlog: Arc<AtomicU64>,
    status: broadcast::Sender<Arc<StatusEvent>>,
    /// Signalled when another instance publishes or requeues work.
    work: Arc<Notify>,
    /// Stops the background readers with the store.
    stop: CancellationToken,
    /// When this instance last looked for expired leases (ms since the epoch).
    last_reclaim: AtomicU64,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Reads a reply value as text ('' for nil).
fn text(v: &Value) -> String {
    redis::from_redis_value_ref::<Option<String>>(v)
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn parse<T, E: std::error::Error + Send + Sync + 'static>(
    r: Result<T, E>,
) -> Result<T, StoreError> {
    r.map_err(backend)
}

fn opt_ms(v: Option<&String>) -> Option<SystemTime> {
    v.and_then(|s| s.parse::<i64>().ok()).map(time)
}

/// A status event as stream fields (only those with a value).
fn event_fields(e: &StatusEvent) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("k", kind_code(e.kind).to_string()),
        ("at", ms(e.at).to_string()),
    ];
    let mut put = |name, value: Option<String>| {
        if let Some(v) = value {
            fields.push((name, v));
        }
    };
    put("m", e.message_id.as_ref().map(ToString::to_string));
    put("e", e.endpoint_id.as_ref().map(ToString::to_string));
    put("et", e.event_type.as_ref().map(|t| t.as_str().to_owned()));
    put("an", e.attempt_number.map(|n| n.to_string()));
    put("sc", e.status_code.map(|c| c.to_string()));
    put(
        "te",
        e.transport_error.map(|t| transport_code(t).to_string()),
    );
    put("er", Some(e.error.clone()).filter(|s| !s.is_empty()));
    put("lat", e.latency.map(|l| l.as_micros().to_string()));
    put("na", e.next_attempt_at.map(|t| ms(t).to_string()));
    put("dr", e.disabled_reason.map(|r| reason_code(r).to_string()));
    fields
}

/// A status event from its stream entry.
fn event_from(id: &str, map: &HashMap<String, Value>) -> Result<StatusEvent, StoreError> {
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
        endpoint_id: get("e").map(|s| parse(EndpointId::parse(&s))).transpose()?,
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
fn overrides(endpoint: &Endpoint, defaults: &ProtectionConfig) -> [String; 6] {
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

impl RedisStore {
    /// Connects, checks Redis's settings and prepares the queue.
    ///
    /// # Errors
    /// When Redis cannot be reached, may evict keys (unless allowed), or refuses setup.
    pub async fn open(
        config: &RedisConfig,
        options: StoreOptions,
        protection: ProtectionConfig,
    ) -> Result<Self, RedisOpenError> {
        let mut info = config
            .url
            .as_str()
            .into_connection_info()
            .map_err(RedisOpenError::Url)?;
        let address = info.addr().to_string();
        let mut settings = info.redis_settings().clone();
        if let Some(password) = &config.password {
            settings = settings.set_password(password);
        }
        if let Some(db) = config.db {
            settings = settings.set_db(db);
        }
        info = info.set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(RedisOpenError::Url)?;
        let unreachable = |source| RedisOpenError::Unreachable {
            address: address.clone(),
            source,
        };
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let mut conn = client
            .get_connection_manager_with_config(manager)
            .await
            .map_err(unreachable)?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unreachable)?;
        check_persistence(&mut conn, config.allow_eviction).await?;
        let prefix = format!("{{{}}}:", config.prefix);
        match redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(format!("{prefix}ready"))
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async::<()>(&mut conn)
            .await
        {
            Err(e) if e.code() != Some("BUSYGROUP") => {
                return Err(RedisOpenError::Setup(e.into()));
            }
            _ => {}
        }
        let (status, _) = broadcast::channel(options.status_buffer);
        let store = Self {
            conn,
            prefix,
            consumer: config.instance_id.clone(),
            options,
            protection,
            scripts: Scripts::new(options.status_retention),
            cache: RwLock::default(),
            backlog: Arc::new(AtomicU64::new(0)),
            status,
            work: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
            last_reclaim: AtomicU64::new(0),
        };
        store
            .reload_endpoints()
            .await
            .map_err(RedisOpenError::Setup)?;
        let latest: Option<u64> = store
            .conn()
            .get(store.key("seq:ev"))
            .await
            .map_err(|e| RedisOpenError::Setup(e.into()))?;
        store.spawn_event_reader(client.clone(), latest.unwrap_or(0));
        store.spawn_work_listener(client);
        tracing::info!(prefix = %store.prefix, instance = %store.consumer, "redis store ready");
        Ok(store)
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Runs a pipeline of same-typed commands; an empty one answers nothing.
    async fn run<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<Vec<T>, StoreError> {
        if pipe.is_empty() {
            return Ok(Vec::new());
        }
        Ok(pipe.query_async(&mut self.conn()).await?)
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn invoke<'a>(&'a self, script: &'a Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation.key(&self.prefix);
        invocation
    }

    /// Reads every endpoint, with its shared live state, into the cache.
    async fn reload_endpoints(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let version: Option<i64> = conn.get(self.key("epver")).await?;
        let ids: Vec<String> = conn.zrange(self.key("eps"), 0, -1).await?;
        let mut endpoints = HashMap::new();
        for chunk in ids.chunks(256) {
            for endpoint in self.load_endpoints(chunk).await?.into_iter().flatten() {
                endpoints.insert(endpoint.id.clone(), Arc::new(endpoint));
            }
        }
        *self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = EndpointCache {
            version: version.unwrap_or(0),
            endpoints,
        };
        Ok(())
    }

    /// The endpoints with these ids (`None` for one that does not exist), with the live
    /// fields (enabled, failing-since) that the scripts keep in `g:<id>`.
    async fn load_endpoints(&self, ids: &[String]) -> Result<Vec<Option<Endpoint>>, StoreError> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.get(self.key(&format!("ep:{id}")));
            pipe.cmd("HMGET")
                .arg(self.key(&format!("g:{id}")))
                .arg(&["en", "dr", "fs"]);
        }
        let replies: Vec<Value> = self.run(&pipe).await?;
        replies
            .chunks(2)
            .map(|pair| {
                let record = text(&pair[0]);
                if record.is_empty() {
                    return Ok(None);
                }
                let mut endpoint: Endpoint = serde_json::from_str(&record).map_err(backend)?;
                let live: Vec<Option<String>> =
                    redis::from_redis_value_ref(&pair[1]).map_err(backend)?;
                endpoint.disabled = match live.first().cloned().flatten().as_deref() {
                    Some("1") | None => None,
                    Some(_) => Some(
                        live.get(1)
                            .cloned()
                            .flatten()
                            .and_then(|r| r.parse().ok())
                            .map_or(DisabledReason::Manual, reason_from),
                    ),
                };
                endpoint.failing_since = opt_ms(live.get(2).and_then(Option::as_ref));
                Ok(Some(endpoint))
            })
            .collect()
    }

    async fn endpoint(&self, id: &EndpointId) -> Result<Endpoint, StoreError> {
        self.load_endpoints(&[id.to_string()])
            .await?
            .pop()
            .flatten()
            .ok_or_else(|| StoreError::endpoint_not_found(id))
    }

    fn cached_endpoint(&self, id: &EndpointId) -> Option<Arc<Endpoint>> {
        self.cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .endpoints
            .get(id)
            .cloned()
    }

    /// Writes an endpoint's record and overrides through the save script.
    async fn save(
        &self,
        endpoint: &Endpoint,
        mode: &str,
        enabled: &str,
        now: SystemTime,
    ) -> Result<String, StoreError> {
        let record = serde_json::to_string(endpoint).map_err(backend)?;
        let reason = endpoint.disabled.map_or(1, reason_code);
        let mut invocation = self.invoke(&self.scripts.save_endpoint);
        invocation
            .arg(ms(now))
            .arg(endpoint.id.as_str())
            .arg(record)
            .arg(mode)
            .arg(enabled)
            .arg(reason);
        for value in overrides(endpoint, &self.protection) {
            invocation.arg(value);
        }
        // The change bumped the endpoint version: this instance's cache reloads when its
        // next publish or claim sees that, like every other instance's.
        Ok(invocation.invoke_async(&mut self.conn()).await?)
    }

    async fn message(&self, id: &MessageId) -> Result<Message, StoreError> {
        let map: HashMap<String, Vec<u8>> =
            self.conn().hgetall(self.key(&format!("m:{id}"))).await?;
        message_from(id, &map).ok_or_else(|| StoreError::message_not_found(id))
    }

    /// Runs the requeue script; per endpoint, what it did.
    async fn requeue(
        &self,
        message: &MessageId,
        endpoints: &[EndpointId],
        now: SystemTime,
    ) -> Result<Vec<Requeued>, StoreError> {
        let mut invocation = self.invoke(&self.scripts.requeue);
        invocation.arg(ms(now)).arg(message.as_str());
        for endpoint in endpoints {
            invocation.arg(endpoint.as_str());
        }
        let rows: Vec<(i64, u32, i64)> = invocation.invoke_async(&mut self.conn()).await?;
        Ok(rows
            .into_iter()
            .map(|(code, attempts, created)| match code {
                1 => Requeued::Queued {
                    attempts,
                    created_at: time(created),
                },
                0 => Requeued::InFlight,
                _ => Requeued::NoEndpoint,
            })
            .collect())
    }

    async fn refresh_backlog(&self) -> Result<(), StoreError> {
        let backlog: Option<i64> = self.conn().get(self.key("backlog")).await?;
        self.backlog.store(
            u64::try_from(backlog.unwrap_or(0)).unwrap_or(0),
            Ordering::Relaxed,
        );
        Ok(())
    }

    /// Follows the status-event stream of every instance into the local broadcast, and
    /// keeps the backlog figure fresh.
    fn spawn_event_reader(&self, client: redis::Client, mut last: u64) {
        let (stop, status, backlog) =
            (self.stop.clone(), self.status.clone(), self.backlog.clone());
        let (events, backlog_key) = (self.key("ev"), self.key("backlog"));
        tokio::spawn(async move {
            let mut conn = None;
            while !stop.is_cancelled() {
                if conn.is_none() {
                    // Reads block in Redis for EVENT_BLOCK: the answer may take that long.
                    let config = redis::AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(Duration::from_secs(2)))
                        .set_response_timeout(Some(EVENT_BLOCK * 3));
                    conn = client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                        .ok();
                }
                let Some(c) = conn.as_mut() else {
                    tokio::select! { () = tokio::time::sleep(RECONNECT_PAUSE) => continue, () = stop.cancelled() => break }
                };
                let options = StreamReadOptions::default()
                    .block(usize::try_from(EVENT_BLOCK.as_millis()).unwrap_or(1000))
                    .count(512);
                let from = [format!("0-{last}")];
                let keys = [&events];
                let read = tokio::select! {
                    r = c.xread_options::<_, _, Option<StreamReadReply>>(&keys, &from, &options) => r,
                    () = stop.cancelled() => break,
                };
                match read {
                    Ok(reply) => {
                        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                            match event_from(&entry.id, &entry.map) {
                                Ok(event) => {
                                    last = event.cursor;
                                    let _ = status.send(Arc::new(event));
                                }
                                Err(e) => {
                                    tracing::warn!(error = %ErrorChain(&e), id = %entry.id, "unreadable status event")
                                }
                            }
                        }
                        if let Ok(Some(n)) = c.get::<_, Option<i64>>(&backlog_key).await {
                            backlog.store(u64::try_from(n).unwrap_or(0), Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %ErrorChain(&e), "cannot read status events from Redis; retrying");
                        conn = None;
                    }
                }
            }
        });
    }

    /// Wakes the local scheduler when another instance publishes or requeues work.
    fn spawn_work_listener(&self, client: redis::Client) {
        let (stop, work, channel) = (self.stop.clone(), self.work.clone(), self.key("work"));
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let subscribed = async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    Ok::<_, RedisError>(pubsub)
                };
                let mut pubsub = tokio::select! {
                    p = subscribed => match p {
                        Ok(p) => p,
                        Err(_) => {
                            tokio::select! { () = tokio::time::sleep(RECONNECT_PAUSE) => continue, () = stop.cancelled() => break }
                        }
                    },
                    () = stop.cancelled() => break,
                };
                // Work may have arrived while not subscribed.
                work.notify_one();
                let mut messages = pubsub.on_message();
                loop {
                    tokio::select! {
                        m = messages.next() => match m {
                            Some(_) => work.notify_one(),
                            None => break,
                        },
                        () = stop.cancelled() => return,
                    }
                }
            }
        });
    }
}

/// Refuses a Redis that may evict keys (unless allowed) and warns when it keeps no AOF.
async fn check_persistence(
    conn: &mut ConnectionManager,
    allow_eviction: bool,
) -> Result<(), RedisOpenError> {
    let setting = |name: &'static str| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async::<Vec<String>>(&mut conn)
                .await
                .map(|pair| pair.get(1).cloned().unwrap_or_default())
        }
    };
    match setting("maxmemory-policy").await {
        Ok(policy) if policy != "noeviction" => {
            if allow_eviction {
                tracing::warn!(%policy, "Redis may evict keys (allowed by WEBHOOK_REDIS_ALLOW_EVICTION): messages can be lost");
            } else {
                return Err(RedisOpenError::Eviction { policy });
            }
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %ErrorChain(&e), "cannot read Redis maxmemory-policy (CONFIG disabled?); make sure it is noeviction");
        }
    }
    match setting("appendonly").await {
        Ok(aof) if aof != "yes" => {
            tracing::warn!(
                "Redis runs without AOF: acknowledged messages are lost if Redis restarts; set appendonly yes (appendfsync always for nothing lost)"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %ErrorChain(&e), "cannot read Redis appendonly setting"),
    }
    Ok(())
}

fn message_from(id: &MessageId, map: &HashMap<String, Vec<u8>>) -> Option<Message> {
    let text = |name: &str| {
        map.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    Some(Message {
        id: id.clone(),
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
    })
}

fn attempt_from(id: i64, map: &HashMap<String, String>) -> Option<Attempt> {
    let get = |name: &str| map.get(name).filter(|s| !s.is_empty());
    Some(Attempt {
        id,
        message_id: MessageId::parse(get("m")?).ok()?,
        endpoint_id: EndpointId::parse(get("e")?).ok()?,
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

#[async_trait]
impl Store for RedisStore {
    async fn publish(
        &self,
        batch: Vec<NewMessage>,
        now: SystemTime,
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
                    .arg(batch.len());
                for (m, id) in batch.iter().zip(&ids) {
                    let targets: Vec<&str> = cache
                        .endpoints
                        .values()
                        .filter(|e| e.receives(&m.event_type, &m.channels))
                        .map(|e| e.id.as_str())
                        .collect();
                    invocation
                        .arg(id.as_str())
                        .arg(m.event_type.as_str())
                        .arg(&m.content_type)
                        .arg(m.payload.as_ref())
                        .arg(serde_json::to_string(&m.channels).map_err(backend)?)
                        .arg(serde_json::to_string(&m.metadata).map_err(backend)?)
                        .arg(m.idempotency_key.as_deref().unwrap_or(""))
                        .arg(
                            m.trace
                                .as_ref()
                                .map(serde_json::to_string)
                                .transpose()
                                .map_err(backend)?
                                .unwrap_or_default(),
                        )
                        .arg(hex(&content_hash(m)))
                        .arg(targets.len())
                        .arg(targets);
                }
            }
            let reply: Vec<Value> = invocation.invoke_async(&mut self.conn()).await?;
            if reply.first().is_some_and(|v| text(v) == "stale") {
                self.reload_endpoints().await?;
                continue;
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
            let created: u64 = results
                .iter()
                .map(|r| match r {
                    Published::Created { deliveries, .. } => u64::from(*deliveries),
                    _ => 0,
                })
                .sum();
            self.backlog.fetch_add(created, Ordering::Relaxed);
            return Ok(results);
        }
        Err(StoreError::Unavailable(Box::new(crate::domain::Invalid(
            "endpoints kept changing during the publish".into(),
        ))))
    }

    async fn create_endpoint(&self, endpoint: Endpoint) -> Result<Endpoint, StoreError> {
        let enabled = if endpoint.is_enabled() { "1" } else { "0" };
        match self
            .save(&endpoint, "create", enabled, endpoint.created_at)
            .await?
            .as_str()
        {
            "exists" => Err(StoreError::AlreadyExists {
                kind: "endpoint",
                id: endpoint.id.to_string(),
            }),
            _ => Ok(endpoint),
        }
    }

    async fn get_endpoint(&self, id: &EndpointId) -> Result<Endpoint, StoreError> {
        self.endpoint(id).await
    }

    async fn list_endpoints(
        &self,
        after: Option<EndpointId>,
        limit: usize,
    ) -> Result<Vec<Endpoint>, StoreError> {
        let min = after.map_or_else(|| "-".to_owned(), |a| format!("({a}"));
        let ids: Vec<String> = self
            .conn()
            .zrangebylex_limit(
                self.key("eps"),
                min,
                "+",
                0,
                isize::try_from(limit).unwrap_or(isize::MAX),
            )
            .await?;
        Ok(self
            .load_endpoints(&ids)
            .await?
            .into_iter()
            .flatten()
            .collect())
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
        if self.save(&endpoint, "update", flag, now).await? == "missing" {
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
        self.refresh_backlog().await?;
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
        if self.save(&endpoint, "update", "", now).await? == "missing" {
            return Err(StoreError::endpoint_not_found(id));
        }
        Ok(endpoint)
    }

    async fn get_message(&self, id: &MessageId) -> Result<(Message, Vec<Delivery>), StoreError> {
        let message = self.message(id).await?;
        let by_endpoint: HashMap<String, String> =
            self.conn().hgetall(self.key(&format!("m:{id}:d"))).await?;
        let mut endpoints: Vec<(String, String)> = by_endpoint.into_iter().collect();
        endpoints.sort();
        let mut pipe = redis::pipe();
        for (_, d) in &endpoints {
            pipe.cmd("HMGET")
                .arg(self.key(&format!("d:{d}")))
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
                    endpoint_id: parse(EndpointId::parse(endpoint))?,
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
            (Some(m), _) => self.key(&format!("m:{m}:a")),
            (None, Some(e)) => self.key(&format!("e:{e}:a")),
            (None, None) => self.key("att"),
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
                pipe.hgetall(self.key(&format!("a:{id}")));
            }
            let maps: Vec<HashMap<String, String>> = self.run(&pipe).await?;
            let states: Vec<Option<String>> = if query.delivery_state.is_some() {
                let mut pipe = redis::pipe();
                for map in &maps {
                    pipe.hget(
                        self.key(&format!("d:{}", map.get("d").map_or("", String::as_str))),
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
        self.message(message).await?;
        self.endpoint(endpoint).await?;
        let requeued = self
            .requeue(message, std::slice::from_ref(endpoint), now)
            .await?;
        self.refresh_backlog().await?;
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
            Some(Requeued::NoEndpoint) | None => Err(StoreError::endpoint_not_found(endpoint)),
        }
    }

    async fn replay_message(
        &self,
        message: &MessageId,
        now: SystemTime,
    ) -> Result<u32, StoreError> {
        let m = self.message(message).await?;
        self.reload_endpoints().await?;
        let targets: Vec<EndpointId> = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .endpoints
            .values()
            .filter(|e| e.receives(&m.event_type, &m.channels))
            .map(|e| e.id.clone())
            .collect();
        let queued = self.requeue(message, &targets, now).await?;
        self.refresh_backlog().await?;
        Ok(u32::try_from(
            queued
                .iter()
                .filter(|q| matches!(q, Requeued::Queued { .. }))
                .count(),
        )
        .unwrap_or(u32::MAX))
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
        let promoted: (Vec<String>, String, i64) = self
            .invoke(&self.scripts.promote)
            .arg(now)
            .arg(request.limit)
            .arg(p.max_in_flight)
            .arg(limit)
            .arg(window)
            .arg(burst)
            .invoke_async(&mut self.conn())
            .await?;
        let (rate_limited, next_scheduled, version) = promoted;
        let rate_limited = rate_limited
            .iter()
            .map(|e| parse(EndpointId::parse(e)))
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
                        .arg(self.key("ready"))
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
            pipe.hgetall(self.key(&format!("m:{id}")));
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
            let endpoint_id = parse(EndpointId::parse(&endpoint_id))?;
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
        let Outcome {
            record,
            transition,
            event_type: _,
            disable_after_failing,
        } = outcome;
        let succeeded = transition == Transition::Succeeded;
        let (code, retry_at, reason) = match transition {
            Transition::Succeeded => ("s", 0, 0),
            Transition::RetryAt(at) => ("r", ms(at), 0),
            Transition::Failed => ("f", 0, 0),
            Transition::FailedAndDisable(reason) => ("g", 0, reason_code(reason)),
        };
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
            .arg(u8::from(is_endpoint_failure(&record)))
            .arg(u64::try_from(disable_after_failing.as_millis()).unwrap_or(u64::MAX))
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
        self.backlog
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
            .zrangebyscore(self.key(&format!("e:{id}:failed")), ms(since), "+inf")
            .await?;
        let mut pipe = redis::pipe();
        for d in &failed {
            pipe.hget(self.key(&format!("d:{d}")), "m");
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
        self.refresh_backlog().await?;
        Ok(requeued)
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<StatusEvent>> {
        self.status.subscribe()
    }

    async fn events_after(&self, cursor: u64, limit: usize) -> Result<EventPage, StoreError> {
        let mut conn = self.conn();
        // The newest cursor first: events written after it are then in the range read
        // next, and never mistaken for a gap.
        let latest: Option<u64> = conn.get(self.key("seq:ev")).await?;
        let reply: StreamRangeReply = conn
            .xrange_count(
                self.key("ev"),
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

    async fn record_event(&self, event: StatusEvent) -> Result<(), StoreError> {
        let mut invocation = self.invoke(&self.scripts.emit);
        for (name, value) in event_fields(&event) {
            invocation.arg(name).arg(value);
        }
        let _: i64 = invocation.invoke_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn rollups(
        &self,
        from_minute: i64,
        to_minute: i64,
        endpoint: Option<EndpointId>,
        event_type: Option<EventType>,
    ) -> Result<Vec<RollupRow>, StoreError> {
        let minutes: Vec<i64> = self
            .conn()
            .zrangebyscore(self.key("ru:minutes"), from_minute, format!("({to_minute}"))
            .await?;
        let mut pipe = redis::pipe();
        for minute in &minutes {
            pipe.hgetall(self.key(&format!("ru:{minute}")));
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
                if endpoint.as_ref().is_some_and(|e| e.as_str() != ep)
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
                    endpoint: parse(EndpointId::parse(&ep))?,
                    rollup,
                })
            })
            .collect()
    }

    async fn pending(
        &self,
        endpoint: Option<EndpointId>,
        event_type: Option<EventType>,
    ) -> Result<u64, StoreError> {
        let counts: HashMap<String, i64> = self.conn().hgetall(self.key("pend")).await?;
        Ok(counts
            .iter()
            .filter(|(field, _)| {
                let (ep, et) = field.split_once('\n').unwrap_or((field.as_str(), ""));
                endpoint.as_ref().is_none_or(|e| e.as_str() == ep)
                    && event_type.as_ref().is_none_or(|t| t.as_str() == et)
            })
            .map(|(_, n)| u64::try_from(*n).unwrap_or(0))
            .sum())
    }

    async fn prune_rollups(&self, before_minute: i64) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let minutes: Vec<i64> = conn
            .zrangebyscore(self.key("ru:minutes"), "-inf", format!("({before_minute}"))
            .await?;
        if minutes.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for minute in &minutes {
            pipe.del(self.key(&format!("ru:{minute}"))).ignore();
            pipe.zrem(self.key("ru:minutes"), minute).ignore();
        }
        let () = pipe.query_async(&mut conn).await?;
        Ok(minutes.len() as u64)
    }

    async fn purge_expired_keys(&self, _now: SystemTime) -> Result<u64, StoreError> {
        // Idempotency records carry their own expiry in Redis.
        Ok(0)
    }

    fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    fn remote_work(&self) -> Option<Arc<Notify>> {
        Some(self.work.clone())
    }

    fn shares_protection(&self) -> bool {
        true
    }

    async fn circuits(&self) -> Result<Option<Vec<(String, i64)>>, StoreError> {
        let ids: Vec<String> = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .endpoints
            .keys()
            .map(ToString::to_string)
            .collect();
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hget(self.key(&format!("g:{id}")), "bs");
        }
        let states: Vec<Option<i64>> = self.run(&pipe).await?;
        let mut circuits: Vec<(String, i64)> = ids
            .into_iter()
            .zip(states)
            .map(|(id, state)| (id, state.unwrap_or(0)))
            .collect();
        circuits.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(Some(circuits))
    }

    async fn protection_status(
        &self,
        endpoint: &Endpoint,
    ) -> Result<Option<EndpointStatus>, StoreError> {
        let policy = self.protection.resolve_or_default(endpoint);
        let g: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.key(&format!("g:{}", endpoint.id)))
            .arg(&["bs", "bu", "bf", "inf", "tk", "tt"])
            .query_async(&mut self.conn())
            .await?;
        let field = |i: usize| g.get(i).cloned().flatten();
        let int = |i: usize| field(i).and_then(|v| v.parse::<f64>().ok());
        let circuit = match field(0).as_deref() {
            Some("1") => CircuitStatus::Open {
                until: time(int(1).unwrap_or(0.0) as i64),
            },
            Some("2") => CircuitStatus::HalfOpen,
            _ => CircuitStatus::Closed,
        };
        let rate_used = policy.rate_limit.map_or(0, |l| {
            let elapsed = ms(SystemTime::now()) - int(5).map_or(0, |t| t as i64);
            let refill =
                elapsed.max(0) as f64 * f64::from(l.limit()) / l.window().as_millis().max(1) as f64;
            let tokens =
                (int(4).unwrap_or(f64::from(l.burst())) + refill).min(f64::from(l.burst()));
            (f64::from(l.burst()) - tokens).max(0.0).round() as u32
        });
        Ok(Some(EndpointStatus {
            circuit,
            consecutive_failures: int(2).map_or(0, |n| n as u32),
            in_flight: int(3).map_or(0, |n| n.max(0.0) as u32),
            rate_used,
            rate_limit: policy.rate_limit,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
