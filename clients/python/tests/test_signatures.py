"""`verify` against the shared conformance vectors, and its own edges."""

from __future__ import annotations

import base64
import json
import pathlib
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest

from herald_client.signatures import (
    MalformedWebhookError,
    NoMatchingSignatureError,
    StaleTimestampError,
    WebhookVerificationError,
    verify,
)

VECTORS_FILE = pathlib.Path(__file__).parents[2] / "conformance" / "signatures.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text())["vectors"]

SPEC = VECTORS[0]


def test_the_vectors_are_all_there() -> None:
    assert len(VECTORS) >= 18
    assert {v["error"] for v in VECTORS} == {None, "stale", "no_match", "malformed"}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_conformance_vector(vector: dict[str, Any]) -> None:
    body = base64.b64decode(vector["body_base64"])

    def check() -> None:
        verify(
            vector["secret"],
            vector["headers"],
            body,
            vector["tolerance_seconds"],
            now=vector["now"],
        )

    if vector["valid"]:
        check()
    else:
        with pytest.raises(WebhookVerificationError) as raised:
            check()
        assert raised.value.kind == vector["error"]


def test_header_names_in_any_case() -> None:
    headers = {k.upper(): v for k, v in SPEC["headers"].items()}
    verify(SPEC["secret"], headers, base64.b64decode(SPEC["body_base64"]), now=SPEC["now"])


def test_tolerance_as_timedelta() -> None:
    body = base64.b64decode(SPEC["body_base64"])
    verify(SPEC["secret"], SPEC["headers"], body, timedelta(seconds=10), now=SPEC["now"] + 10)
    with pytest.raises(StaleTimestampError):
        verify(SPEC["secret"], SPEC["headers"], body, timedelta(seconds=10), now=SPEC["now"] + 11)


def test_the_current_time_by_default_makes_an_old_vector_stale() -> None:
    with pytest.raises(StaleTimestampError):
        verify(SPEC["secret"], SPEC["headers"], base64.b64decode(SPEC["body_base64"]))


def test_error_kinds_are_distinct_classes() -> None:
    assert MalformedWebhookError.kind == "malformed"
    assert NoMatchingSignatureError.kind == "no_match"
    assert StaleTimestampError.kind == "stale"


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_"])
def test_a_secret_that_is_not_base64_is_a_value_error(secret: str) -> None:
    with pytest.raises(ValueError):
        verify(secret, SPEC["headers"], b"", now=SPEC["now"])


def test_verify_loads_without_grpc() -> None:
    code = (
        "import sys, herald_client.signatures, herald_client; "
        "herald_client.signatures.verify, herald_client.verify; "
        "assert 'grpc' not in sys.modules, 'grpc was imported'"
    )
    src = pathlib.Path(__file__).parents[1] / "src"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=src, timeout=60)
