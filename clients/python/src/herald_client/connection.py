"""How both clients reach Herald: channel options, TLS credentials, the API key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

__all__ = ["DEFAULT_TIMEOUT", "Tls"]

DEFAULT_TIMEOUT = 10.0
"""Seconds a unary call may take before it fails with DEADLINE_EXCEEDED."""

# Keepalive pings while a call is open (a quiet status stream included), so a dead
# connection is noticed in about 40 s instead of at the operating system's timeout.
CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
]


@dataclass(frozen=True)
class Tls:
    """TLS settings: the CA that signed the server's certificate (the system's roots
    when None), and a client certificate and key (PEM) when the server asks for one."""

    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None

    def __post_init__(self) -> None:
        if (self.cert_pem is None) != (self.key_pem is None):
            raise ValueError("a client certificate needs its key, and a key its certificate")

    @classmethod
    def from_files(
        cls,
        ca: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
    ) -> Tls:
        """Reads the PEM files that are named."""
        return cls(
            ca_pem=Path(ca).read_bytes() if ca else None,
            cert_pem=Path(cert).read_bytes() if cert else None,
            key_pem=Path(key).read_bytes() if key else None,
        )

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_pem,
            private_key=self.key_pem,
            certificate_chain=self.cert_pem,
        )


def tls_credentials(tls: Tls | bool) -> grpc.ChannelCredentials | None:
    """The channel's credentials; None for plain text."""
    if tls is False:
        return None
    return (Tls() if tls is True else tls).credentials()


def auth_metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    """The metadata sent with every call."""
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()
