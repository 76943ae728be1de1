//! Watching the status stream: what is retained after a cursor, then the live tail,
//! with the server's heartbeat, ended at shutdown; only events of endpoints in the
//! caller's tenants.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio_stream::{Stream, StreamExt};

use super::{Caller, Service, ServiceError, Tenancy, TenantScope};
use crate::auth::Scope;
use crate::domain::{EndpointId, StatusEvent, TenantId};
use crate::status::{self, StatusFilter, StatusItem, WatchError, WatchRequest};
use crate::storage::StoreError;

/// Endpoints remembered beyond which the map starts over (it only saves store reads).
const REMEMBERED_MAX: usize = 100_000;

/// What a watcher asks for.
#[derive(Debug, Clone, Default)]
pub struct WatchQuery {
    pub filter: StatusFilter,
    /// Resume after this cursor; `None`: from now on.
    pub after: Option<u64>,
    /// End once `filter.message` is settled on every endpoint.
    pub until_settled: bool,
}

/// The tenant of each endpoint an event was about. An endpoint never changes tenant, so
/// an entry never goes stale; a deleted endpoint's later events are shown to admins only.
#[derive(Default)]
pub(super) struct EndpointTenants(Mutex<HashMap<EndpointId, TenantId>>);

impl Service {
    /// Whether a watcher of `scope` may see `event`.
    async fn visible(
        &self,
        scope: &TenantScope,
        event: &StatusEvent,
    ) -> Result<bool, ServiceError> {
        let TenantScope::One(tenant) = scope else {
            return Ok(true);
        };
        let Some(id) = &event.endpoint_id else {
            return Ok(false);
        };
        let known = self
            .0
            .endpoint_tenants
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned();
        let owner = match known {
            Some(owner) => owner,
            None => match self.0.store.get_endpoint(id).await {
                Ok(endpoint) => {
                    let mut map = self
                        .0
                        .endpoint_tenants
                        .0
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if map.len() >= REMEMBERED_MAX {
                        map.clear();
                    }
                    map.insert(id.clone(), endpoint.tenant.clone());
                    endpoint.tenant
                }
                Err(StoreError::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(e.into()),
            },
        };
        Ok(owner == *tenant)
    }

    /// The matching status events of the caller's tenants, with heartbeats when idle,
    /// until the watcher leaves, its message settles (`until_settled`), or the server
    /// stops.
    ///
    /// # Errors
    /// A caller without the `read` scope, or a message filter naming a message not in
    /// the caller's tenants; in the stream, a cursor no longer retained, a watcher too
    /// far behind, or a store failure.
    pub async fn watch(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        query: WatchQuery,
    ) -> Result<impl Stream<Item = Result<StatusItem, ServiceError>> + Send + 'static, ServiceError>
    {
        let scope = caller.tenants(Scope::Read, tenancy)?;
        if let Some(id) = &query.filter.message {
            self.message_in(&scope, id).await?;
        }
        let mut filter = query.filter;
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
        let items =
            status::watch(self.0.store.clone(), request, self.0.stopping.clone()).map(|item| {
                item.map_err(|e| match e {
                    WatchError::Pruned { after } => ServiceError::CursorNotRetained { after },
                    WatchError::Lagged { resume_after } => {
                        ServiceError::ConsumerTooSlow { resume_after }
                    }
                    WatchError::Store(e) => e.into(),
                })
            });
        let service = self.clone();
        Ok(async_stream::stream! {
            for await item in items {
                if let Ok(StatusItem::Event(event)) = &item {
                    match service.visible(&scope, event).await {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            yield Err(e);
                            break;
                        }
                    }
                }
                yield item;
            }
        })
    }
}
