//! Validation of bearer JWTs issued by an external identity provider: the
//! verification keys (an HS256 secret, or a JWKS read from a file or fetched
//! over HTTP and refreshed), signature checks, the registered claims Herald
//! relies on (`iss`, `aud`, `exp`, `nbf`, `iat`, `sub`), and turning the
//! claims into a [`JwtIdentity`]. It does not read request headers, decide
//! what scopes allow, handle Herald's own API keys (see `super::key`), or emit
//! metrics; callers label their counters with [`JwtRejected::reason`].
//!
//! # Algorithms come from the key, not the token
//!
//! A token's `alg` header is attacker-controlled, so it only has to agree with
//! what the key already dictates. HS256 settings accept HS256 alone. A JWKS
//! accepts RS256 for RSA keys (at least 2048 bits), ES256 for P-256 keys and
//! EdDSA for Ed25519 keys; symmetric (`oct`) JWKS entries are ignored. So a
//! token cannot, for example, get an RSA public key used as an HMAC secret.
//!
//! # Key refresh
//!
//! Keys are loaded once when the verifier is built. A token whose `kid` is not
//! in the cached set triggers a reload (file re-read or URL re-fetched), but
//! at most once per 30 s, so random `kid`s cannot turn Herald into a
//! load generator against the identity provider. A URL-sourced set older than
//! five minutes is re-fetched by the next verification, so removed keys stop
//! being trusted without a restart. There are no background tasks: the refresh
//! runs inside a verification call. Only one caller fetches at a time; other
//! callers keep using the cached set unless they need the outcome (their `kid`
//! is unknown). A failed reload keeps the previous keys.
//!
//! # Claims
//!
//! `iss` must equal the configured issuer; `aud` (a string or an array) must
//! contain the configured audience; `exp` is required; `nbf` and `iat` are
//! checked when present (an `iat` in the future means a skewed or forged
//! token). All time checks allow the configured leeway. `sub` is required.
//! Scopes come from `scope` (space-separated) when present, otherwise from
//! `scp` (space-separated string or array of strings). The tenant comes from
//! the configured claim and must be a non-empty string when present.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::error::Error as _;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

/// How often, at most, an unknown `kid` (or a stale set) may cause a reload.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Age after which a URL-sourced key set is re-fetched on the next use.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(5 * 60);
/// Timeout for one JWKS HTTP fetch, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Shortest HS256 secret accepted: RFC 7518 §3.2 asks for at least the hash
/// output size.
pub const MIN_HS256_SECRET_LEN: usize = 32;

/// Real key sets are a few kilobytes; the cap bounds memory if the endpoint
/// or file is replaced by something hostile or broken.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Bounds the work spent on a single presented token before any crypto.
const MAX_TOKEN_LEN: usize = 16 * 1024;
const MIN_RSA_BITS: usize = 2048;
const JWKS_ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Some providers pad base64url in JWKS members although RFC 7517 says not to;
/// being lenient there costs nothing because the decoded bytes are checked.
const JWK_BASE64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Settings for [`JwtVerifier::new`].
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// Required; the `iss` claim must equal it exactly.
    pub issuer: String,
    /// Required; must appear in the `aud` claim (string or array).
    pub audience: String,
    /// Clock-skew allowance for `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Where verification keys come from.
    pub keys: JwtKeys,
    /// Claim holding the tenant id, e.g. `tenant_id`; an absent claim yields
    /// no tenant.
    pub tenant_claim: String,
}

/// Source of the keys that verify token signatures.
#[derive(Clone)]
pub enum JwtKeys {
    /// HS256 shared secret (redacted Debug).
    Hs256(Vec<u8>),
    /// A JWKS file on disk (RS256/ES256/EdDSA keys, selected by `kid`).
    JwksFile(PathBuf),
    /// A JWKS served over HTTP(S).
    JwksUrl(Url),
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hs256(_) => f.write_str("Hs256(<redacted>)"),
            Self::JwksFile(path) => f.debug_tuple("JwksFile").field(path).finish(),
            Self::JwksUrl(url) => f.debug_tuple("JwksUrl").field(&redacted_url(url)).finish(),
        }
    }
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIdentity {
    /// The `sub` claim.
    pub subject: String,
    /// Scopes from `scope` or `scp`, in token order; empty when neither is set.
    pub scopes: Vec<String>,
    /// The configured tenant claim, when present.
    pub tenant: Option<String>,
}

/// Why a key set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The JWKS file could not be read.
    #[error("cannot read JWKS file {}", path.display())]
    ReadFile {
        /// The configured path.
        path: PathBuf,
        /// What the filesystem reported.
        #[source]
        source: std::io::Error,
    },
    /// The JWKS URL could not be fetched (connection, TLS, timeout, body).
    #[error("cannot fetch JWKS from {origin}")]
    Fetch {
        /// The URL without credentials or query.
        origin: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// The JWKS URL answered with a non-success status.
    #[error("JWKS endpoint {origin} answered HTTP {status}")]
    HttpStatus {
        /// The URL without credentials or query.
        origin: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The document exceeded the size cap.
    #[error("JWKS from {origin} is larger than {limit} bytes")]
    TooLarge {
        /// File path or URL.
        origin: String,
        /// The cap, in bytes.
        limit: usize,
    },
    /// The document is not a JSON object with a `keys` array.
    #[error("JWKS from {origin} is not a valid JSON Web Key Set")]
    Invalid {
        /// File path or URL.
        origin: String,
        /// The parse failure.
        #[source]
        source: serde_json::Error,
    },
    /// No entry is a usable signing key (others are skipped with a warning).
    #[error(
        "JWKS from {origin} has no usable key (RSA >= 2048 bits for RS256, P-256 for ES256, Ed25519 for EdDSA)"
    )]
    NoUsableKey {
        /// File path or URL.
        origin: String,
    },
}

/// Why a [`JwtVerifier`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum JwtSetupError {
    /// A required text setting is empty.
    #[error("JWT setting `{0}` must not be empty")]
    EmptySetting(&'static str),
    /// The HS256 secret is too short to resist guessing.
    #[error("HS256 secret is {len} bytes; at least {MIN_HS256_SECRET_LEN} are required")]
    WeakHs256Secret {
        /// Length of the configured secret, in bytes.
        len: usize,
    },
    /// The JWKS URL is neither `http` nor `https`.
    #[error("JWKS URL scheme must be http or https, not `{0}`")]
    UnsupportedUrlScheme(String),
    /// The build has no usable `jsonwebtoken` crypto backend.
    #[error("no JWT crypto backend is available in this build")]
    NoCryptoBackend,
    /// The process has not installed a rustls crypto provider.
    #[error(
        "no rustls crypto provider is installed; install one at startup before building the JWT verifier"
    )]
    NoTlsProvider,
    /// The HTTP client for the JWKS URL could not be built.
    #[error("cannot build the HTTP client for the JWKS URL")]
    HttpClient(#[source] reqwest::Error),
    /// The initial key set could not be loaded.
    #[error(transparent)]
    Jwks(#[from] JwksError),
}

/// Why a presented token was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JwtRejected {
    /// Not a well-formed JWS, or a claim has the wrong type or is missing.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The signature does not verify with the selected key.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` is in the past beyond the leeway.
    #[error("token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future beyond the leeway.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iss` is missing or differs from the configured issuer.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// `aud` is missing or does not contain the configured audience.
    #[error("token audience does not include this service")]
    WrongAudience,
    /// No cached key matches the token's `kid`.
    #[error("token is signed with an unknown key")]
    UnknownKey,
    /// The token's `alg` is never accepted by this verifier.
    #[error("token algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// The token's `alg` differs from the one its key is for.
    #[error("token algorithm does not match its key")]
    AlgorithmMismatch,
    /// `sub` is missing or empty.
    #[error("token has no subject")]
    MissingSubject,
    /// The `kid` is unknown and the key set could not be reloaded.
    #[error("signing keys are unavailable")]
    KeysUnavailable(#[source] Arc<JwksError>),
}

impl JwtRejected {
    /// Short snake_case label for metrics, e.g. `expired`.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::UnknownKey => "unknown_key",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::AlgorithmMismatch => "algorithm_mismatch",
            Self::MissingSubject => "missing_subject",
            Self::KeysUnavailable(_) => "keys_unavailable",
        }
    }
}

