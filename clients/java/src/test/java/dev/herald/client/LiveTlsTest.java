package dev.herald.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import dev.herald.v1.PublishResponse;
import io.grpc.Status;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Against a real Herald (HERALD_BIN) serving TLS that requires a client certificate: the
 * wrapper's {@code tls(ca)} and {@code clientCertificate(chain, key)} get a call through, and
 * without a client certificate the same call is refused. The CA and both certificates are
 * made for the test with the openssl CLI in a temporary directory removed afterwards.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LiveTlsTest {
  private static final Duration OPENSSL_LIMIT = Duration.ofSeconds(30);
  private static final Duration CALL_DEADLINE = Duration.ofSeconds(5);

  private Path dir;
  private HeraldProcess herald;

  @BeforeAll
  void start() throws Exception {
    dir = Files.createTempDirectory("herald-tls-");
    makeCertificates(dir);
    herald = HeraldProcess.start(Map.of(
        "WEBHOOK_TLS_CERT", dir.resolve("server.pem").toString(),
        "WEBHOOK_TLS_KEY", dir.resolve("server.key").toString(),
        "WEBHOOK_TLS_CLIENT_CA", dir.resolve("ca.pem").toString()));
  }

  @AfterAll
  void stop() throws Exception {
    try {
      if (herald != null) {
        herald.close();
      }
    } finally {
      if (dir != null) {
        try (Stream<Path> files = Files.walk(dir)) {
          for (Path file : files.sorted(Comparator.reverseOrder()).toList()) {
            Files.deleteIfExists(file);
          }
        }
      }
    }
  }

  @Test
  void aClientCertificateTrustedByTheServersCaGetsTheCallThrough() {
    try (HeraldClient client = client(true, true)) {
      PublishResponse published = assertTimeoutPreemptively(CALL_DEADLINE.multipliedBy(2),
          () -> client.publish(Event.json("tls.checked", Map.of("mtls", true))));
      assertFalse(published.getMessageId().isEmpty(), () -> "no message id: " + published);
    }
  }

  @Test
  void theApiKeyIsStillRequiredOverMutualTls() {
    try (HeraldClient client = client(true, false)) {
      HeraldException error = assertThrows(HeraldException.class, () -> assertTimeoutPreemptively(
          CALL_DEADLINE.multipliedBy(2),
          () -> client.publish(Event.json("tls.checked", Map.of("mtls", true)))));
      assertEquals(Status.Code.UNAUTHENTICATED, error.code(), error::getMessage);
    }
  }

  @Test
  void withoutAClientCertificateTheCallIsRefused() {
    try (HeraldClient client = client(false, true)) {
      HeraldException error = assertThrows(HeraldException.class, () -> assertTimeoutPreemptively(
          CALL_DEADLINE.multipliedBy(2),
          () -> client.publish(Event.json("tls.checked", Map.of("mtls", false)))));
      // Refused at the handshake, not merely timed out, nor let through to the service.
      assertEquals(Status.Code.UNAVAILABLE, error.code(), error::getMessage);
      assertNotEquals(Status.Code.DEADLINE_EXCEEDED, error.code());
    }
  }

  private HeraldClient client(boolean withCertificate, boolean withApiKey) {
    HeraldClient.Builder builder = HeraldClient.builder()
        .address(herald.grpcAddress())
        .tls(dir.resolve("ca.pem").toFile())
        .tenant("java-tls")
        .deadline(CALL_DEADLINE);
    if (withCertificate) {
      builder.clientCertificate(dir.resolve("client.pem").toFile(), dir.resolve("client.key").toFile());
    }
    if (withApiKey) {
      builder.apiKey(herald.adminKey());
    }
    return builder.build();
  }

  /** ca.pem; server.pem/.key for 127.0.0.1 and localhost (serverAuth); client.pem/.key (clientAuth). */
  private static void makeCertificates(Path dir) throws Exception {
    openssl(dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=Herald test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign");
    leaf(dir, "server", "localhost",
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n");
    leaf(dir, "client", "herald-test-client", "extendedKeyUsage=clientAuth\n");
  }

  private static void leaf(Path dir, String name, String commonName, String extensions)
      throws Exception {
    Files.writeString(dir.resolve(name + ".ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n" + extensions,
        StandardCharsets.UTF_8);
    openssl(dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + commonName);
    openssl(dir, "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-sha256", "-extfile", name + ".ext", "-out", name + ".pem");
  }

  private static void openssl(Path dir, String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of(opensslBinary()));
    command.addAll(List.of(args));
    File log = dir.resolve("openssl.log").toFile();
    Process process = new ProcessBuilder(command)
        .directory(dir.toFile())
        .redirectErrorStream(true)
        .redirectOutput(log)
        .start();
    if (!process.waitFor(OPENSSL_LIMIT.toMillis(), TimeUnit.MILLISECONDS)) {
      process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
      throw new IllegalStateException("openssl did not finish within " + OPENSSL_LIMIT + ": " + command);
    }
    if (process.exitValue() != 0) {
      throw new IllegalStateException("openssl failed (" + process.exitValue() + "): " + command
          + "\n" + Files.readString(log.toPath(), StandardCharsets.UTF_8));
    }
  }

  private static String opensslBinary() throws IOException {
    return Files.isExecutable(Path.of("/usr/bin/openssl")) ? "/usr/bin/openssl" : "openssl";
  }
}
