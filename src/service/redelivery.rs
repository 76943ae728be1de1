//! Messages after publishing: reading a message with its deliveries and attempts, and
//! sending again: one delivery by hand, a whole message, or everything an endpoint
//! failed since a time. Every requeue wakes the scheduler.

use std::time::SystemTime;

use super::{Page, Service, ServiceError};
use crate::domain::{Attempt, Delivery, DeliveryState, EndpointId, Message, MessageId};
use crate::storage::AttemptQuery;

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
    /// # Errors
    /// An unknown message or a store failure.
    pub async fn get_message(
        &self,
        id: &MessageId,
    ) -> Result<(Message, Vec<Delivery>), ServiceError> {
        Ok(self.0.store.get_message(id).await?)
    }

    /// # Errors
    /// A store failure.
    pub async fn list_attempts(
        &self,
        query: AttemptsQuery,
    ) -> Result<Page<Attempt, i64>, ServiceError> {
        let limit = query.limit;
        let attempts = self
            .0
            .store
            .list_attempts(AttemptQuery {
                message_id: query.message_id,
                endpoint_id: query.endpoint_id,
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
    /// An unknown message or endpoint, an attempt in flight, or a store failure.
    pub async fn retry_delivery(
        &self,
        message: &MessageId,
        endpoint: &EndpointId,
    ) -> Result<Delivery, ServiceError> {
        let delivery = self
            .0
            .store
            .retry_delivery(message, endpoint, SystemTime::now())
            .await?;
        self.work_queued();
        Ok(delivery)
    }

    /// Queues the message now for every enabled endpoint that matches it; answers how many.
    ///
    /// # Errors
    /// An unknown message or a store failure.
    pub async fn replay_message(&self, id: &MessageId) -> Result<u32, ServiceError> {
        let queued = self.0.store.replay_message(id, SystemTime::now()).await?;
        self.work_queued();
        Ok(queued)
    }

    /// Queues again every delivery to the endpoint that failed since `since`; answers how
    /// many.
    ///
    /// # Errors
    /// An unknown endpoint or a store failure.
    pub async fn recover_endpoint(
        &self,
        id: &EndpointId,
        since: SystemTime,
    ) -> Result<u32, ServiceError> {
        let requeued = self
            .0
            .store
            .recover_endpoint(id, since, SystemTime::now())
            .await?;
        tracing::info!(endpoint = %id, requeued, "endpoint recovery requeued failed deliveries");
        self.work_queued();
        Ok(requeued)
    }
}
