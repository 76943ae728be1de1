/**
 * `HeraldClient`: a thin layer over the generated `WebhookService` stubs.
 *
 * It owns the connection (native gRPC over HTTP/2, optional TLS and client
 * certificate, keepalive pings), the credential (`authorization: Bearer <key>` on every
 * call), the default tenant, a deadline on every unary call, paging, and the error
 * conversion to `HeraldError`. Request and response messages are the generated types;
 * every RPC the wrapper does not cover is on `stub`, with the same connection and
 * credential.
 */

import { create, fromJson, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { type Duration, DurationSchema, FieldMaskSchema, ValueSchema } from "@bufbuild/protobuf/wkt";
import { type CallOptions, type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  type DeliveryStatusEvent,
  type Endpoint,
  type EndpointSchema,
  type GetMessageResponse,
  GetMessageResponseSchema,
  type PublishBatchResult,
  type PublishRequestSchema,
  type PublishResponse,
  type RegisterEndpointRequestSchema,
  type RegisterEndpointResponse,
  type RotateEndpointSecretResponse,
  type StreamDeliveryStatusRequestSchema,
  WebhookService,
} from "../gen/herald/v1/herald_pb.js";
import { HeraldError } from "./errors.js";
import { resumingStream, type WatchControl } from "./watch.js";

/** Certificates for a TLS connection, PEM-encoded. */
export interface TlsOptions {
  /** Trusted roots for the server's certificate; the system's when unset. */
  readonly ca?: string | Buffer;
  /** A client certificate and its key, for servers that require one. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** The name to check the server's certificate against, when not the address's host. */
  readonly serverName?: string;
}

export interface HeraldClientOptions {
  /** `host:port`, or a URL `http://host:port` / `https://host:port`. */
  readonly address: string;
  /** Sent as `authorization: Bearer <apiKey>` on every call. */
  readonly apiKey?: string;
  /** The tenant of every request that names none; the credential's own when unset. */
  readonly tenant?: string;
  /** TLS (`true` for the system's roots); plain text when unset, unless the URL is https. */
  readonly tls?: boolean | TlsOptions;
  /** Deadline of each unary call. Default 10 s. The status stream has none. */
  readonly timeoutMs?: number;
  /** Interval of HTTP/2 keepalive pings, which also detect a dead connection. Default 30 s. */
  readonly keepaliveMs?: number;
}

/** One event to publish: a JSON value, or exact bytes with their content type. */
export type PublishInput = {
  /** Dotted lowercase name, `[a-z0-9_.-]`: `invoice.paid`. */
  readonly eventType: string;
  /** Publishing twice with the same key creates nothing the second time. */
  readonly idempotencyKey?: string;
  /** Only endpoints subscribed to one of these channels (or to none) receive it. */
  readonly channels?: readonly string[];
  readonly metadata?: Readonly<Record<string, string>>;
  readonly tenantId?: string;
} & ({ readonly json: JsonValue } | { readonly data: Uint8Array | string; readonly contentType?: string });

/** What `watch` filters on; the cursor and retries are in `WatchControl`. */
export type WatchFilter = Omit<
  MessageInitShape<typeof StreamDeliveryStatusRequestSchema>,
  "afterCursor" | "$typeName"
>;

export type RegisterEndpointInput = Omit<MessageInitShape<typeof RegisterEndpointRequestSchema>, "$typeName">;

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_KEEPALIVE_MS = 30_000;

/** A connection to Herald. Close it when done, or its socket keeps the process alive. */
export class HeraldClient {
  /** The generated client, for every RPC; carries the credential, not the default tenant. */
  readonly stub: Client<typeof WebhookService>;
  private readonly session: Http2SessionManager;
  private readonly tenant: string;
  private readonly timeoutMs: number;

  constructor(options: HeraldClientOptions) {
    const baseUrl = baseUrlOf(options.address, options.tls !== undefined && options.tls !== false);
    const tls = typeof options.tls === "object" ? options.tls : {};
    const keepalive = options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
    this.session = new Http2SessionManager(
      baseUrl,
      { pingIntervalMs: keepalive, pingTimeoutMs: Math.min(keepalive, 15_000), pingIdleConnection: false },
      {
        ...(tls.ca === undefined ? {} : { ca: tls.ca }),
        ...(tls.cert === undefined ? {} : { cert: tls.cert }),
        ...(tls.key === undefined ? {} : { key: tls.key }),
        ...(tls.serverName === undefined ? {} : { servername: tls.serverName }),
      },
    );
    const interceptors: Interceptor[] = [];
    const apiKey = options.apiKey;
    if (apiKey !== undefined) {
      interceptors.push((next) => (request) => {
        request.header.set("authorization", `Bearer ${apiKey}`);
        return next(request);
      });
    }
    this.stub = createClient(
      WebhookService,
      createGrpcTransport({ baseUrl, sessionManager: this.session, interceptors }),
    );
    this.tenant = options.tenant ?? "";
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Closes the connection; calls under way fail. */
  close(): void {
    this.session.abort();
  }

  /**
   * Publishes one event.
   *
   * @throws {HeraldError} `InvalidArgument` with its field violations, `ResourceExhausted`
   *   with a retry delay when the server or the key's rate limit is saturated, …
   */
  async publish(event: PublishInput, options?: CallOptions): Promise<PublishResponse> {
    return this.unary((o) => this.stub.publish(this.publishRequest(event), o), options);
  }

  /** Publishes up to 1,000 events; each gets its own result, in order. */
  async publishBatch(events: readonly PublishInput[], options?: CallOptions): Promise<PublishBatchResult[]> {
    const requests = events.map((event) => this.publishRequest(event));
    return (await this.unary((o) => this.stub.publishBatch({ requests }, o), options)).results;
  }

  /** Creates an endpoint; the response holds its signing secret, shown only here. */
  async registerEndpoint(
    endpoint: RegisterEndpointInput,
    options?: CallOptions,
  ): Promise<RegisterEndpointResponse> {
    const request = { ...endpoint, tenantId: this.tenantOr(endpoint.tenantId) };
    return this.unary((o) => this.stub.registerEndpoint(request, o), options);
  }

  async getEndpoint(endpointId: string, options?: CallOptions & { tenantId?: string }): Promise<Endpoint> {
    const request = { endpointId, tenantId: this.tenantOr(options?.tenantId) };
    const { endpoint } = await this.unary((o) => this.stub.getEndpoint(request, o), options);
    return required(endpoint, "GetEndpoint");
  }

  /** Every endpoint of the tenant, fetching pages as the iteration goes. */
  async *listEndpoints(
    options?: CallOptions & { tenantId?: string; allTenants?: boolean; pageSize?: number },
  ): AsyncGenerator<Endpoint, void, undefined> {
    const request = {
      pageSize: options?.pageSize ?? 0,
      allTenants: options?.allTenants ?? false,
      tenantId: options?.allTenants === true ? "" : this.tenantOr(options?.tenantId),
    };
    const pages = this.pages(
      (pageToken, o) => this.stub.listEndpoints({ ...request, pageToken }, o),
      options,
    );
    for await (const page of pages) {
      yield* page.endpoints;
    }
  }

  /** Replaces the `fields` of the endpoint named by `endpoint.id` (e.g. `["url", "enabled"]`). */
  async updateEndpoint(
    endpoint: Omit<MessageInitShape<typeof EndpointSchema>, "$typeName"> & { id: string },
    fields: readonly string[],
    options?: CallOptions & { tenantId?: string },
  ): Promise<Endpoint> {
    const request = {
      endpoint,
      updateMask: create(FieldMaskSchema, { paths: [...fields] }),
      tenantId: this.tenantOr(options?.tenantId),
    };
    return required(
      (await this.unary((o) => this.stub.updateEndpoint(request, o), options)).endpoint,
      "UpdateEndpoint",
    );
  }

  /** Deletes an endpoint; returns how many pending deliveries were cancelled. */
  async deleteEndpoint(endpointId: string, options?: CallOptions & { tenantId?: string }): Promise<number> {
    const request = { endpointId, tenantId: this.tenantOr(options?.tenantId) };
    return (await this.unary((o) => this.stub.deleteEndpoint(request, o), options)).cancelledDeliveries;
  }

  /**
   * Issues a new signing secret. The current one keeps signing beside it for
   * `gracePeriodMs` (the server's default when unset, 0 to stop at once).
   */
  async rotateEndpointSecret(
    endpointId: string,
    options?: CallOptions & { tenantId?: string; gracePeriodMs?: number },
  ): Promise<RotateEndpointSecretResponse> {
    const request = {
      endpointId,
      tenantId: this.tenantOr(options?.tenantId),
      ...(options?.gracePeriodMs === undefined ? {} : { gracePeriod: duration(options.gracePeriodMs) }),
    };
    return this.unary((o) => this.stub.rotateEndpointSecret(request, o), options);
  }

  /**
   * A message with the state of its delivery to every endpoint: the server's pages
   * followed and their deliveries joined in endpoint order (`nextPageToken` empty). The
   * deadline is each page's.
   */
  async getMessage(
    messageId: string,
    options?: CallOptions & { tenantId?: string },
  ): Promise<GetMessageResponse> {
    const request = { messageId, tenantId: this.tenantOr(options?.tenantId) };
    const answer = create(GetMessageResponseSchema);
    const pages = this.pages((pageToken, o) => this.stub.getMessage({ ...request, pageToken }, o), options);
    for await (const page of pages) {
      // The same message on every page.
      answer.message = page.message;
      answer.deliveries.push(...page.deliveries);
    }
    return answer;
  }

  /**
   * Status events as they happen, for as long as the caller iterates: reconnects by
   * itself from the last cursor with backoff and never yields an event twice. With
   * `untilSettled` and a `messageId`, ends once that message is settled everywhere.
   *
   * @throws {HeraldError} from the iteration, for what reconnecting cannot fix: an
   *   invalid filter, a missing scope, a cursor no longer retained (`OutOfRange`).
   */
  watch(
    filter: WatchFilter = {},
    control: WatchControl = {},
  ): AsyncGenerator<DeliveryStatusEvent, void, undefined> {
    const base = { ...filter, tenantId: filter.allTenants === true ? "" : this.tenantOr(filter.tenantId) };
    return resumingStream(
      (afterCursor, signal) =>
        this.stub.streamDeliveryStatus(afterCursor === undefined ? base : { ...base, afterCursor }, {
          signal,
        }),
      filter.untilSettled === true,
      control,
    );
  }

  private publishRequest(event: PublishInput): MessageInitShape<typeof PublishRequestSchema> {
    const payload =
      "json" in event
        ? { case: "json" as const, value: fromJson(ValueSchema, event.json) }
        : {
            case: "raw" as const,
            value: {
              data: typeof event.data === "string" ? new TextEncoder().encode(event.data) : event.data,
              contentType: event.contentType ?? "",
            },
          };
    return {
      eventType: event.eventType,
      payload,
      idempotencyKey: event.idempotencyKey ?? "",
      channels: [...(event.channels ?? [])],
      metadata: { ...event.metadata },
      tenantId: this.tenantOr(event.tenantId),
    };
  }

  private tenantOr(tenantId: string | undefined): string {
    return tenantId === undefined || tenantId === "" ? this.tenant : tenantId;
  }

  /** Every page of a paged call, asking for the next while the answer names one. */
  private async *pages<T extends { nextPageToken: string }>(
    call: (pageToken: string, options: CallOptions) => Promise<T>,
    options: CallOptions | undefined,
  ): AsyncGenerator<T, void, undefined> {
    let pageToken = "";
    do {
      const page = await this.unary((o) => call(pageToken, o), options);
      yield page;
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
  }

  /** Runs one unary call with the default deadline, failing with a `HeraldError`. */
  private async unary<T>(
    call: (options: CallOptions) => Promise<T>,
    options: CallOptions | undefined,
  ): Promise<T> {
    try {
      return await call({ timeoutMs: this.timeoutMs, ...options });
    } catch (reason) {
      throw HeraldError.from(reason);
    }
  }
}

function baseUrlOf(address: string, tls: boolean): string {
  if (/^https?:\/\//.test(address)) {
    return address;
  }
  return `${tls ? "https" : "http"}://${address}`;
}

function duration(ms: number): Duration {
  return create(DurationSchema, {
    seconds: BigInt(Math.floor(ms / 1000)),
    nanos: Math.round((ms % 1000) * 1e6),
  });
}

function required<T>(value: T | undefined, rpc: string): T {
  if (value === undefined) {
    throw new Error(`${rpc} answered without its resource`);
  }
  return value;
}
