// The client against a live Herald (the binary named by HERALD_BIN): register, publish,
// receive and verify the webhook, watch it settle across a dropped connection, and see
// a field violation come back as a HeraldError.
//
// The client reaches Herald through a TCP relay that the test can cut, so the dropped
// stream is a real broken connection, not a cancelled call.

import assert from "node:assert/strict";
import { createServer as createHttpServer, type IncomingHttpHeaders } from "node:http";
import { type AddressInfo, createConnection, createServer as createTcpServer, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import {
  Code,
  HeraldClient,
  HeraldError,
  StatusEventKind,
  verify,
  WebhookVerificationError,
} from "../src/index.js";
import { DeliveryState, type DeliveryStatusEvent } from "../gen/herald/v1/herald_pb.js";
import { type Herald, startHerald } from "./herald-process.js";

/** Every wait in this file is bounded by this. */
const DEADLINE_MS = 30_000;

/** Polls `check` until it returns a value, or fails after `DEADLINE_MS`. */
async function eventually<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + DEADLINE_MS;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const value = await check();
      if (value !== undefined) {
        return value;
      }
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`, { cause: last });
}

/** A TCP relay to `target` whose open connections can be cut at once. */
async function startRelay(target: string) {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(":")),
    Number(target.slice(target.lastIndexOf(":") + 1)),
  ];
  const open = new Set<Socket>();
  let cuts = 0;
  const server = createTcpServer((inbound) => {
    const outbound = createConnection({ host, port });
    for (const [a, b] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      open.add(a);
      a.pipe(b);
      a.on("error", () => b.destroy());
      a.on("close", () => {
        open.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Destroys every connection through the relay; new ones are still accepted. */
    cut(): number {
      cuts += open.size;
      for (const socket of open) socket.destroy();
      return cuts;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** The webhook receiver: answers 200 to everything and keeps what it got. */
async function startReceiver() {
  const received: Received[] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe("HeraldClient against a live Herald", { timeout: 120_000 }, () => {
  let herald: Herald;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let client: HeraldClient;

  before(async () => {
    herald = await startHerald();
    relay = await startRelay(herald.grpc);
    receiver = await startReceiver();
    client = new HeraldClient({ address: relay.address, apiKey: herald.adminKey, tenant: "ts-live" });
  });

  after(async () => {
    client?.close();
    await relay?.close();
    await receiver?.close();
    herald?.child.kill("SIGTERM");
  });

  it("delivers a verified webhook and watches it settle across a dropped stream", async () => {
    const { endpoint, secret } = await client.registerEndpoint({
      url: receiver.url,
      eventTypes: ["order.*"],
      description: "the test's receiver",
    });
    assert.ok(endpoint !== undefined && secret.startsWith("whsec_"));
    assert.equal(endpoint.tenantId, "ts-live");

    const stop = AbortSignal.timeout(DEADLINE_MS);
    const retries: bigint[] = [];
    // From the first cursor: every event of this endpoint on a fresh server, none missed.
    const events = client.watch(
      { endpointIds: [endpoint.id] },
      { afterCursor: 0n, signal: stop, onRetry: (r) => retries.push(r.afterCursor ?? -1n) },
    );
    const seen: DeliveryStatusEvent[] = [];
    const settle = async (messageId: string) => {
      for (;;) {
        const next = await events.next();
        assert.ok(next.done !== true, `the watch ended before ${messageId} settled`);
        seen.push(next.value);
        const e = next.value;
        if (e.messageId === messageId && e.kind === StatusEventKind.ATTEMPT_SUCCEEDED) return;
      }
    };

    const first = await client.publish({ eventType: "order.paid", json: { order: 1, total: 9.5 } });
    assert.equal(first.deliveryCount, 1);
    const delivery = await eventually("the webhook", async () => receiver.received[0]);
    assert.deepEqual(JSON.parse(delivery.body.toString("utf8")), { order: 1, total: 9.5 });
    assert.equal(verify(secret, delivery.headers, delivery.body).id, delivery.headers["webhook-id"]);
    assert.throws(
      () => verify(secret, delivery.headers, Buffer.concat([delivery.body, Buffer.from(" ")])),
      (e: unknown) => e instanceof WebhookVerificationError && e.kind === "no_match",
    );
    await settle(first.messageId);

    // Cut the connection under the open stream, then let a second message settle
    // entirely while the watcher is away: it must come back in the resumed stream.
    assert.ok(relay.cut() > 0, "the relay had no connection to cut");
    const second = await eventually("a publish after the cut", () =>
      client.publish({
        eventType: "order.paid",
        data: '{"order":2}',
        contentType: "application/json",
        idempotencyKey: "order-2",
      }),
    );
    await eventually("the second message to settle", async () => {
      const { deliveries } = await client.getMessage(second.messageId);
      return deliveries.every((d) => d.state === DeliveryState.SUCCEEDED) && deliveries.length === 1
        ? true
        : undefined;
    });
    await settle(second.messageId);
    await events.return();

    assert.ok(retries.length >= 1, "the watch never had to resume");
    const cursors = seen.map((e) => e.cursor);
    assert.deepEqual(
      cursors,
      [...new Set(cursors)].sort((a, b) => (a < b ? -1 : 1)),
      "an event came twice or out of order",
    );
    for (const id of [first.messageId, second.messageId]) {
      const kinds = seen.filter((e) => e.messageId === id).map((e) => e.kind);
      assert.deepEqual(
        kinds,
        [StatusEventKind.ATTEMPT_STARTED, StatusEventKind.ATTEMPT_SUCCEEDED],
        `events of ${id}`,
      );
    }

    // A finite watch of one message ends by itself once it is settled.
    const settled: StatusEventKind[] = [];
    for await (const e of client.watch(
      { messageId: first.messageId, untilSettled: true },
      { afterCursor: 0n, signal: stop },
    )) {
      settled.push(e.kind);
    }
    assert.deepEqual(settled, [StatusEventKind.ATTEMPT_STARTED, StatusEventKind.ATTEMPT_SUCCEEDED]);
  });

  it("lists every endpoint across pages", async () => {
    const ids = new Set<string>();
    for (const n of [1, 2, 3]) {
      const { endpoint } = await client.registerEndpoint({
        endpointId: `paged-${n}`,
        url: receiver.url,
        tenantId: "ts-paging",
      });
      ids.add(endpoint!.id);
    }
    const listed = [];
    for await (const e of client.listEndpoints({ tenantId: "ts-paging", pageSize: 2 })) listed.push(e.id);
    assert.deepEqual(new Set(listed), ids);

    const updated = await client.updateEndpoint(
      { id: "paged-1", description: "renamed", tenantId: "ts-paging" },
      ["description"],
      { tenantId: "ts-paging" },
    );
    assert.equal(updated.description, "renamed");
    const rotated = await client.rotateEndpointSecret("paged-1", { tenantId: "ts-paging", gracePeriodMs: 0 });
    assert.ok(rotated.secret.startsWith("whsec_"));
    assert.equal(await client.deleteEndpoint("paged-1", { tenantId: "ts-paging" }), 0);
    await assert.rejects(client.getEndpoint("paged-1", { tenantId: "ts-paging" }), {
      name: "HeraldError",
      code: Code.NotFound,
    });
  });

  it("surfaces a field violation through HeraldError", async () => {
    const error = await client.publish({ eventType: "bad type!", json: {} }).then(
      () => assert.fail("the publish was accepted"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof HeraldError);
    assert.equal(error.code, Code.InvalidArgument);
    const violation = error.fieldViolations.find((v) => v.field === "event_type");
    assert.ok(violation, `no event_type violation in ${JSON.stringify(error.fieldViolations)}`);
    assert.ok(violation.description.length > 0);
  });
});
