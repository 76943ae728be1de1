// The gRPC-Web client of the gRPC port, with the credential on every call, and the
// words the page uses for the API's errors and values.

import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { type Duration, type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { WebhookService } from "../gen/herald/v1/herald_pb.js";

export type Herald = Client<typeof WebhookService>;

/** What the admin port tells the page (`/ui/config.json`). */
export interface PageConfig {
  /** The gRPC port's base URL, as this page reaches it. */
  grpcUrl: string;
}

export async function pageConfig(): Promise<PageConfig> {
  const response = await fetch("/ui/config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`/ui/config.json answered ${response.status}`);
  return (await response.json()) as PageConfig;
}

export function connect(config: PageConfig, apiKey: string): Herald {
  const bearer: Interceptor = (next) => (request) => {
    request.header.set("authorization", `Bearer ${apiKey}`);
    return next(request);
  };
  return createClient(
    WebhookService,
    createGrpcWebTransport({ baseUrl: config.grpcUrl, interceptors: [bearer] }),
  );
}

/** `PERMISSION_DENIED` from `PermissionDenied`. */
export function codeName(code: Code): string {
  return (Code[code] ?? String(code)).replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** A refused or failed call, as the operator should read it. */
export function describeError(error: unknown): string {
  const e = ConnectError.from(error);
  // A browser hides why a cross-origin call failed; the usual reason is CORS.
  const hint = e.code === Code.Unknown && /fetch/i.test(e.rawMessage)
    ? ` (the gRPC port could not be reached from this page: is its origin, ${location.origin}, listed in WEBHOOK_CORS_ORIGINS?)`
    : "";
  return `${codeName(e.code)}: ${e.rawMessage}${hint}`;
}

export function isCode(error: unknown, code: Code): boolean {
  return ConnectError.from(error).code === code;
}

export function formatTime(t: Timestamp | undefined): string {
  if (!t) return "";
  return timestampDate(t).toISOString().replace("T", " ").replace("Z", "");
}

export function durationMs(d: Duration | undefined): number | undefined {
  if (!d) return undefined;
  return Number(d.seconds) * 1000 + d.nanos / 1e6;
}

export function formatMs(ms: number | undefined): string {
  if (ms === undefined) return "";
  return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** An enum value's name (generated without its type prefix) as a word: `half open`. */
export function enumWord(name: string | undefined): string {
  return (name ?? "").replace(/_/g, " ").toLowerCase();
}
