/**
 * The Herald client: a thin layer over the generated {@code dev.herald.v1} stubs.
 *
 * <p>Layout:
 *
 * <ul>
 *   <li>{@link dev.herald.client.HeraldClient}: the connection (address, TLS, API key, default
 *       tenant, deadline, keep-alive) and the calls: publish, publish a batch, manage endpoints,
 *       watch; {@code stub()} for every other call.
 *   <li>{@link dev.herald.client.Event}: one event to publish, JSON or raw bytes.
 *   <li>{@link dev.herald.client.Watch}: the status stream as an iterator that resumes after
 *       its last cursor by itself.
 *   <li>{@link dev.herald.client.HeraldException}: a failed call with its {@code google.rpc}
 *       details (field violations, retry delay, reason).
 *   <li>{@link dev.herald.client.WebhookVerifier}: the receiver's signature check, plain JDK,
 *       usable without any of the above.
 * </ul>
 */
package dev.herald.client;
