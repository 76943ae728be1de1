package dev.herald.client;

import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Collection;
import java.util.Locale;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Checks the Standard Webhooks signature of a request Herald delivered, on the receiving side.
 *
 * <p>The signed content is {@code <webhook-id>.<webhook-timestamp>.<body>}; the key is the
 * base64 part of the endpoint's {@code whsec_} secret; {@code webhook-signature} holds one or
 * more space-separated {@code v1,<base64 HMAC-SHA256>} signatures (two while a rotated secret
 * is still in its grace period). The request is genuine when any {@code v1} signature matches
 * and its timestamp is within the tolerance of the receiver's clock.
 *
 * <p>Pure JDK: this class loads nothing of gRPC or protobuf, so a receiver can depend on the
 * client artifact for it alone.
 */
public final class WebhookVerifier {
  /** The tolerance the Standard Webhooks specification suggests. */
  public static final Duration DEFAULT_TOLERANCE = Duration.ofMinutes(5);

  private static final String SECRET_PREFIX = "whsec_";
  private static final String VERSION_PREFIX = "v1,";

  private WebhookVerifier() {}

  /**
   * Verifies a request against the receiver's clock.
   *
   * @param secret the endpoint's {@code whsec_} secret (the prefix is optional)
   * @param headers the request's headers, names in any case; each value a {@code String} or a
   *     {@code Collection<String>} (as servlet containers and {@code HttpExchange} give them)
   * @param body the exact bytes received, before any parsing
   * @param tolerance how far the timestamp may be from now, either way
   * @throws WebhookVerificationException when a header is missing or malformed, the timestamp
   *     is outside the tolerance, or no signature matches
   * @throws IllegalArgumentException when the secret is not base64
   */
  public static void verify(String secret, Map<String, ?> headers, byte[] body, Duration tolerance)
      throws WebhookVerificationException {
    verify(secret, headers, body, tolerance, Instant.now());
  }

  /**
   * As {@link #verify(String, Map, byte[], Duration)}, with the receiver's clock given.
   *
   * @throws WebhookVerificationException as the other form
   */
  public static void verify(
      String secret, Map<String, ?> headers, byte[] body, Duration tolerance, Instant now)
      throws WebhookVerificationException {
    byte[] key = decodeSecret(secret);
    String id = header(headers, "webhook-id");
    String timestampText = header(headers, "webhook-timestamp");
    String signatures = header(headers, "webhook-signature");

    long timestamp;
    try {
      timestamp = Long.parseLong(timestampText.trim());
    } catch (NumberFormatException e) {
      throw new WebhookVerificationException(
          WebhookVerificationException.Kind.MALFORMED,
          "webhook-timestamp is not an integer number of seconds: " + timestampText);
    }
    long skew = Math.abs(now.getEpochSecond() - timestamp);
    if (skew > tolerance.getSeconds()) {
      throw new WebhookVerificationException(
          WebhookVerificationException.Kind.STALE,
          "webhook-timestamp is " + skew + " s from now, beyond the tolerance of "
              + tolerance.getSeconds() + " s");
    }

    byte[] expected = sign(key, id, timestamp, body);
    for (String candidate : signatures.trim().split(" +")) {
      if (!candidate.startsWith(VERSION_PREFIX)) {
        continue; // another scheme, or no version at all: not ours to check
      }
      byte[] given;
      try {
        given = Base64.getDecoder().decode(candidate.substring(VERSION_PREFIX.length()));
      } catch (IllegalArgumentException e) {
        continue;
      }
      // Constant time: a timing difference must not reveal how much of a guess was right.
      if (MessageDigest.isEqual(expected, given)) {
        return;
      }
    }
    throw new WebhookVerificationException(
        WebhookVerificationException.Kind.NO_MATCH, "no v1 signature matches the request");
  }

  private static byte[] decodeSecret(String secret) {
    String encoded = secret.startsWith(SECRET_PREFIX) ? secret.substring(SECRET_PREFIX.length()) : secret;
    try {
      return Base64.getDecoder().decode(encoded);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("the webhook secret is not base64 after its whsec_ prefix", e);
    }
  }

  private static byte[] sign(byte[] key, String id, long timestamp, byte[] body) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(key, "HmacSHA256"));
      mac.update((id + "." + timestamp + ".").getBytes(StandardCharsets.UTF_8));
      return mac.doFinal(body);
    } catch (NoSuchAlgorithmException | InvalidKeyException e) {
      // Every JDK ships HmacSHA256, and an HMAC takes a key of any length.
      throw new IllegalStateException("HmacSHA256 unavailable", e);
    }
  }

  private static String header(Map<String, ?> headers, String name)
      throws WebhookVerificationException {
    for (Map.Entry<String, ?> entry : headers.entrySet()) {
      if (entry.getKey() != null && entry.getKey().toLowerCase(Locale.ROOT).equals(name)) {
        Object value = entry.getValue();
        if (value instanceof Collection<?> values && !values.isEmpty()) {
          value = values.iterator().next();
        }
        if (value instanceof String text && !text.isEmpty()) {
          return text;
        }
      }
    }
    throw new WebhookVerificationException(
        WebhookVerificationException.Kind.MALFORMED, "the " + name + " header is missing");
  }
}
