"""The client's TLS options against a live Herald serving gRPC over TLS that requires a
client certificate (mTLS): with the CA and a client certificate a call goes through;
trusting the CA but presenting no certificate, it is refused."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from herald_client import AsyncClient, Client, HeraldError, Tls, UnauthenticatedError
from live import Herald, Pki, make_pki

REFUSAL_DEADLINE = 5.0
"""Seconds the refused call may take (its own deadline); it must fail well before."""


@dataclass(frozen=True)
class TlsHerald:
    herald: Herald
    pki: Pki


@pytest.fixture(scope="module")
def tls_herald() -> Iterator[TlsHerald]:
    binary = os.environ.get("HERALD_BIN")
    if not binary:
        pytest.fail("HERALD_BIN must name a built herald binary for the live test")
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the TLS test makes its certificates with the `openssl` command")
    with tempfile.TemporaryDirectory(prefix="herald-tls-") as directory:
        pki = make_pki(openssl, Path(directory))
        server = Herald(
            binary,
            env={
                "WEBHOOK_TLS_CERT": str(pki.server_cert),
                "WEBHOOK_TLS_KEY": str(pki.server_key),
                "WEBHOOK_TLS_CLIENT_CA": str(pki.ca),
            },
        )
        try:
            yield TlsHerald(server, pki)
        finally:
            server.stop()


def test_a_client_certificate_from_the_ca_gets_through(tls_herald: TlsHerald) -> None:
    herald, pki = tls_herald.herald, tls_herald.pki
    tls = Tls.from_files(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
    with Client(herald.address, api_key=herald.api_key, tls=tls) as client:
        registered = client.register_endpoint(
            "http://127.0.0.1:9/webhooks", event_types=["tls.*"], disabled=True
        )
        assert registered.secret.startswith("whsec_")
        assert client.get_endpoint(registered.endpoint.id).url == "http://127.0.0.1:9/webhooks"
        sent = client.publish("tls.checked", {"mutual": True})
        assert client.get_message(sent.message_id).message.id == sent.message_id

    # TLS only carries the call: the API key is still what authorizes it.
    with Client(herald.address, tls=tls) as anonymous:
        with pytest.raises(UnauthenticatedError):
            anonymous.publish("tls.checked", {"key": False})


def test_the_async_client_presents_its_certificate_too(tls_herald: TlsHerald) -> None:
    herald, pki = tls_herald.herald, tls_herald.pki
    tls = Tls.from_files(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)

    async def scenario() -> None:
        async with AsyncClient(herald.address, api_key=herald.api_key, tls=tls) as client:
            sent = await client.publish("tls.async", {"mutual": True})
            got = await client.get_message(sent.message_id)
            assert got.message.id == sent.message_id

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_without_a_client_certificate_the_call_is_refused(tls_herald: TlsHerald) -> None:
    herald, pki = tls_herald.herald, tls_herald.pki
    ca_only = Tls.from_files(ca=pki.ca)
    with Client(
        herald.address, api_key=herald.api_key, tls=ca_only, timeout=REFUSAL_DEADLINE
    ) as client:
        started = time.monotonic()
        with pytest.raises(HeraldError) as raised:
            client.publish("tls.checked", {"mutual": False})
        elapsed = time.monotonic() - started
    # Refused by the handshake, not left to run out its deadline.
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE, raised.value
    assert elapsed < REFUSAL_DEADLINE
