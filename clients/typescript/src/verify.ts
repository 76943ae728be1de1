/**
 * Receiver-side check of Standard Webhooks signatures, as Herald signs every request.
 *
 * Pure and self-contained: it imports only `node:crypto`, never gRPC, so a receiving
 * service can use `@herald-webhooks/client/verify` without the client's transport.
 * The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, the key the base64
 * part of the `whsec_` secret; the `webhook-signature` header holds one or more
 * `v1,<base64 HMAC-SHA256>` separated by spaces (two while a rotated-out secret still
 * signs), and any one of them matching is enough.
 */

import { createHmac, timingSafeEqual } from "node:crypto";

/** Why a webhook was refused. */
export type VerificationErrorKind =
  /** The timestamp is further than the tolerance from the receiver's clock. */
  | "stale"
  /** No `v1` signature in the header matches the body and the secret. */
  | "no_match"
  /** A header is missing or the timestamp is not an integer. */
  | "malformed";

/** A webhook that must not be trusted; `kind` says why. */
export class WebhookVerificationError extends Error {
  override readonly name = "WebhookVerificationError";

  constructor(
    readonly kind: VerificationErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Request headers in the shapes receivers have at hand: a fetch `Headers`, Node's
 * `IncomingHttpHeaders`, or a plain record. Names are matched without case.
 */
export type WebhookHeaders =
  { get(name: string): string | null } | Readonly<Record<string, string | readonly string[] | undefined>>;

/** What a verified webhook says about itself. */
export interface VerifiedWebhook {
  /** The `webhook-id`: the same on every retry of one delivery, for de-duplication. */
  readonly id: string;
  /** When Herald signed it. */
  readonly timestamp: Date;
}

/** Five minutes, the tolerance the Standard Webhooks specification recommends. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

const SECRET_PREFIX = "whsec_";
const TIMESTAMP = /^[0-9]{1,15}$/;

/**
 * Checks that `body` was signed with `secret` by the sender of `headers`, recently.
 *
 * `body` must be the exact bytes received (a string is taken as UTF-8). `now` is for
 * tests; a receiver leaves it to the clock.
 *
 * @throws {WebhookVerificationError} `malformed` when a header is missing or the
 *   timestamp is not an integer, `stale` when it is more than `toleranceSeconds` from
 *   `now`, `no_match` when no signature matches.
 * @throws {TypeError} when `secret` is not a base64 key (with or without `whsec_`).
 */
export function verify(
  secret: string,
  headers: WebhookHeaders,
  body: Uint8Array | string,
  toleranceSeconds: number = DEFAULT_TOLERANCE_SECONDS,
  now: Date = new Date(),
): VerifiedWebhook {
  const key = secretKey(secret);
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (id === undefined || timestamp === undefined || signatures === undefined) {
    throw new WebhookVerificationError(
      "malformed",
      "webhook-id, webhook-timestamp and webhook-signature are all required",
    );
  }
  if (!TIMESTAMP.test(timestamp)) {
    throw new WebhookVerificationError(
      "malformed",
      `webhook-timestamp is not an integer number of seconds: ${JSON.stringify(timestamp)}`,
    );
  }
  const signedAt = Number(timestamp);
  const skew = Math.abs(Math.floor(now.getTime() / 1000) - signedAt);
  if (skew > toleranceSeconds) {
    throw new WebhookVerificationError(
      "stale",
      `webhook-timestamp is ${skew} s from now, beyond the tolerance of ${toleranceSeconds} s`,
    );
  }

  const expected = createHmac("sha256", key)
    .update(`${id}.${timestamp}.`)
    .update(typeof body === "string" ? Buffer.from(body, "utf8") : body)
    .digest();
  for (const entry of signatures.split(" ")) {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1") {
      continue; // another scheme's signature: not ours to judge
    }
    const candidate = Buffer.from(entry.slice(comma + 1), "base64");
    // The length of an HMAC-SHA256 is public; only equal lengths are compared.
    if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) {
      return { id, timestamp: new Date(signedAt * 1000) };
    }
  }
  throw new WebhookVerificationError("no_match", "no v1 signature matches the body");
}

function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = Buffer.from(encoded, "base64");
  if (key.length === 0 || key.toString("base64").replace(/=+$/, "") !== encoded.replace(/=+$/, "")) {
    throw new TypeError("the signing secret is not base64 (expected whsec_<base64>)");
  }
  return key;
}

function header(headers: WebhookHeaders, name: string): string | undefined {
  if ("get" in headers && typeof headers.get === "function") {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  for (const [key, value] of Object.entries(record)) {
    if (key.toLowerCase() === name) {
      return typeof value === "string" ? value : value?.join(" ");
    }
  }
  return undefined;
}