/// Verifies bearer JWTs; build once and share behind an `Arc`.
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    leeway_secs: f64,
    tenant_claim: String,
    keys: Keys,
}

enum Keys {
    Hs256(DecodingKey),
    Jwks(JwksCache),
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match &self.keys {
            Keys::Hs256(_) => "hs256",
            Keys::Jwks(_) => "jwks",
        };
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &keys)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
struct RefreshPolicy {
    min_interval: Duration,
    max_age: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            min_interval: MIN_REFRESH_INTERVAL,
            max_age: MAX_KEY_AGE,
        }
    }
}

impl JwtVerifier {
    /// Builds a verifier, loading or fetching the JWKS once.
    ///
    /// # Errors
    ///
    /// Returns [`JwtSetupError`] when a required setting is empty, the HS256
    /// secret is shorter than [`MIN_HS256_SECRET_LEN`], the JWKS URL scheme is
    /// not HTTP(S), no rustls provider is installed (URL source), or the JWKS
    /// cannot be read, fetched or parsed, or holds no usable key.
    pub async fn new(settings: JwtSettings) -> Result<Self, JwtSetupError> {
        Self::with_refresh_policy(settings, RefreshPolicy::default()).await
    }

    async fn with_refresh_policy(
        settings: JwtSettings,
        policy: RefreshPolicy,
    ) -> Result<Self, JwtSetupError> {
        for (name, value) in [
            ("issuer", &settings.issuer),
            ("audience", &settings.audience),
            ("tenant_claim", &settings.tenant_claim),
        ] {
            if value.is_empty() {
                return Err(JwtSetupError::EmptySetting(name));
            }
        }
        // jsonwebtoken panics on first use without a backend; find out here.
        let provider = CryptoProvider::try_get_default().ok_or(JwtSetupError::NoCryptoBackend)?;

        let keys = match settings.keys {
            JwtKeys::Hs256(secret) => {
                let len = secret.len();
                if len < MIN_HS256_SECRET_LEN {
                    return Err(JwtSetupError::WeakHs256Secret { len });
                }
                let key = DecodingKey::from_secret(&secret)
                    .map_err(|_| JwtSetupError::WeakHs256Secret { len })?;
                Keys::Hs256(key)
            }
            JwtKeys::JwksFile(path) => {
                let source = JwksSource::File { path };
                // A file changes only when the operator rotates it; re-reading
                // on unknown `kid`s covers that without periodic polling.
                Keys::Jwks(JwksCache::load(source, provider, policy.min_interval, None).await?)
            }
            JwtKeys::JwksUrl(url) => {
                let source = JwksSource::url(url)?;
                Keys::Jwks(
                    JwksCache::load(source, provider, policy.min_interval, Some(policy.max_age))
                        .await?,
                )
            }
        };

        Ok(Self {
            issuer: settings.issuer,
            audience: settings.audience,
            leeway_secs: settings.leeway.as_secs_f64(),
            tenant_claim: settings.tenant_claim,
            keys,
        })
    }

    /// Verifies a bearer token (the text after `Bearer `) and returns the
    /// identity it carries.
    ///
    /// # Errors
    ///
    /// Returns [`JwtRejected`] naming the first check that failed; see the
    /// module docs for the rules.
    pub async fn verify(&self, token: &str) -> Result<JwtIdentity, JwtRejected> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtRejected::Malformed("token is too long"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| JwtRejected::Malformed("token header is not a valid JWS header"))?;

        let claims = match &self.keys {
            Keys::Hs256(key) => {
                if header.alg != Algorithm::HS256 {
                    return Err(JwtRejected::UnsupportedAlgorithm);
                }
                verified_claims(token, key, Algorithm::HS256)?
            }
            Keys::Jwks(cache) => {
                // Checked before the key lookup so tokens that can never be
                // accepted do not count towards reloads.
                if !JWKS_ALGORITHMS.contains(&header.alg) {
                    return Err(JwtRejected::UnsupportedAlgorithm);
                }
                let entry = cache.key_for(header.kid.as_deref()).await?;
                if entry.alg != header.alg {
                    return Err(JwtRejected::AlgorithmMismatch);
                }
                verified_claims(token, &entry.key, entry.alg)?
            }
        };
        self.identity_from_claims(&claims, unix_now())
    }

    fn identity_from_claims(
        &self,
        claims: &Map<String, Value>,
        now: f64,
    ) -> Result<JwtIdentity, JwtRejected> {
        match claims.get("iss") {
            Some(Value::String(iss)) if *iss == self.issuer => {}
            _ => return Err(JwtRejected::WrongIssuer),
        }
        if !audience_contains(claims.get("aud"), &self.audience) {
            return Err(JwtRejected::WrongAudience);
        }

        let exp =
            numeric_date(claims, "exp")?.ok_or(JwtRejected::Malformed("`exp` claim is missing"))?;
        if now >= exp + self.leeway_secs {
            return Err(JwtRejected::Expired);
        }
        for name in ["nbf", "iat"] {
            if numeric_date(claims, name)?.is_some_and(|at| at > now + self.leeway_secs) {
                return Err(JwtRejected::NotYetValid);
            }
        }

        let subject = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            None | Some(Value::String(_)) => return Err(JwtRejected::MissingSubject),
            Some(_) => return Err(JwtRejected::Malformed("`sub` claim is not a string")),
        };
        let scopes = scopes(claims)?;
        let tenant = match claims.get(&self.tenant_claim) {
            None => None,
            Some(Value::String(tenant)) if !tenant.is_empty() => Some(tenant.clone()),
            Some(Value::String(_)) => return Err(JwtRejected::Malformed("tenant claim is empty")),
            Some(_) => return Err(JwtRejected::Malformed("tenant claim is not a string")),
        };

        Ok(JwtIdentity {
            subject,
            scopes,
            tenant,
        })
    }
}

/// Checks the signature with `alg` only and returns the raw claims; claim
/// rules are applied by [`JwtVerifier::identity_from_claims`] so that every
/// rule and its rejection reason lives in this module.
fn verified_claims(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
) -> Result<Map<String, Value>, JwtRejected> {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|err| rejection_from(&err))
}

fn rejection_from(err: &jsonwebtoken::errors::Error) -> JwtRejected {
    match err.kind() {
        ErrorKind::InvalidSignature => JwtRejected::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => JwtRejected::UnsupportedAlgorithm,
        // Keys are checked when loaded, so this is not expected; if it happens
        // the signature cannot be trusted and the token must not pass.
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => JwtRejected::BadSignature,
        ErrorKind::Base64(_) => JwtRejected::Malformed("token segment is not base64url"),
        ErrorKind::Json(_) => JwtRejected::Malformed("token claims are not a JSON object"),
        ErrorKind::Utf8(_) => JwtRejected::Malformed("token segment is not UTF-8"),
        _ => JwtRejected::Malformed("token is not a well-formed JWS"),
    }
}

