package dev.herald.client;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.ListValue;
import com.google.protobuf.NullValue;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import dev.herald.v1.PublishRequest;
import dev.herald.v1.RawPayload;
import java.util.List;
import java.util.Map;

/**
 * One event to publish: its type, a JSON or raw payload, and the optional idempotency key,
 * channels and metadata.
 *
 * <pre>{@code
 * Event.json("invoice.paid", Map.of("invoice", "inv_42", "amount", 1999))
 *     .idempotencyKey("inv_42-paid")
 *     .channels("billing")
 *     .metadata("source", "billing-service");
 * }</pre>
 */
public final class Event {
  private final PublishRequest.Builder request;

  private Event(PublishRequest.Builder request) {
    this.request = request;
  }

  /** A JSON payload given as a protobuf {@link Value}. */
  public static Event json(String eventType, Value payload) {
    return new Event(PublishRequest.newBuilder().setEventType(eventType).setJson(payload));
  }

  /**
   * A JSON payload from plain Java values: {@code Map<String, ?>}, {@code List<?>}, {@code
   * String}, {@code Number}, {@code Boolean} and {@code null}, nested as deep as needed.
   *
   * @throws IllegalArgumentException for a value of any other type
   */
  public static Event json(String eventType, Map<String, ?> payload) {
    return json(eventType, toValue(payload));
  }

  /**
   * A JSON payload written as JSON text.
   *
   * @throws IllegalArgumentException when the text is not JSON
   */
  public static Event jsonText(String eventType, String json) {
    Value.Builder value = Value.newBuilder();
    try {
      JsonFormat.parser().merge(json, value);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalArgumentException("the payload is not JSON: " + e.getMessage(), e);
    }
    return json(eventType, value.build());
  }

  /** Exact bytes, delivered unchanged with this content type. */
  public static Event raw(String eventType, byte[] data, String contentType) {
    RawPayload raw =
        RawPayload.newBuilder().setData(ByteString.copyFrom(data)).setContentType(contentType).build();
    return new Event(PublishRequest.newBuilder().setEventType(eventType).setRaw(raw));
  }

  /** Publishing again with the same key returns the first message and creates nothing. */
  public Event idempotencyKey(String key) {
    request.setIdempotencyKey(key);
    return this;
  }

  /** Only endpoints subscribed to one of these channels (or to none) receive the event. */
  public Event channels(String... channels) {
    request.addAllChannels(List.of(channels));
    return this;
  }

  /** A free-form label kept with the message. */
  public Event metadata(String key, String value) {
    request.putMetadata(key, value);
    return this;
  }

  /** Publishes in this tenant rather than the client's default one. */
  public Event tenant(String tenantId) {
    request.setTenantId(tenantId);
    return this;
  }

  /** The request as sent, with the client's tenant filled in when none was set. */
  PublishRequest toRequest(String defaultTenant) {
    PublishRequest.Builder copy = request.clone();
    if (copy.getTenantId().isEmpty()) {
      copy.setTenantId(defaultTenant);
    }
    return copy.build();
  }

  static Value toValue(Object value) {
    if (value == null) {
      return Value.newBuilder().setNullValue(NullValue.NULL_VALUE).build();
    } else if (value instanceof Value v) {
      return v;
    } else if (value instanceof String s) {
      return Value.newBuilder().setStringValue(s).build();
    } else if (value instanceof Boolean b) {
      return Value.newBuilder().setBoolValue(b).build();
    } else if (value instanceof Number n) {
      return Value.newBuilder().setNumberValue(n.doubleValue()).build();
    } else if (value instanceof Map<?, ?> map) {
      Struct.Builder struct = Struct.newBuilder();
      for (Map.Entry<?, ?> entry : map.entrySet()) {
        if (!(entry.getKey() instanceof String key)) {
          throw new IllegalArgumentException("JSON object keys must be strings: " + entry.getKey());
        }
        struct.putFields(key, toValue(entry.getValue()));
      }
      return Value.newBuilder().setStructValue(struct).build();
    } else if (value instanceof Iterable<?> items) {
      ListValue.Builder list = ListValue.newBuilder();
      for (Object item : items) {
        list.addValues(toValue(item));
      }
      return Value.newBuilder().setListValue(list).build();
    }
    throw new IllegalArgumentException("not a JSON value: " + value.getClass().getName());
  }
}
