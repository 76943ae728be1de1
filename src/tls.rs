//! TLS for the gRPC port. This module owns turning a stream of accepted connections
//! into a stream of handshaken TLS connections for tonic's
//! `serve_with_incoming_shutdown`: loading and checking the PEM certificate chain,
//! private key and optional client CA, the server's TLS choices (ALPN `h2`, TLS 1.2 and 1.3, client certificates required and
//! verified when a client CA is set), and rebuilding that configuration when the files
//! change on disk, so that a renewed certificate is served without a restart. It does
//! not own where the paths come from (configuration), obtaining or renewing
//! certificates, revocation (no CRLs are checked), what a verified client certificate
//! authorises (tonic hands the peer certificates to each request as `TlsConnectInfo`),
//! accepting connections and bounding how long they may take (`connections`), nor the TLS
//! of outgoing webhook deliveries.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{InconsistentKeys, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{self, Instant, MissedTickBehavior};
use tokio_rustls::server::TlsStream;
use tokio_stream::{Stream, StreamExt};

use crate::telemetry::ErrorChain;

/// How often the files are looked at for changes unless told otherwise.
pub const DEFAULT_RELOAD_CHECK: Duration = Duration::from_secs(1);

/// The shortest interval between looks at the files: a zero interval would have the
/// accept loop do nothing but read files.
const MIN_RELOAD_CHECK: Duration = Duration::from_millis(10);

/// The only application protocol spoken: gRPC runs over HTTP/2.
const ALPN_H2: &[u8] = b"h2";

/// Where the server's certificate, key and (for mutual TLS) client CA live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of that certificate.
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to. When set, every
    /// client must present such a certificate; when `None`, none is asked for.
    pub client_ca: Option<PathBuf>,
}

/// Which setting a file was given for, so that an error says which one to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFileRole {
    Cert,
    Key,
    ClientCa,
}

impl fmt::Display for TlsFileRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cert => "certificate",
            Self::Key => "private key",
            Self::ClientCa => "client CA",
        })
    }
}