fn unix_now() -> f64 {
    // A clock before 1970 cannot judge any token; failing closed makes every
    // token read as expired instead of accepting tokens whose `exp` passed.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(f64::INFINITY, |d| d.as_secs_f64())
}

fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, JwtRejected> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or(JwtRejected::Malformed("time claim is not a number")),
        Some(_) => Err(JwtRejected::Malformed("time claim is not a number")),
    }
}

fn audience_contains(aud: Option<&Value>, expected: &str) -> bool {
    match aud {
        Some(Value::String(aud)) => aud == expected,
        Some(Value::Array(items)) => items.iter().any(|item| item.as_str() == Some(expected)),
        _ => false,
    }
}

fn scopes(claims: &Map<String, Value>) -> Result<Vec<String>, JwtRejected> {
    fn split(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }
    // `scope` is the RFC 8693/9068 claim; `scp` is what several providers
    // emit instead. Taking one rather than merging both avoids granting the
    // union when a provider means something different by each.
    if let Some(scope) = claims.get("scope") {
        return match scope {
            Value::String(s) => Ok(split(s)),
            _ => Err(JwtRejected::Malformed("`scope` claim is not a string")),
        };
    }
    match claims.get("scp") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(split(s)),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or(JwtRejected::Malformed("`scp` array holds a non-string"))
            })
            .collect(),
        Some(_) => Err(JwtRejected::Malformed(
            "`scp` claim is neither a string nor an array of strings",
        )),
    }
}

// --- JWKS loading and caching -------------------------------------------

enum JwksSource {
    File {
        path: PathBuf,
    },
    Url {
        url: Url,
        origin: String,
        client: reqwest::Client,
    },
}

impl JwksSource {
    fn url(url: Url) -> Result<Self, JwtSetupError> {
        match url.scheme() {
            "https" => {}
            "http" => tracing::warn!(
                url = %redacted_url(&url),
                "JWKS is fetched over plain HTTP; keys can be swapped by anyone on the path"
            ),
            other => return Err(JwtSetupError::UnsupportedUrlScheme(other.to_owned())),
        }
        // reqwest panics when building a client without a rustls provider.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(JwtSetupError::NoTlsProvider);
        }
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(JwtSetupError::HttpClient)?;
        let origin = redacted_url(&url);
        Ok(Self::Url {
            url,
            origin,
            client,
        })
    }

    fn origin(&self) -> String {
        match self {
            Self::File { path } => path.display().to_string(),
            Self::Url { origin, .. } => origin.clone(),
        }
    }

    async fn fetch(&self) -> Result<Vec<u8>, JwksError> {
        match self {
            Self::File { path } => {
                let body = tokio::fs::read(path)
                    .await
                    .map_err(|source| JwksError::ReadFile {
                        path: path.clone(),
                        source,
                    })?;
                if body.len() > MAX_JWKS_BYTES {
                    return Err(JwksError::TooLarge {
                        origin: self.origin(),
                        limit: MAX_JWKS_BYTES,
                    });
                }
                Ok(body)
            }
            Self::Url {
                url,
                origin,
                client,
            } => fetch_url(client, url, origin).await,
        }
    }

    async fn load(&self, provider: &CryptoProvider) -> Result<Vec<VerificationKey>, JwksError> {
        let body = self.fetch().await?;
        parse_jwks(&body, &self.origin(), provider)
    }
}

async fn fetch_url(
    client: &reqwest::Client,
    url: &Url,
    origin: &str,
) -> Result<Vec<u8>, JwksError> {
    // The URL may carry credentials; the error keeps only the redacted origin.
    let fetch_error = |source: reqwest::Error| JwksError::Fetch {
        origin: origin.to_owned(),
        source: source.without_url(),
    };
    let too_large = || JwksError::TooLarge {
        origin: origin.to_owned(),
        limit: MAX_JWKS_BYTES,
    };

    let mut response = client
        .get(url.clone())
        .header(
            reqwest::header::ACCEPT,
            "application/jwk-set+json, application/json",
        )
        .send()
        .await
        .map_err(fetch_error)?;
    let status = response.status();
    if !status.is_success() {
        return Err(JwksError::HttpStatus {
            origin: origin.to_owned(),
            status: status.as_u16(),
        });
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn redacted_url(url: &Url) -> String {
    let mut shown = url.clone();
    // Both setters only fail for URLs that cannot carry credentials at all.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

struct VerificationKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

fn parse_jwks(
    body: &[u8],
    origin: &str,
    provider: &CryptoProvider,
) -> Result<Vec<VerificationKey>, JwksError> {
    let raw: RawJwks = serde_json::from_slice(body).map_err(|source| JwksError::Invalid {
        origin: origin.to_owned(),
        source,
    })?;
    let mut keys = Vec::with_capacity(raw.keys.len());
    // One odd entry (an encryption key, a new key type) must not take the
    // whole set down, so entries are judged one by one.
    for entry in raw.keys {
        let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
        let usable = serde_json::from_value::<RawJwk>(entry)
            .map_err(|_| "entry is not a JWK with string members")
            .and_then(|jwk| usable_key(&jwk, provider));
        match usable {
            Ok(key) => keys.push(key),
            Err(why) => tracing::warn!(
                origin,
                kid = kid.as_deref().unwrap_or("<none>"),
                why,
                "skipping JWKS entry"
            ),
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKey {
            origin: origin.to_owned(),
        });
    }
    Ok(keys)
}

fn usable_key(jwk: &RawJwk, provider: &CryptoProvider) -> Result<VerificationKey, &'static str> {
    if jwk.usage.as_deref().is_some_and(|usage| usage != "sig") {
        return Err("`use` is not `sig`");
    }
    let (alg, key) = match jwk.kty.as_str() {
        "RSA" => {
            require_alg(jwk, "RS256")?;
            let n = decode_member(jwk.n.as_deref(), "RSA key lacks a valid `n`")?;
            let e = decode_member(jwk.e.as_deref(), "RSA key lacks a valid `e`")?;
            if bit_len(&n) < MIN_RSA_BITS {
                return Err("RSA modulus is shorter than 2048 bits");
            }
            if e.is_empty() || e.len() > 8 {
                return Err("RSA exponent is out of range");
            }
            (
                Algorithm::RS256,
                DecodingKey::from_rsa_raw_components(&n, &e),
            )
        }
        "EC" => {
            if jwk.crv.as_deref() != Some("P-256") {
                return Err("only P-256 EC keys are accepted");
            }
            require_alg(jwk, "ES256")?;
            let x = fixed_member(jwk.x.as_deref(), 32, "EC key lacks a 32-byte `x`")?;
            let y = fixed_member(jwk.y.as_deref(), 32, "EC key lacks a 32-byte `y`")?;
            let key = DecodingKey::from_ec_components(&x, &y)
                .map_err(|_| "EC coordinates are not base64url")?;
            (Algorithm::ES256, key)
        }
        "OKP" => {
            if jwk.crv.as_deref() != Some("Ed25519") {
                return Err("only Ed25519 OKP keys are accepted");
            }
            require_alg(jwk, "EdDSA")?;
            let x = fixed_member(jwk.x.as_deref(), 32, "Ed25519 key lacks a 32-byte `x`")?;
            let key =
                DecodingKey::from_ed_components(&x).map_err(|_| "Ed25519 key is not base64url")?;
            (Algorithm::EdDSA, key)
        }
        "oct" => return Err("symmetric keys are never accepted from a JWKS"),
        _ => return Err("unsupported key type"),
    };
    // Building a verifier parses the key (curve point decoding), so a broken
    // key is dropped at load time instead of failing every request.
    (provider.verifier_factory)(&alg, &key).map_err(|_| "key material is invalid")?;
    Ok(VerificationKey {
        kid: jwk.kid.clone(),
        alg,
        key,
    })
}

fn require_alg(jwk: &RawJwk, expected: &str) -> Result<(), &'static str> {
    match jwk.alg.as_deref() {
        None => Ok(()),
        Some(alg) if alg == expected => Ok(()),
        Some(_) => Err("`alg` does not match the key type"),
    }
}

fn decode_member(value: Option<&str>, why: &'static str) -> Result<Vec<u8>, &'static str> {
    value
        .and_then(|v| JWK_BASE64.decode(v).ok())
        .filter(|bytes| !bytes.is_empty())
        .ok_or(why)
}

/// Decodes a fixed-size member and re-encodes it canonically, because the
/// library's component constructors accept only unpadded base64url.
fn fixed_member(
    value: Option<&str>,
    len: usize,
    why: &'static str,
) -> Result<String, &'static str> {
    let bytes = decode_member(value, why)?;
    if bytes.len() != len {
        return Err(why);
    }
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn bit_len(be_bytes: &[u8]) -> usize {
    match be_bytes.iter().position(|&b| b != 0) {
        None => 0,
        Some(first) => {
            let leading = usize::try_from(be_bytes[first].leading_zeros()).unwrap_or(8);
            (be_bytes.len() - first) * 8 - leading
        }
    }
}

struct KeySet {
    by_kid: HashMap<String, Arc<VerificationKey>>,
    all: Vec<Arc<VerificationKey>>,
    loaded_at: Instant,
    generation: u64,
}

impl KeySet {
    fn new(keys: Vec<VerificationKey>, generation: u64, origin: &str) -> Self {
        let all: Vec<_> = keys.into_iter().map(Arc::new).collect();
        let mut by_kid = HashMap::with_capacity(all.len());
        for key in &all {
            if let Some(kid) = &key.kid {
                match by_kid.entry(kid.clone()) {
                    Entry::Vacant(slot) => {
                        slot.insert(Arc::clone(key));
                    }
                    Entry::Occupied(_) => {
                        tracing::warn!(origin, kid, "duplicate kid in JWKS; keeping the first");
                    }
                }
            }
        }
        Self {
            by_kid,
            all,
            loaded_at: Instant::now(),
            generation,
        }
    }

    fn lookup(&self, kid: Option<&str>) -> Option<Arc<VerificationKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            // Providers with a single key often omit `kid`; with more than one
            // key there is no safe way to pick.
            None => match self.all.as_slice() {
                [only] => Some(Arc::clone(only)),
                _ => None,
            },
        }
    }
}

