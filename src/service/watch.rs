//! Watching the status stream: what is retained after a cursor, then the live tail,
//! with the server's heartbeat, ended at shutdown; only events of endpoints in the
//! caller's tenants.

use tokio_stream::{Stream, StreamExt};

use super::{Caller, Service, ServiceError, Tenancy};
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
        let items =
            status::watch(self.0.store.clone(), request, self.0.stopping.clone()).map(|item| {
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
            });
        Ok(items)
    }
}