/// Why the TLS files do not make a usable server configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {role} file {}", path.display())]
    Read {
        role: TlsFileRole,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the TLS {role} file {} is not valid PEM", path.display())]
    Pem {
        role: TlsFileRole,
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("the TLS certificate file {} holds no certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("the TLS certificate file {} holds a certificate that cannot be parsed", path.display())]
    BadCertificate {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("the TLS private key file {} holds no private key", path.display())]
    NoPrivateKey { path: PathBuf },
    #[error("the TLS private key in {} is malformed or of an unsupported type", path.display())]
    UnusableKey {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error(
        "the TLS private key in {} does not belong to the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("the TLS client CA file {} holds no certificate", path.display())]
    NoClientCa { path: PathBuf },
    #[error("the TLS client CA file {} holds a certificate that cannot be a trust anchor", path.display())]
    BadClientCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot verify client certificates against the CA in {}", path.display())]
    ClientVerifier {
        path: PathBuf,
        #[source]
        source: VerifierBuilderError,
    },
    #[error("cannot build the TLS server configuration")]
    Config(#[source] rustls::Error),
}

/// Serves TLS with the configuration built from [`TlsFiles`], rebuilt when any of the
/// files changes.
#[derive(Debug)]
pub struct TlsAcceptor {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    config: Arc<ServerConfig>,
    /// What the files held when `config` was built, to tell when they change.
    seen: Seen,
    reload_check: Duration,
}

impl TlsAcceptor {
    /// Loads the files now, so that a bad setting stops startup rather than the first
    /// connection.
    ///
    /// # Errors
    ///
    /// Any [`TlsError`]: a file cannot be read or holds no usable certificate or key,
    /// the key does not belong to the certificate, or the client CA is unusable. The
    /// error names the file and the setting it was given for.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        // Ring, the provider this service is built with, chosen here rather than taken
        // from the process-wide default, so the listener's TLS does not depend on what
        // else may have installed one.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let contents = Contents::read(&files)?;
        let config = build_config(&contents, &provider)?;
        Ok(Self {
            seen: Seen::Contents(contents.fingerprint()),
            files,
            provider,
            config,
            reload_check: DEFAULT_RELOAD_CHECK,
        })
    }

    /// Looks at the files for changes every `every` (but no more often than every
    /// 10 ms) instead of every [`DEFAULT_RELOAD_CHECK`].
    #[must_use]
    pub fn with_reload_check(mut self, every: Duration) -> Self {
        self.reload_check = every.max(MIN_RELOAD_CHECK);
        self
    }

    /// The `connections`, each handshaken, for tonic's `serve_with_incoming_shutdown`
    /// (which needs tonic's `tls-connect-info` feature).
    ///
    /// The stream must be polled within a Tokio runtime: handshakes run concurrently,
    /// each in its own task on that runtime, so a slow or silent client holds up no
    /// other; the connections' own deadline bounds each (see `connections`). A failed
    /// handshake is logged at debug level and skipped. The stream ends with the
    /// connections; the server stops accepting by dropping it, which aborts the
    /// handshakes in flight.
    ///
    /// The files are read at most once per reload-check interval, in the blocking
    /// pool, and compared with what they held before: when they change, the new
    /// configuration serves the handshakes that start afterwards, while established
    /// connections keep the one they began with. When the new files are unusable —
    /// which includes the moment between a certificate and its key being replaced one
    /// after the other — that is logged as a warning and the previous configuration
    /// stays in use until the files change again.
    pub fn incoming<IO>(
        self,
        connections: impl Stream<Item = IO> + Send + 'static,
    ) -> impl Stream<Item = TlsStream<IO>> + Send + 'static
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            files,
            provider,
            mut config,
            mut seen,
            reload_check,
        } = self;
        async_stream::stream! {
            tokio::pin!(connections);
            let mut handshakes: JoinSet<Option<TlsStream<IO>>> = JoinSet::new();
            let mut looks: JoinSet<Look> = JoinSet::new();
            let mut reload_tick = time::interval_at(Instant::now() + reload_check, reload_check);
            reload_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                // Accepting comes last so that a flood of connections cannot starve
                // finished handshakes or reloads.
                let event = tokio::select! {
                    biased;
                    Some(done) = handshakes.join_next() => Event::Handshaken(done),
                    Some(looked) = looks.join_next() => Event::Looked(looked),
                    _ = reload_tick.tick(), if looks.is_empty() => Event::LookDue,
                    accepted = connections.next() => match accepted {
                        Some(io) => Event::Accepted(io),
                        None => break,
                    },
                };
                match event {
                    Event::Accepted(io) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&config));
                        handshakes.spawn(handshake(acceptor, io));
                    }
                    Event::Handshaken(Ok(Some(tls))) => yield tls,
                    Event::Handshaken(Ok(None)) => {}
                    Event::Handshaken(Err(err)) => {
                        tracing::warn!(error = %ErrorChain(&err), "TLS handshake task failed");
                    }
                    Event::LookDue => {
                        let files = files.clone();
                        let provider = Arc::clone(&provider);
                        let last = seen;
                        // Reading files blocks; a slow disk must not stall the runtime.
                        looks.spawn_blocking(move || look(&files, &provider, last));
                    }
                    Event::Looked(Ok(Look::Unchanged)) => {}
                    Event::Looked(Ok(Look::Reloaded { seen: now, config: new })) => {
                        seen = now;
                        config = new;
                        tracing::info!(
                            cert = %files.cert.display(),
                            "TLS files changed; new connections use the new configuration"
                        );
                    }
                    Event::Looked(Ok(Look::Invalid { seen: now, error })) => {
                        seen = now;
                        tracing::warn!(
                            error = %ErrorChain(&error),
                            "TLS files changed but are not usable; still serving the previous configuration"
                        );
                    }
                    Event::Looked(Err(err)) => {
                        tracing::warn!(error = %ErrorChain(&err), "checking the TLS files failed");
                    }
                }
            }
        }
    }
}

