//! The Redis store: several Herald instances share one queue and every piece of state.
//!
//! Layout: `keys` makes every key (and documents the layout); `scripts` loads the Lua
//! transitions with the codes Rust and Lua share; `codec` turns records back into
//! domain values; `store` is the [`Store`] implementation; `tasks` the background
//! readers; `protection` the endpoint protection shared by every instance. This file
//! opens the store and holds what they share.
//!
//! Every state transition is one Lua script (publish, promote, claim, complete, release,
//! requeue, delete), so no crash between two commands can leave a delivery half-moved,
//! and with `appendfsync always` a reply means the transition is on disk. A claim leases
//! a delivery for longer than the request timeout; a dead instance's leases are taken
//! over by the living with `XAUTOCLAIM` once they run out. Breakers and token buckets
//! live in `g:<id>`, each destination host's ceiling in `hg:<host>`, and are applied by
//! the promote script, so the limits hold across all instances together and one probe
//! goes out, not one per instance.
//!
//! Endpoint records (`ep:<id>`) are stored as [`sealing`](super::sealing) makes them; the
//! scripts read only their `tenant`, which stays in clear. Every record is opened when the
//! store opens, so a missing or wrong master key stops startup. Records left under
//! another key are sealed again by [`Store::reseal_endpoints`](super::Store) with a
//! compare-and-set (`reseal_endpoint.lua`), so a user's change made meanwhile wins; an
//! instance learns of records another instance wrote under an older key when it reloads
//! its endpoint cache.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, IntoConnectionInfo, RedisError, Script, Value};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::codec::{message_from, opt_ms, overrides, text};
use self::keys::Keys;
use self::scripts::Scripts;
use super::codec::{ms, reason_code, reason_from, time};
use super::directory::Directory;
use super::sealing::{Opened, SealError};
use super::{Expunged, StoreError, StoreOptions};
use crate::domain::{
    DisabledReason, Endpoint, EndpointId, Message, MessageId, StatusEvent, TenantId,
};
use crate::policy::protection::ProtectionConfig;
use crate::telemetry::ErrorChain;

pub use self::protection::SharedProtection;

mod codec;
mod keys;
mod protection;
mod scripts;
mod store;
mod tasks;

/// How to reach the shared Redis, and this instance's place among its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub url: String,
    pub password: Option<String>,
    pub db: Option<i64>,
    pub prefix: String,
    pub instance_id: String,
    pub allow_eviction: bool,
}

/// Consumer group of the ready stream.
const GROUP: &str = "workers";
/// Times a publish is retried when endpoints change under it.
const STALE_RETRIES: usize = 8;
/// Pause of the background readers after a Redis error.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);
/// How often an instance looks for deliveries whose holder's lease ran out: leases last
/// at least 10 s, so a second's delay matters little, and the scan is not free.
const RECLAIM_EVERY: Duration = Duration::from_secs(1);
/// How long an endpoint the claiming process's pacing holds back waits before the
/// promote script looks at it again. Pacing is per process, so nothing in Redis says when
/// its room comes back; the held endpoints are slow ones, for whom this is little.
const PACE_WAIT: Duration = Duration::from_millis(100);
/// Longest a status-event read waits in Redis before asking again.
const EVENT_BLOCK: Duration = Duration::from_millis(1000);

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

impl From<RedisError> for StoreError {
    fn from(e: RedisError) -> Self {
        if transient(&e) {
            Self::Unavailable(Box::new(e))
        } else {
            backend(e)
        }
    }
}

/// Whether the same command may succeed later with nothing changed on Herald's side: the
/// connection is lost, or the server refuses for now (replaying its AOF, demoted to a
/// replica by a failover, cut off from its master, out of memory under `noeviction`,
/// unable to persist, busy with a slow script). A client told so retries.
fn transient(e: &RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    /// Codes the library reads as an extension error, not a kind of its own.
    const REFUSED_FOR_NOW: [&str; 4] = ["BUSY", "OOM", "MISCONF", "NOREPLICAS"];
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_connection_dropped()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::ClusterDown
            )
        )
        || e.code().is_some_and(|code| REFUSED_FOR_NOW.contains(&code))
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
    #[error("cannot open the stored endpoint secrets")]
    Secrets(#[source] SealError),
}

