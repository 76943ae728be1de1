package dev.herald.client;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/** The shared vectors of clients/conformance/signatures.json, and the verifier's edges. */
class WebhookVerifierTest {
  private static final String SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  private static final byte[] BODY = "{\"test\": 2432232314}".getBytes(StandardCharsets.UTF_8);
  private static final Instant SENT = Instant.ofEpochSecond(1614265330);

  @TestFactory
  Stream<DynamicTest> everyConformanceVector() throws Exception {
    List<Value> vectors = loadVectors();
    assertFalse(vectors.isEmpty(), "signatures.json holds no vector");
    return vectors.stream().map(v -> DynamicTest.dynamicTest(
        v.getStructValue().getFieldsOrThrow("name").getStringValue(), () -> check(v.getStructValue())));
  }

  private static void check(Struct vector) {
    Map<String, String> headers = new LinkedHashMap<>();
    vector.getFieldsOrThrow("headers").getStructValue().getFieldsMap()
        .forEach((name, value) -> headers.put(name, value.getStringValue()));
    byte[] body = Base64.getDecoder().decode(vector.getFieldsOrThrow("body_base64").getStringValue());
    String secret = vector.getFieldsOrThrow("secret").getStringValue();
    Instant now = Instant.ofEpochSecond((long) vector.getFieldsOrThrow("now").getNumberValue());
    Duration tolerance =
        Duration.ofSeconds((long) vector.getFieldsOrThrow("tolerance_seconds").getNumberValue());

    if (vector.getFieldsOrThrow("valid").getBoolValue()) {
      assertDoesNotThrow(() -> WebhookVerifier.verify(secret, headers, body, tolerance, now));
      return;
    }
    WebhookVerificationException error = assertThrows(WebhookVerificationException.class,
        () -> WebhookVerifier.verify(secret, headers, body, tolerance, now));
    String expected = vector.getFieldsOrThrow("error").getStringValue();
    assertEquals(expected, kindName(error.kind()), error.getMessage());
  }

  private static String kindName(WebhookVerificationException.Kind kind) {
    switch (kind) {
      case STALE: return "stale";
      case NO_MATCH: return "no_match";
      case MALFORMED: return "malformed";
      default: throw new AssertionError(kind);
    }
  }

  private static List<Value> loadVectors() throws Exception {
    String dir = System.getenv().getOrDefault("HERALD_CONFORMANCE_DIR", "../conformance");
    String json = Files.readString(Path.of(dir, "signatures.json"));
    Struct.Builder root = Struct.newBuilder();
    JsonFormat.parser().merge(json, root);
    return new ArrayList<>(root.getFieldsOrThrow("vectors").getListValue().getValuesList());
  }

  @Test
  void headerNamesAreMatchedWithoutCaseAndListValuesAreAccepted() {
    Map<String, Object> headers = Map.of(
        "Webhook-Id", List.of("msg_p5jXN8AQM9LWM0D4loKWxJek"),
        "WEBHOOK-TIMESTAMP", "1614265330",
        "webhook-signature", List.of("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
    assertDoesNotThrow(() -> WebhookVerifier.verify(SECRET, headers, BODY, Duration.ofMinutes(5), SENT));
  }

  @Test
  void aSignatureThatIsNotBase64IsSkippedNotFatal() {
    Map<String, String> headers = Map.of(
        "webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp", "1614265330",
        "webhook-signature", "v1,%%%not-base64 v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    assertDoesNotThrow(() -> WebhookVerifier.verify(SECRET, headers, BODY, Duration.ofMinutes(5), SENT));
  }

  @Test
  void aSecretThatIsNotBase64IsTheCallersMistake() {
    Map<String, String> headers = Map.of(
        "webhook-id", "x", "webhook-timestamp", "1614265330", "webhook-signature", "v1,AAAA");
    assertThrows(IllegalArgumentException.class,
        () -> WebhookVerifier.verify("whsec_%%%", headers, BODY, Duration.ofMinutes(5), SENT));
  }
}
