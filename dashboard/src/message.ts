// View 3: one message: its payload (unless expunged), its delivery to every endpoint,
// and every attempt with status, latency and the receiver's response excerpt; retry
// one delivery or replay the message to every endpoint that matches it now.

import { Code } from "@connectrpc/connect";
import { toJsonString } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  AttemptErrorKind,
  type Attempt,
  type Delivery,
  DeliveryState,
  type Message,
} from "../gen/herald/v1/herald_pb.js";
import { type Herald, describeError, durationMs, enumWord, formatMs, formatTime, isCode } from "./api.js";
import { h, show } from "./dom.js";
import { refusedScopes } from "./endpoints.js";
import type { Feed } from "./feed.js";

function payloadText(message: Message): string {
  if (message.payloadJson) return toJsonString(ValueSchema, message.payloadJson, { prettySpaces: 2 });
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(message.payload);
  } catch {
    return `${message.payload.length} bytes of ${message.contentType} (not text)`;
  }
}

/** Shows message `id`, read again whenever the live feed reports a change to it. */
export function messageView(main: HTMLElement, herald: Herald, feed: Feed, tenant: string, id: string): () => void {
  const input = h("input", { id: "message-id", placeholder: "msg_…", value: id, size: 40 });
  const open = h("button", { type: "submit" }, "Open");
  const form = h("form", { class: "toolbar" }, h("label", {}, "Message id", input), open);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/message/${encodeURIComponent(input.value.trim())}`;
  });
  const notice = h("div", { id: "message-notice" });
  const content = h("div", { id: "message" });
  show(main, h("h1", {}, "Message"), form, notice, content);
  if (!id) return () => {};

  const say = (kind: "error" | "notice", text: string): void =>
    show(notice, h("div", { class: kind, role: kind === "error" ? "alert" : "status" }, text));
  const act = async (what: string, call: () => Promise<string>): Promise<void> => {
    try {
      say("notice", await call());
    } catch (error) {
      if (isCode(error, Code.PermissionDenied)) refusedScopes.add("write");
      say("error", `${what} was refused: ${describeError(error)}`);
    }
    await load();
  };
  const off = (): Record<string, string | boolean> =>
    refusedScopes.has("write") ? { disabled: true, title: "this credential lacks the write scope" } : {};

  const load = async (): Promise<void> => {
    let message: Message | undefined;
    const deliveries: Delivery[] = [];
    const attempts: Attempt[] = [];
    try {
      let pageToken = "";
      do {
        const page = await herald.getMessage({ tenantId: tenant, messageId: id, pageToken });
        message = page.message;
        deliveries.push(...page.deliveries);
        pageToken = page.nextPageToken;
      } while (pageToken);
      do {
        const page = await herald.listAttempts({ tenantId: tenant, messageId: id, pageSize: 1000, pageToken });
        attempts.push(...page.attempts);
        pageToken = page.nextPageToken;
      } while (pageToken);
    } catch (error) {
      show(content);
      say("error", `Reading ${id} was refused: ${describeError(error)}`);
      return;
    }
    if (!message) return;

    const replay = h("button", { type: "button", id: "replay", ...off() }, "Replay to every matching endpoint");
    replay.addEventListener("click", () => void act("Replaying", async () => {
      const answer = await herald.replayMessage({ tenantId: tenant, messageId: id });
      return `Replayed: ${answer.deliveryCount} deliveries queued.`;
    }));
    const m = message;
    show(content,
      h("table", { class: "facts" }, h("tbody", {},
        h("tr", {}, h("th", {}, "Id"), h("td", { class: "mono" }, m.id)),
        h("tr", {}, h("th", {}, "Event type"), h("td", {}, m.eventType)),
        h("tr", {}, h("th", {}, "Published"), h("td", {}, formatTime(m.createTime))),
        h("tr", {}, h("th", {}, "Content type"), h("td", {}, m.contentType)),
        m.channels.length ? h("tr", {}, h("th", {}, "Channels"), h("td", {}, m.channels.join(", "))) : null,
        m.idempotencyKey ? h("tr", {}, h("th", {}, "Idempotency key"), h("td", {}, m.idempotencyKey)) : null,
        m.expireTime ? h("tr", {}, h("th", {}, "Kept until"), h("td", {}, formatTime(m.expireTime))) : null)),
      h("h2", {}, "Payload"),
      m.expungeTime
        ? h("div", { class: "notice", id: "payload" }, `The payload was expunged at ${formatTime(m.expungeTime)}.`)
        : h("pre", { id: "payload" }, payloadText(m)),
      h("h2", {}, "Deliveries"),
      h("div", { class: "toolbar" }, replay),
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Endpoint"), h("th", {}, "State"), h("th", { class: "num" }, "Attempts"),
          h("th", {}, "Next attempt"), h("th", {}, "Updated"), h("th", {}, ""))),
        h("tbody", { id: "deliveries" }, ...deliveries.map((d) => {
          const retry = h("button", { type: "button", class: "secondary", ...off() }, "Retry");
          retry.addEventListener("click", () => void act("Retrying", async () => {
            const answer = await herald.retryDelivery({ tenantId: tenant, messageId: id, endpointId: d.endpointId });
            return `Retry of ${d.endpointId} queued (attempt ${(answer.delivery?.attemptCount ?? 0) + 1} next).`;
          }));
          const state = enumWord(DeliveryState[d.state]);
          return h("tr", { "data-endpoint": d.endpointId, "data-state": state },
            h("td", {}, d.endpointId),
            h("td", { class: `outcome outcome-${state.replace(" ", "-")}` }, state),
            h("td", { class: "num" }, d.attemptCount),
            h("td", {}, formatTime(d.nextAttemptTime)),
            h("td", {}, formatTime(d.updateTime)),
            h("td", {}, retry));
        }))),
      h("h2", {}, "Attempts"),
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", { class: "num" }, "#"), h("th", {}, "Endpoint"), h("th", {}, "Started"),
          h("th", {}, "Outcome"), h("th", { class: "num" }, "Status"), h("th", { class: "num" }, "Latency"),
          h("th", {}, "Error"), h("th", {}, "Response excerpt"))),
        h("tbody", { id: "attempts" }, ...attempts.map((a) =>
          h("tr", { "data-attempt": a.attemptNumber, "data-endpoint": a.endpointId },
            h("td", { class: "num" }, a.attemptNumber),
            h("td", {}, a.endpointId),
            h("td", {}, formatTime(a.startTime)),
            h("td", { class: a.succeeded ? "ok" : "bad" }, a.succeeded ? "succeeded" : "failed"),
            h("td", { class: "num" }, a.statusCode || ""),
            h("td", { class: "num" }, formatMs(durationMs(a.latency))),
            h("td", {}, a.error || (a.errorKind ? enumWord(AttemptErrorKind[a.errorKind]) : "")),
            h("td", {}, a.responseExcerpt ? h("code", {}, a.responseExcerpt) : ""))))));
  };
  // Reads again when the feed shows a newer event of this message, one read at a time.
  let seen = 0n;
  let loading: Promise<void> | undefined;
  let again = false;
  const newest = (): bigint => {
    let cursor = 0n;
    for (const row of feed.rows.values()) {
      if (row.messageId === id && row.event.cursor > cursor) cursor = row.event.cursor;
    }
    return cursor;
  };
  const reload = (): void => {
    if (loading) {
      again = true;
      return;
    }
    loading = load().finally(() => {
      loading = undefined;
      if (again) {
        again = false;
        reload();
      }
    });
  };
  seen = newest();
  reload();
  return feed.subscribe(() => {
    const cursor = newest();
    if (cursor > seen) {
      seen = cursor;
      reload();
    }
  });
}
