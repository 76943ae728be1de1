//! Safe egress, end to end: without an allow-list no webhook reaches loopback, whether
//! the URL names it by an IP literal (refused at registration, in every form parsers
//! accept) or by a host name (registered, then blocked at every attempt, the sink
//! receiving nothing); with `127.0.0.0/8` allowed the same endpoints receive their
//! webhooks; Herald's own ports stay out of reach inside an allowed block; a name that
//! changes its answer between registration and delivery is checked at delivery; and
//! through a proxy, which resolves and enforces instead, with certificates verified
//! against the operator's CA.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use herald::config::Config;
use herald::egress::{CustomResolver, HostResolver};
use herald::grpc::pb;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::each_backend;
use crate::support::{
    Backend, PATIENCE, Sink, TestApp, metric, spawn_app, spawn_app_with, violations,
};
use crate::tls::certs::{Ca, CertAndKey};

each_backend!(loopback_names_are_registered_but_every_attempt_is_blocked);

/// The server of a deployment without an allow-list.
fn public_only(config: &mut Config) {
    config.egress.allow.clear();
}

/// Publishes one event and waits until it has `n` attempts; returns them.
async fn attempts_of_one_event(app: &mut TestApp, n: usize) -> Vec<pb::Attempt> {
    let id = app
        .publish_json("order.created", serde_json::json!({"order": 1}))
        .await
        .message_id;
    app.attempts_when(&id, |attempts| attempts.len() >= n).await
}

/// Asserts that every attempt was blocked, saying `why`, and sent nothing.
fn assert_blocked(attempts: &[pb::Attempt], why: &[&str]) {
    for a in attempts {
        assert_eq!(
            a.error_kind,
            pb::AttemptErrorKind::Blocked as i32,
            "attempt {a:?}"
        );
        assert_eq!(a.status_code, 0, "nothing was sent: {a:?}");
        for words in why {
            assert!(a.error.contains(words), "{:?} says {words:?}", a.error);
        }
    }
}

