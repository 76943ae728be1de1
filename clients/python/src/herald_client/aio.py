"""`AsyncClient` and `AsyncWatch`: the asyncio twins of `Client` and `Watch`.

The same calls with the same arguments, awaited; `list_endpoints` and `watch` are async
iterators. Requests, error details and the watch's resume decisions are shared with the
synchronous client (`messages`, `errors`, `watch.Resumption`): only the I/O differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Protocol, TypeVar

import grpc
import grpc.aio
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
from herald_client.watch import Backoff, Resumption

__all__ = ["AsyncClient", "AsyncWatch"]

_Response = TypeVar("_Response", bound=Message)
# The answers of paged calls, and their requests.
_Page = TypeVar("_Page", pb.ListEndpointsResponse, pb.GetMessageResponse)
_PagedRequest = pb.ListEndpointsRequest | pb.GetMessageRequest


class AsyncStatusStream(Protocol):
    """An open server stream, read one response at a time."""

    async def read(self) -> object: ...

    def cancel(self) -> bool: ...


# Opens the status stream after a cursor (None: from now on).
AsyncOpenStream = Callable[[int | None], AsyncStatusStream]


class AsyncWatch(AsyncIterator[pb.DeliveryStatusEvent]):
    """The status events of a watch, in cursor order, each once: `async for` it.

    Behaves as `Watch`: `cursor` is the last cursor seen; `close()` (or leaving an
    `async with` block) ends it; `HeraldError` for what a new stream cannot mend.
    """

    def __init__(
        self,
        open_stream: AsyncOpenStream,
        *,
        after_cursor: int | None,
        until_settled: bool,
        backoff: Backoff,
    ) -> None:
        self._open_stream = open_stream
        self._state = Resumption(after_cursor, until_settled, backoff)
        self._stream: AsyncStatusStream | None = None
        self._closed = asyncio.Event()

    @property
    def cursor(self) -> int | None:
        """The last cursor seen; None before the first event or heartbeat."""
        return self._state.cursor

    @property
    def reconnections(self) -> int:
        """How many times the stream has been reopened so far."""
        return self._state.reconnections

    def __aiter__(self) -> AsyncWatch:
        return self

    async def __aenter__(self) -> AsyncWatch:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Ends the watch: the stream is cancelled and iteration stops."""
        self._closed.set()
        if self._stream is not None:
            self._stream.cancel()

    async def __anext__(self) -> pb.DeliveryStatusEvent:
        while not self._closed.is_set():
            if self._stream is None:
                self._stream = self._open_stream(self._state.resume_after)
            try:
                item = await self._stream.read()
            except asyncio.CancelledError:
                # The stream was cancelled by close(); anything else is the task's own
                # cancellation and goes on.
                if not self._closed.is_set():
                    raise
                break
            except grpc.RpcError as e:
                self._stream = None
                if self._closed.is_set():
                    break
                try:
                    delay = self._state.after_error(HeraldError.from_rpc_error(e))
                except HeraldError as error:
                    self.close()
                    raise error from e
            else:
                if isinstance(item, pb.StreamDeliveryStatusResponse):
                    event = self._state.accept(item)
                    if event is not None:
                        return event
                    continue
                # grpc.aio.EOF: the server ended the stream.
                self._stream = None
                try:
                    end_delay = self._state.after_end()
                except HeraldError:
                    self.close()
                    raise
                if end_delay is None:
                    self.close()
                    break
                delay = end_delay
            try:
                await asyncio.wait_for(self._closed.wait(), delay)
            except TimeoutError:
                pass
        raise StopAsyncIteration


