"""`Client`: a synchronous Herald client over the generated `herald.v1` stubs.

It owns one gRPC channel (plain or TLS, with keepalive), sends the API key as
`authorization: Bearer <key>` on every call, fills in the default tenant, applies a
deadline to every unary call, turns `grpc.RpcError` into `HeraldError` with its
`google.rpc` details, pages lists by itself, and opens the status stream as a `Watch`
that resumes after a disconnect.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeAlias, TypeVar

import grpc
from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2
from google.protobuf.message import Message

from herald.v1 import herald_pb2 as pb
from herald.v1 import herald_pb2_grpc
from herald_client.errors import FieldViolation, HeraldError, error_type, status_code
from herald_client.watch import Backoff, StatusStream, Watch

__all__ = ["Client", "Event", "JsonValue", "Tls"]

JsonValue: TypeAlias = (
    None | bool | int | float | str | Sequence["JsonValue"] | Mapping[str, "JsonValue"]
)
"""A value that becomes JSON: what `json.loads` returns, tuples and mappings included."""

DEFAULT_TIMEOUT = 10.0
"""Seconds a unary call may take before it fails with DEADLINE_EXCEEDED."""

# JSON numbers travel as doubles: integers beyond this lose digits.
_EXACT_INTEGER = 2**53

# Keepalive pings while a call is open (a quiet status stream included), so a dead
# connection is noticed in about 40 s instead of at the operating system's timeout.
_CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
]

_Response = TypeVar("_Response", bound=Message)


@dataclass(frozen=True)
class Tls:
    """TLS settings: the CA that signed the server's certificate (the system's roots
    when None), and a client certificate and key (PEM) when the server asks for one."""

    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None

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
        if (self.cert_pem is None) != (self.key_pem is None):
            raise ValueError("a client certificate needs its key, and a key its certificate")
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_pem,
            private_key=self.key_pem,
            certificate_chain=self.cert_pem,
        )


@dataclass(frozen=True)
class Event:
    """One event of a `publish_batch`; the fields mean what `Client.publish`'s do."""

    event_type: str
    payload: JsonValue | bytes
    content_type: str | None = None
    idempotency_key: str = ""
    channels: Sequence[str] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    tenant: str | None = None


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET = _Unset.UNSET


