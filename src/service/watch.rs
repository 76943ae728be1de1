//! Watching the status stream: what is retained after a cursor, then the live tail,
//! with the server's heartbeat, ended at shutdown; only events of endpoints in the
//! caller's tenants; at most so many streams open per credential.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_stream::{Stream, StreamExt};

use super::{Caller, Principal, Service, ServiceError, Tenancy};
use crate::auth::Scope;
use crate::status::{self, StatusFilter, StatusItem, WatchError, WatchRequest};

/// What a watcher asks for.
#[derive(Debug, Clone, Default)]
pub struct WatchQuery {
    pub filter: StatusFilter,
    /// Resume after this cursor; `None`: from now on.
    pub after: Option<u64>,
    /// End once `filter.message` is settled on every endpoint.
    pub until_settled: bool,
}

impl Service {
    /// The matching status events of the caller's tenants, with heartbeats when idle,
    /// until the watcher leaves, its message settles (`until_settled`), or the server
    /// stops.
    ///
    /// # Errors
    /// A caller without the `read` scope, or a message filter naming a message not in
    /// the caller's tenants; in the stream, a cursor no longer retained or beyond the
    /// newest event, a watcher too far behind, or a store failure.
    pub async fn watch(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        query: WatchQuery,
    ) -> Result<impl Stream<Item = Result<StatusItem, ServiceError>> + Send + 'static, ServiceError>
    {
        let scope = caller.tenants(Scope::Read, tenancy)?;
        let watching = Watchers::admit(&self.0.watchers, &caller.principal)?;
        if let Some(id) = &query.filter.message {
            self.message_in(&scope, id).await?;
        }
        let mut filter = StatusFilter {
            tenant: scope.only().cloned(),
            ..query.filter
        };
        if let Some(tenant) = scope.only() {
            // The tenant's names of its endpoints, as the events carry them.
            filter.endpoints = filter
                .endpoints
                .iter()
                .map(|id| id.in_tenant(tenant))
                .collect();
        }
        let request = WatchRequest {
            filter,
            after: query.after,
            until_settled: query.until_settled,
            heartbeat: self.0.config.stream_heartbeat,
        };
        let items = status::watch(self.0.store.clone(), request, self.0.stopping.clone()).map(
            move |item| {
                let _counted = &watching;
                item.map_err(|e| match e {
                    WatchError::Pruned { after } => ServiceError::CursorNotRetained { after },
                    WatchError::Ahead { after, latest } => {
                        ServiceError::CursorAhead { after, latest }
                    }
                    WatchError::Lagged { resume_after } => {
                        ServiceError::ConsumerTooSlow { resume_after }
                    }
                    WatchError::Store(e) => e.into(),
                })
            },
        );
        Ok(items)
    }
}

/// The status streams open per credential, against their limit.
pub(super) struct Watchers {
    limit: u32,
    /// Credentials with a stream open, and how many; none without.
    open: Mutex<HashMap<Principal, u32>>,
}

impl Watchers {
    pub(super) fn new(limit: u32) -> Self {
        Self {
            limit,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one more stream of `principal`, until the [`Watching`] is dropped.
    fn admit(watchers: &Arc<Self>, principal: &Principal) -> Result<Watching, ServiceError> {
        let mut open = watchers.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(principal.clone()).or_default();
        if *count >= watchers.limit {
            return Err(ServiceError::TooManyStreams {
                limit: watchers.limit,
            });
        }
        *count += 1;
        Ok(Watching {
            watchers: watchers.clone(),
            principal: principal.clone(),
        })
    }
}

/// One open status stream, counted against its credential while it lives.
struct Watching {
    watchers: Arc<Watchers>,
    principal: Principal,
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut open = self
            .watchers
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.principal) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.principal);
            }
        }
    }
}
