// The dashboard in a real browser (Debian's chromium, driven by playwright-core) against
// a live Herald: the binary named by HERALD_BIN, started with a fresh data directory on
// ports the OS chooses, delivering to a sink in this test. The page signs in, follows a
// delivery live (paused and resumed too), opens the message, retries it, reads the
// endpoints and the analytics; a read-only key is refused a change, visibly.
// Screenshots go to UI_TEST_OUT (default: <repo>/target/ui-test).
//
// The browser loads the page through a small proxy in this test, whose port is known
// before Herald starts: that is the origin listed in WEBHOOK_CORS_ORIGINS. (Herald's own
// admin port is chosen by the OS at start, too late to be listed.) The proxy passes
// Herald's answers through unchanged, headers included; the page's gRPC-Web calls go
// straight to the gRPC port, with real CORS.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { type Browser, type Page, chromium } from "playwright-core";
import { Scope, WebhookService } from "../gen/herald/v1/herald_pb.js";

const PATIENCE_MS = 20_000;
const ADMIN_KEY = randomBytes(32).toString("base64url");
const ENDPOINT = "browser-sink";
const repo = path.resolve(import.meta.dirname, "../../..");
const out = process.env["UI_TEST_OUT"] ?? path.join(repo, "target/ui-test");

interface Listening {
  server: http.Server;
  port: number;
}

function listen(handler: http.RequestListener): Promise<Listening> {
  return new Promise((resolve) => {
    const server = http.createServer(handler);
    server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as AddressInfo).port }));
  });
}

/** Herald's `herald serving` JSON log line: its two addresses. */
function serving(child: ChildProcess): Promise<{ grpc: string; admin: string }> {
  return new Promise((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => reject(new Error(`herald did not log "herald serving":\n${log}`)), PATIENCE_MS);
    child.once("exit", (code) => reject(new Error(`herald exited (${code}) before serving:\n${log}`)));
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      log += chunk;
      for (const line of log.split("\n")) {
        if (!line.startsWith("{")) continue;
        const entry = JSON.parse(line) as Record<string, unknown>;
        const fields = (entry["fields"] ?? entry) as Record<string, unknown>;
        if (fields["message"] === "herald serving") {
          clearTimeout(timer);
          resolve({ grpc: String(fields["grpc"]), admin: String(fields["admin"]) });
        }
      }
    });
  });
}

let herald: ChildProcess;
let browser: Browser;
let page: Page;
let sink: Listening;
let proxy: Listening;
let dataDir: string;
let origin: string;
let api: ReturnType<typeof createClient<typeof WebhookService>>;
const delivered: string[] = [];
const problems: string[] = [];

