// Every shared signature vector against `verify`, plus the header shapes receivers have.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { verify, WebhookVerificationError } from "../src/verify.js";

interface Vector {
  name: string;
  secret: string;
  headers: Record<string, string>;
  body_base64: string;
  now: number;
  tolerance_seconds: number;
  valid: boolean;
  error: "stale" | "no_match" | "malformed" | null;
}

// Compiled to dist/tests/: the vectors are three levels up, beside this client.
const vectors = (
  JSON.parse(readFileSync(new URL("../../../conformance/signatures.json", import.meta.url), "utf8")) as {
    vectors: Vector[];
  }
).vectors;

const spec = vectors[0]!;

describe("verify: the shared conformance vectors", () => {
  it("has vectors to check", () => assert.ok(vectors.length >= 18));
  for (const v of vectors) {
    it(v.name, () => {
      const body = Buffer.from(v.body_base64, "base64");
      const check = () => verify(v.secret, v.headers, body, v.tolerance_seconds, new Date(v.now * 1000));
      if (v.valid) {
        const verified = check();
        assert.equal(verified.id, v.headers["webhook-id"]);
      } else {
        assert.throws(check, (e: unknown) => e instanceof WebhookVerificationError && e.kind === v.error);
      }
    });
  }
});

describe("verify: header shapes and inputs", () => {
  const body = Buffer.from(spec.body_base64, "base64");
  const now = new Date(spec.now * 1000);

  it("takes a fetch Headers object", () => {
    const headers = new Headers(spec.headers);
    assert.equal(verify(spec.secret, headers, body, 300, now).timestamp.getTime(), spec.now * 1000);
  });

  it("matches header names without case", () => {
    const upper = Object.fromEntries(Object.entries(spec.headers).map(([k, v]) => [k.toUpperCase(), v]));
    verify(spec.secret, upper, body, 300, now);
  });

  it("takes the body as a UTF-8 string", () => {
    verify(spec.secret, spec.headers, body.toString("utf8"), 300, now);
  });

  it("takes the secret without its whsec_ prefix", () => {
    verify(spec.secret.slice("whsec_".length), spec.headers, body, 300, now);
  });

  it("refuses a secret that is not base64", () => {
    assert.throws(() => verify("whsec_not base64!", spec.headers, body, 300, now), TypeError);
  });

  it("says which header is wrong", () => {
    const { ["webhook-id"]: _, ...withoutId } = spec.headers;
    assert.throws(() => verify(spec.secret, withoutId, body, 300, now), /webhook-id/);
  });
});

describe("verify: usable without gRPC", () => {
  it("imports nothing but node:crypto", () => {
    const compiled = readFileSync(new URL("../src/verify.js", import.meta.url), "utf8");
    const imports = [...compiled.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
    assert.deepEqual(imports, ["node:crypto"]);
  });
});
