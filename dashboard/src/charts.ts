// Small SVG charts: bars, lines over time and a gauge. Sizes are in the viewBox, so each
// chart scales to its card; every mark carries a <title> for its exact figure.

import { h, svg } from "./dom.js";

const W = 420;
const H = 180;
const PAD = { left: 60, right: 10, top: 10, bottom: 28 };

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function frame(max: number, format: (v: number) => string): SVGElement[] {
  const inner = H - PAD.top - PAD.bottom;
  return [0, 0.5, 1].flatMap((f) => {
    const y = PAD.top + inner * (1 - f);
    return [
      svg("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: y, y2: y }),
      svg("text", { x: PAD.left - 4, y: y + 4, "text-anchor": "end" }, format(max * f)),
    ];
  });
}

export interface Bar {
  label: string;
  value: number;
  bad?: boolean;
}

/** Vertical bars with their labels under them. */
export function barChart(title: string, bars: Bar[], format: (v: number) => string = String): HTMLElement {
  const max = niceMax(Math.max(0, ...bars.map((b) => b.value)));
  const inner = H - PAD.top - PAD.bottom;
  const slot = (W - PAD.left - PAD.right) / Math.max(1, bars.length);
  const marks = bars.flatMap((b, i) => {
    const height = (b.value / max) * inner;
    const x = PAD.left + i * slot + slot * 0.15;
    return [
      svg("rect", { class: b.bad ? "bar bar-bad" : "bar", x, y: PAD.top + inner - height, width: slot * 0.7, height },
        svg("title", {}, `${b.label}: ${format(b.value)}`)),
      svg("text", { x: x + slot * 0.35, y: H - PAD.bottom + 14, "text-anchor": "middle" }, b.label.slice(0, 14)),
    ];
  });
  return card(title, bars.length ? svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title },
    ...frame(max, format), ...marks) : h("p", { class: "muted" }, "No data in this window."));
}

export interface Series {
  name: string;
  className: string;
  points: { t: number; value: number }[];
}

/** Lines over time, sharing one axis. */
export function lineChart(title: string, series: Series[], format: (v: number) => string): HTMLElement {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return card(title, h("p", { class: "muted" }, "No data in this window."));
  const t0 = Math.min(...all.map((p) => p.t));
  const t1 = Math.max(...all.map((p) => p.t));
  const max = niceMax(Math.max(...all.map((p) => p.value)));
  const inner = H - PAD.top - PAD.bottom;
  const x = (t: number): number => PAD.left + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v: number): number => PAD.top + inner * (1 - v / max);
  const when = (t: number): string => new Date(t).toISOString().slice(5, 16).replace("T", " ");
  const lines = series.flatMap((s) => {
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.value).toFixed(1)}`).join("");
    return [
      svg("path", { class: s.className, d }, svg("title", {}, s.name)),
      ...s.points.map((p) => svg("circle", { class: s.className, cx: x(p.t), cy: y(p.value), r: 2.5 },
        svg("title", {}, `${s.name} ${when(p.t)}: ${format(p.value)}`))),
    ];
  });
  const legend = series.map((s, i) =>
    svg("text", { x: PAD.left + 8 + i * 70, y: PAD.top + 12 }, s.name));
  return card(title, svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title },
    ...frame(max, format), ...lines, ...legend,
    svg("text", { x: PAD.left, y: H - 8 }, when(t0)),
    svg("text", { x: W - PAD.right, y: H - 8, "text-anchor": "end" }, when(t1))));
}

/** A half-circle gauge of a 0–100 score. */
export function gauge(title: string, score: number, word: string): HTMLElement {
  const r = 70;
  const cx = 100;
  const cy = 90;
  const angle = Math.PI * (1 - Math.max(0, Math.min(100, score)) / 100);
  const end = `${(cx + r * Math.cos(angle)).toFixed(1)},${(cy - r * Math.sin(angle)).toFixed(1)}`;
  const tone = score >= 75 ? "ok" : score >= 50 ? "warn" : "bad";
  return card(title, svg("svg", { class: "chart", viewBox: "0 0 200 120", role: "img", "aria-label": `${title}: ${score}` },
    svg("path", { class: "gauge-track", d: `M${cx - r},${cy} A${r},${r} 0 0 1 ${cx + r},${cy}` }),
    score > 0 ? svg("path", { class: `gauge-value ${tone}`, d: `M${cx - r},${cy} A${r},${r} 0 0 1 ${end}` }) : null,
    svg("text", { class: "gauge-label", x: cx, y: cy - 8, "text-anchor": "middle", id: "health-score" }, score),
    svg("text", { x: cx, y: cy + 20, "text-anchor": "middle" }, word)));
}

function card(title: string, body: Node): HTMLElement {
  return h("div", { class: "card" }, h("h2", {}, title), body);
}