async fn loopback_names_are_registered_but_every_attempt_is_blocked(backend: Backend) {
    let mut sink = Sink::start().await;
    let mut app = spawn_app_with(backend, public_only).await;
    let (endpoint, _) = app
        .register_url(format!("http://localhost:{}/hook", sink.addr.port()))
        .await;
    let mut stream = app
        .client
        .stream_delivery_status(pb::StreamDeliveryStatusRequest {
            after_cursor: Some(0),
            kinds: vec![pb::StatusEventKind::AttemptFailed as i32],
            ..Default::default()
        })
        .await
        .expect("stream opens")
        .into_inner();
    let attempts = attempts_of_one_event(&mut app, 2).await;
    assert_blocked(
        &attempts,
        &["localhost", "127.0.0.1", "WEBHOOK_EGRESS_ALLOW_CIDRS"],
    );
    // Every attempt was made, and none reached the sink.
    assert!(sink.drain().is_empty(), "the sink received a webhook");

    // The status stream, analytics and metrics say the same.
    let event = loop {
        let item = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("an event in time")
            .expect("stream open")
            .expect("stream open");
        if let Some(pb::stream_delivery_status_response::Item::Event(e)) = item.item {
            break e;
        }
    };
    assert_eq!(event.endpoint_id, endpoint);
    assert_eq!(event.error_kind, pb::AttemptErrorKind::Blocked as i32);
    let analytics = app
        .client
        .get_analytics(pb::GetAnalyticsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let blocked = analytics
        .failure_kinds
        .iter()
        .find(|k| k.kind == pb::FailureKind::Blocked as i32)
        .expect("blocked attempts in analytics");
    assert!(blocked.count >= 2, "{analytics:?}");
    let counted = metric(
        &app.scrape().await,
        r#"webhook_attempt_failures_total{kind="blocked"}"#,
    )
    .expect("blocked attempts counted");
    assert!(counted >= 2.0, "{counted} blocked attempts counted");
    app.stop().await;
}

/// Registers an endpoint at `url`, which must be refused for its URL alone; says why.
async fn refused_url(app: &mut TestApp, url: &str) -> String {
    let refused = app
        .client
        .register_endpoint(pb::RegisterEndpointRequest {
            url: url.into(),
            ..Default::default()
        })
        .await
        .expect_err(url);
    let mut found = violations(&refused);
    assert_eq!(found.len(), 1, "{url}: {found:?}");
    let (field, why) = found.pop().unwrap();
    assert_eq!(field, "url", "{url}");
    why
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_literals_are_refused_at_registration_in_every_form() {
    let mut app = spawn_app_with(Backend::Memory, public_only).await;
    let literal = [
        "http://127.0.0.1:8080/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://127.0.0.1./",
        "http://127.0.0.1../",
        "http://%31%32%37.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "https://[fe80::1]/",
    ];
    for url in literal {
        let why = refused_url(&mut app, url).await;
        assert!(
            why.contains("WEBHOOK_EGRESS_ALLOW_CIDRS"),
            "{url}: {why:?} names the setting that would allow it"
        );
    }
    // Forms no parser takes are refused as URLs; so are other schemes, credentials and
    // overlong URLs.
    let malformed = [
        "http://[fe80::1%25eth0]/",
        "http://1.2.3.4.5/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "http://user:secret@example.com/",
    ];
    let long = format!("https://example.com/{}", "a".repeat(2048));
    for url in malformed.iter().copied().chain([long.as_str()]) {
        refused_url(&mut app, url).await;
    }
    // A public literal is fine, and an update is held to the same rule.
    let (endpoint, _) = app.register_url("https://93.184.216.34/hook".into()).await;
    let refused = app
        .client
        .update_endpoint(pb::UpdateEndpointRequest {
            endpoint: Some(pb::Endpoint {
                id: endpoint.clone(),
                url: "http://[::ffff:169.254.169.254]/".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["url".into()],
            }),
            ..Default::default()
        })
        .await
        .expect_err("a metadata address");
    let found = violations(&refused);
    assert!(
        found[0].0.ends_with("url") && found[0].1.contains("169.254.169.254"),
        "{found:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_refused_when_https_is_required() {
    let mut app = spawn_app_with(Backend::Memory, |c| c.egress.require_https = true).await;
    let why = refused_url(&mut app, "http://example.com/hook").await;
    assert!(why.contains("WEBHOOK_REQUIRE_HTTPS"), "{why}");
    app.register_url("https://example.com/hook".into()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_block_is_reached_by_literal_and_by_name() {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(Backend::Memory).await;
    let port = sink.addr.port();
    app.register_url(format!("http://127.0.0.1:{port}/literal"))
        .await;
    app.register_url(format!("http://localhost:{port}/name"))
        .await;
    app.publish_json("order.created", serde_json::json!({"order": 1}))
        .await;
    let mut paths: Vec<_> = sink.take(2).await.into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(paths, ["/literal", "/name"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_own_ports_are_out_of_reach_inside_an_allowed_block() {
    let mut app = spawn_app(Backend::Memory).await;
    for addr in [app.addr, app.admin] {
        let why = refused_url(&mut app, &format!("http://{addr}/metrics")).await;
        assert!(why.contains("own listening sockets"), "{why}");
    }
    // By name, it is registered, and blocked at every attempt.
    app.register_url(format!("http://localhost:{}/metrics", app.admin.port()))
        .await;
    let attempts = attempts_of_one_event(&mut app, 2).await;
    assert_blocked(&attempts, &["own listening sockets"]);
    app.stop().await;
}

/// A name service whose answer the test changes: what DNS rebinding looks like.
struct Rebinding {
    /// Answer loopback from now on (before: a public address).
    rebound: AtomicBool,
    lookups: AtomicUsize,
}

#[async_trait]
impl HostResolver for Rebinding {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        assert_eq!(host, "hooks.rebinding.test");
        self.lookups.fetch_add(1, Ordering::SeqCst);
        Ok(vec![if self.rebound.load(Ordering::SeqCst) {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34))
        }])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_rebound_to_loopback_is_blocked_at_delivery() {
    let mut sink = Sink::start().await;
    let resolver = Arc::new(Rebinding {
        rebound: AtomicBool::new(false),
        lookups: AtomicUsize::new(0),
    });
    let hook = resolver.clone();
    let mut app = spawn_app_with(Backend::Memory, move |c| {
        public_only(c);
        c.egress.resolver = Some(CustomResolver(hook));
    })
    .await;
    let url = format!("http://hooks.rebinding.test:{}/hook", sink.addr.port());
    app.register_url(url.clone()).await;
    // Registration looks nothing up: nothing checked then could be trusted later.
    assert_eq!(resolver.lookups.load(Ordering::SeqCst), 0);
    resolver.rebound.store(true, Ordering::SeqCst);
    let attempts = attempts_of_one_event(&mut app, 3).await;
    assert_blocked(&attempts, &["hooks.rebinding.test", "127.0.0.1"]);
    // One lookup per attempt: the address checked is the one that would be connected to.
    let lookups = resolver.lookups.load(Ordering::SeqCst);
    assert!(
        lookups >= attempts.len() && lookups <= attempts.len() + 1,
        "{lookups} lookups for {} attempts",
        attempts.len()
    );
    assert!(sink.drain().is_empty(), "the sink received a webhook");
    app.stop().await;

    // The same name, allowed: the answer really leads to the sink.
    let hook = resolver.clone();
    let mut app = spawn_app_with(Backend::Memory, move |c| {
        c.egress.resolver = Some(CustomResolver(hook));
    })
    .await;
    app.register_url(url).await;
    app.publish_json("order.created", serde_json::json!({"order": 2}))
        .await;
    assert_eq!(sink.next().await.path, "/hook");
    app.stop().await;
}

/// A proxy on loopback (HTTP CONNECT or SOCKS5) that records the targets it was asked for.
struct Proxy {
    addr: SocketAddr,
    targets: Arc<Mutex<Vec<String>>>,
}

type Targets = Arc<Mutex<Vec<String>>>;

impl Proxy {
    async fn start<F, Fut>(serve: F) -> Self
    where
        F: Fn(TcpStream, Targets) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let seen = targets.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, seen.clone()));
            }
        });
        Self { addr, targets }
    }
}

/// SOCKS5 without authentication: reads the CONNECT command (a name, which the proxy
/// resolves, or an address), connects there and relays.
async fn socks5(mut client: TcpStream, seen: Targets) {
    use tokio::io::AsyncReadExt;
    let mut greeting = [0; 2];
    client.read_exact(&mut greeting).await.unwrap();
    assert_eq!(greeting[0], 5, "SOCKS version 5");
    let mut methods = vec![0; usize::from(greeting[1])];
    client.read_exact(&mut methods).await.unwrap();
    assert!(
        methods.contains(&0),
        "no authentication offered: {methods:?}"
    );
    client.write_all(&[5, 0]).await.unwrap();
    let mut head = [0; 4];
    client.read_exact(&mut head).await.unwrap();
    assert_eq!(head[..3], [5, 1, 0], "a CONNECT command");
    let host = match head[3] {
        1 => {
            let mut ip = [0; 4];
            client.read_exact(&mut ip).await.unwrap();
            Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut name = vec![0; usize::from(client.read_u8().await.unwrap())];
            client.read_exact(&mut name).await.unwrap();
            String::from_utf8(name).unwrap()
        }
        other => panic!("address type {other}"),
    };
    let port = client.read_u16().await.unwrap();
    let target = format!("{host}:{port}");
    seen.lock().unwrap().push(target.clone());
    let mut upstream = TcpStream::connect(target.as_str()).await.unwrap();
    client
        .write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// Reads `CONNECT host:port`, connects there (resolving the name itself) and relays.
async fn tunnel(client: TcpStream, seen: Targets) {
    let mut client = BufReader::new(client);
    let mut request = String::new();
    client.read_line(&mut request).await.unwrap();
    let target = match request.split_whitespace().collect::<Vec<_>>()[..] {
        ["CONNECT", target, _] => target.to_owned(),
        _ => panic!("not a CONNECT request: {request:?}"),
    };
    loop {
        let mut line = String::new();
        client.read_line(&mut line).await.unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    seen.lock().unwrap().push(target.clone());
    let mut upstream = TcpStream::connect(target.as_str()).await.unwrap();
    client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .unwrap();
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// An HTTPS receiver with `server`'s certificate that reports each request's path.
async fn https_sink(server: &CertAndKey) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs = CertificateDer::pem_slice_iter(server.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(server.key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate ends the handshake.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut tls = BufReader::new(tls);
                let mut request = String::new();
                tls.read_line(&mut request).await.unwrap();
                let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    tls.read_line(&mut line).await.unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                let mut body = vec![0; length];
                tokio::io::AsyncReadExt::read_exact(&mut tls, &mut body)
                    .await
                    .unwrap();
                let _ = tx.send(path);
                tls.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                    .await
                    .unwrap();
                tls.shutdown().await.unwrap();
            });
        }
    });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_carries_webhooks_and_certificates_are_verified() {
    let ca = Ca::new("private PKI");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let (sink, mut received) = https_sink(&ca.server()).await;
    let proxy = Proxy::start(tunnel).await;
    let proxy_url: url::Url = format!("http://{}", proxy.addr).parse().unwrap();
    let url = format!("https://localhost:{}/hook", sink.port());

    // No allow-list: the proxy, not Herald, resolves `localhost` and lets it through.
    let (via, trusting) = (proxy_url.clone(), ca_file.clone());
    let mut app = spawn_app_with(Backend::Memory, move |c| {
        public_only(c);
        c.egress.proxy = Some(via);
        c.egress.ca_file = Some(trusting);
    })
    .await;
    app.register_url(url.clone()).await;
    app.publish_json("order.created", serde_json::json!({"order": 1}))
        .await;
    let path = tokio::time::timeout(PATIENCE, received.recv())
        .await
        .expect("delivered through the proxy in time");
    assert_eq!(path.as_deref(), Some("/hook"));
    assert_eq!(
        proxy.targets.lock().unwrap().as_slice(),
        [format!("localhost:{}", sink.port())]
    );
    app.stop().await;

    // Without the operator's CA the certificate is not trusted: nothing is delivered.
    let mut app = spawn_app_with(Backend::Memory, move |c| {
        public_only(c);
        c.egress.proxy = Some(proxy_url);
    })
    .await;
    app.register_url(url).await;
    let attempts = attempts_of_one_event(&mut app, 1).await;
    assert_eq!(
        attempts[0].error_kind,
        pb::AttemptErrorKind::Tls as i32,
        "{attempts:?}"
    );
    assert!(received.try_recv().is_err(), "an untrusted receiver got it");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socks5_proxy_resolves_and_carries_webhooks() {
    let mut sink = Sink::start().await;
    let proxy = Proxy::start(socks5).await;
    let via: url::Url = format!("socks5h://{}", proxy.addr).parse().unwrap();
    let mut app = spawn_app_with(Backend::Memory, move |c| {
        public_only(c);
        c.egress.proxy = Some(via);
    })
    .await;
    let target = format!("localhost:{}", sink.addr.port());
    app.register_url(format!("http://{target}/hook")).await;
    app.publish_json("order.created", serde_json::json!({"order": 1}))
        .await;
    assert_eq!(sink.next().await.path, "/hook");
    // The name went to the proxy unresolved: the proxy decided where it leads.
    assert_eq!(proxy.targets.lock().unwrap().as_slice(), [target]);
    app.stop().await;
}
