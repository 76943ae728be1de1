"""`Watch`: Herald's status stream as an iterator that resumes by itself.

Every status event and heartbeat carries a cursor. When the stream breaks (the
connection drops, the server restarts, or it cuts off a consumer that fell too far
behind, naming the cursor to resume after), `Watch` opens it again after the last cursor
it saw, waiting with exponential backoff between failed attempts. An event whose cursor
is not past the last one seen is never yielded again, so the caller sees each event once,
in order, with none missed while it was away (as long as the server still retains them:
otherwise `OutOfRangeError`).
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

__all__ = ["Backoff", "Watch"]

_CONSUMER_TOO_SLOW = "CONSUMER_TOO_SLOW"


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


class StatusStream(Protocol):
    """An open server stream: its responses, and a way to end it early."""

    def __iter__(self) -> Iterator[pb.StreamDeliveryStatusResponse]: ...

    def __next__(self) -> pb.StreamDeliveryStatusResponse: ...

    def cancel(self) -> bool: ...


# Opens the status stream after a cursor (None: from now on).
OpenStream = Callable[[int | None], StatusStream]

# Codes after which the same request may succeed on a new stream.
_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED})


class Watch(Iterator[pb.DeliveryStatusEvent]):
    """The status events of a watch, in cursor order, each once.

    Iterate it; `cursor` is the last cursor seen (events and heartbeats), to keep and
    pass as `after_cursor` when watching again later. `close()` (or leaving a `with`
    block) ends it, from any thread. Raises `HeraldError` for errors that retrying
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
        self._until_settled = until_settled
        self._backoff = backoff
        self._cursor = after_cursor
        # Where the next stream starts: the last cursor seen, unless the server named
        # another when it cut the stream off.
        self._resume_after = after_cursor
        self._stream: StatusStream | None = None
        self._failures = 0
        self._reconnections = 0
        self._closed = threading.Event()
        self._lock = threading.Lock()

    @property
    def cursor(self) -> int | None:
        """The last cursor seen; None before the first event or heartbeat."""
        return self._cursor

    @property
    def reconnections(self) -> int:
        """How many times the stream has been reopened so far."""
        return self._reconnections

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
            stream = self._current_stream()
            try:
                item = next(stream)
            except StopIteration:
                self._drop_stream()
                if self._until_settled:
                    self.close()
                    break
                # A stream that ends without being asked to was ended by the server
                # (a restart, say): open it again.
                self._wait_before_retry(None)
                continue
            except grpc.RpcError as e:
                self._drop_stream()
                if self._closed.is_set():
                    break
                error = HeraldError.from_rpc_error(e)
                if not self._resumable(error):
                    self.close()
                    raise error from e
                self._wait_before_retry(error)
                continue
            self._failures = 0
            if item.HasField("heartbeat"):
                self._advance(item.heartbeat.cursor)
                continue
            event = item.event
            if self._cursor is not None and event.cursor <= self._cursor:
                continue
            self._advance(event.cursor)
            return event
        raise StopIteration

    def _advance(self, cursor: int) -> None:
        if self._cursor is None or cursor > self._cursor:
            self._cursor = cursor
        self._resume_after = self._cursor

    def _current_stream(self) -> StatusStream:
        with self._lock:
            if self._stream is None:
                self._stream = self._open_stream(self._resume_after)
            return self._stream

    def _drop_stream(self) -> None:
        with self._lock:
            self._stream = None

    def _resumable(self, error: HeraldError) -> bool:
        info = error.error_info
        if info is not None and info.reason == _CONSUMER_TOO_SLOW:
            resume_after = info.metadata.get("resume_after_cursor", "")
            if resume_after.isdigit():
                self._resume_after = int(resume_after)
            return True
        return error.code in _TRANSIENT

    def _wait_before_retry(self, error: HeraldError | None) -> None:
        self._failures += 1
        limit = self._backoff.max_attempts
        if limit is not None and self._failures > limit:
            self.close()
            raise error or HeraldError(
                grpc.StatusCode.UNAVAILABLE, "the status stream kept ending"
            )
        if error is not None and error.retry_delay is not None:
            delay = error.retry_delay.total_seconds()
        else:
            delay = self._backoff.delay(self._failures)
        self._closed.wait(delay)
        self._reconnections += 1
