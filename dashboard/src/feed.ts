// The live status feed: one StreamDeliveryStatus call kept open while the operator is
// signed in, resumed after a disconnect from the last cursor it saw (events and heartbeats
// both carry one), so nothing is missed and nothing is shown twice. While paused, events
// are held in order and applied on resume.

import { Code } from "@connectrpc/connect";
import {
  type DeliveryStatusEvent,
  StatusEventKind,
} from "../gen/herald/v1/herald_pb.js";
import { type Herald, describeError, durationMs, isCode } from "./api.js";

/** Deliveries kept in the table; the oldest go first. */
const MAX_ROWS = 500;
/** Endpoint events (disabled, circuit opened…) kept. */
const MAX_ENDPOINT_EVENTS = 50;
const RETRY_DELAYS_MS = [500, 1000, 2000, 5000, 10000];

export type Outcome = "in flight" | "succeeded" | "retrying" | "failed" | "cancelled";
export const OUTCOMES: Outcome[] = ["in flight", "succeeded", "retrying", "failed", "cancelled"];

/** One delivery (a message to an endpoint) as its latest event shows it. */
export interface Row {
  messageId: string;
  endpointId: string;
  eventType: string;
  outcome: Outcome;
  attempt: number;
  statusCode: number;
  latencyMs: number | undefined;
  error: string;
  event: DeliveryStatusEvent;
}

function outcomeOf(kind: StatusEventKind, previous: Outcome | undefined): Outcome | undefined {
  switch (kind) {
    case StatusEventKind.ATTEMPT_STARTED:
      return "in flight";
    case StatusEventKind.ATTEMPT_SUCCEEDED:
      return "succeeded";
    case StatusEventKind.ATTEMPT_FAILED:
    case StatusEventKind.RETRY_SCHEDULED:
      return previous === "failed" ? previous : "retrying";
    case StatusEventKind.DELIVERY_EXHAUSTED:
      return "failed";
    case StatusEventKind.DELIVERY_CANCELLED:
      return "cancelled";
    default:
      return undefined;
  }
}

export type Connection = "connecting" | "live" | "reconnecting" | "stopped";

export class Feed {
  readonly rows = new Map<string, Row>();
  readonly endpointEvents: DeliveryStatusEvent[] = [];
  /** The newest cursor applied or held: where a reconnect resumes. */
  cursor: bigint | undefined;
  paused = false;
  readonly held: DeliveryStatusEvent[] = [];
  connection: Connection = "connecting";
  /** Why the stream last ended, while reconnecting. */
  problem = "";
  /** Set when a resume found its cursor no longer retained. */
  gap = false;
  private readonly abort = new AbortController();
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly herald: Herald,
    private readonly tenant: string,
    private readonly onUnauthenticated: () => void,
  ) {}

  start(): void {
    void this.run();
  }

  stop(): void {
    this.connection = "stopped";
    this.abort.abort();
    this.listeners.clear();
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  pause(): void {
    this.paused = true;
    this.changed();
  }

  resume(): void {
    this.paused = false;
    for (const event of this.held.splice(0)) this.apply(event);
    this.changed();
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  /** Takes one event from the stream: never one already seen. */
  private receive(event: DeliveryStatusEvent): void {
    if (this.cursor !== undefined && event.cursor <= this.cursor) return;
    this.cursor = event.cursor;
    if (this.paused) {
      this.held.push(event);
    } else {
      this.apply(event);
    }
  }

  private apply(event: DeliveryStatusEvent): void {
    if (!event.messageId) {
      this.endpointEvents.unshift(event);
      this.endpointEvents.length = Math.min(this.endpointEvents.length, MAX_ENDPOINT_EVENTS);
      return;
    }
    const key = `${event.messageId}\u0000${event.endpointId}`;
    const previous = this.rows.get(key);
    const outcome = outcomeOf(event.kind, previous?.outcome);
    if (!outcome) return;
    const finished = event.kind !== StatusEventKind.ATTEMPT_STARTED;
    const row: Row = {
      messageId: event.messageId,
      endpointId: event.endpointId,
      eventType: event.eventType || previous?.eventType || "",
      outcome,
      attempt: event.attemptNumber || previous?.attempt || 0,
      statusCode: finished && event.statusCode ? event.statusCode : (previous?.statusCode ?? 0),
      latencyMs: durationMs(event.latency) ?? previous?.latencyMs,
      error: event.error || (finished ? "" : (previous?.error ?? "")),
      event,
    };
    // The most recently changed delivery comes first.
    this.rows.delete(key);
    this.rows.set(key, row);
    if (this.rows.size > MAX_ROWS) {
      const oldest = this.rows.keys().next().value;
      if (oldest !== undefined) this.rows.delete(oldest);
    }
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        const request = {
          tenantId: this.tenant,
          ...(this.cursor === undefined ? {} : { afterCursor: this.cursor }),
        };
        for await (const response of this.herald.streamDeliveryStatus(request, {
          signal: this.abort.signal,
        })) {
          if (this.connection !== "live") {
            this.connection = "live";
            this.problem = "";
          }
          failures = 0;
          const item = response.item;
          if (item.case === "event") {
            this.receive(item.value);
          } else if (item.case === "heartbeat") {
            if (this.cursor === undefined || item.value.cursor > this.cursor) {
              this.cursor = item.value.cursor;
            }
          }
          this.changed();
        }
        this.problem = "the stream ended";
      } catch (error) {
        if (this.abort.signal.aborted) return;
        if (isCode(error, Code.Unauthenticated)) {
          this.onUnauthenticated();
          return;
        }
        if (isCode(error, Code.OutOfRange)) {
          // The cursor is no longer retained: start again from now, and say so.
          this.cursor = undefined;
          this.gap = true;
        }
        this.problem = describeError(error);
      }
      this.connection = "reconnecting";
      this.changed();
      const delay = RETRY_DELAYS_MS[Math.min(failures, RETRY_DELAYS_MS.length - 1)] ?? 1000;
      failures += 1;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** Whether `eventType` matches a filter of exact names and `prefix.*` wildcards. */
export function eventTypeMatches(filter: string, eventType: string): boolean {
  const f = filter.trim();
  if (!f) return true;
  if (f.endsWith(".*")) return eventType.startsWith(f.slice(0, -1));
  return eventType === f;
}
