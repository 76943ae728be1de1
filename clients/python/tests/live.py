"""What the live tests run against: a Herald child process, an HTTP receiver for its
webhooks, a TCP proxy that can drop every connection through it, and a throwaway
certificate authority (made with the `openssl` command) for the TLS test.

All on 127.0.0.1 with ports chosen by the system; every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import socket
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from herald.v1 import herald_pb2 as pb
from herald_client import Watch

STARTUP_PATIENCE = 30.0


class Herald:
    """A Herald server run as a child process, with memory storage; `env` adds to (or
    overrides) its environment."""

    def __init__(self, binary: str, env: Mapping[str, str] | None = None) -> None:
        self.api_key = secrets.token_hex(24)
        env = {
            **os.environ,
            "WEBHOOK_GRPC_ADDR": "127.0.0.1:0",
            "WEBHOOK_ADMIN_ADDR": "127.0.0.1:0",
            "WEBHOOK_STORAGE_TYPE": "memory",
            "WEBHOOK_LOG_FORMAT": "json",
            "WEBHOOK_ADMIN_API_KEY": self.api_key,
            "WEBHOOK_EGRESS_ALLOW_CIDRS": "127.0.0.0/8",
            "WEBHOOK_RETRY_INITIAL_DELAY": "100ms",
            "WEBHOOK_RETRY_MIN_DELAY": "0",
            **(env or {}),
        }
        self._process = subprocess.Popen(
            [binary], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )
        self._log: list[str] = []
        addresses: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read_log, args=(addresses,), daemon=True)
        self._reader.start()
        try:
            address = addresses.get(timeout=STARTUP_PATIENCE)
        except queue.Empty:
            address = None
        if address is None:
            self.stop()
            raise RuntimeError(
                f"herald did not log `herald serving` within {STARTUP_PATIENCE} s:\n"
                + "".join(self._log[-30:])
            )
        self.address = address

    def _read_log(self, addresses: queue.Queue[str | None]) -> None:
        # Reads stderr to its end, so the child never blocks on a full pipe.
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._log.append(line)
            address = serving_address(line)
            if address is not None:
                addresses.put(address)
        addresses.put(None)

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._reader.join(timeout=10)


def serving_address(line: str) -> str | None:
    """The `grpc` field of the JSON log line whose message is `herald serving`."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    fields = record.get("fields", record)
    if fields.get("message") != "herald serving":
        return None
    address = fields.get("grpc")
    return address if isinstance(address, str) else None


OPENSSL_PATIENCE = 30.0


@dataclass(frozen=True)
class Pki:
    """PEM files of a throwaway CA, a server certificate it signed for 127.0.0.1 and
    `localhost` (serverAuth), and a client certificate it signed (clientAuth)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(openssl: str, directory: Path) -> Pki:
    """Writes a `Pki` into `directory` (P-256 keys, valid for a day)."""

    def run(*args: str) -> None:
        done = subprocess.run(
            [openssl, *args], cwd=directory, stdin=subprocess.DEVNULL, capture_output=True,
            text=True, timeout=OPENSSL_PATIENCE,
        )
        if done.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed:\n{done.stderr}")

    def key(name: str) -> Path:
        run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", f"{name}.key")
        return directory / f"{name}.key"

    ca_key = key("ca")
    (directory / "ca.ext").write_text(
        "basicConstraints = critical, CA:TRUE\n"
        "keyUsage = critical, keyCertSign, cRLSign\n"
        "subjectKeyIdentifier = hash\n"
    )
    run("req", "-new", "-key", ca_key.name, "-subj", "/CN=Herald test CA", "-out", "ca.csr")
    run("x509", "-req", "-in", "ca.csr", "-key", ca_key.name, "-days", "1",
        "-set_serial", str(secrets.randbits(63)), "-extfile", "ca.ext", "-out", "ca.pem")

    def leaf(name: str, subject: str, extensions: str) -> tuple[Path, Path]:
        leaf_key = key(name)
        (directory / f"{name}.ext").write_text(
            "basicConstraints = critical, CA:FALSE\n"
            "keyUsage = critical, digitalSignature\n"
            "authorityKeyIdentifier = keyid\n" + extensions
        )
        run("req", "-new", "-key", leaf_key.name, "-subj", subject, "-out", f"{name}.csr")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", ca_key.name,
            "-days", "1", "-set_serial", str(secrets.randbits(63)),
            "-extfile", f"{name}.ext", "-out", f"{name}.pem")
        return directory / f"{name}.pem", leaf_key

    server_cert, server_key = leaf(
        "server", "/CN=localhost",
        "subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n",
    )
    client_cert, client_key = leaf(
        "client", "/CN=herald-test-client", "extendedKeyUsage = clientAuth\n"
    )
    return Pki(directory / "ca.pem", server_cert, server_key, client_cert, client_key)


@dataclass(frozen=True)
class Webhook:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """An HTTP server that answers 200 to every POST and keeps what it received."""

    def __init__(self) -> None:
        received: queue.Queue[Webhook] = queue.Queue()
        self._received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                received.put(Webhook(self.path, {k.lower(): v for k, v in self.headers.items()},
                                     body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def next(self, timeout: float = 15.0) -> Webhook:
        try:
            return self._received.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no webhook within {timeout} s") from None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Proxy:
    """Forwards TCP connections to `target`; `cut()` drops every open one at once, as a
    network failure would, while new connections are still accepted."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
                upstream = socket.create_connection(self._target, timeout=10)
            except OSError:
                return
            upstream.settimeout(None)
            with self._lock:
                self._open += [downstream, upstream]
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def cut(self) -> int:
        """Drops every open connection; returns how many there were."""
        with self._lock:
            dropped, self._open = self._open, []
        for s in dropped:
            _close(s)
        return len(dropped) // 2

    def close(self) -> None:
        _close(self._listener)
        self.cut()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


def events_until(
    watch: Watch, done: Callable[[pb.DeliveryStatusEvent], bool], timeout: float = 20.0
) -> list[pb.DeliveryStatusEvent]:
    """The events of `watch` up to the first one `done` accepts; the watch is closed if
    that takes longer than `timeout` seconds."""
    timer = threading.Timer(timeout, watch.close)
    timer.start()
    seen: list[pb.DeliveryStatusEvent] = []
    try:
        for event in watch:
            seen.append(event)
            if done(event):
                return seen
    finally:
        timer.cancel()
    raise AssertionError(f"the watch ended (or {timeout} s passed) before the event; saw {seen}")


def succeeded(message_id: str) -> Callable[[pb.DeliveryStatusEvent], bool]:
    def check(event: pb.DeliveryStatusEvent) -> bool:
        return (
            event.kind == pb.STATUS_EVENT_KIND_ATTEMPT_SUCCEEDED
            and event.message_id == message_id
        )

    return check
