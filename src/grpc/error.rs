//! The one mapping from errors to gRPC statuses, with `google.rpc` details.
//!
//! Validation collects every violation of a request ([`Violations`]) and answers
//! `INVALID_ARGUMENT` with a `BadRequest` naming each field. Store errors map to their
//! canonical codes (`ResourceInfo` on `NOT_FOUND`/`ALREADY_EXISTS`); backend failures are
//! logged with their cause chain and masked as `INTERNAL`.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::domain::Invalid;
use crate::storage::StoreError;
use crate::telemetry::ErrorChain;

/// When a client should retry a call refused because storage could not be reached.
const STORAGE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The field violations found in one request.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
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

    /// The fields violated so far.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|v| v.field.as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn into_inner(self) -> Vec<FieldViolation> {
        self.0
    }

    /// `Ok` when nothing was violated, else `INVALID_ARGUMENT` naming every field.
    ///
    /// # Errors
    /// The `INVALID_ARGUMENT` status.
    pub fn finish(self) -> Result<(), Status> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(invalid_argument(self.0))
        }
    }
}

/// A one-line message naming the violated fields.
pub fn summary(violations: &[FieldViolation]) -> String {
    match violations {
        [one] => format!("{}: {}", one.field, one.description),
        _ => format!(
            "invalid fields: {}",
            violations
                .iter()
                .map(|v| v.field.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn invalid_argument(violations: Vec<FieldViolation>) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        summary(&violations),
        ErrorDetails::with_bad_request(violations),
    )
}

/// `RESOURCE_EXHAUSTED` with the delay after which a retry is worth it.
pub fn exhausted(message: impl Into<String>, retry_after: Duration) -> Status {
    Status::with_error_details(
        Code::ResourceExhausted,
        message,
        ErrorDetails::with_retry_info(Some(retry_after)),
    )
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, ref id } => Status::with_error_details(
                Code::NotFound,
                e.to_string(),
                ErrorDetails::with_resource_info(kind, id.clone(), "", e.to_string()),
            ),
            StoreError::AlreadyExists { kind, ref id } => Status::with_error_details(
                Code::AlreadyExists,
                e.to_string(),
                ErrorDetails::with_resource_info(kind, id.clone(), "", e.to_string()),
            ),
            StoreError::FailedPrecondition(message) => Status::failed_precondition(message),
            StoreError::Closed => Status::unavailable("the server is shutting down"),
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %ErrorChain(&e), "storage unreachable");
                Status::with_error_details(
                    Code::Unavailable,
                    "storage is unreachable; retry later",
                    ErrorDetails::with_retry_info(Some(STORAGE_RETRY_AFTER)),
                )
            }
            StoreError::Backend(_) => {
                tracing::error!(error = %ErrorChain(&e), "storage failure");
                Status::internal("internal error")
            }
        }
    }
}
