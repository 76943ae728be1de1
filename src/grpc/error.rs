//! The one mapping from service errors to gRPC statuses, with `google.rpc` details.
//!
//! Violations answer `INVALID_ARGUMENT` with a `BadRequest` naming each field (as many
//! as fit in 1 KiB; the message says how many in all); missing
//! and existing resources carry `ResourceInfo`; refusals to be retried later carry
//! `RetryInfo` (a full disk is `UNAVAILABLE` saying so, where an unreachable store is
//! masked); a watcher told to resume, or whose cursor is not retained or not reached
//! yet, carries an `ErrorInfo` with the cursors; a missing
//! scope carries an `ErrorInfo` naming it; a full tenant a `QuotaFailure`.
//! `UNAUTHENTICATED` says the same whatever went wrong. A credential holding its most
//! status streams gets both a `QuotaFailure` and `RetryInfo`. Backend
//! failures are logged with their cause chain and masked as `INTERNAL`.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::service::{ServiceError, Violations};
use crate::telemetry::ErrorChain;

/// When a client should retry a call refused because storage could not be reached.
const STORAGE_RETRY_AFTER: Duration = Duration::from_secs(1);
/// When a client refused a status stream for holding too many should try again.
const STREAMS_RETRY_AFTER: Duration = Duration::from_secs(1);
/// The domain of Herald's `ErrorInfo` reasons.
const ERROR_DOMAIN: &str = "herald.v1";

/// The bytes of field names and descriptions one error carries at most. With its message,
/// a status's details then stay well within the 8 KiB of metadata the strictest stock
/// client (grpc-java) reads, and the 1,000 refused events of a batch within an answer.
pub const VIOLATIONS_BUDGET: usize = 1024;

fn field_violations(v: &Violations) -> Vec<FieldViolation> {
    v.shown(VIOLATIONS_BUDGET)
        .into_iter()
        .map(|f| FieldViolation::new(f.field, f.description))
        .collect()
}

/// The status of a failed call.
pub fn status(e: ServiceError) -> Status {
    let message = e.to_string();
    match e {
        ServiceError::Unauthenticated { .. } => Status::unauthenticated(message),
        ServiceError::MissingScope(scope) => Status::with_error_details(
            Code::PermissionDenied,
            message,
            ErrorDetails::with_error_info(
                "MISSING_SCOPE",
                ERROR_DOMAIN,
                [("scope".to_owned(), scope.to_string())],
            ),
        ),
        ServiceError::OtherTenant => Status::with_error_details(
            Code::PermissionDenied,
            message,
            ErrorDetails::with_error_info("TENANT_NOT_ALLOWED", ERROR_DOMAIN, []),
        ),
        ServiceError::PublishLimited { retry_after } => Status::with_error_details(
            Code::ResourceExhausted,
            message,
            ErrorDetails::with_retry_info(Some(retry_after)),
        ),
        ServiceError::TooManyEndpoints { ref tenant, limit } => Status::with_error_details(
            Code::ResourceExhausted,
            message.clone(),
            ErrorDetails::with_quota_failure(vec![tonic_types::QuotaViolation::new(
                format!("tenant:{tenant}"),
                format!("at most {limit} endpoints per tenant (WEBHOOK_MAX_ENDPOINTS_PER_TENANT)"),
            )]),
        ),
        ServiceError::TooManyStreams { limit } => {
            let mut details = ErrorDetails::with_quota_failure(vec![
                tonic_types::QuotaViolation::new(
                    "credential",
                    format!(
                        "at most {limit} status streams per credential (WEBHOOK_MAX_STREAMS_PER_CREDENTIAL)"
                    ),
                ),
            ]);
            details.set_retry_info(Some(STREAMS_RETRY_AFTER));
            Status::with_error_details(Code::ResourceExhausted, message, details)
        }
        ServiceError::Invalid(v) => Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request(field_violations(&v)),
        ),
        ServiceError::NotFound { kind, id } => Status::with_error_details(
            Code::NotFound,
            message.clone(),
            ErrorDetails::with_resource_info(kind, id, "", message),
        ),
        ServiceError::AlreadyExists { kind, id } => Status::with_error_details(
            Code::AlreadyExists,
            message.clone(),
            ErrorDetails::with_resource_info(kind, id, "", message),
        ),
        ServiceError::IdempotencyConflict { key, .. } => Status::with_error_details(
            Code::AlreadyExists,
            message.clone(),
            ErrorDetails::with_resource_info("idempotency_key", key, "", message),
        ),
        ServiceError::FailedPrecondition(_) | ServiceError::TooManyDeliveries { .. } => {
            Status::failed_precondition(message)
        }
        ServiceError::Backlogged { retry_after, .. }
        | ServiceError::StoredBytesBudget { retry_after, .. } => Status::with_error_details(
            Code::ResourceExhausted,
            message,
            ErrorDetails::with_retry_info(Some(retry_after)),
        ),
        ServiceError::CursorNotRetained { after } => Status::with_error_details(
            Code::OutOfRange,
            message,
            ErrorDetails::with_error_info(
                "CURSOR_NOT_RETAINED",
                ERROR_DOMAIN,
                [("after_cursor".to_owned(), after.to_string())],
            ),
        ),
        ServiceError::CursorAhead { after, latest } => Status::with_error_details(
            Code::OutOfRange,
            message,
            ErrorDetails::with_error_info(
                "CURSOR_AHEAD",
                ERROR_DOMAIN,
                [
                    ("after_cursor".to_owned(), after.to_string()),
                    ("latest_cursor".to_owned(), latest.to_string()),
                ],
            ),
        ),
        ServiceError::ConsumerTooSlow { resume_after } => {
            let mut details = ErrorDetails::with_error_info(
                "CONSUMER_TOO_SLOW",
                ERROR_DOMAIN,
                [("resume_after_cursor".to_owned(), resume_after.to_string())],
            );
            details.set_retry_info(Some(Duration::ZERO));
            Status::with_error_details(Code::ResourceExhausted, message, details)
        }
        ServiceError::ShuttingDown => Status::unavailable(message),
        // The store logs the episode once; each refusal is not worth a line.
        ServiceError::StorageFull(_) => Status::with_error_details(
            Code::Unavailable,
            format!("{message}; retry later"),
            ErrorDetails::with_retry_info(Some(STORAGE_RETRY_AFTER)),
        ),
        ServiceError::Unavailable(_) => {
            tracing::warn!(error = %ErrorChain(&e), "storage unavailable");
            Status::with_error_details(
                Code::Unavailable,
                "storage is unavailable for now; retry later",
                ErrorDetails::with_retry_info(Some(STORAGE_RETRY_AFTER)),
            )
        }
        ServiceError::Internal(_) => {
            tracing::error!(error = %ErrorChain(&e), "internal failure");
            Status::internal(message)
        }
    }
}
