package dev.herald.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.herald.v1.DeliveryStatusEvent;
import dev.herald.v1.Endpoint;
import dev.herald.v1.PublishBatchResult;
import dev.herald.v1.PublishResponse;
import dev.herald.v1.RegisterEndpointResponse;
import dev.herald.v1.StatusEventKind;
import dev.herald.v1.StreamDeliveryStatusRequest;
import dev.herald.v1.WebhookServiceGrpc;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Against a real Herald (HERALD_BIN) on free ports: publish reaches a real HTTP receiver
 * whose signature check passes, the status stream survives being dropped, endpoints page,
 * and a bad argument comes back as a field violation.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LiveHeraldTest {
  private static final Duration WAIT = Duration.ofSeconds(30);

  private HeraldProcess herald;
  private WebhookReceiver receiver;
  private DropFirstStream dropper;
  private HeraldClient client;
  private final ExecutorService consumer = Executors.newCachedThreadPool();

  @BeforeAll
  void start() throws Exception {
    herald = HeraldProcess.start();
    receiver = new WebhookReceiver();
    dropper = new DropFirstStream();
    client = HeraldClient.builder()
        .address(herald.grpcAddress())
        .apiKey(herald.adminKey())
        .tenant("java-client")
        .deadline(Duration.ofSeconds(10))
        .watchBackoff(Duration.ofMillis(20), Duration.ofMillis(500))
        .interceptor(dropper)
        .build();
  }

  @AfterAll
  void stop() throws Exception {
    consumer.shutdownNow();
    if (client != null) {
      client.close();
    }
    if (receiver != null) {
      receiver.close();
    }
    if (herald != null) {
      herald.close();
    }
  }

  @Test
  void publishedEventsArriveSignedAndTheStatusStreamResumesAfterADrop() throws Exception {
    RegisterEndpointResponse registered =
        client.registerEndpoint(receiver.url(), "invoice.*");
    String endpointId = registered.getEndpoint().getId();

    Event paid = Event.json("invoice.paid", Map.of("invoice", "inv_1", "amount", 1999))
        .idempotencyKey("inv_1-paid")
        .channels("billing")
        .metadata("source", "live-test");
    PublishResponse first = client.publish(paid);
    List<PublishBatchResult> batch = client.publishBatch(List.of(
        Event.jsonText("invoice.paid", "{\"invoice\": \"inv_2\"}"),
        Event.raw("invoice.voided", "<invoice id=\"inv_3\"/>".getBytes(StandardCharsets.UTF_8),
            "application/xml")));
    assertEquals(1, first.getDeliveryCount());
    assertEquals(2, batch.size());
    Set<String> messageIds = new HashSet<>(Set.of(first.getMessageId()));
    for (PublishBatchResult result : batch) {
      assertTrue(result.hasPublished(), () -> "refused in the batch: " + result);
      messageIds.add(result.getPublished().getMessageId());
    }
    PublishResponse again = client.publish(paid);
    assertTrue(again.getDuplicate(), "publishing with the same idempotency key creates nothing");
    assertEquals(first.getMessageId(), again.getMessageId());

    Set<String> delivered = new HashSet<>();
    for (int i = 0; i < 3; i++) {
      WebhookReceiver.Request request = receiver.next(WAIT);
      WebhookVerifier.verify(registered.getSecret(), request.headers(), request.body(),
          WebhookVerifier.DEFAULT_TOLERANCE);
      delivered.add(request.headers().get("webhook-id").get(0));
    }
    assertEquals(messageIds, delivered, "every message arrived once, each with a valid signature");

    // From the first cursor, with the first stream dropped after one event by the interceptor.
    StreamDeliveryStatusRequest fromStart = StreamDeliveryStatusRequest.newBuilder()
        .setAfterCursor(0).addEndpointIds(endpointId).build();
    List<DeliveryStatusEvent> resumed = collect(fromStart, seen -> succeeded(seen).containsAll(messageIds));
    assertTrue(dropper.dropped.get(), "the stream was dropped mid-way");
    assertTrue(dropper.streamCalls.get() >= 2, "the watch opened the stream again");

    List<Long> cursors = resumed.stream().map(DeliveryStatusEvent::getCursor).toList();
    assertEquals(cursors.size(), new HashSet<>(cursors).size(), "no event yielded twice: " + cursors);
    for (int i = 1; i < cursors.size(); i++) {
      assertTrue(cursors.get(i) > cursors.get(i - 1), "cursors in order: " + cursors);
    }

    // An undisturbed stream over the same span: the resumed one missed nothing.
    long last = cursors.get(cursors.size() - 1);
    List<DeliveryStatusEvent> undisturbed =
        collect(fromStart, seen -> seen.get(seen.size() - 1).getCursor() >= last);
    assertEquals(undisturbed, resumed);
  }

  @Test
  void aBadArgumentSurfacesItsFieldViolation() {
    HeraldException error = assertThrows(HeraldException.class,
        () -> client.publish(Event.json("bad type!", Map.of("a", 1))));
    assertEquals(Status.Code.INVALID_ARGUMENT, error.code());
    assertTrue(error.fieldViolations().stream().anyMatch(v -> v.field().equals("event_type")),
        () -> "field violations: " + error.fieldViolations());
  }

  @Test
  void listingEndpointsFollowsEveryPage() {
    Set<String> registered = new HashSet<>();
    for (int i = 0; i < 5; i++) {
      registered.add(client.registerEndpoint(receiver.url(), "paging.test").getEndpoint().getId());
    }
    Set<String> listed = new HashSet<>();
    for (Endpoint endpoint : client.listEndpoints(2)) {
      listed.add(endpoint.getId());
    }
    assertTrue(listed.containsAll(registered), () -> "listed " + listed + ", registered " + registered);

    String gone = registered.iterator().next();
    client.deleteEndpoint(gone);
    HeraldException missing = assertThrows(HeraldException.class, () -> client.getEndpoint(gone));
    assertEquals(Status.Code.NOT_FOUND, missing.code());
  }

  /** Events from a watch until {@code done} holds, on another thread, within {@link #WAIT}. */
  private List<DeliveryStatusEvent> collect(
      StreamDeliveryStatusRequest request, Predicate<List<DeliveryStatusEvent>> done) throws Exception {
    try (Watch watch = client.watch(request)) {
      Future<List<DeliveryStatusEvent>> events = consumer.submit(() -> {
        List<DeliveryStatusEvent> seen = new ArrayList<>();
        while (watch.hasNext()) {
          seen.add(watch.next());
          if (done.test(seen)) {
            return seen;
          }
        }
        throw new AssertionError("the watch ended early after " + seen);
      });
      return events.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
    }
  }

  private static Set<String> succeeded(List<DeliveryStatusEvent> events) {
    Set<String> ids = new HashSet<>();
    for (DeliveryStatusEvent event : events) {
      if (event.getKind() == StatusEventKind.STATUS_EVENT_KIND_ATTEMPT_SUCCEEDED) {
        ids.add(event.getMessageId());
      }
    }
    return ids;
  }

  /** Cancels the first status stream right after its first message, as a dropped connection would end it. */
  static final class DropFirstStream implements ClientInterceptor {
    final AtomicBoolean dropped = new AtomicBoolean();
    final AtomicInteger streamCalls = new AtomicInteger();

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(
        MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      ClientCall<Q, R> call = next.newCall(method, options);
      if (!method.getFullMethodName().equals(
          WebhookServiceGrpc.getStreamDeliveryStatusMethod().getFullMethodName())) {
        return call;
      }
      streamCalls.incrementAndGet();
      return new ForwardingClientCall.SimpleForwardingClientCall<>(call) {
        @Override
        public void start(Listener<R> listener, Metadata headers) {
          ClientCall<Q, R> self = this;
          super.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<R>(listener) {
            @Override
            public void onMessage(R message) {
              super.onMessage(message);
              if (dropped.compareAndSet(false, true)) {
                self.cancel("the test drops the stream", null);
              }
            }
          }, headers);
        }
      };
    }
  }
}
