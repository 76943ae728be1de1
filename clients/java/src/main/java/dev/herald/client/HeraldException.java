package dev.herald.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A call Herald refused or could not answer, with the {@code google.rpc} details it sent in
 * {@code grpc-status-details-bin}: the field violations of a bad request, how long to wait
 * before retrying, and the reason behind a refusal.
 *
 * <p>The original {@link StatusRuntimeException} is the cause.
 */
public final class HeraldException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** One invalid field of a request: {@code field} is its path, as {@code event_type}. */
  public record FieldViolation(String field, String description) {}

  /** Why a call was refused, machine-readable: {@code reason} is stable, {@code metadata} names specifics. */
  public record Reason(String reason, String domain, Map<String, String> metadata) {}

  private final Status.Code code;
  private final List<FieldViolation> fieldViolations;
  private final Duration retryDelay;
  private final Reason reason;

  private HeraldException(
      StatusRuntimeException cause,
      List<FieldViolation> fieldViolations,
      Duration retryDelay,
      Reason reason) {
    super(message(cause.getStatus(), fieldViolations), cause);
    this.code = cause.getStatus().getCode();
    this.fieldViolations = List.copyOf(fieldViolations);
    this.retryDelay = retryDelay;
    this.reason = reason;
  }

  /** Decodes the status and its details; details of other types are left out. */
  public static HeraldException from(StatusRuntimeException e) {
    List<FieldViolation> violations = new ArrayList<>();
    Duration retryDelay = null;
    Reason reason = null;
    com.google.rpc.Status status = StatusProto.fromThrowable(e);
    if (status != null) {
      for (Any detail : status.getDetailsList()) {
        try {
          if (detail.is(BadRequest.class)) {
            for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
              violations.add(new FieldViolation(v.getField(), v.getDescription()));
            }
          } else if (detail.is(RetryInfo.class)) {
            com.google.protobuf.Duration delay = detail.unpack(RetryInfo.class).getRetryDelay();
            retryDelay = Duration.ofSeconds(delay.getSeconds(), delay.getNanos());
          } else if (detail.is(ErrorInfo.class)) {
            ErrorInfo info = detail.unpack(ErrorInfo.class);
            reason = new Reason(info.getReason(), info.getDomain(), Map.copyOf(info.getMetadataMap()));
          }
        } catch (InvalidProtocolBufferException ignored) {
          // A detail that does not parse says nothing we could act on; the status still does.
        }
      }
    }
    return new HeraldException(e, violations, retryDelay, reason);
  }

  /** The gRPC status code: INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, ... */
  public Status.Code code() {
    return code;
  }

  /** The status message as the server wrote it. */
  public String description() {
    String description = ((StatusRuntimeException) getCause()).getStatus().getDescription();
    return description == null ? "" : description;
  }

  /** Every invalid field of the request (from {@code google.rpc.BadRequest}); empty otherwise. */
  public List<FieldViolation> fieldViolations() {
    return fieldViolations;
  }

  /** How long to wait before trying again (from {@code google.rpc.RetryInfo}), when the server said. */
  public Optional<Duration> retryDelay() {
    return Optional.ofNullable(retryDelay);
  }

  /** The reason for the refusal (from {@code google.rpc.ErrorInfo}), when the server gave one. */
  public Optional<Reason> reason() {
    return Optional.ofNullable(reason);
  }

  private static String message(Status status, List<FieldViolation> violations) {
    StringBuilder text = new StringBuilder(status.getCode().name());
    if (status.getDescription() != null) {
      text.append(": ").append(status.getDescription());
    }
    for (FieldViolation v : violations) {
      text.append("\n  ").append(v.field()).append(": ").append(v.description());
    }
    return text.toString();
  }
}
