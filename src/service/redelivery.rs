//! Messages after publishing: reading a message with its deliveries and attempts,
//! sending again (one delivery by hand, a whole message, or everything an endpoint failed
//! since a time) and expunging a message's payload. Every requeue wakes the scheduler; an
//! expunged message is never sent again. Another tenant's message or endpoint is not
//! found, as a missing one.

use std::time::SystemTime;

use super::access::audit;
use super::{Caller, Page, Service, ServiceError, Tenancy, TenantScope};
use crate::auth::Scope;
use crate::domain::{Attempt, Delivery, DeliveryState, EndpointId, Message, MessageId};
use crate::storage::{AttemptQuery, Expunged, StoreError};

/// Which attempts to list, oldest first: of a message, an endpoint or both, optionally
/// only those whose delivery is in one state.
#[derive(Debug, Clone)]
pub struct AttemptsQuery {
    pub message_id: Option<MessageId>,
    pub endpoint_id: Option<EndpointId>,
    pub delivery_state: Option<DeliveryState>,
    /// The last attempt id of the previous page.
    pub after: Option<i64>,
    pub limit: usize,
}

impl Service {
    /// The message with its deliveries, if it is in `scope`.
    pub(super) async fn message_in(
        &self,
        scope: &TenantScope,
        id: &MessageId,
    ) -> Result<(Message, Vec<Delivery>), ServiceError> {
        let (message, deliveries) = self.0.store.get_message(id).await?;
        if scope.includes(&message.tenant) {
            Ok((message, deliveries))
        } else {
            Err(StoreError::message_not_found(id).into())
        }
    }

    /// # Errors
    /// A caller without the `read` scope, a message not in the caller's tenants, or a
    /// store failure.
    pub async fn get_message(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        id: &MessageId,
    ) -> Result<(Message, Vec<Delivery>), ServiceError> {
        let scope = caller.tenants(Scope::Read, tenancy)?;
        self.message_in(&scope, id).await
    }

    /// # Errors
    /// A caller without the `read` scope, a message or endpoint not in the caller's
    /// tenants, or a store failure.
    pub async fn list_attempts(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        query: AttemptsQuery,
    ) -> Result<Page<Attempt, i64>, ServiceError> {
        let scope = caller.tenants(Scope::Read, tenancy)?;
        if let Some(id) = &query.message_id {
            self.message_in(&scope, id).await?;
        }
        let endpoint_id = match &query.endpoint_id {
            Some(id) => Some(self.endpoint_in(&scope, id).await?.id),
            None => None,
        };
        let limit = query.limit;
        let attempts = self
            .0
            .store
            .list_attempts(AttemptQuery {
                message_id: query.message_id,
                endpoint_id,
                delivery_state: query.delivery_state,
                after_id: query.after,
                limit: limit + 1,
            })
            .await?;
        Ok(Page::cut(attempts, limit, |a| a.id))
    }

    /// Queues the delivery of a message to an endpoint now, creating it if needed.
    ///
    /// # Errors
    /// A caller without the `write` scope, a message or endpoint not in the caller's
    /// tenant, an attempt in flight, an expunged message, or a store failure.
    pub async fn retry_delivery(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        message: &MessageId,
        endpoint: &EndpointId,
    ) -> Result<Delivery, ServiceError> {
        let scope = TenantScope::One(caller.tenant(Scope::Write, tenancy)?);
        self.message_in(&scope, message).await?;
        let endpoint = self.endpoint_in(&scope, endpoint).await?.id;
        let delivery = self
            .0
            .store
            .retry_delivery(message, &endpoint, SystemTime::now())
            .await?;
        self.work_queued();
        Ok(delivery)
    }

    /// Queues the message now for every enabled endpoint that matches it; answers how many.
    ///
    /// # Errors
    /// A caller without the `write` scope, a message not in the caller's tenant, an
    /// expunged message, or a store failure.
    pub async fn replay_message(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        id: &MessageId,
    ) -> Result<u32, ServiceError> {
        let scope = TenantScope::One(caller.tenant(Scope::Write, tenancy)?);
        self.message_in(&scope, id).await?;
        let queued = self.0.store.replay_message(id, SystemTime::now()).await?;
        self.work_queued();
        Ok(queued)
    }

    /// Removes the message's payload and its attempts' response excerpts, keeping the
    /// record of what happened, and cancels its unfinished deliveries. Expunging again
    /// changes nothing and answers the first expunge's time.
    ///
    /// # Errors
    /// A caller without the `write` scope, a message not in the caller's tenant, or a
    /// store failure.
    pub async fn expunge_message(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        id: &MessageId,
    ) -> Result<Expunged, ServiceError> {
        let tenant = caller.tenant(Scope::Write, tenancy)?;
        self.message_in(&TenantScope::One(tenant.clone()), id)
            .await?;
        let expunged = self.0.store.expunge_message(id, SystemTime::now()).await?;
        if expunged.fresh {
            audit(
                &caller.principal,
                "message.expunge",
                Some(&tenant),
                id.as_str(),
            );
        }
        Ok(expunged)
    }

    /// Queues again every delivery to the endpoint that failed since `since`; answers how
    /// many.
    ///
    /// # Errors
    /// A caller without the `write` scope, an endpoint not in the caller's tenant, or a
    /// store failure.
    pub async fn recover_endpoint(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        id: &EndpointId,
        since: SystemTime,
    ) -> Result<u32, ServiceError> {
        let scope = TenantScope::One(caller.tenant(Scope::Write, tenancy)?);
        let stored = self.endpoint_in(&scope, id).await?.id;
        let requeued = self
            .0
            .store
            .recover_endpoint(&stored, since, SystemTime::now())
            .await?;
        tracing::info!(endpoint = %stored, requeued, "endpoint recovery requeued failed deliveries");
        self.work_queued();
        Ok(requeued)
    }
}
