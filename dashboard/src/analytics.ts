// View 4: GetAnalytics for a chosen window (and optionally one endpoint): totals, success
// rate, latency percentiles, p50/p95/p99 and success rate over time, per-endpoint latency,
// failure kinds, status codes, the endpoints failing most, and the health score.

import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { FailureKind, type GetAnalyticsResponse, HealthStatus, type TimeBucket } from "../gen/herald/v1/herald_pb.js";
import { type Herald, describeError, enumWord, formatMs } from "./api.js";
import { barChart, gauge, lineChart } from "./charts.js";
import { type Child, h, show } from "./dom.js";

const WINDOWS: [string, number][] = [
  ["last hour", 1],
  ["last 6 hours", 6],
  ["last 24 hours", 24],
  ["last 7 days", 24 * 7],
  ["last 30 days", 24 * 30],
];

const percent = (v: number): string => `${(v * 100).toFixed(1)} %`;

export function analyticsView(main: HTMLElement, herald: Herald, tenant: string): void {
  const span = h("select", { id: "analytics-window" },
    ...WINDOWS.map(([label, hours]) => h("option", { value: hours }, label)));
  span.value = "24";
  const endpoint = h("input", { id: "analytics-endpoint", placeholder: "every endpoint" });
  const load = h("button", { type: "submit" }, "Show");
  const form = h("form", { class: "toolbar" },
    h("label", {}, "Window", span), h("label", {}, "Endpoint", endpoint), load);
  const content = h("div", { id: "analytics" });
  show(main, h("h1", {}, "Analytics"), form, content);

  const run = async (): Promise<void> => {
    const end = new Date();
    const start = new Date(end.getTime() - Number(span.value) * 3600_000);
    try {
      const report = await herald.getAnalytics({
        tenantId: tenant,
        startTime: timestampFromDate(start),
        endTime: timestampFromDate(end),
        endpointId: endpoint.value.trim(),
      });
      show(content, ...render(report));
      content.dataset["loaded"] = "true";
    } catch (error) {
      show(content, h("div", { class: "error", role: "alert" }, `Analytics were refused: ${describeError(error)}`));
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void run();
  });
  void run();
}

function render(r: GetAnalyticsResponse): Child[] {
  const t = r.totals;
  const l = r.latency;
  const figure = (label: string, value: string, id?: string): HTMLElement =>
    h("div", { class: "card" }, h("div", { class: "muted" }, label), h("div", { class: "figure", ...(id ? { id } : {}) }, value));
  const buckets: TimeBucket[] = r.daily.length ? r.daily : r.hourly;
  const per = r.daily.length ? "day" : "hour";
  const time = (b: TimeBucket): number => (b.startTime ? timestampDate(b.startTime).getTime() : 0);
  const trend = r.trend;
  return [
    h("div", { class: "cards" },
      figure("Success rate", percent(r.successRate), "success-rate"),
      figure("Attempts", String(t?.attempts ?? 0n), "attempts"),
      figure("Deliveries", String(t?.deliveries ?? 0n)),
      figure("Succeeded", String(t?.succeeded ?? 0n)),
      figure("Failed attempts", String(t?.failed ?? 0n)),
      figure("Exhausted", String(t?.exhausted ?? 0n)),
      figure("Pending now", String(t?.pending ?? 0n)),
      figure("Latency p50 / p95 / p99", `${formatMs(l?.p50Ms ?? 0)} / ${formatMs(l?.p95Ms ?? 0)} / ${formatMs(l?.p99Ms ?? 0)}`, "latency")),
    trend ? h("p", { class: "muted", id: "trend" }, trend.previousAttempts === 0n
      ? "The window before had no attempts to compare with."
      : `Against the window before: ${trend.previousAttempts} attempts (${(trend.attemptsChange * 100).toFixed(0)} % change), ` +
        `success rate ${percent(trend.previousSuccessRate)} (${(trend.successRateChange * 100).toFixed(1)} points change).`) : null,
    h("div", { class: "charts" },
      gauge("Health score", r.healthScore, enumWord(HealthStatus[r.healthStatus])),
      barChart("Latency over the window", [
        { label: "min", value: l?.minMs ?? 0 },
        { label: "avg", value: l?.avgMs ?? 0 },
        { label: "p50", value: l?.p50Ms ?? 0 },
        { label: "p95", value: l?.p95Ms ?? 0 },
        { label: "p99", value: l?.p99Ms ?? 0 },
        { label: "max", value: l?.maxMs ?? 0 },
      ].filter((b) => (t?.attempts ?? 0n) > 0n || b.value > 0), (v) => formatMs(v)),
      lineChart(`Latency per ${per}`, ([
        ["p50", "line-p50", (b: TimeBucket) => b.p50Ms],
        ["p95", "line", (b: TimeBucket) => b.p95Ms],
        ["p99", "line-p99", (b: TimeBucket) => b.p99Ms],
      ] as const).map(([name, className, of]) => ({
        name, className, points: buckets.filter((b) => b.attempts > 0n).map((b) => ({ t: time(b), value: of(b) })),
      })), (v) => formatMs(v)),
      lineChart(`Success rate per ${per}`, [
        {
          name: "success", className: "line-p50",
          points: buckets.filter((b) => b.attempts > 0n).map((b) => ({ t: time(b), value: Number(b.succeeded) / Number(b.attempts) })),
        },
      ], percent),
      barChart(`Attempts per ${per}`, buckets.filter((b) => b.attempts > 0n).slice(-24).map((b) => ({
        label: new Date(time(b)).toISOString().slice(per === "day" ? 5 : 11, per === "day" ? 10 : 16),
        value: Number(b.attempts),
        bad: b.failed > b.succeeded,
      }))),
      barChart("p95 latency per endpoint (busiest)", r.topEndpointsByVolume.map((e) => ({ label: e.endpointId, value: e.p95Ms })), (v) => formatMs(v)),
      barChart("Failures by kind", r.failureKinds.map((f) => ({ label: enumWord(FailureKind[f.kind]), value: Number(f.count), bad: true }))),
      barChart("Attempts by HTTP status", r.statusCodes.map((s) => ({ label: String(s.statusCode), value: Number(s.count), bad: s.statusCode >= 300 })))),
    h("h2", {}, "Endpoints failing most"),
    h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Endpoint"), h("th", { class: "num" }, "Attempts"), h("th", { class: "num" }, "Failed"),
        h("th", { class: "num" }, "Success rate"), h("th", { class: "num" }, "p50"), h("th", { class: "num" }, "p95"),
        h("th", { class: "num" }, "p99"))),
      h("tbody", { id: "top-failing" }, ...r.topEndpointsByFailureRate.map((e) =>
        h("tr", {},
          h("td", {}, e.endpointId),
          h("td", { class: "num" }, String(e.attempts)),
          h("td", { class: "num" }, String(e.failed)),
          h("td", { class: "num" }, percent(e.successRate)),
          ...[e.p50Ms, e.p95Ms, e.p99Ms].map((ms) => h("td", { class: "num" }, formatMs(ms))))))),
  ];
}
