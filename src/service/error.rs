//! What a use case can answer instead of a result: one typed error for every transport.
//!
//! Invalid input is a list of field violations, named by their path in the request
//! (`url`, `retry_policy.multiplier`, `requests[3].payload`); the transport renders it
//! (gRPC: `INVALID_ARGUMENT` with a `BadRequest`). Backend failures keep their source for
//! the log; the transport masks them.

use std::time::Duration;

use crate::auth::Scope;
use crate::domain::{Invalid, MessageId, TenantId};
use crate::policy::protection::StateUnavailable;
use crate::storage::StoreError;

/// What a client told to back off because of the backlog is asked to wait.
const BACKLOG_RETRY_AFTER: Duration = Duration::from_secs(1);

/// One invalid field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// The field violations found in one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// The value, or `None` with the violation recorded under `field`.
    pub fn check<T>(&mut self, field: impl Into<String>, parsed: Result<T, Invalid>) -> Option<T> {
        parsed
            .map_err(|Invalid(description)| self.add(field, description))
            .ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn extend(&mut self, more: Self) {
        self.0.extend(more.0);
    }

    pub fn iter(&self) -> impl Iterator<Item = &FieldViolation> {
        self.0.iter()
    }

    pub fn into_inner(self) -> Vec<FieldViolation> {
        self.0
    }

    /// The same violations, located below `parent` (`endpoint` makes `url` `endpoint.url`).
    #[must_use]
    pub fn within(self, parent: &str) -> Self {
        Self(
            self.0
                .into_iter()
                .map(|v| FieldViolation {
                    field: format!("{parent}.{}", v.field),
                    ..v
                })
                .collect(),
        )
    }

    /// `value` when nothing was violated.
    ///
    /// # Errors
    /// The violations, when there are any.
    pub fn or<T>(self, value: impl FnOnce() -> T) -> Result<T, Self> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }

    /// A one-line message naming the violated fields: the first few, and how many more.
    pub fn summary(&self) -> String {
        match self.0.as_slice() {
            [one] => format!(
                "{}: {}",
                cut(&one.field, SHOWN_FIELD),
                cut(&one.description, SHOWN_DESCRIPTION)
            ),
            all => {
                let named: Vec<&str> = all
                    .iter()
                    .take(SUMMARY_FIELDS)
                    .map(|v| cut(&v.field, SHOWN_FIELD))
                    .collect();
                match all.len() - named.len() {
                    0 => format!("invalid fields: {}", named.join(", ")),
                    more => format!("invalid fields: {} and {more} more", named.join(", ")),
                }
            }
        }
    }

    /// The violations to show a client, in order: each field cut to [`SHOWN_FIELD`]
    /// bytes and description to [`SHOWN_DESCRIPTION`], as many as fit in `budget` bytes
    /// (one at least). Names and descriptions can carry what a request sent (a header's
    /// name), so an answer listing them all could grow as large as the request.
    pub fn shown(&self, budget: usize) -> Vec<FieldViolation> {
        let mut used = 0;
        self.0
            .iter()
            .map(|v| FieldViolation {
                field: cut(&v.field, SHOWN_FIELD).to_owned(),
                description: cut(&v.description, SHOWN_DESCRIPTION).to_owned(),
            })
            .take_while(|v| {
                let first = used == 0;
                used += v.field.len() + v.description.len();
                first || used <= budget
            })
            .collect()
    }
}

/// The longest field name shown to a client (a path, with what a request named in it).
const SHOWN_FIELD: usize = 128;
/// The longest description shown to a client (Herald's words, which may quote a value).
const SHOWN_DESCRIPTION: usize = 512;
/// The fields a summary names before saying how many more there are.
const SUMMARY_FIELDS: usize = 5;

