//! The client's error: a failed call with its `google.rpc` details decoded, or a
//! connection that could not be set up.
//!
//! Herald explains refusals in `grpc-status-details-bin`: a `BadRequest` naming each
//! invalid field, a `RetryInfo` saying when to come back, an `ErrorInfo` with a reason
//! (a missing scope, a cursor to resume after), a `ResourceInfo` for a missing or existing
//! resource. [`StatusError`] decodes them once and offers them by name; callers decide by
//! [`StatusError::code`] and the details, never by the message text.

use std::fmt;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, ErrorInfo, FieldViolation, StatusExt};

/// What went wrong talking to Herald.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Herald (or the transport on the way) answered the call with a non-OK status.
    #[error(transparent)]
    Status(Box<StatusError>),
    /// The connection could not be configured or established.
    #[error("cannot connect to Herald")]
    Connect(#[source] tonic::transport::Error),
    /// The client's settings are not usable (an address that is not a URI, an API key
    /// that is not a header value).
    #[error("invalid client setting: {0}")]
    Config(String),
}

impl Error {
    /// The failed call's status and details, when the error is one.
    pub fn status(&self) -> Option<&StatusError> {
        match self {
            Error::Status(s) => Some(s),
            _ => None,
        }
    }

    /// The gRPC code: that of the status, `UNAVAILABLE` for a connection failure and
    /// `INVALID_ARGUMENT` for a bad setting.
    pub fn code(&self) -> Code {
        match self {
            Error::Status(s) => s.code(),
            Error::Connect(_) => Code::Unavailable,
            Error::Config(_) => Code::InvalidArgument,
        }
    }

    /// The field violations of an `INVALID_ARGUMENT` answer; empty otherwise.
    pub fn field_violations(&self) -> &[FieldViolation] {
        self.status().map_or(&[], StatusError::field_violations)
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Error::Status(Box::new(StatusError::from(status)))
    }
}

/// A call's non-OK status with its decoded `google.rpc` details.
pub struct StatusError {
    status: Status,
    details: ErrorDetails,
}

impl StatusError {
    pub fn code(&self) -> Code {
        self.status.code()
    }

    pub fn message(&self) -> &str {
        self.status.message()
    }

    /// The status as received, metadata included.
    pub fn as_status(&self) -> &Status {
        &self.status
    }

    /// Every detail that was sent.
    pub fn details(&self) -> &ErrorDetails {
        &self.details
    }

    /// Each invalid field of the request (`BadRequest`), e.g. `event_type`.
    pub fn field_violations(&self) -> &[FieldViolation] {
        self.details
            .bad_request()
            .map_or(&[], |b| b.field_violations.as_slice())
    }

    /// When to try again (`RetryInfo`), if Herald said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.details.retry_info().and_then(|r| r.retry_delay)
    }

    /// The machine-readable reason (`ErrorInfo`), e.g. `MISSING_SCOPE` with its scope.
    pub fn error_info(&self) -> Option<&ErrorInfo> {
        self.details.error_info()
    }

    /// The value of `key` in the `ErrorInfo` metadata.
    pub fn error_metadata(&self, key: &str) -> Option<&str> {
        self.error_info()
            .and_then(|i| i.metadata.get(key))
            .map(String::as_str)
    }
}

impl From<Status> for StatusError {
    fn from(status: Status) -> Self {
        // Undecodable details are left out rather than hiding the status itself.
        let details = status
            .check_error_details()
            .unwrap_or_else(|_| ErrorDetails::new());
        StatusError { status, details }
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code(), self.message())?;
        for v in self.field_violations() {
            write!(f, "; {}: {}", v.field, v.description)?;
        }
        if let Some(after) = self.retry_after() {
            write!(f, "; retry after {after:?}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusError")
            .field("code", &self.code())
            .field("message", &self.message())
            .field("details", &self.details)
            .finish()
    }
}

impl std::error::Error for StatusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_field_violations_and_retry_info_from_the_status() {
        let mut details = ErrorDetails::with_bad_request(vec![FieldViolation::new(
            "event_type",
            "must match [a-z0-9_.-]+",
        )]);
        details.set_retry_info(Some(Duration::from_millis(250)));
        let status = Status::with_error_details(Code::InvalidArgument, "invalid", details);
        // As it crosses the wire: the details travel in grpc-status-details-bin.
        let mut headers = http::HeaderMap::new();
        status.add_header(&mut headers).unwrap();
        let received = Status::from_header_map(&headers).unwrap();

        let error = Error::from(received);
        assert_eq!(error.code(), Code::InvalidArgument);
        assert_eq!(error.field_violations()[0].field, "event_type");
        let status = error.status().unwrap();
        assert_eq!(status.retry_after(), Some(Duration::from_millis(250)));
        assert!(status.to_string().contains("event_type: must match"));
    }

    #[test]
    fn a_status_without_details_has_none() {
        let error = Error::from(Status::unavailable("gone"));
        assert!(error.field_violations().is_empty());
        assert_eq!(error.status().unwrap().retry_after(), None);
        assert!(error.status().unwrap().error_info().is_none());
    }
}
