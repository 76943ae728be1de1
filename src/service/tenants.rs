//! Tenants, for admins: each with its endpoint count, and deleting one (its endpoints,
//! and with them its unfinished deliveries, and its messages' payloads). A tenant exists
//! while it has endpoints; the record of its messages (ids, times, outcomes) stays until
//! retention removes it.

use std::time::SystemTime;

use super::access::audit;
use super::{Caller, Page, Service, ServiceError};
use crate::auth::Scope;
use crate::domain::TenantId;
use crate::storage::TenantSummary;

/// Endpoints deleted per round when a tenant is deleted.
const DELETE_ROUND: usize = 100;
/// Messages expunged per store transition when a tenant is deleted: a large tenant holds
/// other writers up for one batch at a time, not for all of its messages.
const EXPUNGE_BATCH: usize = 500;

/// What deleting a tenant did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantDeleted {
    pub endpoints: u32,
    pub cancelled_deliveries: u32,
    /// Messages whose payloads were expunged (not those expunged before).
    pub expunged_messages: u32,
}

impl Service {
    /// Tenants in id order after `after`.
    ///
    /// # Errors
    /// A caller without the `admin` scope, or a store failure.
    pub async fn list_tenants(
        &self,
        caller: &Caller,
        after: Option<TenantId>,
        limit: usize,
    ) -> Result<Page<TenantSummary, TenantId>, ServiceError> {
        caller.require(Scope::Admin)?;
        let tenants = self.0.store.list_tenants(after, limit + 1).await?;
        Ok(Page::cut(tenants, limit, |t| t.tenant.clone()))
    }

    /// Deletes every endpoint of the tenant, cancelling their unfinished deliveries, then
    /// expunges every message of the tenant.
    ///
    /// # Errors
    /// A caller without the `admin` scope, or a store failure (what was deleted before
    /// it stays deleted; calling again finishes the job).
    pub async fn delete_tenant(
        &self,
        caller: &Caller,
        tenant: &TenantId,
    ) -> Result<TenantDeleted, ServiceError> {
        caller.require(Scope::Admin)?;
        let mut done = TenantDeleted {
            endpoints: 0,
            cancelled_deliveries: 0,
            expunged_messages: 0,
        };
        loop {
            let endpoints = self
                .0
                .store
                .list_endpoints(Some(tenant.clone()), None, DELETE_ROUND)
                .await?;
            if endpoints.is_empty() {
                break;
            }
            for endpoint in endpoints {
                done.cancelled_deliveries +=
                    self.remove_endpoint(caller, tenant, &endpoint.id).await?;
                done.endpoints += 1;
            }
        }
        let expunged = self
            .0
            .store
            .expunge_tenant(tenant, EXPUNGE_BATCH, SystemTime::now())
            .await?;
        done.expunged_messages = expunged.messages;
        done.cancelled_deliveries += expunged.cancelled;
        audit(
            &caller.principal,
            "tenant.delete",
            Some(tenant),
            tenant.as_str(),
        );
        Ok(done)
    }
}