struct RefreshState {
    last_attempt: Instant,
    last_error: Option<Arc<JwksError>>,
}

struct JwksCache {
    source: JwksSource,
    provider: &'static CryptoProvider,
    min_interval: Duration,
    /// `None` for files: they are re-read only for unknown `kid`s.
    max_age: Option<Duration>,
    current: RwLock<Arc<KeySet>>,
    /// Held across a reload so only one fetch runs; also guards the
    /// rate-limit bookkeeping.
    refresh: tokio::sync::Mutex<RefreshState>,
}

impl JwksCache {
    async fn load(
        source: JwksSource,
        provider: &'static CryptoProvider,
        min_interval: Duration,
        max_age: Option<Duration>,
    ) -> Result<Self, JwksError> {
        let keys = source.load(provider).await?;
        let set = KeySet::new(keys, 0, &source.origin());
        Ok(Self {
            source,
            provider,
            min_interval,
            max_age,
            current: RwLock::new(Arc::new(set)),
            refresh: tokio::sync::Mutex::new(RefreshState {
                last_attempt: Instant::now(),
                last_error: None,
            }),
        })
    }

    fn snapshot(&self) -> Arc<KeySet> {
        // Poisoning would mean a panic while swapping one Arc for another; the
        // value inside is always a complete set, so it stays usable.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn install(&self, set: Arc<KeySet>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = set;
    }

    fn is_stale(&self, set: &KeySet) -> bool {
        self.max_age
            .is_some_and(|max_age| set.loaded_at.elapsed() >= max_age)
    }

    fn may_attempt(&self, state: &RefreshState) -> bool {
        state.last_attempt.elapsed() >= self.min_interval
    }

    async fn key_for(&self, kid: Option<&str>) -> Result<Arc<VerificationKey>, JwtRejected> {
        let mut keys = self.snapshot();

        if self.is_stale(&keys) {
            // Stale keys still verify everything not rotated away, so nobody
            // waits for this refresh: if another caller is already fetching,
            // carry on with the cached set.
            if let Ok(mut state) = self.refresh.try_lock() {
                let latest = self.snapshot();
                keys = if self.is_stale(&latest) && self.may_attempt(&state) {
                    self.reload(&mut state).await.unwrap_or(latest)
                } else {
                    latest
                };
            }
        }
        if let Some(found) = keys.lookup(kid) {
            return Ok(found);
        }

        // Unknown `kid`: this caller needs the outcome of a reload, so it
        // waits for any in-flight one rather than starting a second.
        let mut state = self.refresh.lock().await;
        let latest = self.snapshot();
        if latest.generation != keys.generation {
            return latest.lookup(kid).ok_or(JwtRejected::UnknownKey);
        }
        if !self.may_attempt(&state) {
            return Err(match &state.last_error {
                Some(err) => JwtRejected::KeysUnavailable(Arc::clone(err)),
                None => JwtRejected::UnknownKey,
            });
        }
        let fresh = self
            .reload(&mut state)
            .await
            .map_err(JwtRejected::KeysUnavailable)?;
        fresh.lookup(kid).ok_or(JwtRejected::UnknownKey)
    }

    async fn reload(&self, state: &mut RefreshState) -> Result<Arc<KeySet>, Arc<JwksError>> {
        state.last_attempt = Instant::now();
        let origin = self.source.origin();
        match self.source.load(self.provider).await {
            Ok(keys) => {
                let generation = self.snapshot().generation.wrapping_add(1);
                let set = Arc::new(KeySet::new(keys, generation, &origin));
                self.install(Arc::clone(&set));
                state.last_error = None;
                tracing::debug!(origin, keys = set.all.len(), "JWKS reloaded");
                Ok(set)
            }
            Err(err) => {
                tracing::warn!(
                    origin,
                    error = %error_chain(&err),
                    "JWKS reload failed; keeping the previously loaded keys"
                );
                let err = Arc::new(err);
                state.last_error = Some(Arc::clone(&err));
                Err(err)
            }
        }
    }
}

