"""`Watch` resumes from its last cursor, never yields an event twice, and gives up on
errors a new stream cannot mend; and the client builds requests as documented."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import google.rpc.error_details_pb2 as error_details_pb2
import grpc
import grpc.aio
import pytest

from herald.v1 import herald_pb2 as pb
from herald_client.messages import Event, json_value, publish_request
from herald_client.aio import AsyncWatch
from herald_client.errors import PermissionDeniedError, UnavailableError
from herald_client.watch import Backoff, Watch
from test_errors import failed_call

NO_WAIT = Backoff(initial=0, maximum=0, max_attempts=3)
SUCCEEDED = pb.STATUS_EVENT_KIND_ATTEMPT_SUCCEEDED


def event(cursor: int) -> pb.StreamDeliveryStatusResponse:
    return pb.StreamDeliveryStatusResponse(
        event=pb.DeliveryStatusEvent(cursor=cursor, kind=SUCCEEDED)
    )


def heartbeat(cursor: int) -> pb.StreamDeliveryStatusResponse:
    return pb.StreamDeliveryStatusResponse(heartbeat=pb.Heartbeat(cursor=cursor))


class ScriptedStream:
    """A stream that sends its items, then raises its error (or ends)."""

    def __init__(self, items: list[pb.StreamDeliveryStatusResponse], error: Any = None) -> None:
        self._items: Iterator[pb.StreamDeliveryStatusResponse] = iter(items)
        self._error = error
        self.cancelled = False

    def __iter__(self) -> Iterator[pb.StreamDeliveryStatusResponse]:
        return self

    def __next__(self) -> pb.StreamDeliveryStatusResponse:
        for item in self._items:
            return item
        if self._error is not None:
            raise self._error
        raise StopIteration

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class Server:
    """Hands out scripted streams in order and records where each one started."""

    def __init__(self, *streams: ScriptedStream) -> None:
        self._streams = list(streams)
        self.opened_after: list[int | None] = []

    def open(self, after: int | None) -> ScriptedStream:
        self.opened_after.append(after)
        return self._streams.pop(0)


def too_slow(resume_after: int) -> Exception:
    info = error_details_pb2.ErrorInfo(
        reason="CONSUMER_TOO_SLOW",
        domain="herald.v1",
        metadata={"resume_after_cursor": str(resume_after)},
    )
    return failed_call(grpc.StatusCode.RESOURCE_EXHAUSTED, "too slow", info)


def unavailable() -> Exception:
    return failed_call(grpc.StatusCode.UNAVAILABLE, "connection reset")


def test_resumes_after_the_last_cursor_and_never_repeats_an_event() -> None:
    server = Server(
        ScriptedStream([event(1), event(2)], unavailable()),
        # The server replays what follows cursor 2; a repeat of 2 is dropped anyway.
        ScriptedStream([event(2), event(3), heartbeat(4)], too_slow(4)),
        ScriptedStream([event(5)]),
    )
    watch = Watch(server.open, after_cursor=None, until_settled=True, backoff=NO_WAIT)
    assert [e.cursor for e in watch] == [1, 2, 3, 5]
    assert server.opened_after == [None, 2, 4]
    assert watch.cursor == 5
    assert watch.reconnections == 2


def test_starts_after_the_given_cursor_and_follows_the_servers_resume_point() -> None:
    server = Server(
        ScriptedStream([event(11)], too_slow(13)),
        ScriptedStream([event(14)]),
    )
    watch = Watch(server.open, after_cursor=10, until_settled=True, backoff=NO_WAIT)
    assert [e.cursor for e in watch] == [11, 14]
    assert server.opened_after == [10, 13]


def test_a_stream_the_server_ends_is_reopened_unless_settling() -> None:
    server = Server(ScriptedStream([event(1)]), ScriptedStream([event(2)], unavailable()))
    watch = Watch(server.open, after_cursor=None, until_settled=False, backoff=NO_WAIT)
    assert next(watch).cursor == 1
    assert next(watch).cursor == 2
    assert server.opened_after == [None, 1]


def test_an_error_a_new_stream_cannot_mend_is_raised() -> None:
    denied = failed_call(grpc.StatusCode.PERMISSION_DENIED, "missing scope read")
    server = Server(ScriptedStream([event(1)], denied))
    watch = Watch(server.open, after_cursor=None, until_settled=False, backoff=NO_WAIT)
    assert next(watch).cursor == 1
    with pytest.raises(PermissionDeniedError):
        next(watch)
    with pytest.raises(StopIteration):
        next(watch)


def test_gives_up_after_max_attempts_failures_in_a_row() -> None:
    server = Server(*(ScriptedStream([], unavailable()) for _ in range(4)))
    watch = Watch(server.open, after_cursor=7, until_settled=False, backoff=NO_WAIT)
    with pytest.raises(UnavailableError):
        next(watch)
    assert server.opened_after == [7, 7, 7, 7]


def test_close_cancels_the_stream_and_ends_iteration() -> None:
    stream = ScriptedStream([event(1), event(2)])
    watch = Watch(Server(stream).open, after_cursor=None, until_settled=False, backoff=NO_WAIT)
    with watch:
        assert next(watch).cursor == 1
    assert stream.cancelled
    assert list(watch) == []


def test_backoff_grows_to_its_maximum() -> None:
    backoff = Backoff(initial=1, maximum=4, multiplier=2)
    assert all(0 <= backoff.delay(1) <= 1 for _ in range(50))
    assert all(0 <= backoff.delay(10) <= 4 for _ in range(50))
    with pytest.raises(ValueError):
        Backoff(initial=2, maximum=1)


def test_json_values() -> None:
    value = json_value({"id": 1, "ok": True, "tags": ["a", None], "price": 1.5})
    fields = value.struct_value.fields
    assert fields["id"].number_value == 1
    assert fields["ok"].bool_value is True
    assert fields["tags"].list_value.values[1].HasField("null_value")
    with pytest.raises(ValueError):
        json_value(2**60)
    with pytest.raises(TypeError):
        json_value(object())  # type: ignore[arg-type]


def test_publish_requests_carry_json_or_raw_bytes_and_the_default_tenant() -> None:
    raw = publish_request(Event("a.b", b"<x/>", content_type="application/xml"), "acme")
    assert raw.raw.data == b"<x/>" and raw.raw.content_type == "application/xml"
    assert raw.tenant_id == "acme"
    parsed = publish_request(Event("a.b", {"n": 1}, tenant="other"), "acme")
    assert parsed.json.struct_value.fields["n"].number_value == 1
    assert parsed.tenant_id == "other"
    with pytest.raises(ValueError):
        publish_request(Event("a.b", {"n": 1}, content_type="text/plain"), "acme")


class ScriptedAsyncStream:
    """The asyncio stream: `read()` gives the items, then raises its error or EOF."""

    def __init__(self, items: list[pb.StreamDeliveryStatusResponse], error: Any = None) -> None:
        self._items = list(items)
        self._error = error

    async def read(self) -> object:
        if self._items:
            return self._items.pop(0)
        if self._error is not None:
            raise self._error
        return grpc.aio.EOF

    def cancel(self) -> bool:
        return True


def test_the_async_watch_resumes_the_same_way() -> None:
    streams = [
        ScriptedAsyncStream([event(1), event(2)], unavailable()),
        ScriptedAsyncStream([event(2), event(3), heartbeat(4)], too_slow(4)),
        ScriptedAsyncStream([event(5)]),
    ]
    opened_after: list[int | None] = []

    def open_stream(after: int | None) -> ScriptedAsyncStream:
        opened_after.append(after)
        return streams.pop(0)

    async def collect() -> list[int]:
        watch = AsyncWatch(open_stream, after_cursor=None, until_settled=True, backoff=NO_WAIT)
        return [e.cursor async for e in watch]

    assert asyncio.run(collect()) == [1, 2, 3, 5]
    assert opened_after == [None, 2, 4]


def test_the_async_watch_raises_what_it_cannot_mend() -> None:
    denied = failed_call(grpc.StatusCode.PERMISSION_DENIED, "missing scope read")

    async def first_two() -> None:
        stream = ScriptedAsyncStream([event(1)], denied)
        watch = AsyncWatch(
            lambda _: stream, after_cursor=None, until_settled=False, backoff=NO_WAIT
        )
        assert (await anext(watch)).cursor == 1
        await anext(watch)

    with pytest.raises(PermissionDeniedError):
        asyncio.run(first_two())
