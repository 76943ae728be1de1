//! Watching the status stream: what is retained after a cursor, then the live tail,
//! with the server's heartbeat, ended at shutdown.

use tokio_stream::{Stream, StreamExt};

use super::{Service, ServiceError};
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
    /// The matching status events, with heartbeats when idle, until the watcher leaves,
    /// its message settles (`until_settled`), or the server stops.
    pub fn watch(
        &self,
        query: WatchQuery,
    ) -> impl Stream<Item = Result<StatusItem, ServiceError>> + Send + 'static {
        let request = WatchRequest {
            filter: query.filter,
            after: query.after,
            until_settled: query.until_settled,
            heartbeat: self.0.config.stream_heartbeat,
        };
        status::watch(self.0.store.clone(), request, self.0.stopping.clone()).map(|item| {
            item.map_err(|e| match e {
                WatchError::Pruned { after } => ServiceError::CursorNotRetained { after },
                WatchError::Lagged { resume_after } => {
                    ServiceError::ConsumerTooSlow { resume_after }
                }
                WatchError::Store(e) => e.into(),
            })
        })
    }
}