fn error_chain(err: &JwksError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use base64::engine::general_purpose::STANDARD;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    const ISSUER: &str = "https://idp.example.test/";
    const AUDIENCE: &str = "herald";
    const HS_SECRET: &[u8] = b"test-only-hs256-secret-0123456789abcdef";
    const LEEWAY: Duration = Duration::from_secs(30);

    // Fixed test keys made once with the openssl CLI (PKCS#8 DER, base64),
    // with their public halves as JWK members.
    const ED1_PKCS8: &str = "MC4CAQAwBQYDK2VwBCIEIJxMH6SV9b7+BQUwi2dpw4UTduYf2a6gbC8EjXiag+v3";
    const ED1_X: &str = "Swf9kH99pp_scUBchf5qTpH88Tcx80gaOtuUImXKJW0";
    const ED2_PKCS8: &str = "MC4CAQAwBQYDK2VwBCIEIIPtYK5wn1RrhSHIVSz0dGKdUe1zfPwyaDqQAzOrkt67";
    const ED2_X: &str = "JQhqsaQtft4ZtiuricDDoVC_RC9tbIBVz3AFHwpuYKg";
    const EC_PKCS8: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXFbAK7WudeoNJjLutEL5QW8587p9Yi+k05/COfxU5vKhRANCAATDtbbPwR8g6irBsj3bJxvdw20I9KcaG6rUdtzKujJSJQQd9eK/CUYdH4Mo07Teo19Z5NThS7T+/Q01z5erIWii";
    const EC_X: &str = "w7W2z8EfIOoqwbI92ycb3cNtCPSnGhuq1HbcyroyUiU";
    const EC_Y: &str = "BB314r8JRh0fgyjTtN6jX1nk1OFLtP79DTXPl6shaKI";
    const RSA2048_N: &str = "ys4ReP8RU-9szF06JW3k5AkbAXlkCFNC33xujj-D09tEeVf_2mqCQRMfW0S3RJ8N6cdBPO40Ew2tPZx91wBT3XDAe1ogYA_kYJpSWb9t9zYVk9P9H_SiaZJyU9aFAHbfhj6i255ZTWrFPfjUUAbiCV3YIOO80JbX80HmRtsnWRhQ9unJ-B7SO8Hw5dBWsNCXmA9u2Xaiz7SU6JOLbjAHyyx-GkPbn7wnTDB-nbSwNa_OCMpJYB0sx5Ru-btuMJeVTgFj5PAXOofgeJkEu0Cq1twrVaqcS54qddB9MVbTaM-0fYkwR1DXPEn_QiCVWE-JEAiwQQdltjN6jrzRKqb-RQ";
    const RSA1024_N: &str = "yV6UfE2DqTXe97-XYhB_-jXsCRMd7VAKzJOEwf-kfTmH1cv9Wdiq2BhX6x7z5YLJQEvPP3EapC_5G4WkJZSartiFgRFjhQ89nL6FqKcmVS09i7rhaA9o8R6vDXkdGc61yws0WYB5mVTjum0zMRxmvlude49VRzhft6Ov7mOfmsE";

    const FAST: RefreshPolicy = RefreshPolicy {
        min_interval: Duration::from_millis(50),
        max_age: Duration::from_secs(300),
    };
    const WAIT_LIMIT: Duration = Duration::from_secs(10);

    fn now() -> i64 {
        i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap()
    }

    fn claims() -> Value {
        let now = now();
        json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-1",
            "iat": now,
            "exp": now + 300,
        })
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        claims[name] = value;
        claims
    }

    fn without(mut claims: Value, name: &str) -> Value {
        claims.as_object_mut().unwrap().remove(name);
        claims
    }

    fn settings(keys: JwtKeys) -> JwtSettings {
        JwtSettings {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            leeway: LEEWAY,
            keys,
            tenant_claim: "tenant_id".to_owned(),
        }
    }

    async fn hs_verifier() -> JwtVerifier {
        JwtVerifier::new(settings(JwtKeys::Hs256(HS_SECRET.to_vec())))
            .await
            .unwrap()
    }

    fn sign_hs(claims: &Value) -> String {
        let key = EncodingKey::from_secret(HS_SECRET).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
    }

    fn sign(alg: Algorithm, key: EncodingKey, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    fn sign_ed(pkcs8: &str, kid: Option<&str>, claims: &Value) -> String {
        let der = STANDARD.decode(pkcs8).unwrap();
        sign(
            Algorithm::EdDSA,
            EncodingKey::from_ed_der(&der),
            kid,
            claims,
        )
    }

    fn sign_es(kid: Option<&str>, claims: &Value) -> String {
        let der = STANDARD.decode(EC_PKCS8).unwrap();
        sign(
            Algorithm::ES256,
            EncodingKey::from_ec_der(&der),
            kid,
            claims,
        )
    }

    fn ed_jwk(kid: &str, x: &str) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"})
    }

    fn ec_jwk(kid: &str) -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": EC_X, "y": EC_Y, "kid": kid, "alg": "ES256"})
    }

    fn rsa_jwk(kid: &str, n: &str) -> Value {
        json!({"kty": "RSA", "n": n, "e": "AQAB", "kid": kid})
    }

    fn jwks(keys: &[Value]) -> String {
        json!({ "keys": keys }).to_string()
    }

    fn install_tls_provider() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    /// Polls until `verify` accepts the token or the limit passes; the pause
    /// between attempts only paces the loop.
    async fn verify_eventually(
        verifier: &JwtVerifier,
        token: &str,
        accept: impl Fn(&Result<JwtIdentity, JwtRejected>) -> bool,
    ) -> Result<JwtIdentity, JwtRejected> {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let result = verifier.verify(token).await;
            if accept(&result) || Instant::now() >= deadline {
                return result;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Minimal HTTP/1.1 server for a JWKS on 127.0.0.1; stops when dropped.
    struct JwksServer {
        url: Url,
        response: Arc<Mutex<(u16, String)>>,
        hits: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl JwksServer {
        async fn start(body: String) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = Url::parse(&format!(
                "http://{}/.well-known/jwks.json",
                listener.local_addr().unwrap()
            ))
            .unwrap();
            let response = Arc::new(Mutex::new((200, body)));
            let hits = Arc::new(AtomicUsize::new(0));
            let task = tokio::spawn({
                let response = Arc::clone(&response);
                let hits = Arc::clone(&hits);
                async move {
                    while let Ok((mut stream, _)) = listener.accept().await {
                        let mut request = Vec::new();
                        let mut buf = [0u8; 1024];
                        let read_head = async {
                            while !request.windows(4).any(|w| w == b"\r\n\r\n")
                                && request.len() < 16 * 1024
                            {
                                match stream.read(&mut buf).await {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => request.extend_from_slice(&buf[..n]),
                                }
                            }
                        };
                        if tokio::time::timeout(Duration::from_secs(2), read_head)
                            .await
                            .is_err()
                        {
                            continue;
                        }
                        hits.fetch_add(1, Ordering::SeqCst);
                        let (status, body) = response.lock().unwrap().clone();
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(reply.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    }
                }
            });
            Self {
                url,
                response,
                hits,
                task,
            }
        }

        fn serve(&self, status: u16, body: String) {
            *self.response.lock().unwrap() = (status, body);
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    impl Drop for JwksServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// A JWKS file in the temp dir, removed when dropped.
    struct JwksFile(PathBuf);

    impl JwksFile {
        fn new(contents: &str) -> Self {
            let file = Self(
                std::env::temp_dir().join(format!("herald-jwks-test-{}.json", ulid::Ulid::new())),
            );
            file.write(contents);
            file
        }

        /// Write-then-rename so a concurrent reload never sees half a file.
        fn write(&self, contents: &str) {
            let staging = self.0.with_extension("tmp");
            std::fs::write(&staging, contents).unwrap();
            std::fs::rename(&staging, &self.0).unwrap();
        }
    }

    impl Drop for JwksFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    async fn url_verifier(server: &JwksServer, policy: RefreshPolicy) -> JwtVerifier {
        install_tls_provider();
        JwtVerifier::with_refresh_policy(settings(JwtKeys::JwksUrl(server.url.clone())), policy)
            .await
            .unwrap()
    }

    fn tamper_payload(token: &str) -> String {
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let payload = &mut parts[1];
        let mid = payload.len() / 2;
        let replacement = if &payload[mid..=mid] == "A" { "B" } else { "A" };
        payload.replace_range(mid..=mid, replacement);
        parts.join(".")
    }

    #[tokio::test]
    async fn hs256_valid_token_yields_identity() {
        let verifier = hs_verifier().await;
        let token = sign_hs(&with(
            with(claims(), "scope", json!("deliveries:read endpoints:write")),
            "tenant_id",
            json!("acme"),
        ));
        let identity = verifier.verify(&token).await.unwrap();
        assert_eq!(
            identity,
            JwtIdentity {
                subject: "user-1".to_owned(),
                scopes: vec!["deliveries:read".to_owned(), "endpoints:write".to_owned()],
                tenant: Some("acme".to_owned()),
            }
        );
    }

    #[tokio::test]
    async fn issuer_must_match_exactly() {
        let verifier = hs_verifier().await;
        for iss in [
            json!("https://other.example.test/"),
            json!("https://idp.example.test"),
            json!([ISSUER]),
            json!(null),
        ] {
            let token = sign_hs(&with(claims(), "iss", iss.clone()));
            assert!(
                matches!(verifier.verify(&token).await, Err(JwtRejected::WrongIssuer)),
                "iss {iss}"
            );
        }
        let token = sign_hs(&without(claims(), "iss"));
        assert!(matches!(
            verifier.verify(&token).await,
            Err(JwtRejected::WrongIssuer)
        ));
    }

    #[tokio::test]
    async fn audience_must_be_present_as_string_or_array_member() {
        let verifier = hs_verifier().await;
        for aud in [
            json!("someone-else"),
            json!(["a", "b"]),
            json!(42),
            json!([]),
        ] {
            let token = sign_hs(&with(claims(), "aud", aud.clone()));
            assert!(
                matches!(
                    verifier.verify(&token).await,
                    Err(JwtRejected::WrongAudience)
                ),
                "aud {aud}"
            );
        }
        let token = sign_hs(&without(claims(), "aud"));
        assert!(matches!(
            verifier.verify(&token).await,
            Err(JwtRejected::WrongAudience)
        ));

        let token = sign_hs(&with(claims(), "aud", json!(["other", AUDIENCE])));
        assert!(verifier.verify(&token).await.is_ok());
    }

    #[tokio::test]
    async fn expiry_is_enforced_with_leeway() {
        let verifier = hs_verifier().await;
        let now = now();
        let expired = sign_hs(&with(claims(), "exp", json!(now - 120)));
        assert!(matches!(
            verifier.verify(&expired).await,
            Err(JwtRejected::Expired)
        ));

        let within_leeway = sign_hs(&with(claims(), "exp", json!(now - 10)));
        assert!(verifier.verify(&within_leeway).await.is_ok());

        let missing = sign_hs(&without(claims(), "exp"));
        assert!(matches!(
            verifier.verify(&missing).await,
            Err(JwtRejected::Malformed(_))
        ));

        let wrong_type = sign_hs(&with(claims(), "exp", json!("tomorrow")));
        assert!(matches!(
            verifier.verify(&wrong_type).await,
            Err(JwtRejected::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn not_before_and_issued_at_are_enforced_with_leeway() {
        let verifier = hs_verifier().await;
        let now = now();
        let early = sign_hs(&with(claims(), "nbf", json!(now + 120)));
        assert!(matches!(
            verifier.verify(&early).await,
            Err(JwtRejected::NotYetValid)
        ));

        let within_leeway = sign_hs(&with(claims(), "nbf", json!(now + 10)));
        assert!(verifier.verify(&within_leeway).await.is_ok());

        let issued_in_future = sign_hs(&with(claims(), "iat", json!(now + 120)));
        assert!(matches!(
            verifier.verify(&issued_in_future).await,
            Err(JwtRejected::NotYetValid)
        ));
    }

    #[tokio::test]
    async fn tampered_payload_fails_the_signature() {
        let verifier = hs_verifier().await;
        let token = tamper_payload(&sign_hs(&claims()));
        assert!(matches!(
            verifier.verify(&token).await,
            Err(JwtRejected::BadSignature)
        ));

        let other_secret =
            EncodingKey::from_secret(b"another-secret-that-is-long-enough!!").unwrap();
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims(), &other_secret).unwrap();
        assert!(matches!(
            verifier.verify(&token).await,
            Err(JwtRejected::BadSignature)
        ));
    }

    #[tokio::test]
    async fn hs256_verifier_refuses_other_algorithms() {
        let verifier = hs_verifier().await;
        let token = sign_ed(ED1_PKCS8, None, &claims());
        assert!(matches!(
            verifier.verify(&token).await,
            Err(JwtRejected::UnsupportedAlgorithm)
        ));
        let hs384 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims(),
            &EncodingKey::from_secret(HS_SECRET).unwrap(),
        )
        .unwrap();
        assert!(matches!(
            verifier.verify(&hs384).await,
            Err(JwtRejected::UnsupportedAlgorithm)
        ));
    }

    #[tokio::test]
    async fn garbage_and_unsigned_tokens_are_malformed() {
        let verifier = hs_verifier().await;
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        let unsigned = format!("{header}.{payload}.");
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        for token in ["", "abc", "a.b.c", "a.b", unsigned.as_str(), huge.as_str()] {
            assert!(
                matches!(verifier.verify(token).await, Err(JwtRejected::Malformed(_))),
                "token {token:.40}"
            );
        }
    }

    #[tokio::test]
    async fn subject_is_required() {
        let verifier = hs_verifier().await;
        for claims in [without(claims(), "sub"), with(claims(), "sub", json!(""))] {
            let token = sign_hs(&claims);
            assert!(matches!(
                verifier.verify(&token).await,
                Err(JwtRejected::MissingSubject)
            ));
        }
        let token = sign_hs(&with(claims(), "sub", json!(7)));
        assert!(matches!(
            verifier.verify(&token).await,
            Err(JwtRejected::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn scopes_come_from_scope_or_scp() {
        let verifier = hs_verifier().await;
        let cases = [
            (claims(), vec![]),
            (
                with(claims(), "scope", json!("a  b\tc")),
                vec!["a", "b", "c"],
            ),
            (with(claims(), "scope", json!("")), vec![]),
            (with(claims(), "scp", json!("a b")), vec!["a", "b"]),
            (with(claims(), "scp", json!(["a", "b:c"])), vec!["a", "b:c"]),
            (with(claims(), "scp", json!([])), vec![]),
            (
                with(with(claims(), "scope", json!("x")), "scp", json!(["y"])),
                vec!["x"],
            ),
        ];
        for (claims, expected) in cases {
            let token = sign_hs(&claims);
            let identity = verifier.verify(&token).await.unwrap();
            assert_eq!(identity.scopes, expected, "claims {claims}");
        }
        for claims in [
            with(claims(), "scope", json!(["a"])),
            with(claims(), "scp", json!(["a", 1])),
            with(claims(), "scp", json!({"a": true})),
        ] {
            let token = sign_hs(&claims);
            assert!(
                matches!(
                    verifier.verify(&token).await,
                    Err(JwtRejected::Malformed(_))
                ),
                "claims {claims}"
            );
        }
    }

    #[tokio::test]
    async fn tenant_comes_from_the_configured_claim() {
        let verifier = hs_verifier().await;
        let token = sign_hs(&with(claims(), "tenant_id", json!("t-42")));
        assert_eq!(
            verifier.verify(&token).await.unwrap().tenant.as_deref(),
            Some("t-42")
        );

        let token = sign_hs(&with(claims(), "tenant", json!("ignored")));
        assert_eq!(verifier.verify(&token).await.unwrap().tenant, None);

        for value in [json!(42), json!(null), json!(["t"]), json!("")] {
            let token = sign_hs(&with(claims(), "tenant_id", value.clone()));
            assert!(
                matches!(
                    verifier.verify(&token).await,
                    Err(JwtRejected::Malformed(_))
                ),
                "tenant {value}"
            );
        }

        let mut custom = settings(JwtKeys::Hs256(HS_SECRET.to_vec()));
        custom.tenant_claim = "https://herald.example/tenant".to_owned();
        let verifier = JwtVerifier::new(custom).await.unwrap();
        let token = sign_hs(&with(
            claims(),
            "https://herald.example/tenant",
            json!("t-7"),
        ));
        assert_eq!(
            verifier.verify(&token).await.unwrap().tenant.as_deref(),
            Some("t-7")
        );
    }

    #[tokio::test]
    async fn jwks_url_verifies_and_picks_up_added_keys() {
        let server = JwksServer::start(jwks(&[ed_jwk("k1", ED1_X)])).await;
        let verifier = url_verifier(&server, FAST).await;

        let token = sign_ed(ED1_PKCS8, Some("k1"), &with(claims(), "scp", json!(["a"])));
        let identity = verifier.verify(&token).await.unwrap();
        assert_eq!(identity.subject, "user-1");
        assert_eq!(identity.scopes, vec!["a"]);

        // Signed by a key the set does not hold yet.
        let rotated = sign_ed(ED2_PKCS8, Some("k2"), &claims());
        assert!(matches!(
            verifier.verify(&rotated).await,
            Err(JwtRejected::UnknownKey)
        ));

        server.serve(200, jwks(&[ed_jwk("k1", ED1_X), ed_jwk("k2", ED2_X)]));
        let result = verify_eventually(&verifier, &rotated, Result::is_ok).await;
        assert!(result.is_ok(), "{result:?}");
        assert!(verifier.verify(&token).await.is_ok());
        assert!(server.hits() >= 2);
    }

    #[tokio::test]
    async fn unknown_kids_do_not_hammer_the_provider() {
        let server = JwksServer::start(jwks(&[ed_jwk("k1", ED1_X)])).await;
        let verifier = url_verifier(
            &server,
            RefreshPolicy {
                min_interval: Duration::from_secs(3600),
                max_age: Duration::from_secs(3600),
            },
        )
        .await;
        assert_eq!(server.hits(), 1);
        for i in 0..50 {
            let token = sign_ed(ED1_PKCS8, Some(&format!("random-{i}")), &claims());
            assert!(matches!(
                verifier.verify(&token).await,
                Err(JwtRejected::UnknownKey)
            ));
        }
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn stale_url_keys_are_refetched_and_removed_keys_stop_working() {
        let server = JwksServer::start(jwks(&[ed_jwk("k1", ED1_X)])).await;
        let verifier = url_verifier(
            &server,
            RefreshPolicy {
                min_interval: Duration::from_millis(20),
                max_age: Duration::from_millis(20),
            },
        )
        .await;
        let token = sign_ed(ED1_PKCS8, Some("k1"), &claims());
        assert!(verifier.verify(&token).await.is_ok());

        server.serve(200, jwks(&[ed_jwk("k2", ED2_X)]));
        let result = verify_eventually(&verifier, &token, |r| {
            matches!(r, Err(JwtRejected::UnknownKey))
        })
        .await;
        assert!(matches!(result, Err(JwtRejected::UnknownKey)), "{result:?}");
    }

    #[tokio::test]
    async fn failed_reload_keeps_old_keys_and_reports_unavailable() {
        let server = JwksServer::start(jwks(&[ed_jwk("k1", ED1_X)])).await;
        let verifier = url_verifier(&server, FAST).await;
        server.serve(500, "oops".to_owned());

        let unknown = sign_ed(ED2_PKCS8, Some("k2"), &claims());
        let result = verify_eventually(&verifier, &unknown, |r| {
            matches!(r, Err(JwtRejected::KeysUnavailable(_)))
        })
        .await;
        let Err(JwtRejected::KeysUnavailable(cause)) = result else {
            panic!("expected KeysUnavailable, got {result:?}");
        };
        assert!(
            matches!(*cause, JwksError::HttpStatus { status: 500, .. }),
            "{cause}"
        );

        let known = sign_ed(ED1_PKCS8, Some("k1"), &claims());
        assert!(verifier.verify(&known).await.is_ok());
    }

    #[tokio::test]
    async fn jwks_verifier_blocks_algorithm_confusion() {
        let server = JwksServer::start(jwks(&[ed_jwk("k1", ED1_X), ec_jwk("ec1")])).await;
        let verifier = url_verifier(&server, FAST).await;

        // The classic attack: HMAC keyed with the public key bytes.
        let public = URL_SAFE_NO_PAD.decode(ED1_X).unwrap();
        let forged = sign(
            Algorithm::HS256,
            EncodingKey::from_secret(&public).unwrap(),
            Some("k1"),
            &claims(),
        );
        assert!(matches!(
            verifier.verify(&forged).await,
            Err(JwtRejected::UnsupportedAlgorithm)
        ));
        let plain_hs = sign_hs(&claims());
        assert!(matches!(
            verifier.verify(&plain_hs).await,
            Err(JwtRejected::UnsupportedAlgorithm)
        ));

        // A valid EdDSA signature, but naming the P-256 key.
        let mismatched = sign_ed(ED1_PKCS8, Some("ec1"), &claims());
        assert!(matches!(
            verifier.verify(&mismatched).await,
            Err(JwtRejected::AlgorithmMismatch)
        ));

        // Two keys, so a token without `kid` cannot be matched.
        let no_kid = sign_ed(ED1_PKCS8, None, &claims());
        assert!(matches!(
            verifier.verify(&no_kid).await,
            Err(JwtRejected::UnknownKey)
        ));

        let tampered = tamper_payload(&sign_ed(ED1_PKCS8, Some("k1"), &claims()));
        assert!(matches!(
            verifier.verify(&tampered).await,
            Err(JwtRejected::BadSignature)
        ));
    }

    #[tokio::test]
    async fn jwks_file_verifies_es256_and_eddsa_and_rereads_on_unknown_kid() {
        let file = JwksFile::new(&jwks(&[ec_jwk("ec1"), rsa_jwk("r1", RSA2048_N)]));
        let verifier =
            JwtVerifier::with_refresh_policy(settings(JwtKeys::JwksFile(file.0.clone())), FAST)
                .await
                .unwrap();

        let token = sign_es(Some("ec1"), &with(claims(), "tenant_id", json!("acme")));
        let identity = verifier.verify(&token).await.unwrap();
        assert_eq!(identity.tenant.as_deref(), Some("acme"));

        // The RSA key loads; a token naming it with a junk signature fails
        // the signature check, not the lookup.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"r1"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        let junk = format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode([1u8; 256]));
        assert!(matches!(
            verifier.verify(&junk).await,
            Err(JwtRejected::BadSignature)
        ));

        let ed = sign_ed(ED1_PKCS8, Some("k1"), &claims());
        file.write(&jwks(&[ec_jwk("ec1"), ed_jwk("k1", ED1_X)]));
        let result = verify_eventually(&verifier, &ed, Result::is_ok).await;
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn single_key_set_accepts_tokens_without_kid() {
        let file = JwksFile::new(&jwks(&[
            json!({"kty": "OKP", "crv": "Ed25519", "x": ED1_X}),
        ]));
        let verifier = JwtVerifier::new(settings(JwtKeys::JwksFile(file.0.clone())))
            .await
            .unwrap();
        let token = sign_ed(ED1_PKCS8, None, &claims());
        assert!(verifier.verify(&token).await.is_ok());
    }

    #[tokio::test]
    async fn unusable_jwks_entries_are_skipped() {
        let entries = [
            json!({"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", "kid": "hmac"}),
            rsa_jwk("small", RSA1024_N),
            json!({"kty": "EC", "crv": "P-384", "x": EC_X, "y": EC_Y, "kid": "p384"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": ED1_X, "kid": "enc", "use": "enc"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": ED1_X, "kid": "rs", "alg": "RS256"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "short"}),
            json!({"kty": "EC", "crv": "P-256", "x": EC_X, "y": EC_X, "kid": "off-curve"}),
            json!({"kty": 5}),
            json!("not an object"),
        ];
        let file = JwksFile::new(&jwks(&entries));
        let err = JwtVerifier::new(settings(JwtKeys::JwksFile(file.0.clone())))
            .await
            .unwrap_err();
        assert!(
            matches!(err, JwtSetupError::Jwks(JwksError::NoUsableKey { .. })),
            "{err:?}"
        );

        let mut with_good = entries.to_vec();
        with_good.push(ed_jwk("good", ED1_X));
        file.write(&jwks(&with_good));
        let verifier = JwtVerifier::new(settings(JwtKeys::JwksFile(file.0.clone())))
            .await
            .unwrap();
        let Keys::Jwks(cache) = &verifier.keys else {
            panic!("expected a JWKS verifier");
        };
        let loaded: Vec<_> = cache.snapshot().by_kid.keys().cloned().collect();
        assert_eq!(loaded, vec!["good".to_owned()]);
    }

    #[tokio::test]
    async fn setup_errors_name_what_failed() {
        install_tls_provider();
        let missing = std::env::temp_dir().join("herald-jwks-test-does-not-exist.json");
        let err = JwtVerifier::new(settings(JwtKeys::JwksFile(missing.clone())))
            .await
            .unwrap_err();
        assert!(
            matches!(err, JwtSetupError::Jwks(JwksError::ReadFile { .. })),
            "{err:?}"
        );
        assert!(err.to_string().contains(&missing.display().to_string()));

        let file = JwksFile::new("{ not json");
        let err = JwtVerifier::new(settings(JwtKeys::JwksFile(file.0.clone())))
            .await
            .unwrap_err();
        assert!(
            matches!(err, JwtSetupError::Jwks(JwksError::Invalid { .. })),
            "{err:?}"
        );

        // A port that was just released refuses connections.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let url = Url::parse(&format!("http://user:pw@{addr}/jwks?token=t")).unwrap();
        let err = JwtVerifier::new(settings(JwtKeys::JwksUrl(url)))
            .await
            .unwrap_err();
        assert!(
            matches!(err, JwtSetupError::Jwks(JwksError::Fetch { .. })),
            "{err:?}"
        );
        let shown = err.to_string();
        assert!(shown.contains(&addr.to_string()), "{shown}");
        assert!(
            !shown.contains("pw") && !shown.contains("token=t"),
            "{shown}"
        );

        let server = JwksServer::start(String::new()).await;
        server.serve(404, "nope".to_owned());
        let err = JwtVerifier::new(settings(JwtKeys::JwksUrl(server.url.clone())))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                JwtSetupError::Jwks(JwksError::HttpStatus { status: 404, .. })
            ),
            "{err:?}"
        );

        let url = Url::parse("ftp://idp.example.test/jwks").unwrap();
        let err = JwtVerifier::new(settings(JwtKeys::JwksUrl(url)))
            .await
            .unwrap_err();
        assert!(
            matches!(err, JwtSetupError::UnsupportedUrlScheme(_)),
            "{err:?}"
        );

        let err = JwtVerifier::new(settings(JwtKeys::Hs256(b"short".to_vec())))
            .await
            .unwrap_err();
        assert!(
            matches!(err, JwtSetupError::WeakHs256Secret { len: 5 }),
            "{err:?}"
        );

        let mut empty_issuer = settings(JwtKeys::Hs256(HS_SECRET.to_vec()));
        empty_issuer.issuer.clear();
        let err = JwtVerifier::new(empty_issuer).await.unwrap_err();
        assert!(
            matches!(err, JwtSetupError::EmptySetting("issuer")),
            "{err:?}"
        );
    }

    #[test]
    fn reasons_are_distinct_snake_case_labels() {
        let cause = Arc::new(JwksError::NoUsableKey {
            origin: "x".to_owned(),
        });
        let all = [
            JwtRejected::Malformed("x"),
            JwtRejected::BadSignature,
            JwtRejected::Expired,
            JwtRejected::NotYetValid,
            JwtRejected::WrongIssuer,
            JwtRejected::WrongAudience,
            JwtRejected::UnknownKey,
            JwtRejected::UnsupportedAlgorithm,
            JwtRejected::AlgorithmMismatch,
            JwtRejected::MissingSubject,
            JwtRejected::KeysUnavailable(cause),
        ];
        let mut seen = std::collections::HashSet::new();
        for rejection in &all {
            let reason = rejection.reason();
            assert!(
                reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{reason}"
            );
            assert!(seen.insert(reason), "duplicate {reason}");
        }
        assert_eq!(JwtRejected::Expired.reason(), "expired");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let shown = format!("{:?}", settings(JwtKeys::Hs256(HS_SECRET.to_vec())));
        let secret = std::str::from_utf8(HS_SECRET).unwrap();
        assert!(!shown.contains(secret), "{shown}");
        assert!(
            !shown.contains(&format!("{:?}", HS_SECRET.to_vec())),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"));

        let url = Url::parse("https://user:hunter2@idp.example.test/jwks?key=abc").unwrap();
        let shown = format!("{:?}", JwtKeys::JwksUrl(url));
        assert!(
            !shown.contains("hunter2") && !shown.contains("key=abc"),
            "{shown}"
        );
    }

    #[test]
    fn verifier_and_its_future_can_cross_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        fn assert_send<T: Send>(_: &T) {}
        assert_send_sync::<JwtVerifier>();
        assert_send_sync::<JwtRejected>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let verifier = runtime.block_on(hs_verifier());
        let future = verifier.verify("a.b.c");
        assert_send(&future);
    }

    #[test]
    fn rsa_bit_length_ignores_leading_zero_bytes() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0]), 0);
        assert_eq!(bit_len(&[0, 1]), 1);
        assert_eq!(bit_len(&[0x80, 0]), 16);
        assert_eq!(bit_len(&URL_SAFE_NO_PAD.decode(RSA2048_N).unwrap()), 2048);
        assert_eq!(bit_len(&URL_SAFE_NO_PAD.decode(RSA1024_N).unwrap()), 1024);
    }
}
