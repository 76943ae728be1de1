// HeraldError decodes the google.rpc details that arrive in grpc-status-details-bin.

import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, it } from "node:test";
import { HeraldError } from "../src/errors.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  QuotaFailureSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "../src/rpc-details.js";

/** A detail as it comes off the wire: a type name and its encoded bytes. */
function incoming(desc: Parameters<typeof toBinary>[0], init: Record<string, unknown>) {
  return { type: desc.typeName, value: toBinary(desc, create(desc, init)) };
}

/** A status as connect parses it from a response, details still encoded. */
function wireError(message: string, code: Code, details: ReturnType<typeof incoming>[]): ConnectError {
  const error = new ConnectError(message, code);
  error.details.push(...details);
  return error;
}

describe("HeraldError", () => {
  it("carries the field violations of a BadRequest", () => {
    const wire = wireError("event_type: invalid", Code.InvalidArgument, [
      incoming(BadRequestSchema, {
        fieldViolations: [
          { field: "event_type", description: "must match [a-z0-9_.-]+" },
          { field: "channels[0]", description: "empty" },
        ],
      }),
    ]);
    const error = HeraldError.from(wire);
    assert.equal(error.code, Code.InvalidArgument);
    assert.equal(error.rawMessage, "event_type: invalid");
    assert.deepEqual(error.fieldViolations, [
      { field: "event_type", description: "must match [a-z0-9_.-]+" },
      { field: "channels[0]", description: "empty" },
    ]);
    assert.equal(error.retryDelayMs, undefined);
    assert.ok(error instanceof Error);
    assert.equal(error.cause, wire);
  });

  it("carries a RetryInfo's delay and an ErrorInfo's reason", () => {
    const wire = wireError("too slow", Code.ResourceExhausted, [
      incoming(ErrorInfoSchema, {
        reason: "CONSUMER_TOO_SLOW",
        domain: "herald.v1",
        metadata: { resume_after_cursor: "42" },
      }),
      incoming(RetryInfoSchema, { retryDelay: create(DurationSchema, { seconds: 1n, nanos: 500_000_000 }) }),
    ]);
    const error = HeraldError.from(wire);
    assert.equal(error.retryDelayMs, 1500);
    assert.deepEqual(error.errorInfo, {
      reason: "CONSUMER_TOO_SLOW",
      domain: "herald.v1",
      metadata: { resume_after_cursor: "42" },
    });
  });

  it("carries ResourceInfo and QuotaFailure", () => {
    const wire = wireError("nope", Code.NotFound, [
      incoming(ResourceInfoSchema, { resourceType: "endpoint", resourceName: "ep_1", description: "gone" }),
      incoming(QuotaFailureSchema, { violations: [{ subject: "tenant:a", description: "at most 1" }] }),
    ]);
    const error = HeraldError.from(wire);
    assert.deepEqual(error.resourceInfo, {
      resourceType: "endpoint",
      resourceName: "ep_1",
      description: "gone",
    });
    assert.deepEqual(error.quotaViolations, [{ subject: "tenant:a", description: "at most 1" }]);
  });

  it("wraps anything thrown, keeping a HeraldError as it is", () => {
    const error = HeraldError.from(new Error("socket hang up"));
    assert.equal(error.code, Code.Unknown);
    assert.deepEqual(error.fieldViolations, []);
    assert.equal(HeraldError.from(error), error);
  });
});
