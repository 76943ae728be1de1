// Publishing from a service: HERALD_ADDR=127.0.0.1:50051 HERALD_API_KEY=… node dist/examples/publish.js
import { HeraldClient, HeraldError, StatusEventKind } from "@herald-webhooks/client";

const herald = new HeraldClient({
  address: process.env["HERALD_ADDR"] ?? "127.0.0.1:50051",
  apiKey: process.env["HERALD_API_KEY"] ?? "",
  tenant: "acme",
  // tls: { ca: readFileSync("ca.pem"), cert: readFileSync("client.pem"), key: readFileSync("client-key.pem") },
});

try {
  const { endpoint, secret } = await herald.registerEndpoint({
    url: "https://receiver.example/webhooks",
    eventTypes: ["invoice.*"],
  });
  console.log(`endpoint ${endpoint?.id}: give the receiver its secret ${secret}`);

  const { messageId } = await herald.publish({
    eventType: "invoice.paid",
    json: { invoice: "in_123", amount: 4200 },
    idempotencyKey: "invoice-in_123-paid",
  });

  // Resumes by itself after a disconnect; ends once the message is settled everywhere.
  for await (const event of herald.watch(
    { messageId, untilSettled: true },
    { signal: AbortSignal.timeout(60_000) },
  )) {
    console.log(StatusEventKind[event.kind], event.endpointId, event.statusCode);
  }
} catch (e) {
  if (e instanceof HeraldError) {
    for (const v of e.fieldViolations) console.error(`${v.field}: ${v.description}`);
    if (e.retryDelayMs !== undefined) console.error(`retry in ${e.retryDelayMs} ms`);
  }
  throw e;
} finally {
  herald.close();
}
