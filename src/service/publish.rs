//! Publishing: the tenant each message goes to, the caller's publish limit, the payload
//! limit, backlog admission (nothing accepted is ever dropped; a publish whose deliveries
//! would pass the limit is refused whole, by the store as it commits), the atomic commit,
//! and the scheduler's wake-up.

use std::time::{Duration, SystemTime};

use super::{Caller, Service, ServiceError, Tenancy, Violations};
use crate::auth::Scope;
use crate::domain::{MessageId, NewMessage, TenantId};
use crate::storage::Published;

/// What a client told the stored payloads are at their budget is asked to wait: about
/// until retention's next look.
const BUDGET_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A message to publish, and the tenant and retention the request named for it. The
/// message's own `tenant` and `retention` are set here, from the caller, the request and
/// the service's retention.
#[derive(Debug, Clone)]
pub struct Publish {
    pub tenant: Option<TenantId>,
    pub retention: Option<Duration>,
    pub message: NewMessage,
}

/// A message committed (or found committed under its idempotency key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub message_id: MessageId,
    pub deliveries: u32,
    /// The idempotency key was seen before with the same content: nothing new was done.
    pub duplicate: bool,
}

impl Service {
    /// Commits one message with its deliveries, durably.
    ///
    /// # Errors
    /// A caller without the `publish` scope or over its limit, another tenant than the
    /// caller's, an invalid payload, deliveries that do not fit under the backlog limit
    /// (now, or ever), an idempotency conflict, or a store failure.
    pub async fn publish(
        &self,
        caller: &Caller,
        publish: Publish,
    ) -> Result<Accepted, ServiceError> {
        let message = self.addressed(caller, publish)?;
        self.0.auth.admit_publish(caller, 1)?;
        self.publish_all(vec![message])
            .await?
            .pop()
            .expect("one result per message")
    }

    /// Commits each message of a batch with its deliveries, atomically per message;
    /// results are in input order. An event the transport could not parse comes with its
    /// violations and is answered with them in its place. The backlog limit counts the
    /// deliveries of every event: a batch whose deliveries would pass it is refused whole.
    ///
    /// # Errors
    /// A caller without the `publish` scope or over its limit (for the batch's valid
    /// events), deliveries that do not fit under the backlog limit (now, or ever) or a
    /// store failure; per event, invalid input, another tenant than the caller's, or an
    /// idempotency conflict.
    pub async fn publish_batch(
        &self,
        caller: &Caller,
        events: Vec<Result<Publish, Violations>>,
    ) -> Result<Vec<Result<Accepted, ServiceError>>, ServiceError> {
        caller.require(Scope::Publish)?;
        let mut results: Vec<Option<Result<Accepted, ServiceError>>> = Vec::new();
        let mut valid = Vec::new();
        for event in events {
            match event
                .map_err(ServiceError::from)
                .and_then(|publish| self.addressed(caller, publish))
            {
                Ok(message) => {
                    valid.push(message);
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let mut published = if valid.is_empty() {
            Vec::new()
        } else {
            self.0
                .auth
                .admit_publish(caller, u32::try_from(valid.len()).unwrap_or(u32::MAX))?;
            self.publish_all(valid).await?
        }
        .into_iter();
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| published.next().expect("one result per message")))
            .collect())
    }

    /// The message, in the tenant the caller may publish to, within the payload limit,
    /// kept no longer than the service's retention.
    fn addressed(&self, caller: &Caller, publish: Publish) -> Result<NewMessage, ServiceError> {
        let tenant = caller.tenant(
            Scope::Publish,
            &Tenancy {
                tenant: publish.tenant,
                all: false,
            },
        )?;
        let longest = self.0.config.retention;
        let message = NewMessage {
            tenant,
            retention: publish.retention.unwrap_or(longest),
            ..publish.message
        };
        let limit = self.0.config.max_payload_bytes;
        let mut v = Violations::default();
        if message.payload.len() > limit {
            v.add(
                "payload",
                format!(
                    "{} bytes is more than the limit of {limit}",
                    message.payload.len()
                ),
            );
        }
        if message.retention > longest {
            v.add(
                "retention",
                format!(
                    "{} is longer than the service keeps messages ({}, WEBHOOK_RETENTION)",
                    humantime::format_duration(message.retention),
                    humantime::format_duration(longest)
                ),
            );
        }
        v.or(|| message).map_err(ServiceError::from)
    }

    /// Refuses payloads that would take the stored bytes past their budget (whether or
    /// not they match an endpoint). The backlog limit is the store's to apply, as it
    /// commits: only it knows how many deliveries a publish creates.
    fn admit(&self, messages: &[NewMessage]) -> Result<(), ServiceError> {
        let stored = self.0.store.stored_bytes();
        let incoming: u64 = messages.iter().map(|m| m.payload.len() as u64).sum();
        let limit = self.0.config.max_stored_bytes;
        if stored.saturating_add(incoming) > limit {
            return Err(ServiceError::StoredBytesBudget {
                stored,
                limit,
                retry_after: BUDGET_RETRY_AFTER,
            });
        }
        Ok(())
    }

    async fn publish_all(
        &self,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Result<Accepted, ServiceError>>, ServiceError> {
        self.admit(&messages)?;
        let keys: Vec<Option<String>> =
            messages.iter().map(|m| m.idempotency_key.clone()).collect();
        let published = self
            .0
            .store
            .publish(messages, SystemTime::now(), self.0.config.max_queue_size)
            .await?;
        if published
            .iter()
            .any(|p| matches!(p, Published::Created { deliveries, .. } if *deliveries > 0))
        {
            self.work_queued();
        }
        Ok(published
            .into_iter()
            .zip(keys)
            .map(|(p, key)| match p {
                Published::Created {
                    message_id,
                    deliveries,
                } => Ok(Accepted {
                    message_id,
                    deliveries,
                    duplicate: false,
                }),
                Published::Duplicate {
                    message_id,
                    deliveries,
                } => Ok(Accepted {
                    message_id,
                    deliveries,
                    duplicate: true,
                }),
                Published::Conflict { message_id } => Err(ServiceError::IdempotencyConflict {
                    key: key.unwrap_or_default(),
                    message_id,
                }),
            })
            .collect())
    }
}
