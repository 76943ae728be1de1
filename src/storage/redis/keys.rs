//! Every Redis key of a deployment, made in one place. Each starts with `{prefix}:`, one
//! hash tag, so a Redis Cluster keeps a deployment in one slot and tests isolate
//! themselves by prefix. The scripts build the same names from `KEYS[1]` (the prefix).
//!
//! - `ep:<id>` the endpoint's record (JSON); `eps` the ids in order; `epver` a counter
//!   bumped by every endpoint change, so instances know when their cache is stale;
//! - `tenants` each tenant's endpoint count, `t:<tenant>:eps` its endpoint ids in order,
//!   `tidx` set once those indexes cover every endpoint (and older idempotency records
//!   moved to the default tenant);
//! - `key:<id>` an API key (`r` its record, `rev` when revoked, `used` when last used),
//!   `keys` the key ids in order;
//! - `g:<id>` the endpoint's live, shared protection: enabled, protection overrides,
//!   destination host, attempts in flight, token bucket, breaker state, failing-since;
//! - `hg:<host:port>` a destination host's ceiling shared by every endpoint pointing at
//!   it: attempts in flight and token bucket (expiring once idle); `hw:<host:port>` the
//!   endpoints waiting for its in-flight room (these are the scripts' alone);
//! - `m:<id>` a message (`p` its payload, empty once expunged at `xp`), `m:<id>:d` its
//!   deliveries by endpoint, `d:<n>` a delivery (with the host whose slot it holds while
//!   in the stream or in flight); `exp` message ids by expiry, `xidx` set once every
//!   message is in it;
//! - `due:<endpoint>` pending deliveries by due time, `sched` endpoints by the time the
//!   scheduler should look at them, `ready` the stream of deliveries ready to attempt,
//!   read by the consumer group `workers` (consumer = instance id), `inf:<endpoint>` the
//!   endpoint's deliveries in the stream or in flight (these are the scripts' alone);
//! - `a:<n>` attempts with indexes `att`, `m:<id>:a`, `e:<id>:a`; `e:<id>:failed`;
//! - `idem:<tenant>/<key>` idempotency records (expiring); `ev` status events (stream ids
//!   `0-<cursor>`, the last cursor in `seq:ev`); `ru:<minute>` rollups, `ru:minutes` their
//!   minutes; `pend`, `backlog` and `bytes` (payload bytes stored) counters; `work` the
//!   channel that announces new work.

use std::fmt::Display;

use redis::{Script, ScriptInvocation};

/// The keys under one prefix.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    /// `{prefix}:`
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: format!("{{{prefix}}}:"),
        }
    }

    /// `{prefix}:`, as the scripts take it.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// An invocation of `script` on these keys: the prefix is its `KEYS[1]`.
    pub fn invoke<'a>(&self, script: &'a Script) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation.key(&self.prefix);
        invocation
    }

    fn of(&self, name: impl Display) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn endpoint(&self, id: impl Display) -> String {
        self.of(format_args!("ep:{id}"))
    }

    pub fn endpoint_ids(&self) -> String {
        self.of("eps")
    }

    pub fn tenants(&self) -> String {
        self.of("tenants")
    }

    pub fn tenant_endpoints(&self, tenant: impl Display) -> String {
        self.of(format_args!("t:{tenant}:eps"))
    }

    pub fn api_key(&self, id: impl Display) -> String {
        self.of(format_args!("key:{id}"))
    }

    pub fn api_keys(&self) -> String {
        self.of("keys")
    }

    pub fn endpoint_version(&self) -> String {
        self.of("epver")
    }

    pub fn guard(&self, id: impl Display) -> String {
        self.of(format_args!("g:{id}"))
    }

    pub fn message(&self, id: impl Display) -> String {
        self.of(format_args!("m:{id}"))
    }

    /// Message ids by expiry (ms).
    pub fn messages_by_expiry(&self) -> String {
        self.of("exp")
    }

    /// Set once every message is in [`Self::messages_by_expiry`] (for deployments older than it).
    pub fn expiry_indexed(&self) -> String {
        self.of("xidx")
    }

    pub fn message_deliveries(&self, id: impl Display) -> String {
        self.of(format_args!("m:{id}:d"))
    }

    pub fn message_attempts(&self, id: impl Display) -> String {
        self.of(format_args!("m:{id}:a"))
    }

    pub fn delivery(&self, n: impl Display) -> String {
        self.of(format_args!("d:{n}"))
    }

    pub fn attempt(&self, n: impl Display) -> String {
        self.of(format_args!("a:{n}"))
    }

    pub fn attempts(&self) -> String {
        self.of("att")
    }

    pub fn endpoint_attempts(&self, id: impl Display) -> String {
        self.of(format_args!("e:{id}:a"))
    }

    pub fn endpoint_failed(&self, id: impl Display) -> String {
        self.of(format_args!("e:{id}:failed"))
    }

    pub fn ready(&self) -> String {
        self.of("ready")
    }

    pub fn events(&self) -> String {
        self.of("ev")
    }

    pub fn last_event(&self) -> String {
        self.of("seq:ev")
    }

    pub fn rollup(&self, minute: impl Display) -> String {
        self.of(format_args!("ru:{minute}"))
    }

    pub fn rollup_minutes(&self) -> String {
        self.of("ru:minutes")
    }

    pub fn pending(&self) -> String {
        self.of("pend")
    }

    pub fn backlog(&self) -> String {
        self.of("backlog")
    }

    /// Payload bytes stored, kept by the scripts.
    pub fn stored_bytes(&self) -> String {
        self.of("bytes")
    }

    pub fn work(&self) -> String {
        self.of("work")
    }
}