/// This instance's copy of every endpoint, and the `epver` it was read at.
#[derive(Default)]
struct EndpointCache {
    version: i64,
    endpoints: Directory,
    /// Endpoints whose record, when read, was not sealed as the keyring seals now.
    stale: BTreeSet<EndpointId>,
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
    /// The message was expunged then: nothing changed.
    Expunged(SystemTime),
}

/// How the save script writes an endpoint.
#[derive(Debug, Clone, Copy)]
enum Save {
    /// A new endpoint, unless its tenant has `max_per_tenant` already.
    Create {
        max_per_tenant: u64,
    },
    Update,
}

/// The Redis-backed [`Store`].
pub struct RedisStore {
    conn: ConnectionManager,
    keys: Keys,
    consumer: String,
    options: StoreOptions,
    protection: ProtectionConfig,
    scripts: Scripts,
    /// Shared with the [`SharedProtection`] of this store.
    cache: Arc<RwLock<EndpointCache>>,
    /// Copies of Redis's `backlog` and `bytes` counters.
    counters: Arc<Counters>,
    status: broadcast::Sender<Arc<StatusEvent>>,
    /// Signalled when another instance publishes or requeues work.
    work: Arc<Notify>,
    /// Stops the background readers with the store.
    stop: CancellationToken,
    /// The background readers, waited for by [`Store::close`].
    tasks: TaskTracker,
    /// When this instance last looked for expired leases (ms since the epoch).
    last_reclaim: AtomicU64,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RedisStore {
    /// Sockets the store holds at most: the shared connection, the status-event and
    /// work readers, and one being reconnected.
    pub const MAX_DESCRIPTORS: u64 = 8;

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
        let keys = Keys::new(&config.prefix);
        match redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(keys.ready())
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
            keys,
            consumer: config.instance_id.clone(),
            scripts: Scripts::new(options.status_retention),
            options,
            protection,
            cache: Arc::default(),
            counters: Arc::default(),
            status,
            work: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            last_reclaim: AtomicU64::new(0),
        };
        let indexed: u64 = store
            .invoke(&store.scripts.index_tenants)
            .invoke_async(&mut store.conn())
            .await
            .map_err(|e| RedisOpenError::Setup(e.into()))?;
        if indexed > 0 {
            tracing::info!(endpoints = indexed, "indexed existing endpoints by tenant");
        }
        store.reload_endpoints().await.map_err(|e| match e {
            StoreError::Backend(source) => match source.downcast::<SealError>() {
                Ok(sealed) => RedisOpenError::Secrets(*sealed),
                Err(source) => RedisOpenError::Setup(StoreError::Backend(source)),
            },
            e => RedisOpenError::Setup(e),
        })?;
        store.index_hosts().await.map_err(RedisOpenError::Setup)?;
        store.index_expiry().await.map_err(RedisOpenError::Setup)?;
        let latest: Option<u64> = store
            .conn()
            .get(store.keys.last_event())
            .await
            .map_err(|e| RedisOpenError::Setup(e.into()))?;
        store.spawn_event_reader(client.clone(), latest.unwrap_or(0));
        store.spawn_work_listener(client);
        tracing::info!(prefix = %store.keys.prefix(), instance = %store.consumer, "redis store ready");
        Ok(store)
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Gives messages stored before messages had an expiry one, `retention` after they
    /// were published, and indexes them by it; once per deployment.
    async fn index_expiry(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        if conn.exists(self.keys.expiry_indexed()).await? {
            return Ok(());
        }
        let prefix = self.keys.message("");
        let retention = i64::try_from(self.options.retention.as_millis()).unwrap_or(i64::MAX);
        let mut cursor = 0u64;
        let mut indexed = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            // `m:<id>` itself, not its `:d` and `:a` indexes.
            let ids: Vec<&str> = keys
                .iter()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter(|id| !id.contains(':'))
                .collect();
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HMGET")
                    .arg(self.keys.message(id))
                    .arg("c")
                    .arg("x");
            }
            let times: Vec<(Option<i64>, Option<i64>)> = self.run(&pipe).await?;
            let mut pipe = redis::pipe();
            for (id, (created, expiry)) in ids.iter().zip(times) {
                if let (Some(created), None) = (created, expiry) {
                    let expiry = created.saturating_add(retention);
                    pipe.hset(self.keys.message(id), "x", expiry).ignore();
                    pipe.zadd(self.keys.messages_by_expiry(), id, expiry)
                        .ignore();
                    indexed += 1;
                }
            }
            if !pipe.is_empty() {
                let () = pipe.query_async(&mut conn).await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let () = conn.set(self.keys.expiry_indexed(), 1).await?;
        if indexed > 0 {
            tracing::info!(messages = indexed, "indexed existing messages by expiry");
        }
        Ok(())
    }

