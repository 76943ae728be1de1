"""Status details from the `grpc-status-details-bin` trailer become `HeraldError`s."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import google.rpc.error_details_pb2 as error_details_pb2
import google.rpc.status_pb2 as status_pb2
import grpc
from google.protobuf import any_pb2, duration_pb2

from herald_client.errors import (
    ErrorInfo,
    FieldViolation,
    HeraldError,
    InvalidArgumentError,
    ResourceExhaustedError,
    ResourceInfo,
    error_type,
)


class FailedCall(grpc.RpcError, grpc.Call):
    """What grpc raises for a failed call: an RpcError that is also the Call."""

    def __init__(
        self, code: grpc.StatusCode, details: str, trailers: Sequence[tuple[str, str | bytes]]
    ) -> None:
        self._code = code
        self._details = details
        self._trailers = tuple(trailers)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._trailers

    def initial_metadata(self) -> Any:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return 0.0

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False


def packed(*details: Any) -> list[any_pb2.Any]:
    out = []
    for detail in details:
        wrapped = any_pb2.Any()
        wrapped.Pack(detail)
        out.append(wrapped)
    return out


def failed_call(code: grpc.StatusCode, message: str, *details: Any) -> FailedCall:
    status = status_pb2.Status(code=code.value[0], message=message, details=packed(*details))
    return FailedCall(
        code, message, [("other", "x"), ("grpc-status-details-bin", status.SerializeToString())]
    )


def test_field_violations() -> None:
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="event_type", description="bad"),
            error_details_pb2.BadRequest.FieldViolation(field="channels[0]", description="empty"),
        ]
    )
    error = HeraldError.from_rpc_error(
        failed_call(grpc.StatusCode.INVALID_ARGUMENT, "invalid request", bad_request)
    )
    assert isinstance(error, InvalidArgumentError)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.message == "invalid request"
    assert error.field_violations == (
        FieldViolation("event_type", "bad"),
        FieldViolation("channels[0]", "empty"),
    )
    assert "event_type: bad" in str(error)


def test_retry_and_error_info() -> None:
    error = HeraldError.from_rpc_error(
        failed_call(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "too slow",
            error_details_pb2.ErrorInfo(
                reason="CONSUMER_TOO_SLOW",
                domain="herald.v1",
                metadata={"resume_after_cursor": "42"},
            ),
            error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1, nanos=5)),
        )
    )
    assert isinstance(error, ResourceExhaustedError)
    assert error.error_info == ErrorInfo(
        "CONSUMER_TOO_SLOW", "herald.v1", {"resume_after_cursor": "42"}
    )
    assert error.retry_delay is not None and error.retry_delay.total_seconds() == 1.0
    assert len(error.details) == 2


def test_resource_info() -> None:
    error = HeraldError.from_rpc_error(
        failed_call(
            grpc.StatusCode.NOT_FOUND,
            "no such endpoint",
            error_details_pb2.ResourceInfo(resource_type="endpoint", resource_name="ep_1"),
        )
    )
    assert error.resource_info == ResourceInfo("endpoint", "ep_1", "")


def test_a_status_without_details() -> None:
    error = HeraldError.from_rpc_error(FailedCall(grpc.StatusCode.UNAUTHENTICATED, "who?", []))
    assert error.code is grpc.StatusCode.UNAUTHENTICATED
    assert error.field_violations == () and error.error_info is None


def test_every_code_has_a_class() -> None:
    assert error_type(grpc.StatusCode.INVALID_ARGUMENT) is InvalidArgumentError
    assert error_type(grpc.StatusCode.INTERNAL) is HeraldError
