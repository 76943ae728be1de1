package dev.herald.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import dev.herald.v1.PublishRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Decoding grpc-status-details-bin, and building publish requests, without a server. */
class HeraldExceptionTest {
  @Test
  void everyKnownDetailIsDecoded() {
    com.google.rpc.Status status = com.google.rpc.Status.newBuilder()
        .setCode(Code.RESOURCE_EXHAUSTED_VALUE)
        .setMessage("publish rate exceeded")
        .addDetails(Any.pack(BadRequest.newBuilder()
            .addFieldViolations(BadRequest.FieldViolation.newBuilder()
                .setField("event_type").setDescription("must match [a-z0-9_.-]+"))
            .build()))
        .addDetails(Any.pack(RetryInfo.newBuilder()
            .setRetryDelay(com.google.protobuf.Duration.newBuilder().setSeconds(2).setNanos(500_000_000))
            .build()))
        .addDetails(Any.pack(ErrorInfo.newBuilder()
            .setReason("RATE_LIMITED").setDomain("herald").putMetadata("key", "hk_1").build()))
        .build();
    StatusRuntimeException wire = StatusProto.toStatusRuntimeException(status);

    HeraldException error = HeraldException.from(wire);

    assertEquals(Status.Code.RESOURCE_EXHAUSTED, error.code());
    assertEquals("publish rate exceeded", error.description());
    assertEquals(List.of(new HeraldException.FieldViolation("event_type", "must match [a-z0-9_.-]+")),
        error.fieldViolations());
    assertEquals(Duration.ofMillis(2500), error.retryDelay().orElseThrow());
    assertEquals(new HeraldException.Reason("RATE_LIMITED", "herald", Map.of("key", "hk_1")),
        error.reason().orElseThrow());
    assertTrue(error.getMessage().contains("event_type"), error.getMessage());
  }

  @Test
  void aStatusWithoutDetailsHasNone() {
    HeraldException error = HeraldException.from(Status.UNAVAILABLE.withDescription("gone").asRuntimeException());
    assertEquals(Status.Code.UNAVAILABLE, error.code());
    assertTrue(error.fieldViolations().isEmpty());
    assertTrue(error.retryDelay().isEmpty());
    assertTrue(error.reason().isEmpty());
  }

  @Test
  void eventsCarryTheirPayloadOptionsAndTheDefaultTenant() {
    PublishRequest request = Event.json("order.created", Map.of("items", List.of(1, "two", true)))
        .idempotencyKey("order-7").channels("orders", "eu").metadata("source", "shop")
        .toRequest("acme");
    assertEquals("acme", request.getTenantId());
    assertEquals(List.of("orders", "eu"), request.getChannelsList());
    assertEquals("order-7", request.getIdempotencyKey());
    assertEquals(3, request.getJson().getStructValue().getFieldsOrThrow("items")
        .getListValue().getValuesCount());

    PublishRequest raw = Event.raw("order.created", new byte[] {1, 2}, "application/octet-stream")
        .tenant("other").toRequest("acme");
    assertEquals("other", raw.getTenantId());
    assertEquals("application/octet-stream", raw.getRaw().getContentType());
  }
}
