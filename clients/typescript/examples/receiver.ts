// Receiving webhooks: WEBHOOK_SECRET=whsec_… node dist/examples/receiver.js
import { createServer } from "node:http";
import { verify, WebhookVerificationError } from "@herald-webhooks/client/verify";

const secret = process.env["WEBHOOK_SECRET"] ?? "";

createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks); // the exact bytes: never re-serialised JSON
    try {
      const { id } = verify(secret, req.headers, body);
      console.log(`webhook ${id}:`, body.toString("utf8")); // id is stable across retries
      res.writeHead(204).end();
    } catch (e) {
      if (!(e instanceof WebhookVerificationError)) throw e;
      console.warn(`refused (${e.kind}): ${e.message}`);
      res.writeHead(400).end();
    }
  });
}).listen(8000, "127.0.0.1");
