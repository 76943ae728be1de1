// The live feed without a browser: a scripted status stream that breaks off, to check
// that the feed resumes after the last cursor it saw, never applies an event twice, and
// holds events while paused without losing one.

import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  DeliveryStatusEventSchema,
  HeartbeatSchema,
  StatusEventKind,
  type StreamDeliveryStatusRequest,
  type StreamDeliveryStatusResponse,
  StreamDeliveryStatusResponseSchema,
} from "../gen/herald/v1/herald_pb.js";
import type { Herald } from "../src/api.js";
import { Feed } from "../src/feed.js";

function event(cursor: bigint, messageId: string, kind: StatusEventKind): StreamDeliveryStatusResponse {
  return create(StreamDeliveryStatusResponseSchema, {
    item: {
      case: "event",
      value: create(DeliveryStatusEventSchema, {
        cursor, messageId, kind, endpointId: "ep", eventType: "order.created", attemptNumber: 1,
        statusCode: kind === StatusEventKind.ATTEMPT_SUCCEEDED ? 200 : 0,
      }),
    },
  });
}

function heartbeat(cursor: bigint): StreamDeliveryStatusResponse {
  return create(StreamDeliveryStatusResponseSchema, { item: { case: "heartbeat", value: create(HeartbeatSchema, { cursor }) } });
}

/** Streams that send their items, then end with `error` (or stay open when none). */
function scripted(calls: { items: StreamDeliveryStatusResponse[]; error?: ConnectError }[]) {
  const requests: Partial<StreamDeliveryStatusRequest>[] = [];
  const herald = {
    async *streamDeliveryStatus(request: Partial<StreamDeliveryStatusRequest>, options: { signal: AbortSignal }) {
      requests.push(request);
      const call = calls.shift();
      if (!call) {
        await new Promise((resolve) => options.signal.addEventListener("abort", resolve));
        return;
      }
      yield* call.items;
      if (call.error) throw call.error;
      await new Promise((resolve) => options.signal.addEventListener("abort", resolve));
    },
  } as unknown as Herald;
  return { herald, requests };
}

function until(feed: Feed, condition: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out")), 10_000);
    const check = (): void => {
      if (condition()) {
        clearTimeout(timer);
        stop();
        resolve();
      }
    };
    const stop = feed.subscribe(check);
    check();
  });
}

test("a broken stream resumes after its last cursor, with no duplicate", async () => {
  const { herald, requests } = scripted([
    {
      items: [heartbeat(5n), event(6n, "m1", StatusEventKind.ATTEMPT_STARTED), event(7n, "m1", StatusEventKind.ATTEMPT_SUCCEEDED)],
      error: new ConnectError("connection reset", Code.Unavailable),
    },
    // The server resumes after 7; an event it sends twice is applied once.
    { items: [event(7n, "m1", StatusEventKind.ATTEMPT_STARTED), event(8n, "m2", StatusEventKind.ATTEMPT_STARTED)] },
  ]);
  const feed = new Feed(herald, "acme", () => assert.fail("not unauthenticated"));
  feed.start();
  await until(feed, () => feed.rows.size === 2);
  feed.stop();
  assert.deepEqual(requests, [{ tenantId: "acme" }, { tenantId: "acme", afterCursor: 7n }]);
  assert.equal(feed.cursor, 8n);
  assert.equal(feed.rows.get("m1\u0000ep")?.outcome, "succeeded");
  assert.equal(feed.rows.get("m1\u0000ep")?.statusCode, 200);
  assert.equal(feed.rows.get("m2\u0000ep")?.outcome, "in flight");
});

test("a pause holds events in order and loses none", async () => {
  const { herald } = scripted([
    { items: [event(1n, "m1", StatusEventKind.ATTEMPT_STARTED)], error: new ConnectError("cut off", Code.ResourceExhausted) },
    {
      items: [
        event(2n, "m1", StatusEventKind.ATTEMPT_FAILED),
        event(3n, "m1", StatusEventKind.RETRY_SCHEDULED),
        event(4n, "m1", StatusEventKind.DELIVERY_EXHAUSTED),
      ],
    },
  ]);
  const feed = new Feed(herald, "", () => assert.fail("not unauthenticated"));
  feed.start();
  await until(feed, () => feed.rows.size === 1);
  feed.pause();
  await until(feed, () => feed.held.length === 3);
  assert.equal(feed.rows.get("m1\u0000ep")?.outcome, "in flight");
  feed.resume();
  feed.stop();
  assert.equal(feed.held.length, 0);
  assert.equal(feed.rows.get("m1\u0000ep")?.outcome, "failed");
  assert.equal(feed.rows.get("m1\u0000ep")?.event.cursor, 4n);
});

test("a cursor no longer retained starts again from now, and says so", async () => {
  const { herald, requests } = scripted([
    { items: [event(10n, "m1", StatusEventKind.ATTEMPT_STARTED)], error: new ConnectError("gone", Code.Unavailable) },
    { items: [], error: new ConnectError("cursor 10 is no longer retained", Code.OutOfRange) },
    { items: [heartbeat(40n), event(41n, "m2", StatusEventKind.ATTEMPT_STARTED)] },
  ]);
  const feed = new Feed(herald, "", () => assert.fail("not unauthenticated"));
  feed.start();
  await until(feed, () => feed.rows.size === 2);
  feed.stop();
  assert.deepEqual(requests.map((r) => r.afterCursor), [undefined, 10n, undefined]);
  assert.equal(feed.gap, true);
});
