package dev.herald.client;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A Herald server run as a child process on free ports with an in-memory store: the binary
 * named by HERALD_BIN, its gRPC address read from the "herald serving" log line.
 */
final class HeraldProcess implements AutoCloseable {
  private static final Duration STARTUP = Duration.ofSeconds(30);

  private final Process process;
  private final String grpcAddress;
  private final String adminKey;
  /** The last lines of the server's log, to explain a failure. */
  private final Deque<String> tail = new ArrayDeque<>();

  private HeraldProcess(Process process, String grpcAddress, String adminKey) {
    this.process = process;
    this.grpcAddress = grpcAddress;
    this.adminKey = adminKey;
  }

  static HeraldProcess start() throws Exception {
    return start(Map.of());
  }

  /** Starts Herald with these variables added to (or replacing) the usual environment. */
  static HeraldProcess start(Map<String, String> extraEnv) throws Exception {
    String binary = System.getenv("HERALD_BIN");
    if (binary == null || binary.isEmpty()) {
      throw new IllegalStateException(
          "HERALD_BIN must name the Herald binary (an absolute path) for the live test");
    }
    byte[] random = new byte[24];
    new SecureRandom().nextBytes(random);
    String adminKey = HexFormat.of().formatHex(random);

    ProcessBuilder builder = new ProcessBuilder(binary).redirectOutput(ProcessBuilder.Redirect.DISCARD);
    Map<String, String> env = builder.environment();
    env.put("WEBHOOK_GRPC_ADDR", "127.0.0.1:0");
    env.put("WEBHOOK_ADMIN_ADDR", "127.0.0.1:0");
    env.put("WEBHOOK_STORAGE_TYPE", "memory");
    env.put("WEBHOOK_LOG_FORMAT", "json");
    env.put("WEBHOOK_ADMIN_API_KEY", adminKey);
    env.put("WEBHOOK_EGRESS_ALLOW_CIDRS", "127.0.0.0/8");
    env.put("WEBHOOK_RETRY_INITIAL_DELAY", "100ms");
    env.put("WEBHOOK_RETRY_MIN_DELAY", "0");
    env.putAll(extraEnv);
    Process process = builder.start();

    CompletableFuture<String> address = new CompletableFuture<>();
    Deque<String> tail = new ArrayDeque<>();
    Thread reader = new Thread(() -> readLog(process, address, tail), "herald-log");
    reader.setDaemon(true);
    reader.start();
    try {
      String grpc = address.get(STARTUP.toMillis(), TimeUnit.MILLISECONDS);
      return new HeraldProcess(process, grpc, adminKey);
    } catch (TimeoutException e) {
      process.destroyForcibly();
      throw new IllegalStateException("Herald did not log 'herald serving' within " + STARTUP + ": " + tail, e);
    } catch (Exception e) {
      process.destroyForcibly();
      throw e;
    }
  }

  /** Drains stderr for the process's whole life (a full pipe would block the server). */
  private static void readLog(Process process, CompletableFuture<String> address, Deque<String> tail) {
    try (BufferedReader log = new BufferedReader(
        new InputStreamReader(process.getErrorStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = log.readLine()) != null) {
        synchronized (tail) {
          tail.addLast(line);
          if (tail.size() > 20) {
            tail.removeFirst();
          }
        }
        if (!address.isDone() && line.contains("herald serving")) {
          Struct.Builder entry = Struct.newBuilder();
          try {
            JsonFormat.parser().merge(line, entry);
          } catch (InvalidProtocolBufferException e) {
            continue;
          }
          Value none = Value.getDefaultInstance();
          if ("herald serving".equals(entry.getFieldsOrDefault("message", none).getStringValue())) {
            address.complete(entry.getFieldsOrDefault("grpc", none).getStringValue());
          }
        }
      }
      address.completeExceptionally(new IllegalStateException(
          "Herald exited before serving (status " + process.waitFor() + "): " + tail));
    } catch (IOException | InterruptedException e) {
      address.completeExceptionally(e);
    }
  }

  String grpcAddress() {
    return grpcAddress;
  }

  String adminKey() {
    return adminKey;
  }

  @Override
  public void close() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(10, TimeUnit.SECONDS)) {
      process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
    }
  }
}