    /// Gives endpoints saved before hosts had ceilings their host, so they share it.
    async fn index_hosts(&self) -> Result<(), StoreError> {
        let endpoints: Vec<Arc<Endpoint>> = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .endpoints
            .values()
            .cloned()
            .collect();
        let mut indexed = 0;
        for chunk in endpoints.chunks(256) {
            let mut invocation = self.invoke(&self.scripts.index_hosts);
            for endpoint in chunk {
                invocation
                    .arg(endpoint.id.as_str())
                    .arg(endpoint.destination().as_str());
            }
            let stored: u64 = invocation.invoke_async(&mut self.conn()).await?;
            indexed += stored;
        }
        if indexed > 0 {
            tracing::info!(
                endpoints = indexed,
                "indexed existing endpoints by destination host"
            );
        }
        Ok(())
    }

    /// The endpoint protection this store shares among every instance using it.
    pub fn protection(&self) -> SharedProtection {
        SharedProtection {
            conn: self.conn(),
            keys: self.keys.clone(),
            status: self.scripts.status.clone(),
            config: self.protection,
            cache: self.cache.clone(),
            in_flight: Default::default(),
        }
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

    fn invoke<'a>(&'a self, script: &'a Script) -> redis::ScriptInvocation<'a> {
        self.keys.invoke(script)
    }

    /// Reads every endpoint, with its shared live state, into the cache.
    async fn reload_endpoints(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let version: Option<i64> = conn.get(self.keys.endpoint_version()).await?;
        let ids: Vec<String> = conn.zrange(self.keys.endpoint_ids(), 0, -1).await?;
        let mut endpoints = Directory::default();
        let mut stale = BTreeSet::new();
        for chunk in ids.chunks(256) {
            for opened in self.load_records(chunk).await?.into_iter().flatten() {
                if !opened.current {
                    stale.insert(opened.endpoint.id.clone());
                }
                endpoints.insert(Arc::new(opened.endpoint));
            }
        }
        *self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = EndpointCache {
            version: version.unwrap_or(0),
            endpoints,
            stale,
        };
        Ok(())
    }

    /// The endpoints with these ids (`None` for one that does not exist), with the live
    /// fields (enabled, failing-since) that the scripts keep in `g:<id>`.
    async fn load_endpoints(&self, ids: &[String]) -> Result<Vec<Option<Endpoint>>, StoreError> {
        Ok(self
            .load_records(ids)
            .await?
            .into_iter()
            .map(|opened| opened.map(|o| o.endpoint))
            .collect())
    }

    /// [`Self::load_endpoints`], with whether each record is sealed as it would be now.
    async fn load_records(&self, ids: &[String]) -> Result<Vec<Option<Opened>>, StoreError> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.get(self.keys.endpoint(id));
            pipe.cmd("HMGET")
                .arg(self.keys.guard(id))
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
                let mut opened = self.options.keyring.open(&record)?;
                let endpoint = &mut opened.endpoint;
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
                Ok(Some(opened))
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

    /// At most `limit` ids of the sorted set `index` (all scores 0, so in id order)
    /// after `after`.
    async fn ids_after(
        &self,
        index: String,
        after: Option<impl std::fmt::Display>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let min = after.map_or_else(|| "-".to_owned(), |a| format!("({a}"));
        Ok(self
            .conn()
            .zrangebylex_limit(
                index,
                min,
                "+",
                0,
                isize::try_from(limit).unwrap_or(isize::MAX),
            )
            .await?)
    }

    /// Writes an endpoint's record and overrides through the save script.
    async fn save(
        &self,
        endpoint: &Endpoint,
        mode: Save,
        enabled: &str,
        now: SystemTime,
    ) -> Result<String, StoreError> {
        let (mode, most) = match mode {
            Save::Create { max_per_tenant } => ("create", max_per_tenant),
            Save::Update => ("update", u64::MAX),
        };
        let record = self.options.keyring.seal(endpoint)?;
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
        invocation
            .arg(endpoint.tenant.as_str())
            .arg(most)
            .arg(endpoint.destination().as_str());
        // The change bumped the endpoint version: this instance's cache reloads when its
        // next publish or claim sees that, like every other instance's.
        Ok(invocation.invoke_async(&mut self.conn()).await?)
    }

    async fn message(&self, id: &MessageId) -> Result<Message, StoreError> {
        let map: HashMap<String, Vec<u8>> = self.conn().hgetall(self.keys.message(id)).await?;
        message_from(id, &map).ok_or_else(|| StoreError::message_not_found(id))
    }

    /// The message, unless its payload was expunged: what may be sent again. The requeue
    /// script checks again, in the same step as it queues.
    async fn sendable(&self, id: &MessageId) -> Result<Message, StoreError> {
        let message = self.message(id).await?;
        match message.expunged_at {
            Some(at) => Err(StoreError::expunged(id, at)),
            None => Ok(message),
        }
    }

    /// Runs the expunge script on `ids`, skipping those not of `tenant` when one is named;
    /// per message, what it did (`None`: no such message).
    async fn expunge(
        &self,
        ids: &[String],
        tenant: Option<&TenantId>,
        now: SystemTime,
    ) -> Result<Vec<Option<Expunged>>, StoreError> {
        let mut invocation = self.invoke(&self.scripts.expunge);
        invocation
            .arg(ms(now))
            .arg(tenant.map_or("", TenantId::as_str));
        for id in ids {
            invocation.arg(id);
        }
        let rows: Vec<(i64, u8, u32)> = invocation.invoke_async(&mut self.conn()).await?;
        self.refresh_counters().await?;
        Ok(rows
            .into_iter()
            .map(|(at, fresh, cancelled)| {
                (at >= 0).then(|| Expunged {
                    at: time(at),
                    fresh: fresh == 1,
                    cancelled,
                })
            })
            .collect())
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
                -2 => Requeued::Expunged(time(created)),
                _ => Requeued::NoEndpoint,
            })
            .collect())
    }

    async fn refresh_counters(&self) -> Result<(), StoreError> {
        self.counters
            .refresh(&mut self.conn(), &self.keys)
            .await
            .map_err(StoreError::from)
    }
}

/// Copies of the counters every instance keeps in Redis, refreshed after this instance's
/// own changes and by the status-event reader after anyone's.
#[derive(Debug, Default)]
struct Counters {
    /// Unfinished deliveries (`backlog`).
    backlog: AtomicU64,
    /// Payload bytes stored (`bytes`).
    stored_bytes: AtomicU64,
}

impl Counters {
    async fn refresh(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        keys: &Keys,
    ) -> redis::RedisResult<()> {
        let (backlog, bytes): (Option<i64>, Option<i64>) = redis::cmd("MGET")
            .arg(keys.backlog())
            .arg(keys.stored_bytes())
            .query_async(conn)
            .await?;
        for (counter, value) in [(&self.backlog, backlog), (&self.stored_bytes, bytes)] {
            counter.store(
                u64::try_from(value.unwrap_or(0)).unwrap_or(0),
                Ordering::Relaxed,
            );
        }
        Ok(())
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
