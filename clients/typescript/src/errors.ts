/**
 * The one error type of the client: a failed call with its status code and the
 * `google.rpc` details Herald sent (`grpc-status-details-bin`), decoded.
 *
 * Callers branch on `code` and on the details, never on the message text: a
 * `BadRequest` names each invalid field, `RetryInfo` says when to try again, and
 * `ErrorInfo` gives a stable `reason` (`MISSING_SCOPE`, `CONSUMER_TOO_SLOW`,
 * `CURSOR_NOT_RETAINED`, …) with its context.
 */

import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  type FieldViolation,
  QuotaFailureSchema,
  type QuotaViolation,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "./rpc-details.js";

export { Code };

/** Herald's `ErrorInfo` as plain data. */
export interface HeraldErrorInfo {
  readonly reason: string;
  readonly domain: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** The resource a `NOT_FOUND` or `ALREADY_EXISTS` is about. */
export interface HeraldResourceInfo {
  readonly resourceType: string;
  readonly resourceName: string;
  readonly description: string;
}

/** A call Herald refused, or that could not reach it. */
export class HeraldError extends Error {
  override readonly name = "HeraldError";
  /** The gRPC status code (`Code.InvalidArgument`, `Code.Unavailable`, …). */
  readonly code: Code;
  /** The status message without the code prefix. */
  readonly rawMessage: string;
  /** Every invalid field, from a `BadRequest`; empty when none was sent. */
  readonly fieldViolations: readonly Pick<FieldViolation, "field" | "description">[];
  /** How long to wait before trying again, from a `RetryInfo`. */
  readonly retryDelayMs: number | undefined;
  /** Why, as a stable reason, from an `ErrorInfo`. */
  readonly errorInfo: HeraldErrorInfo | undefined;
  /** What was missing or already there, from a `ResourceInfo`. */
  readonly resourceInfo: HeraldResourceInfo | undefined;
  /** Which quota was exceeded, from a `QuotaFailure`. */
  readonly quotaViolations: readonly Pick<QuotaViolation, "subject" | "description">[];

  constructor(cause: ConnectError) {
    super(`${Code[cause.code] ?? cause.code}: ${cause.rawMessage}`, { cause });
    this.code = cause.code;
    this.rawMessage = cause.rawMessage;
    this.fieldViolations = cause
      .findDetails(BadRequestSchema)
      .flatMap((b) => b.fieldViolations)
      .map(({ field, description }) => ({ field, description }));
    const retry = cause.findDetails(RetryInfoSchema)[0]?.retryDelay;
    this.retryDelayMs =
      retry === undefined ? undefined : Number(retry.seconds) * 1000 + Math.floor(retry.nanos / 1e6);
    const info = cause.findDetails(ErrorInfoSchema)[0];
    this.errorInfo =
      info === undefined
        ? undefined
        : { reason: info.reason, domain: info.domain, metadata: { ...info.metadata } };
    const resource = cause.findDetails(ResourceInfoSchema)[0];
    this.resourceInfo =
      resource === undefined
        ? undefined
        : {
            resourceType: resource.resourceType,
            resourceName: resource.resourceName,
            description: resource.description,
          };
    this.quotaViolations = cause
      .findDetails(QuotaFailureSchema)
      .flatMap((q) => q.violations)
      .map(({ subject, description }) => ({ subject, description }));
  }

  /** Any thrown value as a `HeraldError` (an abort or a network failure included). */
  static from(reason: unknown): HeraldError {
    return reason instanceof HeraldError ? reason : new HeraldError(ConnectError.from(reason));
  }
}
