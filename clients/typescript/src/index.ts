/**
 * Herald's TypeScript client.
 *
 * Layout:
 * - `client.ts`: `HeraldClient`, the connection and one method per use (publish,
 *   endpoints, messages, `watch`), over the generated stubs in `gen/`.
 * - `watch.ts`: the status stream that resumes from its last cursor by itself.
 * - `errors.ts`: `HeraldError`, a failed call with its decoded `google.rpc` details.
 * - `rpc-details.ts`: the descriptors of those details (`BadRequest`, `RetryInfo`, …).
 * - `verify.ts`: the receiver's Standard Webhooks signature check; no gRPC inside, also
 *   importable alone as `@herald-webhooks/client/verify`.
 */

export {
  HeraldClient,
  type HeraldClientOptions,
  type PublishInput,
  type RegisterEndpointInput,
  type TlsOptions,
  type WatchFilter,
} from "./client.js";
export { Code, HeraldError, type HeraldErrorInfo, type HeraldResourceInfo } from "./errors.js";
export type { WatchBackoff, WatchControl, WatchRetry } from "./watch.js";
export {
  DEFAULT_TOLERANCE_SECONDS,
  verify,
  type VerificationErrorKind,
  type VerifiedWebhook,
  type WebhookHeaders,
  WebhookVerificationError,
} from "./verify.js";
export * from "../gen/herald/v1/herald_pb.js";
