"""A Python client for Herald, the webhook delivery service.

- `Client` (in `herald_client.client`): publish events, manage endpoints, and `watch`
  delivery status as an iterator that resumes by itself; `AsyncClient` (in
  `herald_client.aio`) the same for asyncio;
- `HeraldError` and its subclasses (in `herald_client.errors`): refusals with their
  field violations, retry delay and error info;
- `verify` (in `herald_client.signatures`): checks a received webhook's signature, with the
  standard library only.

The generated messages and stubs are the `herald.v1` package (`herald_pb2`,
`herald_pb2_grpc`). Importing `herald_client` or `herald_client.signatures` does not import
gRPC: the gRPC parts load when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from herald_client.signatures import (
    DEFAULT_TOLERANCE,
    MalformedWebhookError,
    NoMatchingSignatureError,
    StaleTimestampError,
    WebhookVerificationError,
    verify,
)

if TYPE_CHECKING:
    from herald_client.aio import AsyncClient, AsyncWatch
    from herald_client.client import Client
    from herald_client.connection import Tls
    from herald_client.messages import Event, JsonValue
    from herald_client.errors import (
        AlreadyExistsError,
        DeadlineExceededError,
        ErrorInfo,
        FailedPreconditionError,
        FieldViolation,
        HeraldError,
        InvalidArgumentError,
        NotFoundError,
        OutOfRangeError,
        PermissionDeniedError,
        QuotaViolation,
        ResourceExhaustedError,
        ResourceInfo,
        UnauthenticatedError,
        UnavailableError,
    )
    from herald_client.watch import Backoff, Watch

__all__ = [
    "DEFAULT_TOLERANCE",
    "AlreadyExistsError",
    "AsyncClient",
    "AsyncWatch",
    "Backoff",
    "Client",
    "DeadlineExceededError",
    "ErrorInfo",
    "Event",
    "FailedPreconditionError",
    "FieldViolation",
    "HeraldError",
    "InvalidArgumentError",
    "JsonValue",
    "MalformedWebhookError",
    "NoMatchingSignatureError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "QuotaViolation",
    "ResourceExhaustedError",
    "ResourceInfo",
    "StaleTimestampError",
    "Tls",
    "UnauthenticatedError",
    "UnavailableError",
    "Watch",
    "WebhookVerificationError",
    "verify",
]

# Where each gRPC-side name lives, loaded on first access.
_LAZY = {
    **dict.fromkeys(("Event", "JsonValue"), "herald_client.messages"),
    **dict.fromkeys(("AsyncClient", "AsyncWatch"), "herald_client.aio"),
    **dict.fromkeys(("Client",), "herald_client.client"),
    **dict.fromkeys(("Tls",), "herald_client.connection"),
    **dict.fromkeys(("Backoff", "Watch"), "herald_client.watch"),
    **dict.fromkeys(
        (
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
        ),
        "herald_client.errors",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'herald_client' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
