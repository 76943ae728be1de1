// The client's TLS options against a live Herald serving TLS with client-certificate
// authentication (mTLS): a throwaway CA made with the openssl CLI signs the server's
// certificate (for 127.0.0.1 and localhost) and a client certificate. A client that
// trusts the CA and presents its certificate is served; one without a certificate is
// refused.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { HeraldClient, HeraldError } from "../src/index.js";
import { type Herald, startHerald } from "./herald-process.js";

/** The openssl CLI; OpenSSL 3 (for `-addext` and `-newkey ec` with `-pkeyopt`). */
const OPENSSL = process.env["OPENSSL"] ?? "/usr/bin/openssl";

/** Deadline of the calls in this file: a refused handshake must not hang the test. */
const CALL_TIMEOUT_MS = 5_000;

interface Pki {
  readonly dir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

/** Runs openssl in `dir`, bounded, failing with its stderr. */
function openssl(dir: string, args: readonly string[]): void {
  execFileSync(OPENSSL, args, { cwd: dir, timeout: 20_000, stdio: ["ignore", "ignore", "pipe"] });
}

/** A CA, a server certificate for 127.0.0.1 / localhost, and a client certificate (P-256). */
function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), "herald-ts-tls-"));
  const path = (name: string) => join(dir, name);
  openssl(dir, [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1", "-subj", "/CN=herald test CA",
    "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  const leaf = (name: string, cn: string, extensions: string) => {
    writeFileSync(path(`${name}.ext`), extensions);
    openssl(dir, [
      "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", `${name}-key.pem`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`,
    ]);
    openssl(dir, [
      "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca-key.pem",
      "-set_serial", `0x${Date.now().toString(16)}${name === "server" ? "01" : "02"}`,
      "-days", "1", "-sha256", "-extfile", `${name}.ext`, "-out", `${name}.pem`,
    ]);
  };
  const common = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n";
  leaf(
    "server",
    "localhost",
    `${common}extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n`,
  );
  leaf("client", "herald ts client", `${common}extendedKeyUsage=clientAuth\n`);
  return {
    dir,
    caCert: path("ca.pem"),
    serverCert: path("server.pem"),
    serverKey: path("server-key.pem"),
    clientCert: path("client.pem"),
    clientKey: path("client-key.pem"),
  };
}

describe("HeraldClient over TLS with client certificates", { timeout: 60_000 }, () => {
  let pki: Pki;
  let herald: Herald;
  const clients: HeraldClient[] = [];

  before(async () => {
    pki = makePki();
    herald = await startHerald({
      WEBHOOK_TLS_CERT: pki.serverCert,
      WEBHOOK_TLS_KEY: pki.serverKey,
      WEBHOOK_TLS_CLIENT_CA: pki.caCert,
    });
  });

  after(async () => {
    for (const c of clients) c.close();
    if (herald !== undefined && herald.child.exitCode === null && herald.child.signalCode === null) {
      const exited = once(herald.child, "exit");
      herald.child.kill("SIGTERM");
      const timer = setTimeout(() => herald.child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    if (pki !== undefined) rmSync(pki.dir, { recursive: true, force: true });
  });

  const connect = (withClientCert: boolean) => {
    const client = new HeraldClient({
      address: herald.grpc,
      apiKey: herald.adminKey,
      tenant: "ts-tls",
      timeoutMs: CALL_TIMEOUT_MS,
      tls: {
        ca: readFileSync(pki.caCert),
        ...(withClientCert ? { cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) } : {}),
      },
    });
    clients.push(client);
    return client;
  };

  it("serves a client that trusts the CA and presents its certificate", async () => {
    const client = connect(true);
    const { endpoint, secret } = await client.registerEndpoint({
      endpointId: "tls-1",
      url: "http://127.0.0.1:9/hook",
    });
    assert.equal(endpoint?.id, "tls-1");
    assert.equal(endpoint?.tenantId, "ts-tls");
    assert.ok(secret.startsWith("whsec_"));
    assert.equal((await client.getEndpoint("tls-1")).id, "tls-1");
  });

  it("refuses a client without a certificate", async () => {
    const client = connect(false);
    const started = Date.now();
    const error = await client
      .registerEndpoint({ endpointId: "tls-2", url: "http://127.0.0.1:9/hook" })
      .then(
        () => assert.fail("the call succeeded without a client certificate"),
        (e: unknown) => e,
      );
    assert.ok(error instanceof HeraldError, `not a HeraldError: ${String(error)}`);
    // The server's TLS alert ("certificate required"), not some other failure.
    assert.match(error.message, /certificate/i);
    assert.ok(Date.now() - started < CALL_TIMEOUT_MS + 5_000, "the refusal was not bounded");
    // Nothing was registered by the refused call.
    await assert.rejects(connect(true).getEndpoint("tls-2"), { name: "HeraldError" });
  });
});
