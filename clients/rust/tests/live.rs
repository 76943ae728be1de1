//! Against a live Herald: the binary named by `HERALD_BIN`, started per test on free
//! ports with in-memory storage. The test's own HTTP receiver takes the webhooks; a TCP
//! relay between the client and Herald lets the test cut the watch's connection. One
//! Herald serves TLS asking for client certificates, from a throwaway CA made here.
//!
//! Without `HERALD_BIN` the tests print that they are skipped and pass; the crate's
//! `test` script always sets it.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use herald_client::pb::{self, StatusEventKind};
use herald_client::verify::{DEFAULT_TOLERANCE, VerifyError, verify};
use herald_client::{Client, ClientBuilder, Code, Error, Event, Watch};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;
use tokio_stream::StreamExt;

/// Every wait in these tests is bounded by this.
const PATIENCE: Duration = Duration::from_secs(20);

/// A Herald child process, killed when dropped.
struct Herald {
    _child: Child,
    grpc: SocketAddr,
    admin_key: String,
}

fn random_hex(len: usize) -> String {
    let mut out = String::new();
    while out.len() < len {
        out.push_str(&format!(
            "{:016x}",
            RandomState::new().build_hasher().finish()
        ));
    }
    out.truncate(len);
    out
}

/// Starts Herald, or `None` (said aloud) when `HERALD_BIN` is not set.
async fn start_herald() -> Option<Herald> {
    start_herald_with(&[]).await
}

/// Starts Herald with `extra` environment variables on top of the usual ones.
async fn start_herald_with(extra: &[(&str, &OsStr)]) -> Option<Herald> {
    let Some(bin) = std::env::var_os("HERALD_BIN") else {
        eprintln!("SKIPPED: HERALD_BIN is not set; the live tests need a Herald binary");
        return None;
    };
    let admin_key = random_hex(40);
    let mut child = Command::new(&bin)
        .env("WEBHOOK_GRPC_ADDR", "127.0.0.1:0")
        .env("WEBHOOK_ADMIN_ADDR", "127.0.0.1:0")
        .env("WEBHOOK_STORAGE_TYPE", "memory")
        .env("WEBHOOK_LOG_FORMAT", "json")
        .env("WEBHOOK_ADMIN_API_KEY", &admin_key)
        .env("WEBHOOK_EGRESS_ALLOW_CIDRS", "127.0.0.0/8")
        .env("WEBHOOK_RETRY_INITIAL_DELAY", "100ms")
        .env("WEBHOOK_RETRY_MIN_DELAY", "0")
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin:?}: {e}"));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let grpc = timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(addr) = serving_address(&line) {
                return addr;
            }
            seen.push(line);
        }
        panic!(
            "herald exited before serving; its stderr:\n{}",
            seen.join("\n")
        );
    })
    .await
    .expect("herald did not log `herald serving` in time");
    // Keep reading its log, so that a full pipe never stalls it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some(Herald {
        _child: child,
        grpc,
        admin_key,
    })
}

/// The `grpc` field of the JSON log line whose message is `herald serving`.
fn serving_address(line: &str) -> Option<SocketAddr> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value.get("message")?.as_str()? != "herald serving" {
        return None;
    }
    value.get("grpc")?.as_str()?.parse().ok()
}

async fn client(herald: &Herald, address: SocketAddr) -> Client {
    Client::builder(address.to_string())
        .api_key(&herald.admin_key)
        .timeout(Duration::from_secs(10))
        .watch_backoff(Duration::from_millis(20), Duration::from_millis(300))
        .connect()
        .await
        .expect("connect")
}

/// One webhook as the receiver got it.
#[derive(Debug)]
struct Received {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// A minimal HTTP/1.1 receiver on a free port: it answers every request 200 and hands
/// it to the test. Hand-written because one fixed kind of POST needs no framework.
async fn start_receiver() -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut socket = BufReader::new(socket);
                // Herald keeps connections alive: read request after request.
                while let Some(received) = read_request(&mut socket).await {
                    let _ = tx.send(received);
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if socket.get_mut().write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, rx)
}

