//! Credentials and what they allow, as values: scopes, the stored form of an API key,
//! the key's token format and hash (`key`), and bearer JWT validation (`jwt`).
//!
//! Nothing here decides whether a call may proceed: the service layer authenticates a
//! caller with these pieces and authorises every use case in one place. This module
//! knows nothing of gRPC or of any backend; the stores keep [`ApiKey`] records.

pub mod jwt;
pub mod key;

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use self::key::{ApiKeyId, ApiKeyToken, IssuedToken, SecretHash};
use crate::domain::TenantId;
use crate::policy::limiter::RateLimit;

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Publish and PublishBatch.
    Publish,
    /// Every Get and List, the status stream, analytics, GetHealth.
    Read,
    /// Endpoints (register, update, delete, rotate) and redelivery (retry, replay, recover).
    Write,
    /// Keys, tenants, and everything in every tenant.
    Admin,
}

impl Scope {
    pub const ALL: [Self; 4] = [Self::Publish, Self::Read, Self::Write, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    /// The scope named `name` (`publish`, `read`, `write`, `admin`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes, one bit each (checked on every call, so it costs no allocation).
/// `admin` includes every other. Stored as the list of their names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Scope>", into = "Vec<Scope>")]
pub struct Scopes(u8);

impl Scopes {
    fn bit(scope: Scope) -> u8 {
        1 << scope as u8
    }

    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Self(scopes.into_iter().fold(0, |bits, s| bits | Self::bit(s)))
    }

    pub fn admin() -> Self {
        Self::new([Scope::Admin])
    }

    /// Whether these scopes allow what `scope` allows.
    pub fn allow(self, scope: Scope) -> bool {
        self.0 & (Self::bit(scope) | Self::bit(Scope::Admin)) != 0
    }

    /// The scopes in the set, in their order (publish, read, write, admin).
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |s| self.0 & Self::bit(*s) != 0)
    }
}

impl From<Vec<Scope>> for Scopes {
    fn from(scopes: Vec<Scope>) -> Self {
        Self::new(scopes)
    }
}

impl From<Scopes> for Vec<Scope> {
    fn from(scopes: Scopes) -> Self {
        scopes.iter().collect()
    }
}

/// A publish rate limit as stored with a key: `limit` per `window_ms`, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StoredRateLimit {
    limit: u32,
    window_ms: u64,
    burst: u32,
}

mod rate_limit_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{RateLimit, StoredRateLimit};

    #[allow(clippy::ref_option)] // serde's `with` hands the field by reference
    pub fn serialize<S: Serializer>(value: &Option<RateLimit>, s: S) -> Result<S::Ok, S::Error> {
        value
            .map(|r| StoredRateLimit {
                limit: r.limit(),
                window_ms: u64::try_from(r.window().as_millis()).unwrap_or(u64::MAX),
                burst: r.burst(),
            })
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RateLimit>, D::Error> {
        Option::<StoredRateLimit>::deserialize(d)?
            .map(|r| {
                RateLimit::try_new(r.limit, Duration::from_millis(r.window_ms), r.burst)
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

/// An API key as stored: never its secret, only the secret's hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub scopes: Scopes,
    /// The only tenant the key acts in; `None`: any it names (the default otherwise).
    pub tenant: Option<TenantId>,
    pub secret_hash: SecretHash,
    pub created_at: SystemTime,
    pub expires_at: Option<SystemTime>,
    /// Publishes per window allowed with this key, when limited.
    #[serde(with = "rate_limit_serde", default)]
    pub publish_limit: Option<RateLimit>,
    /// Kept beside the record by the stores, so a revocation never races a use.
    #[serde(skip)]
    pub revoked_at: Option<SystemTime>,
    /// When the key was last seen, to within a few minutes.
    #[serde(skip)]
    pub last_used_at: Option<SystemTime>,
}

impl ApiKey {
    pub const MAX_NAME_LEN: usize = 128;

    /// Whether the key may be used at `now`: not revoked, not expired.
    pub fn is_live(&self, now: SystemTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}