class AsyncClient:
    """A connection to Herald for asyncio code; the arguments are `Client`'s.

    Create and use it inside a running event loop; `async with` it, or await `close()`.
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
            self._channel = grpc.aio.insecure_channel(address, options=channel_options)
        else:
            self._channel = grpc.aio.secure_channel(
                address, credentials, options=channel_options
            )
        # The generated stub serves both kinds of channel; typed as the async stub here.
        self._stub = herald_pb2_grpc.WebhookServiceStub(self._channel)
        self._metadata = auth_metadata(api_key)
        self._tenant = tenant
        self._timeout = timeout

    async def close(self) -> None:
        """Closes the channel; open watches end."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def publish(
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
        """Publishes one event; see `Client.publish`."""
        event = Event(
            event_type, payload, content_type, idempotency_key, channels, metadata or {}, tenant
        )
        request = messages.publish_request(event, self._tenant)
        return await self._unary(self._stub.Publish, request, timeout)

    async def publish_batch(
        self, events: Iterable[Event], *, timeout: float | None = None
    ) -> list[pb.PublishResponse | HeraldError]:
        """Publishes up to 1,000 events; see `Client.publish_batch`."""
        request = pb.PublishBatchRequest(
            requests=[messages.publish_request(e, self._tenant) for e in events]
        )
        response = await self._unary(self._stub.PublishBatch, request, timeout)
        return messages.batch_results(response)

    async def register_endpoint(
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
        """Registers an endpoint; see `Client.register_endpoint`."""
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
        return await self._unary(self._stub.RegisterEndpoint, request, timeout)

    async def get_endpoint(
        self, endpoint_id: str, *, tenant: str | None = None, timeout: float | None = None
    ) -> pb.Endpoint:
        """The endpoint. Raises `NotFoundError` when there is none of that id."""
        request = pb.GetEndpointRequest(endpoint_id=endpoint_id, tenant_id=self._tenant_of(tenant))
        return (await self._unary(self._stub.GetEndpoint, request, timeout)).endpoint

    async def list_endpoints(
        self, *, page_size: int = 100, tenant: str | None = None, timeout: float | None = None
    ) -> AsyncIterator[pb.Endpoint]:
        """Every endpoint of the tenant, fetching one page at a time as it is iterated."""
        request = pb.ListEndpointsRequest(page_size=page_size, tenant_id=self._tenant_of(tenant))
        async for page in self._pages(self._stub.ListEndpoints, request, timeout):
            for endpoint in page.endpoints:
                yield endpoint

    async def update_endpoint(
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
        """Replaces the fields that are passed; see `Client.update_endpoint`."""
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
        return (await self._unary(self._stub.UpdateEndpoint, request, timeout)).endpoint

    async def delete_endpoint(
        self, endpoint_id: str, *, tenant: str | None = None, timeout: float | None = None
    ) -> int:
        """Deletes the endpoint; returns how many pending deliveries were cancelled."""
        request = pb.DeleteEndpointRequest(
            endpoint_id=endpoint_id, tenant_id=self._tenant_of(tenant)
        )
        response = await self._unary(self._stub.DeleteEndpoint, request, timeout)
        return response.cancelled_deliveries

    async def rotate_endpoint_secret(
        self,
        endpoint_id: str,
        *,
        grace_period: timedelta | None = None,
        tenant: str | None = None,
        timeout: float | None = None,
    ) -> pb.RotateEndpointSecretResponse:
        """Issues a new secret; see `Client.rotate_endpoint_secret`."""
        request = pb.RotateEndpointSecretRequest(
            endpoint_id=endpoint_id,
            grace_period=messages.duration(grace_period),
            tenant_id=self._tenant_of(tenant),
        )
        return await self._unary(self._stub.RotateEndpointSecret, request, timeout)

    async def get_message(
        self, message_id: str, *, tenant: str | None = None, timeout: float | None = None
    ) -> pb.GetMessageResponse:
        """The message with the state of its delivery to every endpoint: the server's
        pages followed and their deliveries joined in endpoint order (`next_page_token`
        empty); `timeout` is each page's."""
        request = pb.GetMessageRequest(message_id=message_id, tenant_id=self._tenant_of(tenant))
        answer = pb.GetMessageResponse()
        async for page in self._pages(self._stub.GetMessage, request, timeout):
            # The same message on every page.
            answer.message.CopyFrom(page.message)
            answer.deliveries.extend(page.deliveries)
        return answer

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
    ) -> AsyncWatch:
        """The status events matching the filters, as an async iterator that resumes
        after its last cursor; see `Client.watch`."""
        template = pb.StreamDeliveryStatusRequest(
            endpoint_ids=endpoint_ids,
            event_types=event_types,
            message_id=message_id,
            kinds=kinds,
            until_settled=until_settled,
            tenant_id=self._tenant_of(tenant),
        )

        def open_stream(after: int | None) -> AsyncStatusStream:
            request = messages.watch_request(after, template)
            return self._stub.StreamDeliveryStatus(request, metadata=self._metadata)

        return AsyncWatch(
            open_stream, after_cursor=after_cursor, until_settled=until_settled, backoff=backoff
        )

    async def _pages(
        self,
        method: Callable[..., Awaitable[_Page]],
        request: _PagedRequest,
        timeout: float | None,
    ) -> AsyncIterator[_Page]:
        """Every page of a paged call; see `Client._pages`."""
        while True:
            page = await self._unary(method, request, timeout)
            yield page
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    async def _unary(
        self,
        method: Callable[..., Awaitable[_Response]],
        request: Message,
        timeout: float | None,
    ) -> _Response:
        try:
            return await method(
                request,
                timeout=self._timeout if timeout is None else timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as e:
            raise HeraldError.from_rpc_error(e) from e

    def _tenant_of(self, tenant: str | None) -> str:
        return self._tenant if tenant is None else tenant