async fn read_request(socket: &mut BufReader<TcpStream>) -> Option<Received> {
    let mut request_line = String::new();
    if socket.read_line(&mut request_line).await.ok()? == 0 {
        return None;
    }
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        socket.read_line(&mut line).await.ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    assert!(
        !headers.contains_key("transfer-encoding"),
        "the receiver reads only content-length bodies: {headers:?}"
    );
    let length: usize = headers
        .get("content-length")
        .map_or(Ok(0), |l| l.parse())
        .ok()?;
    let mut body = vec![0; length];
    socket.read_exact(&mut body).await.ok()?;
    Some(Received { headers, body })
}

/// A TCP relay to Herald that the test can cut: every open connection is dropped, and
/// new ones are refused until it is restored.
struct Relay {
    addr: SocketAddr,
    /// Bumped by every cut; each connection ends when it changes.
    generation: watch::Sender<u64>,
    /// While false, accepted connections are closed at once.
    open: watch::Sender<bool>,
    /// Connections relayed so far: a reconnect shows as one more.
    relayed: Arc<AtomicUsize>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (generation, _) = watch::channel(0u64);
        let (open, _) = watch::channel(true);
        let relayed = Arc::new(AtomicUsize::new(0));
        let (generations, opens, count) = (generation.clone(), open.clone(), Arc::clone(&relayed));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !*opens.borrow() {
                    continue;
                }
                count.fetch_add(1, Ordering::SeqCst);
                let mut cut = generations.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Relay {
            addr,
            generation,
            open,
            relayed,
        }
    }

    /// Drops every connection and refuses new ones.
    fn cut(&self) {
        self.open.send_replace(false);
        self.generation.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.open.send_replace(true);
    }

    fn connections(&self) -> usize {
        self.relayed.load(Ordering::SeqCst)
    }
}

async fn next_event(watch: &mut Watch) -> pb::DeliveryStatusEvent {
    timeout(PATIENCE, watch.next())
        .await
        .expect("no status event in time")
        .expect("the watch ended")
        .expect("the watch failed")
}

/// Reads events into `seen` until every message in `messages` has succeeded.
async fn read_until_succeeded(
    watch: &mut Watch,
    messages: &[&str],
    seen: &mut Vec<pb::DeliveryStatusEvent>,
) {
    let mut waiting: HashSet<&str> = messages.iter().copied().collect();
    while !waiting.is_empty() {
        let event = next_event(watch).await;
        if event.kind() == StatusEventKind::AttemptSucceeded {
            waiting.remove(event.message_id.as_str());
        }
        seen.push(event);
    }
}

async fn next_webhook(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    timeout(PATIENCE, rx.recv())
        .await
        .expect("no webhook in time")
        .expect("the receiver stopped")
}

async fn publish_order(client: &Client, n: u32) -> String {
    let event = Event::json("order.created", serde_json::json!({"order": n}))
        .idempotency_key(format!("order-{n}"));
    client.publish(event).await.expect("publish").message_id
}

