"""`Client`: a synchronous Herald client over the generated `herald.v1` stubs.

It owns one gRPC channel (plain or TLS, with keepalive), sends the API key as
`authorization: Bearer <key>` on every call, fills in the default tenant, applies a
deadline to every unary call, turns `grpc.RpcError` into `HeraldError` with its
`google.rpc` details, pages lists by itself, and opens the status stream as a `Watch`
that resumes after a disconnect. `herald_client.aio.AsyncClient` is its asyncio twin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from herald.v1 import herald_pb2 as pb
from herald.v1 import herald_pb2_grpc
from herald_client import messages
from herald_client.connection import (
    CHANNEL_OPTIONS,
    DEFAULT_TIMEOUT,
    Tls,
    auth_metadata,
    tls_credentials,
)
from herald_client.errors import HeraldError
from herald_client.messages import UNSET, Event, JsonValue, Unset
from herald_client.watch import Backoff, StatusStream, Watch

__all__ = ["Client"]

_Response = TypeVar("_Response", bound=Message)
# The answers of paged calls, and their requests.
_Page = TypeVar("_Page", pb.ListEndpointsResponse, pb.GetMessageResponse)
_PagedRequest = pb.ListEndpointsRequest | pb.GetMessageRequest


class Client:
    """A connection to Herald.

    `address` is `host:port`. With `tls` (True for the system's roots, or `Tls`) the
    channel is encrypted; without, plain text. `api_key` is sent with every call.
    `tenant` is used by every call that names no tenant of its own (empty: the key's
    own, else `default`). `timeout` bounds each unary call, in seconds; `options` are
    extra gRPC channel options. Use it as a context manager, or call `close()`.
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
        channel_options = [*CHANNEL_OPTIONS, *options]
        credentials = tls_credentials(tls)
        if credentials is None:
            self._channel = grpc.insecure_channel(address, options=channel_options)
        else:
            self._channel = grpc.secure_channel(address, credentials, options=channel_options)
        self._stub = herald_pb2_grpc.WebhookServiceStub(self._channel)
        self._metadata = auth_metadata(api_key)
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
        event = Event(
            event_type, payload, content_type, idempotency_key, channels, metadata or {}, tenant
        )
        request = messages.publish_request(event, self._tenant)
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
        request = pb.PublishBatchRequest(
            requests=[messages.publish_request(e, self._tenant) for e in events]
        )
        return messages.batch_results(self._unary(self._stub.PublishBatch, request, timeout))

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
        request = pb.ListEndpointsRequest(page_size=page_size, tenant_id=self._tenant_of(tenant))
        for page in self._pages(self._stub.ListEndpoints, request, timeout):
            yield from page.endpoints

    def update_endpoint(
        self,
        endpoint_id: str,
        *,
        url: str | Unset = UNSET,
        description: str | Unset = UNSET,
        event_types: Sequence[str] | Unset = UNSET,
        channels: Sequence[str] | Unset = UNSET,
        headers: Mapping[str, str] | Unset = UNSET,
        retry_policy: pb.RetryPolicy | None | Unset = UNSET,
        rate_limit: pb.RateLimit | None | Unset = UNSET,
        circuit_breaker: pb.CircuitBreakerPolicy | None | Unset = UNSET,
        max_in_flight: int | None | Unset = UNSET,
        enabled: bool | Unset = UNSET,
        tenant: str | None = None,
        timeout: float | None = None,
    ) -> pb.Endpoint:
        """Replaces the fields that are passed (None puts an override back to the
        server's default) and returns the endpoint as it is now.

        Raises:
            InvalidArgumentError: with a field violation per invalid field.
            NotFoundError: there is no endpoint of that id.
        """
        request = messages.update_endpoint_request(
            endpoint_id,
            self._tenant_of(tenant),
            url=url,
            description=description,
            event_types=event_types,
            channels=channels,
            headers=headers,
            retry_policy=retry_policy,
            rate_limit=rate_limit,
            circuit_breaker=circuit_breaker,
            max_in_flight=max_in_flight,
            enabled=enabled,
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
            grace_period=messages.duration(grace_period),
            tenant_id=self._tenant_of(tenant),
        )
        return self._unary(self._stub.RotateEndpointSecret, request, timeout)

    def get_message(
        self, message_id: str, *, tenant: str | None = None, timeout: float | None = None
    ) -> pb.GetMessageResponse:
        """The message with the state of its delivery to every endpoint: the server's
        pages followed and their deliveries joined in endpoint order (`next_page_token`
        empty); `timeout` is each page's."""
        request = pb.GetMessageRequest(message_id=message_id, tenant_id=self._tenant_of(tenant))
        answer = pb.GetMessageResponse()
        for page in self._pages(self._stub.GetMessage, request, timeout):
            # The same message on every page.
            answer.message.CopyFrom(page.message)
            answer.deliveries.extend(page.deliveries)
        return answer

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
        """The status events matching the filters, as an iterator that resumes after its
        last cursor when the stream breaks (see `Watch`).

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
            request = messages.watch_request(after, template)
            return self._stub.StreamDeliveryStatus(request, metadata=self._metadata)

        return Watch(
            open_stream, after_cursor=after_cursor, until_settled=until_settled, backoff=backoff
        )

    def _pages(
        self,
        method: Callable[..., _Page],
        request: _PagedRequest,
        timeout: float | None,
    ) -> Iterator[_Page]:
        """Every page of a paged call, asking for the next while the answer names one;
        `request` is changed to ask for each in turn."""
        while True:
            page = self._unary(method, request, timeout)
            yield page
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

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
