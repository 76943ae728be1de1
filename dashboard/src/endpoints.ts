// View 2: every endpoint with its live protection state (circuit, attempts in flight,
// rate-limit use, failing since) and the actions a write-scoped credential may take.
// A refused call is shown as the server phrased it; a credential found to lack the
// write scope has those actions turned off for the rest of the session.

import { Code } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  CircuitState,
  DisabledReason,
  type Endpoint,
} from "../gen/herald/v1/herald_pb.js";
import { type Herald, describeError, durationMs, enumWord, formatMs, formatTime, isCode } from "./api.js";
import { h, show } from "./dom.js";

/** Scopes a call was refused for in this session. */
export const refusedScopes = new Set<string>();

export function endpointsView(main: HTMLElement, herald: Herald, tenant: string): void {
  const message = h("div", { id: "endpoints-message" });
  const body = h("tbody", { id: "endpoint-rows" });
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh");
  show(main,
    h("h1", {}, "Endpoints"),
    h("div", { class: "toolbar" }, refresh),
    message,
    h("table", {},
      h("thead", {}, h("tr", {},
        h("th", {}, "Endpoint"), h("th", {}, "State"), h("th", {}, "Circuit"),
        h("th", { class: "num" }, "In flight"), h("th", { class: "num" }, "Rate limit used"),
        h("th", {}, "Failing since"), h("th", {}, "Actions"))),
      body));

  const say = (kind: "error" | "notice", text: string): void =>
    show(message, h("div", { class: kind, role: kind === "error" ? "alert" : "status" }, text));

  /** Runs a write call; on refusal says why and remembers a missing scope. */
  const act = async (what: string, call: () => Promise<string>): Promise<void> => {
    try {
      say("notice", await call());
      await load();
    } catch (error) {
      if (isCode(error, Code.PermissionDenied)) refusedScopes.add("write");
      say("error", `${what} was refused: ${describeError(error)}`);
      await load();
    }
  };

  const row = (e: Endpoint): HTMLTableRowElement => {
    const status = e.status;
    const writable = !refusedScopes.has("write");
    const off = writable ? {} : { disabled: true, title: "this credential lacks the write scope" };
    const toggle = h("button", { type: "button", class: "secondary", ...off }, e.enabled ? "Disable" : "Enable");
    toggle.addEventListener("click", () => void act(e.enabled ? "Disabling" : "Enabling", async () => {
      await herald.updateEndpoint({
        tenantId: tenant,
        endpoint: { id: e.id, enabled: !e.enabled },
        updateMask: { paths: ["enabled"] },
      });
      return `${e.id} ${e.enabled ? "disabled" : "enabled"}.`;
    }));
    const rotate = h("button", { type: "button", class: "secondary", ...off }, "Rotate secret");
    rotate.addEventListener("click", () => void act("Rotating the secret", async () => {
      const answer = await herald.rotateEndpointSecret({ tenantId: tenant, endpointId: e.id });
      return `New signing secret of ${e.id} (shown once): ${answer.secret}`;
    }));
    const since = h("input", { type: "datetime-local", "aria-label": `recover ${e.id} since`, ...off });
    since.value = new Date(Date.now() - 3600_000 - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    const recover = h("button", { type: "button", class: "secondary", ...off }, "Recover");
    recover.addEventListener("click", () => void act("Recovering", async () => {
      const answer = await herald.recoverEndpoint({
        tenantId: tenant,
        endpointId: e.id,
        since: timestampFromDate(new Date(since.value)),
      });
      return `${answer.requeued} failed deliveries of ${e.id} queued again.`;
    }));
    const per = formatMs(durationMs(status?.rateLimitWindow));
    return h("tr", { "data-endpoint": e.id },
      h("td", {}, h("strong", {}, e.id), h("div", { class: "muted mono" }, e.url), e.description ? h("div", {}, e.description) : null),
      h("td", { class: e.enabled ? "ok" : "bad" },
        e.enabled ? "enabled" : `disabled (${enumWord(DisabledReason[e.disabledReason]) || "manual"})`),
      h("td", { class: status?.circuitState === CircuitState.OPEN ? "bad" : "" },
        enumWord(CircuitState[status?.circuitState ?? CircuitState.UNSPECIFIED]) || "unknown",
        status?.consecutiveFailures ? h("div", { class: "muted" }, `${status.consecutiveFailures} consecutive failures`) : null,
        status?.circuitRetryTime ? h("div", { class: "muted" }, `probe at ${formatTime(status.circuitRetryTime)}`) : null),
      h("td", { class: "num" }, status?.inFlight ?? 0),
      h("td", { class: "num" }, status?.rateLimitMax
        ? `${status.rateLimitUsed} / ${status.rateLimitMax}${per ? ` per ${per}` : ""}`
        : `${status?.rateLimitUsed ?? 0} (no limit)`),
      h("td", { class: e.failingSince ? "bad" : "" }, formatTime(e.failingSince)),
      h("td", {}, h("div", { class: "actions" }, toggle, rotate, since, recover)));
  };

  const load = async (): Promise<void> => {
    try {
      const endpoints: Endpoint[] = [];
      let pageToken = "";
      do {
        const page = await herald.listEndpoints({ tenantId: tenant, pageSize: 1000, pageToken });
        endpoints.push(...page.endpoints);
        pageToken = page.nextPageToken;
      } while (pageToken);
      show(body, ...endpoints.map(row));
      if (endpoints.length === 0) show(body, h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No endpoint is registered.")));
    } catch (error) {
      say("error", `Listing endpoints was refused: ${describeError(error)}`);
    }
  };
  refresh.addEventListener("click", () => void load());
  void load();
}
