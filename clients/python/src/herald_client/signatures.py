"""Receiver-side verification of Standard Webhooks signatures, as Herald sends them.

A webhook request carries `webhook-id`, `webhook-timestamp` and `webhook-signature`; the
signature header holds one or more space-separated `v1,<base64 HMAC-SHA256>` entries (two
while a rotated-out secret still signs beside the new one) over `{id}.{timestamp}.{body}`,
keyed with the base64-decoded part of the endpoint's `whsec_` secret.

This module uses the standard library only: a receiver can import it without gRPC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Literal

__all__ = [
    "DEFAULT_TOLERANCE",
    "MalformedWebhookError",
    "NoMatchingSignatureError",
    "StaleTimestampError",
    "WebhookVerificationError",
    "verify",
]

DEFAULT_TOLERANCE = timedelta(minutes=5)
"""How far a webhook's timestamp may be from the receiver's clock, either way."""

_SECRET_PREFIX = "whsec_"
_TIMESTAMP = re.compile(r"[0-9]+")


class WebhookVerificationError(Exception):
    """A webhook request that must be rejected; `kind` says why."""

    kind: Literal["stale", "no_match", "malformed"]


class MalformedWebhookError(WebhookVerificationError):
    """A signature header is missing, or the timestamp is not an integer."""

    kind = "malformed"


class StaleTimestampError(WebhookVerificationError):
    """The timestamp is further than the tolerance from the receiver's clock.

    Refusing it stops an attacker from replaying a request captured earlier.
    """

    kind = "stale"


class NoMatchingSignatureError(WebhookVerificationError):
    """No `v1` signature in the header matches the body under the secret."""

    kind = "no_match"


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: timedelta | float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> None:
    """Checks that a webhook request was signed by Herald with `secret`.

    `headers` are the request's headers (names in any case); `body` the exact bytes
    received, before any parsing. `tolerance` (a timedelta or seconds) bounds the
    distance between the request's timestamp and `now` (the receiver's clock, in Unix
    seconds; the current time when omitted). Every signature in the header is tried, so
    a request signed during a secret rotation verifies under either secret.

    Raises:
        MalformedWebhookError: a header is missing or the timestamp is not an integer.
        StaleTimestampError: the timestamp lies outside the tolerance.
        NoMatchingSignatureError: no signature matches.
        ValueError: `secret` is not a base64 `whsec_` secret.
    """
    key = _secret_key(secret)
    msg_id = _header(headers, "webhook-id")
    timestamp_text = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not _TIMESTAMP.fullmatch(timestamp_text):
        raise MalformedWebhookError(
            f"webhook-timestamp {timestamp_text!r} is not an integer number of seconds"
        )
    timestamp = int(timestamp_text)
    clock = time.time() if now is None else now
    allowed = tolerance.total_seconds() if isinstance(tolerance, timedelta) else tolerance
    if abs(clock - timestamp) > allowed:
        raise StaleTimestampError(
            f"webhook-timestamp {timestamp} is {clock - timestamp:+.0f} s from now; "
            f"at most {allowed:g} s either way is accepted"
        )
    content = f"{msg_id}.{timestamp}.".encode() + bytes(body)
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
    for entry in signatures.split():
        version, _, signature = entry.partition(",")
        # Constant time: how long a comparison takes does not tell how much of a forged
        # signature was right.
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return
    raise NoMatchingSignatureError(
        f"none of the {len(signatures.split())} signature(s) of webhook {msg_id!r} "
        "matches the body under this secret"
    )


def _secret_key(secret: str) -> bytes:
    encoded = secret.removeprefix(_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error as e:
        raise ValueError("the secret is not a base64 `whsec_` secret") from e
    if not key:
        raise ValueError("the secret is empty")
    return key


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise MalformedWebhookError(f"the {name} header is missing")
