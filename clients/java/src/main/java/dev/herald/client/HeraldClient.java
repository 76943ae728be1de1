package dev.herald.client;

import com.google.protobuf.FieldMask;
import dev.herald.v1.DeleteEndpointRequest;
import dev.herald.v1.DeleteEndpointResponse;
import dev.herald.v1.Endpoint;
import dev.herald.v1.GetEndpointRequest;
import dev.herald.v1.ListEndpointsRequest;
import dev.herald.v1.ListEndpointsResponse;
import dev.herald.v1.PublishBatchRequest;
import dev.herald.v1.PublishBatchResult;
import dev.herald.v1.PublishResponse;
import dev.herald.v1.RegisterEndpointRequest;
import dev.herald.v1.RegisterEndpointResponse;
import dev.herald.v1.RotateEndpointSecretRequest;
import dev.herald.v1.RotateEndpointSecretResponse;
import dev.herald.v1.StreamDeliveryStatusRequest;
import dev.herald.v1.UpdateEndpointRequest;
import dev.herald.v1.WebhookServiceGrpc;
import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.MetadataUtils;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * A connection to Herald: publish events, manage endpoints, watch deliveries settle.
 *
 * <pre>{@code
 * try (HeraldClient herald = HeraldClient.builder()
 *     .address("herald.internal:50051")
 *     .tls(new File("ca.pem"))
 *     .apiKey(System.getenv("HERALD_API_KEY"))
 *     .tenant("acme")
 *     .build()) {
 *   herald.publish(Event.json("invoice.paid", Map.of("invoice", "inv_42")));
 * }
 * }</pre>
 *
 * <p>Every call carries the API key as {@code authorization: Bearer <key>} and, unless the
 * request names one, the default tenant. Unary calls get the default deadline; the status
 * stream has none. Failures are thrown as {@link HeraldException}. For the calls without a
 * method here (messages, attempts, analytics, API keys, tenants) use {@link #stub()}.
 *
 * <p>Thread-safe; share one per process and close it at shutdown.
 */
public final class HeraldClient implements AutoCloseable {
  private final ManagedChannel channel;
  private final WebhookServiceGrpc.WebhookServiceBlockingStub stub;
  private final String tenant;
  private final Duration deadline;
  private final Duration watchInitialBackoff;
  private final Duration watchMaxBackoff;

  private HeraldClient(Builder builder) {
    ManagedChannelBuilder<?> channelBuilder =
        Grpc.newChannelBuilder(builder.address, builder.credentials())
            .keepAliveTime(builder.keepAliveTime.toMillis(), TimeUnit.MILLISECONDS)
            .keepAliveTimeout(builder.keepAliveTimeout.toMillis(), TimeUnit.MILLISECONDS)
            .userAgent("herald-java/0.1.0");
    this.channel = channelBuilder.build();
    List<ClientInterceptor> interceptors = new ArrayList<>(builder.interceptors);
    if (builder.apiKey != null) {
      Metadata headers = new Metadata();
      headers.put(
          Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER),
          "Bearer " + builder.apiKey);
      interceptors.add(MetadataUtils.newAttachHeadersInterceptor(headers));
    }
    this.stub = WebhookServiceGrpc.newBlockingStub(channel).withInterceptors(
        interceptors.toArray(new ClientInterceptor[0]));
    this.tenant = builder.tenant;
    this.deadline = builder.deadline;
    this.watchInitialBackoff = builder.watchInitialBackoff;
    this.watchMaxBackoff = builder.watchMaxBackoff;
  }

  public static Builder builder() {
    return new Builder();
  }

  /**
   * The generated stub with the credentials and the default deadline, for any call.
   * Its failures are {@link StatusRuntimeException}s: {@link HeraldException#from} decodes them.
   */
  public WebhookServiceGrpc.WebhookServiceBlockingStub stub() {
    return stub.withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** The tenant filled into requests that name none; empty: the credential's own. */
  public String tenant() {
    return tenant;
  }

  // ---- publishing

  /**
   * Publishes one event; OK means it and all its deliveries are durably stored.
   *
   * @throws HeraldException INVALID_ARGUMENT with field violations for a bad event,
   *     RESOURCE_EXHAUSTED with a retry delay when the key's publish rate is exceeded
   */
  public PublishResponse publish(Event event) {
    return call(() -> stub().publish(event.toRequest(tenant)));
  }

  /**
   * Publishes up to 1,000 events; each gets its own result, in order, published or refused.
   *
   * @throws HeraldException when the batch as a whole is refused
   */
  public List<PublishBatchResult> publishBatch(List<Event> events) {
    PublishBatchRequest.Builder batch = PublishBatchRequest.newBuilder();
    for (Event event : events) {
      batch.addRequests(event.toRequest(tenant));
    }
    return call(() -> stub().publishBatch(batch.build()).getResultsList());
  }

  // ---- endpoints

  /**
   * Registers an endpoint. The response holds its signing secret, which is not shown again.
   *
   * @throws HeraldException INVALID_ARGUMENT with field violations, ALREADY_EXISTS for a taken id
   */
  public RegisterEndpointResponse registerEndpoint(RegisterEndpointRequest request) {
    RegisterEndpointRequest.Builder scoped = request.toBuilder();
    if (scoped.getTenantId().isEmpty()) {
      scoped.setTenantId(tenant);
    }
    return call(() -> stub().registerEndpoint(scoped.build()));
  }

  /** Registers an endpoint for these event types (none: every event type). */
  public RegisterEndpointResponse registerEndpoint(String url, String... eventTypes) {
    return registerEndpoint(
        RegisterEndpointRequest.newBuilder().setUrl(url).addAllEventTypes(List.of(eventTypes)).build());
  }

  /** @throws HeraldException NOT_FOUND when there is no such endpoint in the tenant */
  public Endpoint getEndpoint(String endpointId) {
    GetEndpointRequest request =
        GetEndpointRequest.newBuilder().setEndpointId(endpointId).setTenantId(tenant).build();
    return call(() -> stub().getEndpoint(request).getEndpoint());
  }

  /** Every endpoint of the tenant, fetched a page of 100 at a time as the iteration goes. */
  public Iterable<Endpoint> listEndpoints() {
    return listEndpoints(100);
  }

  /**
   * Every endpoint of the tenant, fetched {@code pageSize} at a time as the iteration goes.
   * Each iteration starts again from the first page; a failed page fetch throws
   * {@link HeraldException} from {@code hasNext()}.
   */
  public Iterable<Endpoint> listEndpoints(int pageSize) {
    return () -> new Pages(pageSize);
  }

  /**
   * Replaces the fields named in {@code paths} (url, description, event_types, channels,
   * headers, retry_policy, rate_limit, circuit_breaker, max_in_flight, enabled) with those of
   * {@code endpoint}; its id names the endpoint.
   *
   * @throws HeraldException NOT_FOUND, or INVALID_ARGUMENT with field violations
   */
  public Endpoint updateEndpoint(Endpoint endpoint, String... paths) {
    UpdateEndpointRequest request =
        UpdateEndpointRequest.newBuilder()
            .setEndpoint(endpoint)
            .setUpdateMask(FieldMask.newBuilder().addAllPaths(List.of(paths)))
            .setTenantId(tenant)
            .build();
    return call(() -> stub().updateEndpoint(request).getEndpoint());
  }

  /**
   * Deletes an endpoint and cancels its pending deliveries.
   *
   * @return how many pending deliveries were cancelled
   * @throws HeraldException NOT_FOUND when there is no such endpoint in the tenant
   */
  public int deleteEndpoint(String endpointId) {
    DeleteEndpointRequest request =
        DeleteEndpointRequest.newBuilder().setEndpointId(endpointId).setTenantId(tenant).build();
    DeleteEndpointResponse response = call(() -> stub().deleteEndpoint(request));
    return response.getCancelledDeliveries();
  }

  /**
   * Issues a new secret; the current one keeps signing beside it for {@code gracePeriod}
   * (null: the server's default; zero: not at all).
   *
   * @throws HeraldException NOT_FOUND when there is no such endpoint in the tenant
   */
  public RotateEndpointSecretResponse rotateEndpointSecret(String endpointId, Duration gracePeriod) {
    RotateEndpointSecretRequest.Builder request =
        RotateEndpointSecretRequest.newBuilder().setEndpointId(endpointId).setTenantId(tenant);
    if (gracePeriod != null) {
      request.setGracePeriod(
          com.google.protobuf.Duration.newBuilder()
              .setSeconds(gracePeriod.getSeconds())
              .setNanos(gracePeriod.getNano()));
    }
    return call(() -> stub().rotateEndpointSecret(request.build()));
  }

  // ---- status stream

  /**
   * The live status events matching {@code request} (endpoints, event types, message, kinds,
   * {@code after_cursor} to start from), resuming by itself after any disconnect. Close it
   * when done.
   */
  public Watch watch(StreamDeliveryStatusRequest request) {
    StreamDeliveryStatusRequest.Builder scoped = request.toBuilder();
    if (scoped.getTenantId().isEmpty() && !scoped.getAllTenants()) {
      scoped.setTenantId(tenant);
    }
    return new Watch(stub, scoped.build(), watchInitialBackoff, watchMaxBackoff);
  }

  /** Closes the connection, waiting up to five seconds for calls in progress. */
  @Override
  public void close() {
    channel.shutdown();
    try {
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  private static <T> T call(Supplier<T> rpc) {
    try {
      return rpc.get();
    } catch (StatusRuntimeException e) {
      throw HeraldException.from(e);
    }
  }

  /** The pages of ListEndpoints, fetched when the previous one is used up. */
  private final class Pages implements Iterator<Endpoint> {
    private final int pageSize;
    private Iterator<Endpoint> page = List.<Endpoint>of().iterator();
    /** The token of the next page; null once the last page was fetched. */
    private String nextToken = "";

    Pages(int pageSize) {
      this.pageSize = pageSize;
    }

    @Override
    public boolean hasNext() {
      while (!page.hasNext() && nextToken != null) {
        ListEndpointsRequest request =
            ListEndpointsRequest.newBuilder()
                .setPageSize(pageSize)
                .setPageToken(nextToken)
                .setTenantId(tenant)
                .build();
        ListEndpointsResponse response = call(() -> stub().listEndpoints(request));
        page = response.getEndpointsList().iterator();
        nextToken = response.getNextPageToken().isEmpty() ? null : response.getNextPageToken();
      }
      return page.hasNext();
    }

    @Override
    public Endpoint next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      return page.next();
    }
  }

  /** Connection settings; only the address is required. */
  public static final class Builder {
    private String address;
    private boolean tls;
    private File caCertificate;
    private File clientCertificateChain;
    private File clientPrivateKey;
    private String apiKey;
    private String tenant = "";
    private Duration deadline = Duration.ofSeconds(10);
    // Pings find a dead connection in under a minute, rarely enough for any server's policy.
    private Duration keepAliveTime = Duration.ofSeconds(30);
    private Duration keepAliveTimeout = Duration.ofSeconds(10);
    private Duration watchInitialBackoff = Duration.ofMillis(100);
    private Duration watchMaxBackoff = Duration.ofSeconds(10);
    private final List<ClientInterceptor> interceptors = new ArrayList<>();

    private Builder() {}

    /** {@code host:port}, or any target gRPC understands ({@code dns:///herald:50051}). */
    public Builder address(String address) {
      this.address = Objects.requireNonNull(address);
      return this;
    }

    /** Connects over TLS, trusting the system's certificate authorities. */
    public Builder tls() {
      this.tls = true;
      return this;
    }

    /** Connects over TLS, trusting the certificate authorities in this PEM file. */
    public Builder tls(File caCertificate) {
      this.tls = true;
      this.caCertificate = Objects.requireNonNull(caCertificate);
      return this;
    }

    /** Presents this client certificate (PEM chain and key) over TLS; implies {@link #tls()}. */
    public Builder clientCertificate(File certificateChain, File privateKey) {
      this.tls = true;
      this.clientCertificateChain = Objects.requireNonNull(certificateChain);
      this.clientPrivateKey = Objects.requireNonNull(privateKey);
      return this;
    }

    /** The API key (or JWT) sent as {@code authorization: Bearer <key>}. */
    public Builder apiKey(String apiKey) {
      this.apiKey = Objects.requireNonNull(apiKey);
      return this;
    }

    /** The tenant for requests that name none; unset: the credential's own, else {@code default}. */
    public Builder tenant(String tenant) {
      this.tenant = Objects.requireNonNull(tenant);
      return this;
    }

    /** The deadline of every unary call; 10 seconds when unset. */
    public Builder deadline(Duration deadline) {
      this.deadline = positive(deadline, "deadline");
      return this;
    }

    /** How often an idle connection is pinged, and how long a ping may go unanswered. */
    public Builder keepAlive(Duration time, Duration timeout) {
      this.keepAliveTime = positive(time, "keep-alive time");
      this.keepAliveTimeout = positive(timeout, "keep-alive timeout");
      return this;
    }

    /** The first and the longest wait before {@link Watch} reopens a broken stream. */
    public Builder watchBackoff(Duration initial, Duration max) {
      this.watchInitialBackoff = positive(initial, "initial backoff");
      this.watchMaxBackoff = positive(max, "max backoff");
      if (max.compareTo(initial) < 0) {
        throw new IllegalArgumentException("the max backoff is shorter than the initial one");
      }
      return this;
    }

    /** Adds an interceptor to every call (tracing, metrics, ...); the first added runs first. */
    public Builder interceptor(ClientInterceptor interceptor) {
      this.interceptors.add(Objects.requireNonNull(interceptor));
      return this;
    }

    /**
     * Creates the client. The connection is made on the first call.
     *
     * @throws IllegalStateException without an address
     * @throws UncheckedIOException when a TLS file cannot be read
     */
    public HeraldClient build() {
      if (address == null) {
        throw new IllegalStateException("an address is required");
      }
      return new HeraldClient(this);
    }

    private ChannelCredentials credentials() {
      if (!tls) {
        return InsecureChannelCredentials.create();
      }
      TlsChannelCredentials.Builder credentials = TlsChannelCredentials.newBuilder();
      try {
        if (caCertificate != null) {
          credentials.trustManager(caCertificate);
        }
        if (clientCertificateChain != null) {
          credentials.keyManager(clientCertificateChain, clientPrivateKey);
        }
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read a TLS file", e);
      }
      return credentials.build();
    }

    private static Duration positive(Duration value, String what) {
      if (value == null || value.isNegative() || value.isZero()) {
        throw new IllegalArgumentException("the " + what + " must be positive");
      }
      return value;
    }
  }
}
