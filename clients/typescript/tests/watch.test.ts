// The resuming stream over scripted streams: resume cursors, de-duplication, which
// errors end it, and cancellation.

import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, it } from "node:test";
import {
  DeliveryStatusEventSchema,
  HeartbeatSchema,
  type StreamDeliveryStatusResponse,
  StreamDeliveryStatusResponseSchema,
} from "../gen/herald/v1/herald_pb.js";
import { ErrorInfoSchema } from "../src/rpc-details.js";
import { type OpenStream, resumingStream } from "../src/watch.js";

const event = (cursor: bigint): StreamDeliveryStatusResponse =>
  create(StreamDeliveryStatusResponseSchema, {
    item: { case: "event", value: create(DeliveryStatusEventSchema, { cursor, messageId: `m${cursor}` }) },
  });
const heartbeat = (cursor: bigint): StreamDeliveryStatusResponse =>
  create(StreamDeliveryStatusResponseSchema, {
    item: { case: "heartbeat", value: create(HeartbeatSchema, { cursor }) },
  });

/** One scripted stream: its items, then an error (or a clean end when none). */
interface Script {
  items: StreamDeliveryStatusResponse[];
  error?: unknown;
}

/** Opens the scripts in turn, recording the cursor each open resumed after. */
function scripted(scripts: Script[]): { open: OpenStream; opens: (bigint | undefined)[] } {
  const opens: (bigint | undefined)[] = [];
  const open: OpenStream = (after) => {
    opens.push(after);
    const script = scripts.shift();
    assert.ok(script, "opened more streams than scripted");
    return (async function* () {
      yield* script.items;
      if (script.error !== undefined) {
        throw script.error;
      }
    })();
  };
  return { open, opens };
}

const noDelay = { backoff: { initialDelayMs: 1, maxDelayMs: 1 } };

async function cursors(stream: AsyncIterable<{ cursor: bigint }>, take: number): Promise<bigint[]> {
  const seen: bigint[] = [];
  for await (const e of stream) {
    seen.push(e.cursor);
    if (seen.length === take) {
      break;
    }
  }
  return seen;
}

describe("resumingStream", () => {
  it("resumes after the last event, skipping what a replay repeats", async () => {
    const { open, opens } = scripted([
      { items: [event(1n), event(2n)], error: new ConnectError("reset", Code.Unavailable) },
      { items: [event(2n), event(3n)], error: new ConnectError("reset", Code.Internal) },
      { items: [event(4n)] },
    ]);
    const retries: bigint[] = [];
    const stream = resumingStream(open, true, {
      ...noDelay,
      onRetry: (r) => retries.push(r.afterCursor ?? -1n),
    });
    assert.deepEqual(await cursors(stream, 10), [1n, 2n, 3n, 4n]);
    assert.deepEqual(opens, [undefined, 2n, 3n]);
    assert.deepEqual(retries, [2n, 3n]);
  });

  it("resumes after a heartbeat's cursor", async () => {
    const { open, opens } = scripted([
      { items: [heartbeat(7n)], error: new ConnectError("gone", Code.Unavailable) },
      { items: [event(8n)] },
    ]);
    assert.deepEqual(await cursors(resumingStream(open, true, noDelay), 10), [8n]);
    assert.deepEqual(opens, [undefined, 7n]);
  });

  it("starts after the cursor it is given", async () => {
    const { open, opens } = scripted([{ items: [event(5n), event(6n)] }]);
    assert.deepEqual(await cursors(resumingStream(open, true, { afterCursor: 5n }), 10), [6n]);
    assert.deepEqual(opens, [5n]);
  });

  it("resumes a slow consumer from the cursor the server names when it has none", async () => {
    const cut = new ConnectError("too slow", Code.ResourceExhausted);
    const info = create(ErrorInfoSchema, {
      reason: "CONSUMER_TOO_SLOW",
      domain: "herald.v1",
      metadata: { resume_after_cursor: "41" },
    });
    cut.details.push({ type: ErrorInfoSchema.typeName, value: toBinary(ErrorInfoSchema, info) });
    const { open, opens } = scripted([{ items: [], error: cut }, { items: [event(42n)] }]);
    assert.deepEqual(await cursors(resumingStream(open, true, noDelay), 10), [42n]);
    assert.deepEqual(opens, [undefined, 41n]);
  });

  it("reconnects when an endless stream ends cleanly", async () => {
    const { open, opens } = scripted([{ items: [event(1n)] }, { items: [event(2n)] }]);
    assert.deepEqual(await cursors(resumingStream(open, false, noDelay), 2), [1n, 2n]);
    assert.deepEqual(opens, [undefined, 1n]);
  });

  it("ends with the error when a retry cannot help", async () => {
    const { open } = scripted([
      { items: [event(1n)], error: new ConnectError("cursor 0 is gone", Code.OutOfRange) },
    ]);
    await assert.rejects(cursors(resumingStream(open, true, noDelay), 10), {
      name: "HeraldError",
      code: Code.OutOfRange,
    });
  });

  it("gives up after maxRetries consecutive failures", async () => {
    const down = () => ({ items: [], error: new ConnectError("down", Code.Unavailable) });
    const { open, opens } = scripted([down(), down(), down()]);
    const control = { backoff: { initialDelayMs: 1, maxDelayMs: 1, maxRetries: 2 } };
    await assert.rejects(cursors(resumingStream(open, true, control), 10), { code: Code.Unavailable });
    assert.equal(opens.length, 3);
  });

  it("ends quietly when its signal is aborted during the backoff", async () => {
    const stop = new AbortController();
    const { open } = scripted([{ items: [event(1n)], error: new ConnectError("down", Code.Unavailable) }]);
    const control = {
      signal: stop.signal,
      backoff: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
      onRetry: () => stop.abort(),
    };
    // Full jitter may draw a tiny delay; the abort ends the loop either way.
    assert.deepEqual(await cursors(resumingStream(open, false, control), 10), [1n]);
  });
});
