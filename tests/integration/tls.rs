//! TLS and mTLS on the gRPC port of a real server, with certificates made here and kept
//! in a temporary directory: who is served, who is refused and why (as rustls says it),
//! and a certificate replaced on disk served without a restart. Each client is a new
//! channel, so a new connection and handshake. The admin key is still sent: TLS, and a
//! client certificate, decide who may connect, not what a call may do.

use std::net::SocketAddr;
use std::sync::Arc;

use herald::grpc::pb;
use herald::tls::TlsFiles;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore};
use tempfile::TempDir;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::support::{ADMIN_KEY, Backend, PATIENCE, TestApp, eventually, spawn_app_with};
use certs::{Ca, CertAndKey, replace_file};

/// Test certificates: a CA, server certificates for 127.0.0.1 and localhost, client
/// certificates, and replacing PEM files the way certificate tools do.
pub mod certs {
    use std::path::Path;

    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };

    /// A PEM certificate and the PEM private key that belongs to it.
    pub struct CertAndKey {
        pub cert: String,
        pub key: String,
    }

    /// A certificate authority that issues server and client certificates.
    pub struct Ca {
        issuer: CertifiedIssuer<'static, KeyPair>,
    }

    impl Ca {
        pub fn new(name: &str) -> Self {
            let mut params = CertificateParams::new(Vec::new()).expect("CA parameters");
            params.distinguished_name.push(DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let key = KeyPair::generate().expect("CA key");
            let issuer = CertifiedIssuer::self_signed(params, key).expect("self-signed CA");
            Self { issuer }
        }

        /// The CA's own certificate, to trust.
        pub fn cert_pem(&self) -> String {
            self.issuer.pem()
        }

        /// A server certificate for 127.0.0.1 (what the tests dial) and localhost.
        pub fn server(&self) -> CertAndKey {
            self.leaf(
                vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
                "herald test server",
                ExtendedKeyUsagePurpose::ServerAuth,
            )
        }

        /// A client certificate naming `name`.
        pub fn client(&self, name: &str) -> CertAndKey {
            self.leaf(Vec::new(), name, ExtendedKeyUsagePurpose::ClientAuth)
        }

        fn leaf(&self, names: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose) -> CertAndKey {
            let mut params = CertificateParams::new(names).expect("leaf parameters");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![usage];
            params.use_authority_key_identifier_extension = true;
            let key = KeyPair::generate().expect("leaf key");
            let cert = params.signed_by(&key, &self.issuer).expect("signed leaf");
            CertAndKey {
                cert: cert.pem(),
                key: key.serialize_pem(),
            }
        }
    }

    /// Replaces `path` with `contents` as certificate tools do: a temporary file beside
    /// it, renamed over it, so that no reader sees a half-written file.
    pub fn replace_file(path: &Path, contents: &str) {
        let name = path.file_name().expect("a file name").to_string_lossy();
        let temp = path.with_file_name(format!(".{name}.tmp"));
        std::fs::write(&temp, contents).expect("write temporary file");
        std::fs::rename(&temp, path).expect("rename over the file");
    }
}

/// The server's TLS files in a directory of their own, removed when dropped.
struct Files {
    _dir: TempDir,
    files: TlsFiles,
}

impl Files {
    fn new(server: &CertAndKey, client_ca: Option<&Ca>) -> Self {
        let dir = TempDir::new().expect("temp dir");
        let files = TlsFiles {
            cert: dir.path().join("server.crt"),
            key: dir.path().join("server.key"),
            client_ca: client_ca.map(|_| dir.path().join("client-ca.crt")),
        };
        replace_file(&files.cert, &server.cert);
        replace_file(&files.key, &server.key);
        if let (Some(path), Some(ca)) = (&files.client_ca, client_ca) {
            replace_file(path, &ca.cert_pem());
        }
        Self { _dir: dir, files }
    }
}

/// A Herald serving gRPC over TLS from `files`.
async fn spawn_tls(files: &Files) -> TestApp {
    let tls = files.files.clone();
    spawn_app_with(Backend::Memory, |config| config.tls = Some(tls)).await
}