before(async () => {
  const bin = process.env["HERALD_BIN"];
  assert.ok(bin, "HERALD_BIN names the Herald binary to test");
  mkdirSync(out, { recursive: true });
  sink = await listen((request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => (body += chunk));
    request.on("end", () => {
      delivered.push(String(request.headers["webhook-id"]));
      response.writeHead(200, { "content-type": "text/plain" });
      response.end(`received ${body.length} bytes`);
    });
  });
  let admin = "";
  proxy = await listen((request, response) => {
    const forwarded = http.request(
      { host: "127.0.0.1", port: Number(admin.split(":").pop()), path: request.url, method: request.method, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    forwarded.on("error", () => response.writeHead(502).end());
    request.pipe(forwarded);
  });
  origin = `http://127.0.0.1:${proxy.port}`;
  dataDir = mkdtempSync(path.join(tmpdir(), "herald-ui-"));
  herald = spawn(bin, [], {
    env: {
      ...process.env,
      WEBHOOK_LOG_FORMAT: "json",
      WEBHOOK_GRPC_ADDR: "127.0.0.1:0",
      WEBHOOK_ADMIN_ADDR: "127.0.0.1:0",
      WEBHOOK_STORAGE_TYPE: "embedded",
      WEBHOOK_DATA_DIR: dataDir,
      WEBHOOK_ADMIN_API_KEY: ADMIN_KEY,
      WEBHOOK_CORS_ORIGINS: origin,
      WEBHOOK_EGRESS_ALLOW_CIDRS: "127.0.0.0/8",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const addresses = await serving(herald);
  admin = addresses.admin;
  const bearer = `Bearer ${ADMIN_KEY}`;
  api = createClient(WebhookService, createGrpcWebTransport({
    baseUrl: `http://${addresses.grpc}`,
    interceptors: [(next) => (request) => {
      request.header.set("authorization", bearer);
      return next(request);
    }],
  }));
  await api.registerEndpoint({ endpointId: ENDPOINT, url: `http://127.0.0.1:${sink.port}/hook` });

  const executablePath = execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();
  browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(PATIENCE_MS);
  // Any script error or refused load (a CSP violation is logged as a console error) fails.
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
});

after(async () => {
  await browser?.close();
  herald?.kill("SIGTERM");
  if (herald && herald.exitCode === null) await new Promise((resolve) => herald.once("exit", resolve));
  sink?.server.close();
  proxy?.server.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function publish(n: number): Promise<string> {
  const answer = await api.publish({
    eventType: "order.created",
    payload: { case: "raw", value: { data: new TextEncoder().encode(JSON.stringify({ order: n })), contentType: "application/json" } },
  });
  assert.equal(answer.deliveryCount, 1);
  return answer.messageId;
}

async function signIn(key: string): Promise<void> {
  await page.goto(`${origin}/ui`);
  await page.locator("#api-key").fill(key);
  await page.locator("#sign-in").click();
  await page.locator('#live-status[data-connection="live"]').waitFor();
}

test("the dashboard follows, opens, retries and measures a delivery in a browser", async () => {
  await page.goto(`${origin}/ui`);
  await page.locator("#api-key").waitFor();
  await page.screenshot({ path: path.join(out, "sign-in.png") });

  // A wrong key is refused, and the form says so.
  await page.locator("#api-key").fill("hk_not.a-key");
  await page.locator("#sign-in").click();
  await page.locator("#sign-in-error .error").waitFor();
  assert.match(await page.locator("#sign-in-error").innerText(), /not accepted/);

  await signIn(ADMIN_KEY);
  const stored = await page.evaluate(() => ({
    session: sessionStorage.getItem("herald.apiKey"),
    local: localStorage.length,
    cookies: document.cookie,
  }));
  assert.deepEqual(stored, { session: ADMIN_KEY, local: 0, cookies: "" });

  // Published through the API, the delivery appears live with its outcome.
  const first = await publish(1);
  const row = page.locator(`#live-rows tr[data-message="${first}"]`);
  await page.locator(`#live-rows tr[data-message="${first}"][data-outcome="succeeded"]`).waitFor();
  assert.match(await row.innerText(), new RegExp(`${ENDPOINT}[\\s\\S]*order\\.created[\\s\\S]*succeeded[\\s\\S]*200`));
  await page.screenshot({ path: path.join(out, "live.png") });

  // Filters hide what does not match and show it again.
  await page.locator("#filter-outcome").selectOption("failed");
  await row.waitFor({ state: "detached" });
  await page.locator("#filter-outcome").selectOption("");
  await page.locator("#filter-event-type").fill("order.*");
  await row.waitFor();

  // Paused, events are held, not lost; resumed, they are applied.
  await page.locator("#pause").click();
  const second = await publish(2);
  // Both events of the delivery (started, succeeded) are held.
  await page.locator("#live-status", { hasText: "2 new events held" }).waitFor();
  assert.equal(await page.locator(`#live-rows tr[data-message="${second}"]`).count(), 0);
  await page.locator("#pause").click();
  await page.locator(`#live-rows tr[data-message="${second}"][data-outcome="succeeded"]`).waitFor();

  // The message: payload, delivery, the attempt with status, latency and excerpt.
  await row.locator("a").click();
  await page.locator("#payload").waitFor();
  assert.deepEqual(JSON.parse(await page.locator("#payload").innerText()), { order: 1 });
  const attempt = page.locator('#attempts tr[data-attempt="1"]');
  await attempt.waitFor();
  assert.match(await attempt.innerText(), /succeeded\s+200\s+[\d.]+ m?s\s+received 11 bytes/);
  await page.locator(`#deliveries tr[data-endpoint="${ENDPOINT}"][data-state="succeeded"]`).waitFor();

  // Retried, a second attempt is made and shown without reloading the page.
  await page.locator(`#deliveries tr[data-endpoint="${ENDPOINT}"] button`, { hasText: "Retry" }).click();
  await page.locator("#message-notice .notice", { hasText: "Retry of" }).waitFor();
  await page.locator('#attempts tr[data-attempt="2"]').waitFor();
  assert.equal(delivered.filter((id) => id === first).length, 2);
  await page.screenshot({ path: path.join(out, "message.png"), fullPage: true });

  // The endpoint with its live state.
  await page.locator('nav a[data-view="endpoints"]').click();
  const endpoint = page.locator(`#endpoint-rows tr[data-endpoint="${ENDPOINT}"]`);
  await endpoint.waitFor();
  assert.match(await endpoint.innerText(), /enabled[\s\S]*closed/);
  await page.screenshot({ path: path.join(out, "endpoints.png"), fullPage: true });
  // Its actions, as an admin key may take them.
  const notice = page.locator("#endpoints-message .notice");
  await endpoint.locator("button", { hasText: "Disable" }).click();
  await notice.filter({ hasText: `${ENDPOINT} disabled.` }).waitFor();
  await endpoint.filter({ hasText: "disabled (manual)" }).waitFor();
  await endpoint.locator("button", { hasText: "Enable" }).click();
  await notice.filter({ hasText: `${ENDPOINT} enabled.` }).waitFor();
  await endpoint.locator("button", { hasText: "Disable" }).waitFor();
  await endpoint.locator("button", { hasText: "Rotate secret" }).click();
  await notice.filter({ hasText: /\(shown once\): whsec_/ }).waitFor();
  await endpoint.locator("button", { hasText: "Recover" }).click();
  await notice.filter({ hasText: `0 failed deliveries of ${ENDPOINT} queued again.` }).waitFor();
  assert.match(await endpoint.innerText(), /enabled[\s\S]*closed/);

  // Analytics over the last 24 hours count the three attempts, all succeeded.
  await page.locator('nav a[data-view="analytics"]').click();
  await page.locator('#analytics[data-loaded="true"]').waitFor();
  assert.equal(await page.locator("#attempts").innerText(), "3");
  assert.equal(await page.locator("#success-rate").innerText(), "100.0 %");
  assert.equal(await page.locator("#health-score").textContent(), "100");
  assert.equal(await page.locator("#trend").innerText(), "The window before had no attempts to compare with.");
  assert.ok((await page.locator("svg.chart").count()) >= 5);
  await page.screenshot({ path: path.join(out, "analytics.png"), fullPage: true });

  // Signing out forgets the key.
  await page.locator("#sign-out").click();
  await page.locator("#api-key").waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
});

test("a change the key may not make is refused, saying which scope it lacks", async () => {
  const created = await api.createApiKey({ name: "read only", scopes: [Scope.READ] });
  await signIn(created.token);
  await page.locator('nav a[data-view="endpoints"]').click();
  const endpoint = page.locator(`#endpoint-rows tr[data-endpoint="${ENDPOINT}"]`);
  await endpoint.locator("button", { hasText: "Disable" }).click();
  const refusal = page.locator("#endpoints-message .error");
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /PERMISSION_DENIED: the credential lacks the write scope/);
  // The endpoint is unchanged, and the page no longer offers the change.
  await endpoint.locator("button", { hasText: "Disable" }).and(page.locator("[disabled]")).waitFor();
  assert.match(await endpoint.innerText(), /enabled/);
  await page.screenshot({ path: path.join(out, "refused.png"), fullPage: true });
  assert.deepEqual(problems, []);
});
