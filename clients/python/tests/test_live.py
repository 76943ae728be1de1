"""The client against a live Herald: register, publish, receive and verify, watch the
delivery settle across a dropped connection, read a field violation, and read a message
whose deliveries span several pages."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from datetime import timedelta

import grpc
import pytest

from herald.v1 import herald_pb2 as pb
from herald.v1 import herald_pb2_grpc
from herald_client import (
    AsyncClient,
    AsyncWatch,
    Backoff,
    Client,
    Event,
    InvalidArgumentError,
    NoMatchingSignatureError,
    NotFoundError,
    verify,
)
from live import Herald, Proxy, Receiver, events_until, succeeded


@pytest.fixture(scope="module")
def herald() -> Iterator[Herald]:
    binary = os.environ.get("HERALD_BIN")
    if not binary:
        pytest.fail("HERALD_BIN must name a built herald binary for the live test")
    server = Herald(binary)
    yield server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def client(herald: Herald) -> Iterator[Client]:
    with Client(herald.address, api_key=herald.api_key) as c:
        yield c


def test_publish_verify_and_watch_across_a_dropped_connection(
    herald: Herald, receiver: Receiver, client: Client
) -> None:
    registered = client.register_endpoint(receiver.url, event_types=["order.*"])
    endpoint_id = registered.endpoint.id
    assert registered.secret.startswith("whsec_")

    # The watcher reaches Herald through a proxy the test can cut.
    proxy = Proxy(herald.address)
    watcher = Client(proxy.address, api_key=herald.api_key)
    fast = Backoff(initial=0.05, maximum=1.0, max_attempts=20)
    watch = watcher.watch(after_cursor=0, endpoint_ids=[endpoint_id], backoff=fast)
    try:
        first = client.publish("order.created", {"order": 1}, idempotency_key="order-1")
        assert first.delivery_count == 1
        again = client.publish("order.created", {"order": 1}, idempotency_key="order-1")
        assert again.duplicate and again.message_id == first.message_id

        webhook = receiver.next()
        verify(registered.secret, webhook.headers, webhook.body)
        assert json.loads(webhook.body) == {"order": 1}
        with pytest.raises(NoMatchingSignatureError):
            verify(registered.secret, webhook.headers, webhook.body + b" ")

        before = events_until(watch, succeeded(first.message_id))
        assert proxy.cut() >= 1

        second = client.publish("order.shipped", b'{"order":2}', content_type="application/json")
        webhook = receiver.next()
        verify(registered.secret, webhook.headers, webhook.body)
        assert webhook.body == b'{"order":2}'

        after = events_until(watch, succeeded(second.message_id))
        assert watch.reconnections >= 1
    finally:
        watch.close()
        watcher.close()
        proxy.close()

    # The same range read in one go: the resumed watch missed nothing, repeated nothing.
    with client.watch(after_cursor=0, endpoint_ids=[endpoint_id]) as reference:
        expected = events_until(reference, succeeded(second.message_id))
    got = before + after
    assert [(e.cursor, e.kind, e.message_id) for e in got] == [
        (e.cursor, e.kind, e.message_id) for e in expected
    ]
    assert {e.message_id for e in got} == {first.message_id, second.message_id}


def test_a_bad_argument_surfaces_its_field_violation(client: Client) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        client.publish("bad type!", {"x": 1})
    assert "event_type" in [v.field for v in raised.value.field_violations]

    results = client.publish_batch([Event("note.added", {"n": 1}), Event("bad type!", None)])
    assert isinstance(results[0], pb.PublishResponse)
    assert isinstance(results[1], InvalidArgumentError)
    assert "requests[1].event_type" in [v.field for v in results[1].field_violations]


def test_endpoint_management(client: Client, receiver: Receiver) -> None:
    ids = [
        client.register_endpoint(receiver.url, event_types=["none.*"]).endpoint.id
        for _ in range(3)
    ]
    assert set(ids) <= {e.id for e in client.list_endpoints(page_size=1)}

    updated = client.update_endpoint(ids[0], description="renamed", enabled=False)
    assert updated.description == "renamed" and not updated.enabled
    assert client.get_endpoint(ids[0]).description == "renamed"

    rotated = client.rotate_endpoint_secret(ids[0], grace_period=timedelta(0))
    assert rotated.secret.startswith("whsec_")

    for endpoint_id in ids:
        client.delete_endpoint(endpoint_id)
    with pytest.raises(NotFoundError) as raised:
        client.get_endpoint(ids[0])
    assert raised.value.resource_info is not None


def test_the_async_client_publishes_watches_across_a_drop_and_reports_violations(
    herald: Herald, receiver: Receiver
) -> None:
    async def scenario() -> None:
        proxy = Proxy(herald.address)
        fast = Backoff(initial=0.05, maximum=1.0, max_attempts=20)
        async with (
            AsyncClient(herald.address, api_key=herald.api_key) as client,
            AsyncClient(proxy.address, api_key=herald.api_key) as watcher,
        ):
            registered = await client.register_endpoint(receiver.url, event_types=["async.*"])
            watch = watcher.watch(
                after_cursor=0, endpoint_ids=[registered.endpoint.id], backoff=fast
            )
            first = await client.publish("async.one", {"n": 1})
            webhook = await asyncio.to_thread(receiver.next)
            verify(registered.secret, webhook.headers, webhook.body)
            seen = await asyncio.wait_for(async_events_until(watch, first.message_id), 20)

            proxy.cut()
            second = await client.publish("async.two", {"n": 2})
            seen += await asyncio.wait_for(async_events_until(watch, second.message_id), 20)
            watch.close()
            assert watch.reconnections >= 1
            cursors = [e.cursor for e in seen]
            assert cursors == sorted(set(cursors))

            with pytest.raises(InvalidArgumentError) as raised:
                await client.publish("bad type!", None)
            assert "event_type" in [v.field for v in raised.value.field_violations]
            ids = [e.id async for e in client.list_endpoints(page_size=1)]
            assert registered.endpoint.id in ids
        proxy.close()

    asyncio.run(scenario())


# The server's cap on WEBHOOK_MAX_PAYLOAD_BYTES (3 MiB): beside the largest message about
# 3,000 deliveries fit in an answer, so this many take two.
LARGEST_PAYLOAD = 3 * 1024 * 1024
PAGED_ENDPOINTS = 3600


def test_get_message_follows_the_pages_of_its_deliveries() -> None:
    binary = os.environ.get("HERALD_BIN")
    if not binary:
        pytest.fail("HERALD_BIN must name a built herald binary for the live test")
    herald = Herald(binary, {"WEBHOOK_MAX_PAYLOAD_BYTES": str(LARGEST_PAYLOAD)})
    try:
        with Client(herald.address, api_key=herald.api_key) as client:
            # Endpoints at Herald's own gRPC port, which it never sends webhooks to, tried
            # once: the payload is never sent, and the deliveries stay listed. (By name:
            # the address itself is refused at registration.)
            own = f"http://localhost:{herald.address.rsplit(':', 1)[1]}/hook"
            once = pb.RetryPolicy(max_retries=0)
            endpoint_ids = [f"{i:05}{'e' * 59}" for i in range(PAGED_ENDPOINTS)]
            for endpoint_id in endpoint_ids:
                client.register_endpoint(own, endpoint_id=endpoint_id, retry_policy=once)
            # The largest message: a payload at the limit, and metadata at its own.
            metadata = {f"{i:04}{'k' * 60}": f"{i:04}{'v' * 1020}" for i in range(32)}
            published = client.publish(
                "a.b", b"x" * LARGEST_PAYLOAD, content_type="text/plain", metadata=metadata
            )
            assert published.delivery_count == PAGED_ENDPOINTS

            # The server's first answer holds only some of the deliveries.
            request = pb.GetMessageRequest(message_id=published.message_id)
            with grpc.insecure_channel(herald.address) as channel:
                first = herald_pb2_grpc.WebhookServiceStub(channel).GetMessage(
                    request, metadata=(("authorization", f"Bearer {herald.api_key}"),)
                )
            assert first.next_page_token
            assert 0 < len(first.deliveries) < PAGED_ENDPOINTS

            answer = client.get_message(published.message_id)
            assert answer.message.id == published.message_id
            assert len(answer.message.payload) == LARGEST_PAYLOAD
            assert [d.endpoint_id for d in answer.deliveries] == endpoint_ids
            assert answer.next_page_token == ""

        async def read() -> pb.GetMessageResponse:
            async with AsyncClient(herald.address, api_key=herald.api_key) as client:
                return await client.get_message(published.message_id)

        # The deliveries' states move on between the reads: the same message, the same
        # deliveries in the same order.
        read_async = asyncio.run(read())
        assert read_async.message == answer.message
        assert [d.endpoint_id for d in read_async.deliveries] == endpoint_ids
        assert read_async.next_page_token == ""
    finally:
        herald.stop()


async def async_events_until(watch: AsyncWatch, message_id: str) -> list[pb.DeliveryStatusEvent]:
    done = succeeded(message_id)
    seen = []
    async for event in watch:
        seen.append(event)
        if done(event):
            return seen
    raise AssertionError(f"the watch ended before {message_id} succeeded; saw {seen}")