/// What a client trusts, presents, and sends as its bearer credential.
struct Client<'a> {
    trusts: Option<&'a Ca>,
    identity: Option<&'a CertAndKey>,
    credential: Option<&'a str>,
}

impl<'a> Client<'a> {
    /// A client with the admin key that trusts `ca` and presents no certificate.
    fn trusting(ca: &'a Ca) -> Self {
        Self {
            trusts: Some(ca),
            identity: None,
            credential: Some(ADMIN_KEY),
        }
    }

    fn presenting(self, identity: &'a CertAndKey) -> Self {
        Self {
            identity: Some(identity),
            ..self
        }
    }

    /// GetHealth over a new channel, given [`PATIENCE`] in all. A refusal may come at
    /// connect or at the call: under TLS 1.3 the server judges a client certificate
    /// after the client has finished its side of the handshake.
    async fn health(&self, addr: SocketAddr) -> Result<pb::GetHealthResponse, Failure> {
        tokio::time::timeout(PATIENCE, self.attempt(addr))
            .await
            .unwrap_or(Err(Failure::TimedOut))
    }

    async fn attempt(&self, addr: SocketAddr) -> Result<pb::GetHealthResponse, Failure> {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = self.trusts {
            tls = tls.ca_certificate(Certificate::from_pem(ca.cert_pem()));
        }
        if let Some(identity) = self.identity {
            tls = tls.identity(Identity::from_pem(&identity.cert, &identity.key));
        }
        let channel = Endpoint::from_shared(format!("https://{addr}"))
            .expect("a valid address")
            .tls_config(tls)
            .expect("a valid TLS configuration")
            .connect_timeout(PATIENCE)
            .connect()
            .await
            .map_err(Failure::Connect)?;
        herald::cli::client(channel, self.credential)
            .expect("a header value")
            .get_health(pb::GetHealthRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(Failure::Call)
    }

    /// Expects the client to be served.
    async fn expect_served(&self, addr: SocketAddr) {
        if let Err(failure) = self.health(addr).await {
            panic!("expected to be served, got {failure:?}");
        }
    }

    /// Expects the client to be refused at the transport, for the reason `expected`
    /// (as rustls reports it) found by [`Client::handshake`].
    async fn expect_refused(&self, addr: SocketAddr, expected: &rustls::Error) {
        match self.health(addr).await {
            Ok(_) => panic!("expected a refusal ({expected:?}), but was served"),
            Err(failure) => assert!(failure.at_transport(), "refused otherwise: {failure:?}"),
        }
        assert_eq!(self.handshake(addr).await.as_ref(), Err(expected));
    }

    /// What the server makes of this client's handshake, on a raw TLS connection: `Ok`
    /// when it goes on to speak HTTP/2, else the TLS error. Under TLS 1.3 the server
    /// judges a client certificate after the client has finished its side of the
    /// handshake; a gRPC client then sees only its connection closed, while the first
    /// read of a raw connection gets the server's alert.
    async fn handshake(&self, addr: SocketAddr) -> Result<(), rustls::Error> {
        let mut roots = RootCertStore::empty();
        if let Some(ca) = self.trusts {
            let der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).expect("CA PEM");
            roots.add(der).expect("a CA certificate");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots);
        let mut config = match self.identity {
            Some(identity) => {
                let chain = CertificateDer::pem_slice_iter(identity.cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("certificate PEM");
                let key = PrivateKeyDer::from_pem_slice(identity.key.as_bytes()).expect("key PEM");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("a client identity")
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        let attempt = async {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            let mut tls = TlsConnector::from(Arc::new(config))
                .connect(ServerName::from(addr.ip()), tcp)
                .await
                .map_err(|e| tls_error_in(&e))?;
            // A served client's first read is the server's HTTP/2 settings.
            let mut first = [0_u8; 1];
            match tls.read(&mut first).await {
                Ok(0) => panic!("the server closed the connection without a word"),
                Ok(_) => Ok(()),
                Err(e) => Err(tls_error_in(&e)),
            }
        };
        tokio::time::timeout(PATIENCE, attempt)
            .await
            .expect("the server answers the handshake in time")
    }
}

/// The rustls error an I/O error from a TLS stream wraps.
fn tls_error_in(e: &std::io::Error) -> rustls::Error {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a TLS error: {e:?}"))
        .clone()
}

/// How a client attempt failed.
#[derive(Debug)]
enum Failure {
    #[expect(dead_code, reason = "read through Debug, in the failure messages")]
    Connect(tonic::transport::Error),
    Call(tonic::Status),
    TimedOut,
}

impl Failure {
    /// Whether the connection failed, rather than the server answering the call.
    fn at_transport(&self) -> bool {
        match self {
            Self::Connect(_) => true,
            // What a client says of a call whose connection broke under it.
            Self::Call(status) => matches!(
                status.code(),
                Code::Unavailable | Code::Cancelled | Code::Unknown
            ),
            Self::TimedOut => false,
        }
    }
}

/// The client does not trust the server's certificate.
fn server_not_trusted() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_trusting_the_ca_is_served_over_tls() {
    let ca = Ca::new("server CA");
    let files = Files::new(&ca.server(), None);
    let app = spawn_tls(&files).await;

    let health = Client::trusting(&ca)
        .health(app.addr)
        .await
        .expect("served over TLS");
    assert_eq!(health.health(), pb::ServiceHealth::Healthy, "{health:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_the_ca_is_refused() {
    let ca = Ca::new("server CA");
    let other = Ca::new("other CA");
    let files = Files::new(&ca.server(), None);
    let app = spawn_tls(&files).await;

    // No roots at all (tonic is built without the system's), then the wrong ones.
    let trusting_nothing = Client {
        trusts: None,
        ..Client::trusting(&ca)
    };
    trusting_nothing
        .expect_refused(app.addr, &server_not_trusted())
        .await;
    Client::trusting(&other)
        .expect_refused(app.addr, &server_not_trusted())
        .await;
    // The failed handshakes ended nothing.
    Client::trusting(&ca).expect_served(app.addr).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_client_certificate_from_the_client_ca_is_served() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let files = Files::new(&server_ca.server(), Some(&client_ca));
    let app = spawn_tls(&files).await;
    let identity = client_ca.client("publisher");

    Client::trusting(&server_ca)
        .presenting(&identity)
        .expect_served(app.addr)
        .await;
    // The certificate lets the client connect; it is no credential for the calls.
    let without_key = Client {
        credential: None,
        ..Client::trusting(&server_ca).presenting(&identity)
    };
    match without_key.health(app.addr).await {
        Err(Failure::Call(status)) => assert_eq!(status.code(), Code::Unauthenticated),
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_client_without_a_certificate_is_refused() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let files = Files::new(&server_ca.server(), Some(&client_ca));
    let app = spawn_tls(&files).await;

    Client::trusting(&server_ca)
        .expect_refused(
            app.addr,
            &rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
        )
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_client_certificate_from_another_ca_is_refused() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let stranger_ca = Ca::new("stranger CA");
    let files = Files::new(&server_ca.server(), Some(&client_ca));
    let app = spawn_tls(&files).await;
    let unknown_ca = rustls::Error::AlertReceived(AlertDescription::UnknownCA);

    let stranger = stranger_ca.client("stranger");
    Client::trusting(&server_ca)
        .presenting(&stranger)
        .expect_refused(app.addr, &unknown_ca)
        .await;
    // The CA the server's own certificate comes from does not vouch for clients.
    let server_signed = server_ca.client("server-signed");
    Client::trusting(&server_ca)
        .presenting(&server_signed)
        .expect_refused(app.addr, &unknown_ca)
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_certificate_is_served_without_restart() {
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let files = Files::new(&old_ca.server(), None);
    let app = spawn_tls(&files).await;
    Client::trusting(&old_ca).expect_served(app.addr).await;

    let renewed = new_ca.server();
    // Key first: between the two renames the files do not belong together, which the
    // server must ride out on the old pair.
    replace_file(&files.files.key, &renewed.key);
    replace_file(&files.files.cert, &renewed.cert);
    // The server looks at its files about once a second.
    let new_client = Client::trusting(&new_ca);
    eventually("the new certificate is served", || async {
        new_client.health(app.addr).await.ok()
    })
    .await;

    Client::trusting(&old_ca)
        .expect_refused(app.addr, &server_not_trusted())
        .await;
    app.stop().await;
}
