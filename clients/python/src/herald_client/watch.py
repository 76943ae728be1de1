"""`Watch`: Herald's status stream as an iterator that resumes by itself.

Every status event and heartbeat carries a cursor. When the stream breaks (the
connection drops, the server restarts, or it cuts off a consumer that fell too far
behind, naming the cursor to resume after), the watch opens it again after the last
cursor it saw, waiting with exponential backoff between failed attempts. An event whose
cursor is not past the last one seen is never yielded again, so the caller sees each
event once, in order, with none missed while it was away (as long as the server still
retains them: otherwise `OutOfRangeError`). A watch started without `after_cursor`
that breaks before its first event or heartbeat has no cursor yet, and starts from now
again: pass `after_cursor` to be sure of the start.

`Resumption` decides all of this and does no I/O; `Watch` (here) and `AsyncWatch` (in
`herald_client.aio`) only read streams and wait as it says.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import grpc

from herald.v1 import herald_pb2 as pb
from herald_client.errors import HeraldError

__all__ = ["Backoff", "Resumption", "Watch"]

_CONSUMER_TOO_SLOW = "CONSUMER_TOO_SLOW"

# Codes after which the same request may succeed on a new stream.
_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED})


@dataclass(frozen=True)
class Backoff:
    """How long to wait before each attempt to reopen a broken stream.

    The n-th consecutive failure waits a random time up to
    `min(initial * multiplier**(n-1), maximum)` seconds ("full jitter", so many watchers
    do not reconnect in step). After `max_attempts` consecutive failures the last error
    is raised; None keeps trying for ever.
    """

    initial: float = 0.1
    maximum: float = 10.0
    multiplier: float = 2.0
    max_attempts: int | None = 12

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.multiplier < 1:
            raise ValueError("backoff needs 0 <= initial <= maximum and multiplier >= 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def delay(self, failures: int) -> float:
        """The wait before the next attempt after `failures` consecutive failures."""
        ceiling = min(self.initial * self.multiplier ** (failures - 1), self.maximum)
        return random.uniform(0, ceiling)


class Resumption:
    """Where a watch stands: the last cursor seen, where to reopen, and how many
    attempts in a row have failed."""

    def __init__(self, after_cursor: int | None, until_settled: bool, backoff: Backoff) -> None:
        self.cursor = after_cursor
        # Where the next stream starts: the last cursor seen, unless the server named
        # another when it cut the stream off.
        self.resume_after = after_cursor
        self.reconnections = 0
        self._until_settled = until_settled
        self._backoff = backoff
        self._failures = 0

    def accept(self, item: pb.StreamDeliveryStatusResponse) -> pb.DeliveryStatusEvent | None:
        """The event to yield for an item received, or None (a heartbeat, a repeat)."""
        self._failures = 0
        if item.HasField("heartbeat"):
            self._advance(item.heartbeat.cursor)
            return None
        event = item.event
        if self.cursor is not None and event.cursor <= self.cursor:
            return None
        self._advance(event.cursor)
        return event

    def after_end(self) -> float | None:
        """The wait before reopening a stream the server ended; None: the watch is over.

        Raises:
            HeraldError: the stream has ended too many times in a row.
        """
        if self._until_settled:
            return None
        # Ended without being asked to: the server stopped (a restart, say).
        return self._retry(HeraldError(grpc.StatusCode.UNAVAILABLE, "the status stream ended"))

    def after_error(self, error: HeraldError) -> float:
        """The wait before reopening a stream that failed with `error`.

        Raises:
            HeraldError: `error`, when a new stream cannot mend it or too many attempts
                in a row have failed.
        """
        info = error.error_info
        if info is not None and info.reason == _CONSUMER_TOO_SLOW:
            resume_after = info.metadata.get("resume_after_cursor", "")
            if resume_after.isdigit():
                self.resume_after = int(resume_after)
        elif error.code not in _TRANSIENT:
            raise error
        return self._retry(error)

    def _retry(self, error: HeraldError) -> float:
        self._failures += 1
        limit = self._backoff.max_attempts
        if limit is not None and self._failures > limit:
            raise error
        self.reconnections += 1
        if error.retry_delay is not None:
            return error.retry_delay.total_seconds()
        return self._backoff.delay(self._failures)

    def _advance(self, cursor: int) -> None:
        if self.cursor is None or cursor > self.cursor:
            self.cursor = cursor
        self.resume_after = self.cursor


class StatusStream(Protocol):
    """An open server stream: its responses, and a way to end it early."""

    def __next__(self) -> pb.StreamDeliveryStatusResponse: ...

    def cancel(self) -> bool: ...


# Opens the status stream after a cursor (None: from now on).
OpenStream = Callable[[int | None], StatusStream]


class Watch(Iterator[pb.DeliveryStatusEvent]):
    """The status events of a watch, in cursor order, each once.

    Iterate it; `cursor` is the last cursor seen (events and heartbeats), to keep and
    pass as `after_cursor` when watching again later. `close()` (or leaving a `with`
    block) ends it, from any thread. Raises `HeraldError` for errors that a new stream
    cannot mend, or once `backoff.max_attempts` reconnections in a row have failed.
    """

    def __init__(
        self,
        open_stream: OpenStream,
        *,
        after_cursor: int | None,
        until_settled: bool,
        backoff: Backoff,
    ) -> None:
        self._open_stream = open_stream
        self._state = Resumption(after_cursor, until_settled, backoff)
        self._stream: StatusStream | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()

    @property
    def cursor(self) -> int | None:
        """The last cursor seen; None before the first event or heartbeat."""
        return self._state.cursor

    @property
    def reconnections(self) -> int:
        """How many times the stream has been reopened so far."""
        return self._state.reconnections

    def __iter__(self) -> Watch:
        return self

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Ends the watch: the stream is cancelled and iteration stops."""
        self._closed.set()
        with self._lock:
            if self._stream is not None:
                self._stream.cancel()

    def __next__(self) -> pb.DeliveryStatusEvent:
        while not self._closed.is_set():
            try:
                item = next(self._current_stream())
            except StopIteration:
                self._drop_stream()
                try:
                    delay = self._state.after_end()
                except HeraldError:
                    self.close()
                    raise
                if delay is None:
                    self.close()
                    break
            except grpc.RpcError as e:
                self._drop_stream()
                if self._closed.is_set():
                    break
                try:
                    delay = self._state.after_error(HeraldError.from_rpc_error(e))
                except HeraldError as error:
                    self.close()
                    raise error from e
            else:
                event = self._state.accept(item)
                if event is not None:
                    return event
                continue
            self._closed.wait(delay)
        raise StopIteration

    def _current_stream(self) -> StatusStream:
        with self._lock:
            if self._stream is None:
                self._stream = self._open_stream(self._state.resume_after)
            return self._stream

    def _drop_stream(self) -> None:
        with self._lock:
            self._stream = None
