package dev.herald.client;

/** Why {@link WebhookVerifier} refused a request: the receiver should answer it 400 or 401. */
public final class WebhookVerificationException extends Exception {
  private static final long serialVersionUID = 1L;

  /** The three ways a request fails verification. */
  public enum Kind {
    /** A {@code webhook-*} header is missing, or the timestamp is not an integer. */
    MALFORMED,
    /** The timestamp is further from the receiver's clock than the tolerance: a replay, or a skewed clock. */
    STALE,
    /** No {@code v1} signature matches: a wrong secret, or a forged or altered request. */
    NO_MATCH,
  }

  private final Kind kind;

  WebhookVerificationException(Kind kind, String message) {
    super(message);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }
}