/// What woke the handshaking loop.
#[expect(
    clippy::large_enum_variant,
    reason = "a handshaken connection passes through once on its way to the consumer; \
              boxing it would cost an allocation per connection to save nothing lasting"
)]
enum Event<IO> {
    Accepted(IO),
    Handshaken(Result<Option<TlsStream<IO>>, JoinError>),
    LookDue,
    Looked(Result<Look, JoinError>),
}

/// Runs one server handshake; `None` when it failed.
async fn handshake<IO>(acceptor: tokio_rustls::TlsAcceptor, io: IO) -> Option<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    match acceptor.accept(io).await {
        Ok(tls) => Some(tls),
        Err(err) => {
            // Scanners, health probes, misconfigured clients and silent ones (closed at
            // their deadline) do this routinely.
            tracing::debug!(error = %err, "TLS handshake failed");
            None
        }
    }
}

/// What the files held at the last look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A fingerprint of all the files' bytes.
    Contents(u64),
    /// At least one file could not be read.
    Unreadable,
}

/// The outcome of one look at the files.
#[derive(Debug)]
enum Look {
    /// Same as the last look: nothing to do, and nothing to warn about again.
    Unchanged,
    /// Changed, and they make a usable configuration.
    Reloaded {
        seen: Seen,
        config: Arc<ServerConfig>,
    },
    /// Changed, but they do not make a usable configuration.
    Invalid { seen: Seen, error: TlsError },
}

/// Reads the files and, if they differ from `last`, builds a configuration from them.
///
/// Contents are compared rather than modification times: replacing a file by renaming
/// another over it (as certificate tools do) may keep the time and size, and the
/// files are small.
fn look(files: &TlsFiles, provider: &Arc<CryptoProvider>, last: Seen) -> Look {
    let contents = match Contents::read(files) {
        Ok(contents) => contents,
        Err(_) if last == Seen::Unreadable => return Look::Unchanged,
        Err(error) => {
            return Look::Invalid {
                seen: Seen::Unreadable,
                error,
            };
        }
    };
    let seen = Seen::Contents(contents.fingerprint());
    if seen == last {
        return Look::Unchanged;
    }
    match build_config(&contents, provider) {
        Ok(config) => Look::Reloaded { seen, config },
        Err(error) => Look::Invalid { seen, error },
    }
}

/// One file's bytes, with what is needed to name it in errors.
struct File {
    role: TlsFileRole,
    path: PathBuf,
    bytes: Vec<u8>,
}

impl File {
    fn read(role: TlsFileRole, path: &Path) -> Result<Self, TlsError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Self {
                role,
                path: path.to_path_buf(),
                bytes,
            }),
            Err(source) => Err(TlsError::Read {
                role,
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Every certificate in the file; other PEM sections are skipped.
    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        CertificateDer::pem_slice_iter(&self.bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| self.pem_error(source))
    }

    fn pem_error(&self, source: pem::Error) -> TlsError {
        TlsError::Pem {
            role: self.role,
            path: self.path.clone(),
            source,
        }
    }
}

/// All the files' bytes, read together so that one configuration is built from one
/// reading of each.
struct Contents {
    cert: File,
    key: File,
    client_ca: Option<File>,
}

impl Contents {
    fn read(files: &TlsFiles) -> Result<Self, TlsError> {
        Ok(Self {
            cert: File::read(TlsFileRole::Cert, &files.cert)?,
            key: File::read(TlsFileRole::Key, &files.key)?,
            client_ca: files
                .client_ca
                .as_deref()
                .map(|path| File::read(TlsFileRole::ClientCa, path))
                .transpose()?,
        })
    }

    /// A fingerprint for change detection only: the files are not attacker-chosen.
    fn fingerprint(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.cert.bytes.hash(&mut hasher);
        self.key.bytes.hash(&mut hasher);
        self.client_ca
            .as_ref()
            .map(|ca| &ca.bytes)
            .hash(&mut hasher);
        hasher.finish()
    }
}