/// `text`, cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Why a use case did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No valid credential. The reason is for metrics and logs, never for the caller.
    #[error("a valid credential is required (authorization: Bearer …)")]
    Unauthenticated { reason: &'static str },
    #[error("the credential lacks the {0} scope")]
    MissingScope(Scope),
    /// The credential is bound to another tenant than the one named.
    #[error("the credential may not act in this tenant")]
    OtherTenant,
    /// The credential's publish rate limit is used up.
    #[error("the credential's publish rate limit is reached; retry later")]
    PublishLimited { retry_after: Duration },
    #[error(
        "tenant {tenant} has reached its limit of {limit} endpoints (WEBHOOK_MAX_ENDPOINTS_PER_TENANT)"
    )]
    TooManyEndpoints { tenant: TenantId, limit: u64 },
    #[error("{}", .0.summary())]
    Invalid(Violations),
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    #[error("idempotency key was used by {message_id} with a different payload")]
    IdempotencyConflict { key: String, message_id: MessageId },
    #[error("{0}")]
    FailedPrecondition(String),
    /// The deliveries a publish would create do not fit under the backlog limit now;
    /// nothing was accepted.
    #[error(
        "{backlog} deliveries are waiting and this would add {incoming}, past the limit of {limit} (WEBHOOK_MAX_QUEUE_SIZE); retry later"
    )]
    Backlogged {
        backlog: u64,
        incoming: u64,
        limit: u64,
        retry_after: Duration,
    },
    /// A publish would create more deliveries than the backlog limit allows at all;
    /// nothing was accepted.
    #[error(
        "this would create {incoming} deliveries, more than the backlog limit of {limit} (WEBHOOK_MAX_QUEUE_SIZE) allows at once; publish fewer events per call"
    )]
    TooManyDeliveries { incoming: u64, limit: u64 },
    /// The stored payloads are at their byte budget; nothing was accepted.
    #[error(
        "{stored} bytes of payloads are stored and this would pass the budget of {limit} (WEBHOOK_MAX_STORED_BYTES); retry once retention has deleted some, or raise the budget"
    )]
    StoredBytesBudget {
        stored: u64,
        limit: u64,
        retry_after: Duration,
    },
    /// The credential holds as many status streams as it may.
    #[error(
        "this credential already holds {limit} status streams, its limit (WEBHOOK_MAX_STREAMS_PER_CREDENTIAL); close one first"
    )]
    TooManyStreams { limit: u32 },
    /// A watcher resumed after a cursor no longer retained.
    #[error("events after cursor {after} are no longer retained")]
    CursorNotRetained { after: u64 },
    /// A watcher resumed after a cursor no event has had yet.
    #[error(
        "cursor {after} is beyond the newest event ({latest}); resume after a cursor the stream gave"
    )]
    CursorAhead { after: u64, latest: u64 },
    /// A watcher fell too far behind the live events.
    #[error("the consumer fell too far behind; resume after cursor {resume_after}")]
    ConsumerTooSlow { resume_after: u64 },
    /// Storage cannot be reached now; the same call may work later.
    #[error("storage is unavailable for now")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Storage has no room to write; the same call may work once space is freed. The
    /// store says where, and logs the episode.
    #[error(transparent)]
    StorageFull(StoreError),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<Violations> for ServiceError {
    fn from(v: Violations) -> Self {
        Self::Invalid(v)
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, id } => Self::NotFound { kind, id },
            StoreError::AlreadyExists { kind, id } => Self::AlreadyExists { kind, id },
            StoreError::FailedPrecondition(message) => Self::FailedPrecondition(message),
            StoreError::TooManyEndpoints { tenant, limit } => {
                Self::TooManyEndpoints { tenant, limit }
            }
            StoreError::Backlogged {
                incoming, limit, ..
            } if incoming > limit => Self::TooManyDeliveries { incoming, limit },
            StoreError::Backlogged {
                backlog,
                incoming,
                limit,
            } => Self::Backlogged {
                backlog,
                incoming,
                limit,
                retry_after: BACKLOG_RETRY_AFTER,
            },
            StoreError::Unavailable(source) => Self::Unavailable(source),
            e @ StoreError::DiskFull { .. } => Self::StorageFull(e),
            StoreError::Closed => Self::ShuttingDown,
            e @ StoreError::Backend(_) => Self::Internal(Box::new(e)),
        }
    }
}

impl From<StateUnavailable> for ServiceError {
    fn from(e: StateUnavailable) -> Self {
        Self::Unavailable(Box::new(e))
    }
}
