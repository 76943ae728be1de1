package dev.herald.client;

import dev.herald.v1.DeliveryStatusEvent;
import dev.herald.v1.StreamDeliveryStatusRequest;
import dev.herald.v1.StreamDeliveryStatusResponse;
import dev.herald.v1.WebhookServiceGrpc;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.OptionalLong;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * The live status stream as an {@link Iterator} of events that survives disconnects.
 *
 * <p>It remembers the cursor of the last event (or heartbeat) it received. When the stream
 * breaks — the connection drops, the server restarts, or it cuts off a consumer that fell
 * behind (RESOURCE_EXHAUSTED) — it waits with exponential backoff and reopens the stream
 * after that cursor, so the server replays exactly what was missed. An event whose cursor is
 * not past the last one is never yielded, so none is yielded twice.
 *
 * <p>{@link #hasNext()} blocks until an event arrives. It throws {@link HeraldException} when
 * the stream cannot be resumed: the request is refused (INVALID_ARGUMENT, PERMISSION_DENIED,
 * ...) or the cursor is no longer retained (OUT_OF_RANGE). With {@code until_settled} it ends
 * once the message is settled. {@link #close()} may be called from any thread and ends the
 * iteration.
 */
public final class Watch implements Iterator<DeliveryStatusEvent>, AutoCloseable {
  private final WebhookServiceGrpc.WebhookServiceBlockingStub stub;
  private final StreamDeliveryStatusRequest request;
  private final Duration initialBackoff;
  private final Duration maxBackoff;
  private final CountDownLatch closed = new CountDownLatch(1);

  /** Resume after this cursor; null until the first event or heartbeat when none was given. */
  private Long cursor;
  /** The open stream, or null between a failure and the next attempt. */
  private Iterator<StreamDeliveryStatusResponse> stream;
  /** Cancels the open stream's call. */
  private volatile Context.CancellableContext call;
  /** The event hasNext() found and next() hands out. */
  private DeliveryStatusEvent pending;
  /** Failures since the last message received: the backoff grows with them. */
  private int failures;
  private boolean finished;

  Watch(
      WebhookServiceGrpc.WebhookServiceBlockingStub stub,
      StreamDeliveryStatusRequest request,
      Duration initialBackoff,
      Duration maxBackoff) {
    this.stub = stub;
    this.request = request;
    this.initialBackoff = initialBackoff;
    this.maxBackoff = maxBackoff;
    this.cursor = request.hasAfterCursor() ? request.getAfterCursor() : null;
  }

  /** The cursor to resume after: that of the last event or heartbeat received. */
  public OptionalLong cursor() {
    return cursor == null ? OptionalLong.empty() : OptionalLong.of(cursor);
  }

  @Override
  public boolean hasNext() {
    while (pending == null && !finished) {
      if (isClosed()) {
        finished = true;
        break;
      }
      try {
        if (stream == null) {
          open();
        }
        if (!stream.hasNext()) {
          stream = null;
          if (request.getUntilSettled()) {
            finished = true; // the server ended it because the message is settled
          }
          continue; // otherwise the server went away cleanly: open again
        }
        accept(stream.next());
      } catch (StatusRuntimeException e) {
        stream = null;
        if (isClosed()) {
          finished = true;
        } else if (resumable(e.getStatus().getCode())) {
          backOff();
        } else {
          close();
          throw HeraldException.from(e);
        }
      }
    }
    return pending != null;
  }

  @Override
  public DeliveryStatusEvent next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the status stream has ended");
    }
    DeliveryStatusEvent event = pending;
    pending = null;
    return event;
  }

  /** Ends the stream; a blocked {@link #hasNext()} returns false. */
  @Override
  public void close() {
    closed.countDown();
    Context.CancellableContext current = call;
    if (current != null) {
      current.cancel(null);
    }
  }

  private void open() {
    StreamDeliveryStatusRequest.Builder resumed = request.toBuilder();
    if (cursor != null) {
      resumed.setAfterCursor(cursor);
    }
    Context.CancellableContext context = Context.current().withCancellation();
    call = context;
    if (isClosed()) {
      context.cancel(null); // close() ran before the context existed
    }
    Context previous = context.attach();
    try {
      stream = stub.streamDeliveryStatus(resumed.build());
    } finally {
      context.detach(previous);
    }
  }

  private void accept(StreamDeliveryStatusResponse item) {
    failures = 0;
    if (item.hasHeartbeat()) {
      advance(item.getHeartbeat().getCursor());
    } else if (item.hasEvent()) {
      DeliveryStatusEvent event = item.getEvent();
      if (advance(event.getCursor())) {
        pending = event;
      }
    }
  }

  /** Moves the cursor forward; false when {@code next} is not past it (already seen). */
  private boolean advance(long next) {
    if (cursor != null && Long.compareUnsigned(next, cursor) <= 0) {
      return false;
    }
    cursor = next;
    return true;
  }

  private void backOff() {
    long base = initialBackoff.toMillis() << Math.min(failures, 16);
    long capped = Math.min(base, maxBackoff.toMillis());
    failures++;
    // Jittered between half and all of it: clients cut off together must not return together.
    long delay = ThreadLocalRandom.current().nextLong(capped / 2, capped + 1);
    try {
      closed.await(delay, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      close();
    }
  }

  private boolean isClosed() {
    return closed.getCount() == 0;
  }

  /** Whether a stream that ended with this code may be opened again after the cursor. */
  private static boolean resumable(Status.Code code) {
    switch (code) {
      case UNAVAILABLE: // connection lost, server restarting
      case RESOURCE_EXHAUSTED: // cut off for falling behind: resume where it stopped
      case CANCELLED: // the stream was dropped on its way, not by close()
      case DEADLINE_EXCEEDED:
      case ABORTED:
      case INTERNAL: // a broken HTTP/2 stream surfaces as INTERNAL
      case UNKNOWN:
        return true;
      default:
        return false;
    }
  }
}
