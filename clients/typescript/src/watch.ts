/**
 * The resuming status stream: one async iterator over as many `StreamDeliveryStatus`
 * calls as it takes.
 *
 * Every event and heartbeat carries a cursor; the iterator remembers the last one and,
 * when a stream breaks (a dropped connection, a server shutting down, or a slow-consumer
 * cut-off), opens the next with `after_cursor` set to it, after a backoff. Herald replays
 * from there without gap or duplicate; an event at or below the remembered cursor is
 * skipped all the same, so none is ever yielded twice. What cannot be fixed by trying
 * again (a bad filter, a missing scope, a cursor no longer retained) ends the iteration
 * with a `HeraldError`.
 */

import { Code } from "@connectrpc/connect";
import type { DeliveryStatusEvent, StreamDeliveryStatusResponse } from "../gen/herald/v1/herald_pb.js";
import { HeraldError } from "./errors.js";

/** How a broken stream is retried: exponential backoff with full jitter. */
export interface WatchBackoff {
  /** The first delay; doubled after every failed try. Default 100 ms. */
  readonly initialDelayMs?: number;
  /** The longest delay. Default 10 s. */
  readonly maxDelayMs?: number;
  /** Consecutive failed tries before giving up with the last error. Default: never. */
  readonly maxRetries?: number;
}

/** Told before each reconnection: what broke, and how long until the next try. */
export interface WatchRetry {
  readonly error: HeraldError;
  /** Consecutive failed tries, 1 for the first. */
  readonly attempt: number;
  readonly delayMs: number;
  /** The cursor the next stream resumes after, if any is known yet. */
  readonly afterCursor: bigint | undefined;
}

export interface WatchControl {
  /** Resume after this cursor (from an event or heartbeat); unset: from now on. */
  readonly afterCursor?: bigint;
  /** Ends the iteration (without error) when aborted. */
  readonly signal?: AbortSignal;
  readonly backoff?: WatchBackoff;
  /** Called before each reconnection, for logging. */
  readonly onRetry?: (retry: WatchRetry) => void;
}

/** Opens one stream after `afterCursor`; ends when `signal` is aborted. */
export type OpenStream = (
  afterCursor: bigint | undefined,
  signal: AbortSignal,
) => AsyncIterable<StreamDeliveryStatusResponse>;

/**
 * Statuses a new stream can fix. `Canceled` is among them because the caller's own
 * cancellation is checked first: any other is the connection's (an HTTP/2 stream reset
 * when the socket went away).
 */
const RETRYABLE = new Set<Code>([
  Code.Canceled,
  Code.Unavailable,
  Code.ResourceExhausted,
  Code.Internal,
  Code.Unknown,
  Code.Aborted,
  Code.DeadlineExceeded,
]);

/**
 * Yields every status event once, reconnecting from the last cursor until `signal` is
 * aborted, the server ends the stream by design (`until_settled`), or an error that a
 * retry cannot fix.
 *
 * @param finite whether a stream that ends cleanly is finished (`until_settled`)
 *   rather than cut short.
 */
export async function* resumingStream(
  open: OpenStream,
  finite: boolean,
  control: WatchControl = {},
): AsyncGenerator<DeliveryStatusEvent, void, undefined> {
  const initialDelayMs = control.backoff?.initialDelayMs ?? 100;
  const maxDelayMs = control.backoff?.maxDelayMs ?? 10_000;
  const maxRetries = control.backoff?.maxRetries ?? Number.POSITIVE_INFINITY;
  const outer = control.signal;
  let cursor = control.afterCursor;
  let failures = 0;

  while (!aborted(outer)) {
    // One controller per stream, so that leaving the loop early closes the call.
    const call = new AbortController();
    const stop = () => call.abort(outer?.reason);
    outer?.addEventListener("abort", stop, { once: true });
    let error: HeraldError;
    try {
      for await (const response of open(cursor, call.signal)) {
        failures = 0;
        const item = response.item;
        if (item.case === "heartbeat") {
          cursor = max(cursor, item.value.cursor);
        } else if (item.case === "event") {
          if (cursor !== undefined && item.value.cursor <= cursor) {
            continue; // already yielded before the stream broke
          }
          cursor = item.value.cursor;
          yield item.value;
        }
      }
      if (finite) {
        return;
      }
      error = HeraldError.from(new Error("the server ended the status stream"));
    } catch (reason) {
      if (aborted(outer)) {
        return;
      }
      error = HeraldError.from(reason);
      if (!RETRYABLE.has(error.code)) {
        throw error;
      }
      if (cursor === undefined && error.errorInfo?.reason === "CONSUMER_TOO_SLOW") {
        // Only when nothing arrived at all; otherwise our own cursor is the exact one.
        const after = error.errorInfo.metadata["resume_after_cursor"];
        cursor = after === undefined ? undefined : BigInt(after);
      }
    } finally {
      outer?.removeEventListener("abort", stop);
      call.abort();
    }

    failures += 1;
    if (failures > maxRetries) {
      throw error;
    }
    const backoff = Math.min(maxDelayMs, initialDelayMs * 2 ** (failures - 1));
    const delayMs = Math.max(error.retryDelayMs ?? 0, Math.random() * backoff);
    control.onRetry?.({ error, attempt: failures, delayMs, afterCursor: cursor });
    await sleep(delayMs, outer);
  }
}

/** A function, not an inline test: the signal changes under the compiler's narrowing. */
function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function max(a: bigint | undefined, b: bigint): bigint {
  return a === undefined || b > a ? b : a;
}

/** Waits `ms`, or less when `signal` is aborted (the loop then ends). */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