class Client:
    """A connection to Herald.

    `address` is `host:port`. With `tls` (True for the system's roots, or `Tls`) the
    channel is encrypted; without, plain text. `api_key` is sent with every call.
    `tenant` is used by every call that names no tenant of its own (empty: the key's
    own, else `default`). `timeout` bounds each unary call, in seconds. Use it as a
    context manager, or call `close()`.
    """

    def __init__(
        self,
        address: str,
        *,
        api_key: str | None = None,
        tenant: str = "",
        tls: Tls | bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        options: Sequence[tuple[str, int | str]] = (),
    ) -> None:
        channel_options = [*_CHANNEL_OPTIONS, *options]
        if tls is False:
            self._channel = grpc.insecure_channel(address, options=channel_options)
        else:
            creds = (Tls() if tls is True else tls).credentials()
            self._channel = grpc.secure_channel(address, creds, options=channel_options)
        self._stub = herald_pb2_grpc.WebhookServiceStub(self._channel)
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {api_key}"),) if api_key else ()
        )
        self._tenant = tenant
        self._timeout = timeout

    def close(self) -> None:
        """Closes the channel; open watches end."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # Publishing.

    def publish(
        self,
        event_type: str,
        payload: JsonValue | bytes,
        *,
        content_type: str | None = None,
        idempotency_key: str = "",
        channels: Sequence[str] = (),
        metadata: Mapping[str, str] | None = None,
        tenant: str | None = None,
        timeout: float | None = None,
    ) -> pb.PublishResponse:
        """Publishes one event and returns its message id and delivery count.

        `payload` is a JSON value (sent as compact JSON) or `bytes` sent unchanged with
        `content_type` (default `application/json`). Publishing again with the same
        `idempotency_key` returns the first message id with `duplicate` set.

        Raises:
            InvalidArgumentError: with a field violation per invalid field.
            HeraldError: any other refusal.
        """
        request = self._publish_request(
            Event(event_type, payload, content_type, idempotency_key, channels,
                  metadata or {}, tenant)
        )
        return self._unary(self._stub.Publish, request, timeout)

    def publish_batch(
        self, events: Iterable[Event], *, timeout: float | None = None
    ) -> list[pb.PublishResponse | HeraldError]:
        """Publishes up to 1,000 events in one call.

        Returns one result per event, in order: its `PublishResponse`, or the
        `HeraldError` (with field violations) that kept it from being published.

        Raises:
            HeraldError: the batch as a whole was refused.
        """
        request = pb.PublishBatchRequest(requests=[self._publish_request(e) for e in events])
        response = self._unary(self._stub.PublishBatch, request, timeout)
        results: list[pb.PublishResponse | HeraldError] = []
        for result in response.results:
            if result.HasField("published"):
                results.append(result.published)
            else:
                results.append(_batch_error(result.error))
        return results

    # Endpoints.

    def register_endpoint(
        self,
        url: str,
        *,
        event_types: Sequence[str] = (),
        channels: Sequence[str] = (),
        description: str = "",
        headers: Mapping[str, str] | None = None,
        endpoint_id: str = "",
        secret: str = "",
        disabled: bool = False,
        retry_policy: pb.RetryPolicy | None = None,
        rate_limit: pb.RateLimit | None = None,
        circuit_breaker: pb.CircuitBreakerPolicy | None = None,
        max_in_flight: int | None = None,
        tenant: str | None = None,
        timeout: float | None = None,
    ) -> pb.RegisterEndpointResponse:
        """Registers an endpoint; the response holds it and its `whsec_` secret, which
        is shown only here (and on rotation).

        Raises:
            InvalidArgumentError: with a field violation per invalid field.
            AlreadyExistsError: `endpoint_id` is taken.
        """
        request = pb.RegisterEndpointRequest(
            endpoint_id=endpoint_id,
            url=url,
            description=description,
            event_types=event_types,
            channels=channels,
            headers=headers or {},
            retry_policy=retry_policy,
            disabled=disabled,
            secret=secret,
            rate_limit=rate_limit,
            circuit_breaker=circuit_breaker,
            max_in_flight=max_in_flight,
            tenant_id=self._tenant_of(tenant),
        )
        return self._unary(self._stub.RegisterEndpoint, request, timeout)

    def get_endpoint(
        self, endpoint_id: str, *, tenant: str | None = None, timeout: float | None = None
    ) -> pb.Endpoint:
        """The endpoint. Raises `NotFoundError` when there is none of that id."""
        request = pb.GetEndpointRequest(endpoint_id=endpoint_id, tenant_id=self._tenant_of(tenant))
        return self._unary(self._stub.GetEndpoint, request, timeout).endpoint

    def list_endpoints(
        self, *, page_size: int = 100, tenant: str | None = None, timeout: float | None = None
    ) -> Iterator[pb.Endpoint]:
        """Every endpoint of the tenant, fetching one page at a time as it is iterated."""
        token = ""
        while True:
            request = pb.ListEndpointsRequest(
                page_size=page_size, page_token=token, tenant_id=self._tenant_of(tenant)
            )
            page = self._unary(self._stub.ListEndpoints, request, timeout)
            yield from page.endpoints
            token = page.next_page_token
            if not token:
                return

    def update_endpoint(
        self,
        endpoint_id: str,
        *,
        url: str | _Unset = _UNSET,
        description: str | _Unset = _UNSET,
        event_types: Sequence[str] | _Unset = _UNSET,
        channels: Sequence[str] | _Unset = _UNSET,
        headers: Mapping[str, str] | _Unset = _UNSET,
        retry_policy: pb.RetryPolicy | None | _Unset = _UNSET,
        rate_limit: pb.RateLimit | None | _Unset = _UNSET,
        circuit_breaker: pb.CircuitBreakerPolicy | None | _Unset = _UNSET,
        max_in_flight: int | None | _Unset = _UNSET,
        enabled: bool | _Unset = _UNSET,
        tenant: str | None = None,
        timeout: float | None = None,
    ) -> pb.Endpoint:
        """Replaces the fields that are passed (None puts an override back to the
        server's default) and returns the endpoint as it is now.

        Raises:
            InvalidArgumentError: with a field violation per invalid field.
            NotFoundError: there is no endpoint of that id.
        """
        endpoint = pb.Endpoint(id=endpoint_id)
        mask: list[str] = []
        if not isinstance(url, _Unset):
            endpoint.url = url
            mask.append("url")
        if not isinstance(description, _Unset):
            endpoint.description = description
            mask.append("description")
        if not isinstance(event_types, _Unset):
            endpoint.event_types.extend(event_types)
            mask.append("event_types")
        if not isinstance(channels, _Unset):
            endpoint.channels.extend(channels)
            mask.append("channels")
        if not isinstance(headers, _Unset):
            endpoint.headers.update(headers)
            mask.append("headers")
        if not isinstance(retry_policy, _Unset):
            if retry_policy is not None:
                endpoint.retry_policy.CopyFrom(retry_policy)
            mask.append("retry_policy")
        if not isinstance(rate_limit, _Unset):
            if rate_limit is not None:
                endpoint.rate_limit.CopyFrom(rate_limit)
            mask.append("rate_limit")
        if not isinstance(circuit_breaker, _Unset):
            if circuit_breaker is not None:
                endpoint.circuit_breaker.CopyFrom(circuit_breaker)
            mask.append("circuit_breaker")
        if not isinstance(max_in_flight, _Unset):
            if max_in_flight is not None:
                endpoint.max_in_flight = max_in_flight
            mask.append("max_in_flight")
        if not isinstance(enabled, _Unset):
            endpoint.enabled = enabled
            mask.append("enabled")
        request = pb.UpdateEndpointRequest(
            endpoint=endpoint,
            update_mask=field_mask_pb2.FieldMask(paths=mask),
            tenant_id=self._tenant_of(tenant),
        )
        return self._unary(self._stub.UpdateEndpoint, request, timeout).endpoint

    def delete_endpoint(
        self, endpoint_id: str, *, tenant: str | None = None, timeout: float | None = None
    ) -> int:
        """Deletes the endpoint; returns how many pending deliveries were cancelled."""
        request = pb.DeleteEndpointRequest(
            endpoint_id=endpoint_id, tenant_id=self._tenant_of(tenant)
        )
        return self._unary(self._stub.DeleteEndpoint, request, timeout).cancelled_deliveries

    def rotate_endpoint_secret(
        self,
        endpoint_id: str,
        *,
        grace_period: timedelta | None = None,
        tenant: str | None = None,
        timeout: float | None = None,
    ) -> pb.RotateEndpointSecretResponse:
        """Issues a new secret (in the response); the old one keeps signing beside it for
        `grace_period` (the server's default when None, zero to stop at once)."""
        request = pb.RotateEndpointSecretRequest(
            endpoint_id=endpoint_id,
            grace_period=_duration(grace_period) if grace_period is not None else None,
            tenant_id=self._tenant_of(tenant),
        )
        return self._unary(self._stub.RotateEndpointSecret, request, timeout)

    def get_message(
        self, message_id: str, *, tenant: str | None = None, timeout: float | None = None
    ) -> pb.GetMessageResponse:
        """The message with the state of its delivery to every endpoint."""
        request = pb.GetMessageRequest(message_id=message_id, tenant_id=self._tenant_of(tenant))
        return self._unary(self._stub.GetMessage, request, timeout)

    # The status stream.

    def watch(
        self,
        *,
        after_cursor: int | None = None,
        endpoint_ids: Sequence[str] = (),
        event_types: Sequence[str] = (),
        message_id: str = "",
        kinds: Sequence[pb.StatusEventKind.ValueType] = (),
        until_settled: bool = False,
        tenant: str | None = None,
        backoff: Backoff = Backoff(),
    ) -> Watch:
        """The live status events matching the filters, as an iterator that resumes
        after its last cursor when the stream breaks (see `Watch`).

        `after_cursor` starts after a cursor kept from an earlier watch (None: from
        now on). With `message_id` and `until_settled`, iteration ends once the message
        is settled on every endpoint.
        """
        template = pb.StreamDeliveryStatusRequest(
            endpoint_ids=endpoint_ids,
            event_types=event_types,
            message_id=message_id,
            kinds=kinds,
            until_settled=until_settled,
            tenant_id=self._tenant_of(tenant),
        )

        def open_stream(after: int | None) -> StatusStream:
            request = pb.StreamDeliveryStatusRequest()
            request.CopyFrom(template)
            if after is not None:
                request.after_cursor = after
            return self._stub.StreamDeliveryStatus(request, metadata=self._metadata)

        return Watch(
            open_stream, after_cursor=after_cursor, until_settled=until_settled, backoff=backoff
        )

    # Plumbing.

    def _unary(
        self,
        method: Callable[..., _Response],
        request: Message,
        timeout: float | None,
    ) -> _Response:
        try:
            return method(
                request,
                timeout=self._timeout if timeout is None else timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as e:
            raise HeraldError.from_rpc_error(e) from e

    def _tenant_of(self, tenant: str | None) -> str:
        return self._tenant if tenant is None else tenant

    def _publish_request(self, event: Event) -> pb.PublishRequest:
        request = pb.PublishRequest(
            event_type=event.event_type,
            idempotency_key=event.idempotency_key,
            channels=event.channels,
            metadata=event.metadata,
            tenant_id=self._tenant_of(event.tenant),
        )
        if isinstance(event.payload, (bytes, bytearray, memoryview)):
            request.raw.data = bytes(event.payload)
            request.raw.content_type = event.content_type or "application/json"
        elif event.content_type is not None:
            raise ValueError("content_type goes with a bytes payload; JSON is sent as JSON")
        else:
            request.json.CopyFrom(json_value(event.payload))
        return request


def json_value(value: JsonValue) -> struct_pb2.Value:
    """A JSON value as a `google.protobuf.Value`.

    Raises:
        ValueError: an integer too large for a JSON number (a double) to hold exactly;
            send such payloads as bytes.
        TypeError: something that is not JSON.
    """
    if value is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, int):
        if abs(value) > _EXACT_INTEGER:
            raise ValueError(f"{value} does not survive as a JSON number; send bytes instead")
        return struct_pb2.Value(number_value=value)
    if isinstance(value, float):
        return struct_pb2.Value(number_value=value)
    if isinstance(value, str):
        return struct_pb2.Value(string_value=value)
    if isinstance(value, Mapping):
        fields = {str(k): json_value(v) for k, v in value.items()}
        return struct_pb2.Value(struct_value=struct_pb2.Struct(fields=fields))
    if isinstance(value, Sequence):
        items = [json_value(v) for v in value]
        return struct_pb2.Value(list_value=struct_pb2.ListValue(values=items))
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _duration(value: timedelta) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromTimedelta(value)
    return duration


def _batch_error(error: pb.PublishError) -> HeraldError:
    code = status_code(error.code)
    return error_type(code)(
        code=code,
        message=error.message,
        field_violations=tuple(
            FieldViolation(v.field, v.description) for v in error.field_violations
        ),
    )
