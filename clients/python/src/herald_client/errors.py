"""Herald's errors as Python exceptions, with their `google.rpc` details decoded.

Herald puts a `google.rpc.Status` in the `grpc-status-details-bin` trailer: a
`BadRequest` naming each invalid field, `RetryInfo` saying when to try again, an
`ErrorInfo` with a reason (a missing scope, a status stream to resume after a cursor),
`ResourceInfo` for missing and existing resources, `QuotaFailure` for a full tenant.
`HeraldError.from_rpc_error` reads them into plain attributes; one subclass per status
code lets callers catch what they can handle (`except InvalidArgumentError as e`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import grpc
import grpc.aio
from google.protobuf import any_pb2
# Imported by module path: `google` is a namespace package spread over several
# distributions, and mypy finds `google.rpc`'s stubs only this way.
import google.rpc.error_details_pb2 as error_details_pb2
import google.rpc.status_pb2 as status_pb2

__all__ = [
    "AlreadyExistsError",
    "DeadlineExceededError",
    "ErrorInfo",
    "FailedPreconditionError",
    "FieldViolation",
    "HeraldError",
    "InvalidArgumentError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "QuotaViolation",
    "ResourceExhaustedError",
    "ResourceInfo",
    "UnauthenticatedError",
    "UnavailableError",
]

_DETAILS_TRAILER = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request: its path (`endpoint.url`) and what is wrong."""

    field: str
    description: str


@dataclass(frozen=True)
class ErrorInfo:
    """Why a call failed, as a machine-readable reason (`MISSING_SCOPE`)."""

    reason: str
    domain: str
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class ResourceInfo:
    """The resource that was missing or already existed."""

    resource_type: str
    resource_name: str
    description: str


@dataclass(frozen=True)
class QuotaViolation:
    subject: str
    description: str


@dataclass(eq=False)
class HeraldError(Exception):
    """A call Herald refused or could not complete.

    `code` is the gRPC status; the other attributes hold the status's details, empty
    when the server sent none of that kind.
    """

    code: grpc.StatusCode
    message: str
    field_violations: tuple[FieldViolation, ...] = ()
    retry_delay: timedelta | None = None
    error_info: ErrorInfo | None = None
    resource_info: ResourceInfo | None = None
    quota_violations: tuple[QuotaViolation, ...] = ()
    # Every detail as sent, the kinds above and any other.
    details: tuple[any_pb2.Any, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.field_violations:
            text += "".join(f"\n  {v.field}: {v.description}" for v in self.field_violations)
        return text

    @staticmethod
    def from_rpc_error(error: grpc.RpcError) -> HeraldError:
        """The error a failed call raised, with the details of its status trailer."""
        # A failed call of the synchronous API is also its `grpc.Call`; asyncio's is an
        # `AioRpcError`. Both give the status and the trailers.
        if isinstance(error, (grpc.Call, grpc.aio.AioRpcError)):
            code = error.code()
            message = error.details() or ""
            trailers = error.trailing_metadata() or ()
        else:
            return HeraldError(grpc.StatusCode.UNKNOWN, str(error))
        details: tuple[any_pb2.Any, ...] = ()
        for key, value in trailers:
            if key == _DETAILS_TRAILER and isinstance(value, bytes):
                details = tuple(status_pb2.Status.FromString(value).details)
        return HeraldError.from_details(code, message, details)

    @staticmethod
    def from_details(
        code: grpc.StatusCode, message: str, details: tuple[any_pb2.Any, ...] = ()
    ) -> HeraldError:
        """The error of a status code, message and `google.rpc` details."""
        violations: list[FieldViolation] = []
        quota: list[QuotaViolation] = []
        retry_delay: timedelta | None = None
        error_info: ErrorInfo | None = None
        resource_info: ResourceInfo | None = None
        for detail in details:
            # Unpack says whether the detail is of that type.
            if detail.Unpack(bad_request := error_details_pb2.BadRequest()):
                violations.extend(
                    FieldViolation(v.field, v.description) for v in bad_request.field_violations
                )
            elif detail.Unpack(retry := error_details_pb2.RetryInfo()):
                retry_delay = retry.retry_delay.ToTimedelta()
            elif detail.Unpack(info := error_details_pb2.ErrorInfo()):
                error_info = ErrorInfo(info.reason, info.domain, dict(info.metadata))
            elif detail.Unpack(resource := error_details_pb2.ResourceInfo()):
                resource_info = ResourceInfo(
                    resource.resource_type, resource.resource_name, resource.description
                )
            elif detail.Unpack(failure := error_details_pb2.QuotaFailure()):
                quota.extend(QuotaViolation(v.subject, v.description) for v in failure.violations)
        return error_type(code)(
            code=code,
            message=message,
            field_violations=tuple(violations),
            retry_delay=retry_delay,
            error_info=error_info,
            resource_info=resource_info,
            quota_violations=tuple(quota),
            details=details,
        )


class InvalidArgumentError(HeraldError):
    """The request is invalid; `field_violations` names every invalid field."""


class NotFoundError(HeraldError):
    """The resource does not exist (or belongs to another tenant)."""


class AlreadyExistsError(HeraldError):
    """An endpoint with that id exists, or an idempotency key was reused differently."""


class PermissionDeniedError(HeraldError):
    """The credential lacks a scope (`error_info.metadata["scope"]`) or the tenant."""


class UnauthenticatedError(HeraldError):
    """The API key is missing, unknown, expired or revoked."""


class ResourceExhaustedError(HeraldError):
    """A limit was reached; `retry_delay` says when to try again, when it can be."""


class UnavailableError(HeraldError):
    """The server or its storage cannot be reached now; the call may be retried."""


class DeadlineExceededError(HeraldError):
    """The call's deadline passed before Herald answered."""


class FailedPreconditionError(HeraldError):
    """The request cannot be carried out in the resource's current state."""


class OutOfRangeError(HeraldError):
    """A status stream cursor is no longer retained."""


_BY_CODE: dict[grpc.StatusCode, type[HeraldError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
}

_CODE_BY_NUMBER: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}


def status_code(number: int) -> grpc.StatusCode:
    """The status code with this canonical number (UNKNOWN for one outside the list)."""
    return _CODE_BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def error_type(code: grpc.StatusCode) -> type[HeraldError]:
    """The exception class raised for a status code."""
    return _BY_CODE.get(code, HeraldError)
