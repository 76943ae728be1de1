// View 1: deliveries as the status stream reports them, newest change first, filtered
// by endpoint, event type and outcome; a pause holds new events until resumed.

import { StatusEventKind } from "../gen/herald/v1/herald_pb.js";
import { enumWord, formatMs, formatTime } from "./api.js";
import { h, show } from "./dom.js";
import { type Feed, OUTCOMES, type Row, eventTypeMatches } from "./feed.js";

export function liveView(main: HTMLElement, feed: Feed): () => void {
  const endpoint = h("select", { id: "filter-endpoint" });
  const eventType = h("input", { id: "filter-event-type", placeholder: "order.* or order.created" });
  const outcome = h("select", { id: "filter-outcome" }, h("option", { value: "" }, "any"),
    ...OUTCOMES.map((o) => h("option", { value: o }, o)));
  const pause = h("button", { id: "pause", type: "button", class: "secondary" });
  pause.addEventListener("click", () => (feed.paused ? feed.resume() : feed.pause()));
  const status = h("div", { class: "status-line", id: "live-status" });
  const body = h("tbody", { id: "live-rows" });
  const endpointEvents = h("tbody");
  const gap = h("div", { class: "notice", hidden: true },
    "The stream resumed from a cursor no longer retained: events older than the retention were skipped, and the feed continued from the newest.");

  show(main,
    h("h1", {}, "Live deliveries"),
    h("div", { class: "toolbar" },
      h("label", {}, "Endpoint", endpoint),
      h("label", {}, "Event type", eventType),
      h("label", {}, "Outcome", outcome),
      pause),
    status, gap,
    h("table", {},
      h("thead", {}, h("tr", {},
        h("th", {}, "Updated"), h("th", {}, "Message"), h("th", {}, "Endpoint"),
        h("th", {}, "Event type"), h("th", {}, "Outcome"), h("th", { class: "num" }, "Attempt"),
        h("th", { class: "num" }, "Status"), h("th", { class: "num" }, "Latency"), h("th", {}, "Error"))),
      body),
    h("h2", {}, "Endpoint events"),
    h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Time"), h("th", {}, "Endpoint"), h("th", {}, "Event"), h("th", {}, "Detail"))),
      endpointEvents));

  const visible = (row: Row): boolean =>
    (!endpoint.value || row.endpointId === endpoint.value) &&
    eventTypeMatches(eventType.value, row.eventType) &&
    (!outcome.value || row.outcome === outcome.value);

  const render = (): void => {
    const state = feed.connection === "live"
      ? "live"
      : feed.connection === "reconnecting"
        ? `reconnecting (${feed.problem})`
        : feed.connection;
    status.textContent = `Stream: ${state}` +
      (feed.cursor === undefined ? "" : ` · cursor ${feed.cursor}`) +
      (feed.paused ? ` · paused, ${feed.held.length} new event${feed.held.length === 1 ? "" : "s"} held` : "");
    status.dataset["connection"] = feed.connection;
    pause.textContent = feed.paused ? `Resume (${feed.held.length})` : "Pause";
    gap.hidden = !feed.gap;

    const endpoints = new Set<string>();
    for (const row of feed.rows.values()) endpoints.add(row.endpointId);
    const chosen = endpoint.value;
    const options = ["", ...[...endpoints].sort()];
    if (options.join("\n") !== [...endpoint.options].map((o) => o.value).join("\n")) {
      show(endpoint, ...options.map((e) => h("option", { value: e }, e || "any")));
      endpoint.value = options.includes(chosen) ? chosen : "";
    }

    const rows = [...feed.rows.values()].reverse().filter(visible);
    show(body, ...rows.map((row) =>
      h("tr", { "data-message": row.messageId, "data-endpoint": row.endpointId, "data-outcome": row.outcome },
        h("td", {}, formatTime(row.event.time)),
        h("td", { class: "mono" }, h("a", { href: `#/message/${encodeURIComponent(row.messageId)}` }, row.messageId)),
        h("td", {}, row.endpointId),
        h("td", {}, row.eventType),
        h("td", { class: `outcome outcome-${row.outcome.replace(" ", "-")}` }, row.outcome),
        h("td", { class: "num" }, row.attempt || ""),
        h("td", { class: "num" }, row.statusCode || ""),
        h("td", { class: "num" }, formatMs(row.latencyMs)),
        h("td", {}, row.error))));
    if (rows.length === 0) {
      show(body, h("tr", {}, h("td", { colspan: 9, class: "muted" },
        feed.rows.size ? "No delivery matches the filters." : "Waiting for deliveries…")));
    }
    show(endpointEvents, ...feed.endpointEvents.map((e) =>
      h("tr", {},
        h("td", {}, formatTime(e.time)),
        h("td", {}, e.endpointId),
        h("td", {}, enumWord(StatusEventKind[e.kind])),
        h("td", {}, e.error || formatTime(e.nextAttemptTime)))));
  };

  // Many events can arrive at once: draw at most once a frame.
  let scheduled = false;
  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      render();
    });
  };
  for (const input of [endpoint, eventType, outcome]) input.addEventListener("input", render);
  render();
  return feed.subscribe(schedule);
}