#[tokio::test]
async fn delivers_a_verifiable_webhook_and_watches_it_settle_across_a_cut() {
    let Some(herald) = start_herald().await else {
        return;
    };
    let (receiver, mut webhooks) = start_receiver().await;
    let relay = Relay::start(herald.grpc).await;
    let direct = client(&herald, herald.grpc).await;
    let relayed = client(&herald, relay.addr).await;

    let registered = direct
        .register_endpoint(pb::RegisterEndpointRequest {
            url: format!("http://{receiver}/hooks"),
            event_types: vec!["order.*".into()],
            ..Default::default()
        })
        .await
        .expect("register");
    let endpoint = registered.endpoint.unwrap().id;
    let secret = registered.secret;

    // From the first cursor of this fresh server: nothing is lost to a race with the
    // subscription.
    let filter = pb::StreamDeliveryStatusRequest {
        after_cursor: Some(0),
        endpoint_ids: vec![endpoint.clone()],
        ..Default::default()
    };
    let mut watch = relayed.watch(filter.clone());
    let mut seen = Vec::new();

    let first = publish_order(&direct, 1).await;
    let webhook = next_webhook(&mut webhooks).await;
    assert_eq!(
        verify(&secret, &webhook.headers, &webhook.body, DEFAULT_TOLERANCE),
        Ok(())
    );
    let body: serde_json::Value = serde_json::from_slice(&webhook.body).unwrap();
    assert_eq!(body, serde_json::json!({"order": 1}));
    let mut tampered = webhook.body.clone();
    tampered.push(b' ');
    assert_eq!(
        verify(&secret, &webhook.headers, &tampered, DEFAULT_TOLERANCE),
        Err(VerifyError::NoMatch)
    );
    read_until_succeeded(&mut watch, &[&first], &mut seen).await;

    // The message with its one delivery, and that delivery's one attempt, page by page.
    let answer = direct.get_message(&first).await.expect("get message");
    assert_eq!(answer.message.expect("the message").id, first);
    let delivered: Vec<_> = answer
        .deliveries
        .iter()
        .map(|d| (d.endpoint_id.as_str(), d.state()))
        .collect();
    assert_eq!(
        delivered,
        [(endpoint.as_str(), pb::DeliveryState::Succeeded)]
    );
    assert!(answer.next_page_token.is_empty());
    let attempts: Vec<pb::Attempt> = direct
        .list_attempts(pb::ListAttemptsRequest {
            message_id: first.clone(),
            page_size: 1,
            ..Default::default()
        })
        .collect::<Result<_, _>>()
        .await
        .expect("list attempts");
    assert_eq!(attempts.len(), 1);
    assert!(attempts[0].succeeded);

    // The watch loses its connection; two more messages are delivered meanwhile.
    relay.cut();
    let before = relay.connections();
    let second = publish_order(&direct, 2).await;
    let third = publish_order(&direct, 3).await;
    for _ in 0..2 {
        let webhook = next_webhook(&mut webhooks).await;
        assert_eq!(
            verify(&secret, &webhook.headers, &webhook.body, DEFAULT_TOLERANCE),
            Ok(())
        );
    }
    relay.restore();
    read_until_succeeded(&mut watch, &[&second, &third], &mut seen).await;
    assert!(relay.connections() > before, "the watch did not reconnect");

    let cursors: Vec<u64> = seen.iter().map(|e| e.cursor).collect();
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "an event yielded twice or out of order: {cursors:?}"
    );
    // An uninterrupted replay of the same range holds exactly the same events.
    let mut replay = direct.watch(filter.clone());
    let last = *cursors.last().unwrap();
    let mut replayed = Vec::new();
    while replayed
        .last()
        .is_none_or(|e: &pb::DeliveryStatusEvent| e.cursor < last)
    {
        replayed.push(next_event(&mut replay).await);
    }
    assert_eq!(seen, replayed, "the resumed watch missed or added events");

    // A watcher that leaves resumes from its kept cursor with nothing repeated.
    let kept = watch.cursor().expect("a cursor after events");
    drop(watch);
    let fourth = publish_order(&direct, 4).await;
    let mut resumed = relayed.watch(pb::StreamDeliveryStatusRequest {
        after_cursor: Some(kept),
        ..filter
    });
    let event = next_event(&mut resumed).await;
    assert!(event.cursor > kept);
    assert_eq!(event.message_id, fourth);
}

#[tokio::test]
async fn manages_endpoints_and_surfaces_field_violations() {
    let Some(herald) = start_herald().await else {
        return;
    };
    let client = client(&herald, herald.grpc).await;

    let mut ids = Vec::new();
    for n in 0..3 {
        let registered = client
            .register_endpoint(pb::RegisterEndpointRequest {
                endpoint_id: format!("ep-{n}"),
                url: format!("http://127.0.0.1:9/{n}"),
                ..Default::default()
            })
            .await
            .expect("register");
        ids.push(registered.endpoint.unwrap().id);
    }
    // One per page: the stream fetches the later pages by itself.
    let listed: Vec<String> = client
        .list_endpoints(pb::ListEndpointsRequest {
            page_size: 1,
            ..Default::default()
        })
        .map(|e| e.expect("list").id)
        .collect()
        .await;
    assert_eq!(listed, ids);

    let mut endpoint = client.get_endpoint("ep-1").await.expect("get");
    endpoint.description = "renamed".into();
    endpoint.enabled = false;
    let updated = client
        .update_endpoint(endpoint, ["description", "enabled"])
        .await
        .expect("update");
    assert_eq!(updated.description, "renamed");
    assert!(!updated.enabled);

    let rotated = client
        .rotate_endpoint_secret("ep-1", Some(Duration::ZERO))
        .await
        .expect("rotate");
    assert!(rotated.secret.starts_with("whsec_"));

    client.delete_endpoint("ep-2").await.expect("delete");
    let missing = client.get_endpoint("ep-2").await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // A bad argument comes back with the field it names, decoded from the details.
    let error = client
        .publish(Event::json("bad type!", serde_json::json!({})))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    let fields: Vec<&str> = error
        .field_violations()
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert!(fields.contains(&"event_type"), "{error}");

    // In a batch, the bad event fails alone.
    let results = client
        .publish_batch([
            Event::json("order.created", serde_json::json!({"ok": true})),
            Event::json("bad type!", serde_json::json!({})),
        ])
        .await
        .expect("batch");
    assert!(results[0].is_ok());
    let refused = results[1].as_ref().unwrap_err();
    assert_eq!(refused.code, Code::InvalidArgument as i32);
    assert!(
        refused
            .field_violations
            .iter()
            .any(|v| v.field.contains("event_type"))
    );
}

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("herald-client-tls-{}", random_hex(16)));
        std::fs::create_dir(&path).expect("create the temporary directory");
        TempDir(path)
    }

    /// Writes `contents` to `name` in the directory and returns its path.
    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write a PEM file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A PEM certificate and its PEM private key.
