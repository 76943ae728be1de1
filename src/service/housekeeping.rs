//! Housekeeping: forgetting what has outlived its retention (expired idempotency keys,
//! analytics rollups older than their retention). The application runs it now and then;
//! each part runs even when the other fails.

use std::time::SystemTime;

use super::{Service, ServiceError};
use crate::analytics::minute_of;

/// What one round of housekeeping removed, or why a part could not run.
#[derive(Debug)]
pub struct Swept {
    pub expired_keys: Result<u64, ServiceError>,
    pub old_rollups: Result<u64, ServiceError>,
}

impl Service {
    /// Forgets idempotency keys expired by `now` and rollups older than the analytics
    /// retention.
    pub async fn sweep(&self, now: SystemTime) -> Swept {
        let store = &self.0.store;
        let expired_keys = store.purge_expired_keys(now).await.map_err(Into::into);
        let before = minute_of(now - self.0.config.analytics_retention);
        let old_rollups = store.prune_rollups(before).await.map_err(Into::into);
        Swept {
            expired_keys,
            old_rollups,
        }
    }
}