fn build_config(
    contents: &Contents,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certified_key = certified_key(&contents.cert, &contents.key, provider)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?;
    let builder = match &contents.client_ca {
        Some(ca) => builder.with_client_cert_verifier(client_verifier(ca, provider)?),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified_key)));
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The certificate chain with its key, checked to belong together so that a mismatch
/// fails here rather than in every client's handshake.
fn certified_key(
    cert: &File,
    key: &File,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = cert.certificates()?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.path.clone(),
        });
    }
    let key_der = match PrivateKeyDer::from_pem_slice(&key.bytes) {
        Ok(der) => der,
        Err(pem::Error::NoItemsFound) => {
            return Err(TlsError::NoPrivateKey {
                path: key.path.clone(),
            });
        }
        Err(source) => return Err(key.pem_error(source)),
    };
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|source| TlsError::UnusableKey {
            path: key.path.clone(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // `Unknown`: the key cannot tell its public half; rustls accepts such keys too.
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert: cert.path.clone(),
                key: key.path.clone(),
            })
        }
        Err(source) => Err(TlsError::BadCertificate {
            path: cert.path.clone(),
            source,
        }),
    }
}

/// A verifier that requires a client certificate chaining to one in `ca`.
fn client_verifier(
    ca: &File,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let certs = ca.certificates()?;
    if certs.is_empty() {
        return Err(TlsError::NoClientCa {
            path: ca.path.clone(),
        });
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|source| TlsError::BadClientCa {
            path: ca.path.clone(),
            source,
        })?;
    }
    // The builder's default is what is wanted: a client without a certificate is
    // refused, and no CRLs are consulted.
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|source| TlsError::ClientVerifier {
            path: ca.path.clone(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key, written to `dir`.
    fn self_signed(dir: &Path) -> TlsFiles {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("self-signed certificate");
        let files = TlsFiles {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
            client_ca: None,
        };
        std::fs::write(&files.cert, generated.cert.pem()).expect("write certificate");
        std::fs::write(&files.key, generated.signing_key.serialize_pem()).expect("write key");
        files
    }

    #[test]
    fn each_change_is_reported_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = self_signed(dir.path());
        let acceptor = TlsAcceptor::load(files.clone()).expect("load");
        let provider = acceptor.provider;
        let mut seen = acceptor.seen;
        let key = std::fs::read(&files.key).expect("read key");
        assert!(matches!(look(&files, &provider, seen), Look::Unchanged));

        // A missing file is reported, then not again while it stays missing.
        std::fs::remove_file(&files.key).expect("remove key");
        match look(&files, &provider, seen) {
            Look::Invalid { seen: now, error } => {
                assert!(matches!(
                    error,
                    TlsError::Read {
                        role: TlsFileRole::Key,
                        ..
                    }
                ));
                seen = now;
            }
            other => panic!("expected the missing key to be reported, got {other:?}"),
        }
        assert!(matches!(look(&files, &provider, seen), Look::Unchanged));

        // Back again: a reload.
        std::fs::write(&files.key, &key).expect("restore key");
        match look(&files, &provider, seen) {
            Look::Reloaded { seen: now, .. } => seen = now,
            other => panic!("expected a reload, got {other:?}"),
        }
        assert!(matches!(look(&files, &provider, seen), Look::Unchanged));

        // Unusable contents: reported once.
        std::fs::write(&files.cert, "not a certificate").expect("break certificate");
        match look(&files, &provider, seen) {
            Look::Invalid { seen: now, error } => {
                assert!(matches!(error, TlsError::NoCertificate { .. }));
                seen = now;
            }
            other => panic!("expected the broken certificate to be reported, got {other:?}"),
        }
        assert!(matches!(look(&files, &provider, seen), Look::Unchanged));
    }

    #[test]
    fn the_configuration_offers_h2_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let acceptor = TlsAcceptor::load(self_signed(dir.path())).expect("load");
        assert_eq!(acceptor.config.alpn_protocols, vec![b"h2".to_vec()]);
    }
}