struct CertAndKey {
    cert: String,
    key: String,
}

/// A throwaway certificate authority issuing the server's and the client's certificates.
struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::new()).expect("CA parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "herald-client test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        Ca(CertifiedIssuer::self_signed(params, key).expect("self-signed CA"))
    }

    fn pem(&self) -> String {
        self.0.pem()
    }

    /// Signs a leaf certificate for `names` (none for a client), usable for `usage` only.
    fn issue(&self, names: &[&str], cn: &str, usage: ExtendedKeyUsagePurpose) -> CertAndKey {
        let names = names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(names).expect("leaf parameters");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.0).expect("signed leaf");
        CertAndKey {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// A call that needs the admin credential, with the TLS connection made first: the
/// handshake's failure and the call's come back alike.
async fn register_over(builder: ClientBuilder) -> Result<String, Error> {
    let client = builder.connect().await?;
    let registered = client
        .register_endpoint(pb::RegisterEndpointRequest {
            url: "http://127.0.0.1:9/tls".into(),
            ..Default::default()
        })
        .await?;
    Ok(registered.endpoint.unwrap().id)
}

#[tokio::test]
async fn speaks_tls_and_presents_its_client_certificate() {
    let ca = Ca::new();
    let server = ca.issue(
        &["127.0.0.1", "localhost"],
        "herald test server",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client_cert = ca.issue(
        &[],
        "herald test client",
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let dir = TempDir::new();
    let server_cert = dir.write("server.crt", &server.cert);
    let server_key = dir.write("server.key", &server.key);
    let client_ca = dir.write("ca.crt", &ca.pem());
    let Some(herald) = start_herald_with(&[
        ("WEBHOOK_TLS_CERT", server_cert.as_os_str()),
        ("WEBHOOK_TLS_KEY", server_key.as_os_str()),
        ("WEBHOOK_TLS_CLIENT_CA", client_ca.as_os_str()),
    ])
    .await
    else {
        return;
    };
    // The address's host, 127.0.0.1, is what the server's certificate must name.
    let builder = || {
        Client::builder(herald.grpc.to_string())
            .ca_certificate(ca.pem())
            .api_key(&herald.admin_key)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5))
    };

    // Trusting the CA and presenting a certificate it issued: served.
    let id = timeout(
        PATIENCE,
        register_over(builder().identity(client_cert.cert, client_cert.key)),
    )
    .await
    .expect("no answer in time over mTLS")
    .expect("register over mTLS");
    assert!(!id.is_empty());

    // The same, without a client certificate: refused, at the handshake or at the call
    // (with TLS 1.3 the server's refusal can arrive after the client's side is done).
    let refused = timeout(PATIENCE, register_over(builder()))
        .await
        .expect("no answer in time without a client certificate");
    let error = refused.expect_err("served without a client certificate");
    // The connection is refused, not the call answered: no deadline ran out, and no
    // status came from Herald's handlers (the API key is the one accepted above).
    assert!(
        matches!(
            error.code(),
            Code::Unavailable | Code::Cancelled | Code::Unknown
        ),
        "refused for another reason: {error:?}"
    );

    // Plain text to the TLS port is not served either.
    let plain = timeout(
        PATIENCE,
        register_over(
            Client::builder(herald.grpc.to_string())
                .api_key(&herald.admin_key)
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(5)),
        ),
    )
    .await
    .expect("no answer in time over plain text");
    assert!(plain.is_err(), "served over plain text");
    // Killed before its certificate files are removed.
    drop(herald);
}
