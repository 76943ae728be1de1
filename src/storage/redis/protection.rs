//! The shared implementation of [`Protection`]: every instance using one Redis shares
//! each endpoint's breaker, token bucket and in-flight count, kept in `g:<id>`, and each
//! destination host's in-flight count and token bucket, kept in `hg:<host>`.
//!
//! The promote script admits work (the endpoint's room, tokens and breaker, and its
//! host's room and tokens) before it reaches the ready stream; whichever script ends a
//! delivery's hold (complete, release, or claim for work that went back) frees its host
//! slot, and the complete script decides circuit changes and the disabling of an
//! endpoint that has failed too long, atomically for all instances. So this side only
//! counts this process's attempts in flight and reads the shared state back for the API
//! and the health report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;
use tokio::time::Instant;

use super::EndpointCache;
use super::codec::{CIRCUIT_HALF_OPEN, CIRCUIT_OPEN};
use super::keys::Keys;
use crate::domain::{Endpoint, EndpointId};
use crate::policy::protection::{
    Admission, Allowance, CircuitStatus, Ended, EndpointEffects, EndpointStatus, Protection,
    ProtectionConfig, StateUnavailable,
};
use crate::storage::codec::{ms, time};

/// Endpoint protection shared through Redis; made by [`super::RedisStore::protection`].
pub struct SharedProtection {
    pub(super) conn: ConnectionManager,
    pub(super) keys: Keys,
    /// The script that reads an endpoint's protection with its bucket refilled to now.
    pub(super) status: Script,
    pub(super) config: ProtectionConfig,
    /// The store's copy of every endpoint: whose circuits to look at.
    pub(super) cache: Arc<RwLock<EndpointCache>>,
    /// Attempts this process has in flight.
    pub(super) in_flight: AtomicU64,
}

fn unavailable(e: redis::RedisError) -> StateUnavailable {
    StateUnavailable(Box::new(e))
}

/// The circuit as stored in `g:<id>`: state code and open-until time (ms).
fn circuit(state: Option<&str>, until_ms: Option<f64>) -> CircuitStatus {
    match state.and_then(|s| s.parse::<i64>().ok()) {
        Some(CIRCUIT_OPEN) => CircuitStatus::Open {
            until: time(until_ms.unwrap_or(0.0) as i64),
        },
        Some(CIRCUIT_HALF_OPEN) => CircuitStatus::HalfOpen,
        _ => CircuitStatus::Closed,
    }
}

#[async_trait]
impl Protection for SharedProtection {
    fn allowance(&self, _now: Instant) -> Allowance {
        Allowance {
            unknown: usize::MAX,
            ..Default::default()
        }
    }

    fn next_unblock(&self, _now: Instant) -> Option<Instant> {
        // The store's schedule holds when each blocked endpoint opens up.
        None
    }

    fn admit(&self, endpoint: &Endpoint, _now: Instant) -> Option<Admission> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(Admission {
            probe: false,
            destination: endpoint.destination(),
        })
    }

    fn finish(
        &self,
        _endpoint: &EndpointId,
        _admission: &Admission,
        _ended: Option<Ended<'_>>,
        _now: SystemTime,
    ) -> EndpointEffects {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        EndpointEffects::default()
    }

    fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn forget(&self, _endpoint: &EndpointId) {}

    async fn status(&self, endpoint: &Endpoint) -> Result<EndpointStatus, StateUnavailable> {
        let policy = self.config.resolve_or_default(endpoint);
        let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let (limit, window, burst) = policy
            .rate_limit
            .map_or((0, 1, 0), |l| (l.limit(), millis(l.window()), l.burst()));
        let (state, until, consecutive_failures, in_flight, rate_used): (
            Option<String>,
            i64,
            u32,
            u32,
            u32,
        ) = self
            .keys
            .invoke(&self.status)
            .arg(ms(SystemTime::now()))
            .arg(endpoint.id.as_str())
            .arg(limit)
            .arg(window)
            .arg(burst)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(EndpointStatus {
            circuit: circuit(state.as_deref(), Some(until as f64)),
            consecutive_failures,
            in_flight,
            rate_used,
            rate_limit: policy.rate_limit,
        })
    }

    async fn circuits(&self) -> Result<Vec<(EndpointId, CircuitStatus)>, StateUnavailable> {
        let ids: Vec<EndpointId> = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .endpoints
            .values()
            .map(|e| e.id.clone())
            .collect();
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HMGET")
                .arg(self.keys.guard(id))
                .arg(&["bs", "bu"]);
        }
        let states: Vec<(Option<String>, Option<f64>)> = if ids.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?
        };
        let mut circuits: Vec<_> = ids
            .into_iter()
            .zip(states)
            .map(|(id, (state, until))| (id, circuit(state.as_deref(), until)))
            .collect();
        CircuitStatus::sort(&mut circuits);
        Ok(circuits)
    }
}
