//! Who is calling, and what they may do: authentication (API keys from the store, the
//! operator's admin key, JWTs from an identity provider), the per-key publish limit, and
//! the one place where a use case's scope and tenant are decided.
//!
//! Every use case starts by asking the [`Caller`] for the tenant (or tenants) it may act
//! on with the scope it needs; nothing below the service sees a request that was not
//! allowed. A transport only hands over the bearer credential it received and the tenant
//! the request names. Every failure to authenticate looks the same to the caller; its
//! reason is kept for the metric.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{Service, ServiceError, Violations};
use crate::auth::jwt::JwtVerifier;
use crate::auth::{ApiKey, ApiKeyId, Scope, Scopes, SecretHash, key};
use crate::domain::TenantId;
use crate::policy::limiter::TokenBucket;
use crate::storage::{Store, StoreError};

/// How long a key looked up in the store is trusted: a key revoked on another instance
/// stops working within this.
const KEY_CACHE_TTL: Duration = Duration::from_millis(500);
/// Entries beyond which the key cache starts over (it only ever saves store reads).
const KEY_CACHE_MAX: usize = 10_000;
/// How often a key's last use is written: the figure is coarse, and writing it on every
/// call would put a store write behind every call.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// How callers prove who they are.
#[derive(Clone, Default)]
pub struct AuthSettings {
    /// Off only for local experiments: every call then acts as an admin.
    pub enabled: bool,
    /// The operator's admin key (`WEBHOOK_ADMIN_API_KEY`), held only as its hash.
    pub admin_key: Option<SecretHash>,
    /// Bearer JWTs from an identity provider, when configured.
    pub jwt: Option<Arc<JwtVerifier>>,
}

/// Who made a call, as the audit log names them (never with a secret).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// An API key from the store.
    Key(ApiKeyId),
    /// The operator's admin key from the configuration.
    Operator,
    /// A JWT's subject.
    Jwt(String),
    /// Anyone: authentication is off.
    Anonymous,
    /// Herald itself, at startup (the first admin key of a deployment).
    Startup,
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(id) => write!(f, "key:{id}"),
            Self::Operator => f.write_str("operator"),
            Self::Jwt(subject) => write!(f, "jwt:{subject}"),
            Self::Anonymous => f.write_str("anonymous"),
            Self::Startup => f.write_str("startup"),
        }
    }
}

/// An authenticated caller: who, with which scopes, bound to which tenant.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    scopes: Scopes,
    /// The only tenant the caller acts in; `None`: any it names.
    bound: Option<TenantId>,
    /// The key's publish limit, when it has one.
    publish_limit: Option<(ApiKeyId, crate::policy::limiter::RateLimit)>,
}

/// The tenants a request names: one (`tenant`), every one (`all`, admins' reads only), or
/// none (the caller's own tenant, else the default one).
#[derive(Debug, Clone, Default)]
pub struct Tenancy {
    pub tenant: Option<TenantId>,
    pub all: bool,
}

/// The tenants a read spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantScope {
    One(TenantId),
    All,
}

impl TenantScope {
    pub fn includes(&self, tenant: &TenantId) -> bool {
        match self {
            Self::One(t) => t == tenant,
            Self::All => true,
        }
    }

    /// The one tenant, or `None` for all.
    pub fn only(&self) -> Option<&TenantId> {
        match self {
            Self::One(t) => Some(t),
            Self::All => None,
        }
    }
}

impl Caller {
    fn anonymous() -> Self {
        Self {
            principal: Principal::Anonymous,
            scopes: Scopes::admin(),
            bound: None,
            publish_limit: None,
        }
    }

    /// # Errors
    /// `PermissionDenied` naming `scope` when the caller lacks it.
    pub fn require(&self, scope: Scope) -> Result<(), ServiceError> {
        if self.scopes.allow(scope) {
            Ok(())
        } else {
            Err(ServiceError::MissingScope(scope))
        }
    }

    /// The tenant a request naming `named` acts in: the named one, the caller's own when
    /// it names none, else the default one.
    fn resolve(&self, named: Option<&TenantId>) -> Result<TenantId, ServiceError> {
        match (&self.bound, named) {
            (Some(bound), Some(named)) if bound != named => Err(ServiceError::OtherTenant),
            (Some(bound), _) => Ok(bound.clone()),
            (None, Some(named)) => Ok(named.clone()),
            (None, None) => Ok(TenantId::default()),
        }
    }

    /// The one tenant a use case needing `scope` acts in.
    ///
    /// # Errors
    /// A missing scope, a tenant the caller is not bound to, or `all` on a request that
    /// cannot span tenants.
    pub fn tenant(&self, scope: Scope, named: &Tenancy) -> Result<TenantId, ServiceError> {
        self.require(scope)?;
        if named.all {
            let mut v = Violations::default();
            v.add("all_tenants", "only reads may span tenants");
            return Err(v.into());
        }
        self.resolve(named.tenant.as_ref())
    }

    /// The tenants a read needing `scope` spans: every one only for an admin that asks.
    ///
    /// # Errors
    /// A missing scope, a tenant the caller is not bound to, or both a tenant and `all`.
    pub fn tenants(&self, scope: Scope, named: &Tenancy) -> Result<TenantScope, ServiceError> {
        self.require(scope)?;
        if !named.all {
            return self.resolve(named.tenant.as_ref()).map(TenantScope::One);
        }
        if named.tenant.is_some() {
            let mut v = Violations::default();
            v.add("all_tenants", "name one tenant or ask for all, not both");
            return Err(v.into());
        }
        self.require(Scope::Admin)?;
        Ok(TenantScope::All)
    }
}

/// A key as read from the store, and when (`None`: there was no such key).
type Seen = (Instant, Option<Arc<ApiKey>>);

/// Authentication state: the settings, recently seen keys, and each limited key's bucket.
pub(super) struct Authenticator {
    settings: AuthSettings,
    /// Keys read from the store lately.
    keys: Mutex<HashMap<ApiKeyId, Seen>>,
    /// When each key's last use was last written.
    touched: Mutex<HashMap<ApiKeyId, Instant>>,
    /// The publish allowance of each key that has a limit.
    buckets: Mutex<HashMap<ApiKeyId, TokenBucket>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A failed authentication, whatever the reason.
fn rejected(reason: &'static str) -> ServiceError {
    ServiceError::Unauthenticated { reason }
}

impl Authenticator {
    pub(super) fn new(settings: AuthSettings) -> Self {
        Self {
            settings,
            keys: Mutex::default(),
            touched: Mutex::default(),
            buckets: Mutex::default(),
        }
    }

    pub(super) fn enabled(&self) -> bool {
        self.settings.enabled
    }

    pub(super) fn has_operator_key(&self) -> bool {
        self.settings.admin_key.is_some()
    }

    /// Forgets what is cached of a key, so a change made here applies at once.
    pub(super) fn forget(&self, id: &ApiKeyId) {
        locked(&self.keys).remove(id);
    }

    async fn api_key(
        &self,
        store: &dyn Store,
        id: &ApiKeyId,
    ) -> Result<Option<Arc<ApiKey>>, ServiceError> {
        let now = Instant::now();
        if let Some((at, key)) = locked(&self.keys).get(id)
            && now.duration_since(*at) < KEY_CACHE_TTL
        {
            return Ok(key.clone());
        }
        let key = match store.get_api_key(id).await {
            Ok(key) => Some(Arc::new(key)),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let mut keys = locked(&self.keys);
        if keys.len() >= KEY_CACHE_MAX {
            keys.clear();
        }
        keys.insert(id.clone(), (now, key.clone()));
        Ok(key)
    }

    /// Writes the key's last use, at most once per [`TOUCH_EVERY`].
    async fn touch(&self, store: &dyn Store, id: &ApiKeyId) {
        let now = Instant::now();
        {
            let mut touched = locked(&self.touched);
            if touched
                .get(id)
                .is_some_and(|at| now.duration_since(*at) < TOUCH_EVERY)
            {
                return;
            }
            touched.insert(id.clone(), now);
        }
        if let Err(e) = store.touch_api_key(id, SystemTime::now()).await {
            tracing::warn!(key = %id, error = %crate::telemetry::ErrorChain(&e), "cannot record the key's last use");
        }
    }

    /// The caller a bearer credential proves, or why it proves nothing.
    pub(super) async fn authenticate(
        &self,
        store: &dyn Store,
        bearer: Option<&str>,
    ) -> Result<Caller, ServiceError> {
        if !self.settings.enabled {
            return Ok(Caller::anonymous());
        }
        let token = bearer.ok_or_else(|| rejected("missing"))?;
        if let Some((id, secret)) = key::parse_bearer(token) {
            let key = self
                .api_key(store, &id)
                .await?
                .ok_or_else(|| rejected("unknown_key"))?;
            if !key.secret_hash.matches(secret) {
                return Err(rejected("wrong_secret"));
            }
            if key.revoked_at.is_some() {
                return Err(rejected("revoked"));
            }
            if !key.is_live(SystemTime::now()) {
                return Err(rejected("expired"));
            }
            self.touch(store, &id).await;
            return Ok(Caller {
                principal: Principal::Key(id.clone()),
                scopes: key.scopes,
                bound: key.tenant.clone(),
                publish_limit: key.publish_limit.map(|limit| (id, limit)),
            });
        }
        if self
            .settings
            .admin_key
            .is_some_and(|hash| hash.matches(token))
        {
            return Ok(Caller {
                principal: Principal::Operator,
                scopes: Scopes::admin(),
                bound: None,
                publish_limit: None,
            });
        }
        if let Some(jwt) = &self.settings.jwt
            && token.split('.').count() == 3
        {
            return Self::jwt_caller(jwt, token).await;
        }
        Err(rejected("unknown_credential"))
    }

    async fn jwt_caller(jwt: &JwtVerifier, token: &str) -> Result<Caller, ServiceError> {
        let identity = jwt.verify(token).await.map_err(|e| rejected(e.reason()))?;
        let bound = identity
            .tenant
            .map(|t| TenantId::parse(&t))
            .transpose()
            .map_err(|_| rejected("jwt_bad_tenant"))?;
        Ok(Caller {
            principal: Principal::Jwt(identity.subject),
            // Scopes Herald does not know are someone else's: ignored, not an error.
            scopes: Scopes::new(identity.scopes.iter().filter_map(|s| Scope::parse(s))),
            bound,
            publish_limit: None,
        })
    }

    /// Takes `events` publishes from the caller's allowance, all or none.
    pub(super) fn admit_publish(&self, caller: &Caller, events: u32) -> Result<(), ServiceError> {
        let Some((id, limit)) = &caller.publish_limit else {
            return Ok(());
        };
        let now = Instant::now();
        let mut buckets = locked(&self.buckets);
        let bucket = buckets
            .entry(id.clone())
            .or_insert_with(|| TokenBucket::new(*limit, now));
        if bucket.policy() != *limit {
            bucket.set_policy(*limit, now);
        }
        if bucket.available(now) >= events {
            for _ in 0..events {
                bucket.try_take(now);
            }
            return Ok(());
        }
        // A batch larger than the key's burst never fits; it is told when the bucket
        // is full, like any batch waiting for its tokens.
        Err(ServiceError::PublishLimited {
            retry_after: bucket
                .tokens_at(events, now)
                .saturating_duration_since(now)
                .max(Duration::from_millis(1)),
        })
    }
}

/// One line in the audit log for a change to keys, tenants or endpoints.
pub(super) fn audit(actor: &Principal, action: &str, tenant: Option<&TenantId>, resource: &str) {
    tracing::info!(
        target: "herald::audit",
        actor = %actor,
        action,
        tenant = tenant.map(TenantId::as_str),
        resource,
        "audit"
    );
}

impl Service {
    /// The caller a bearer credential (`authorization: Bearer …`) proves.
    ///
    /// # Errors
    /// `Unauthenticated` when the credential is missing, malformed, unknown, expired or
    /// revoked; `Unavailable` when the store cannot be asked.
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Caller, ServiceError> {
        self.0
            .auth
            .authenticate(self.0.store.as_ref(), bearer)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::limiter::RateLimit;

    fn caller(scopes: &[Scope], bound: Option<&str>) -> Caller {
        Caller {
            principal: Principal::Anonymous,
            scopes: Scopes::new(scopes.iter().copied()),
            bound: bound.map(|t| TenantId::parse(t).unwrap()),
            publish_limit: None,
        }
    }

    fn named(tenant: Option<&str>, all: bool) -> Tenancy {
        Tenancy {
            tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
            all,
        }
    }

    #[test]
    fn admin_allows_every_scope_and_others_only_their_own() {
        let admin = caller(&[Scope::Admin], None);
        assert!(Scope::ALL.into_iter().all(|s| admin.require(s).is_ok()));
        let reader = caller(&[Scope::Read], None);
        assert!(reader.require(Scope::Read).is_ok());
        for scope in [Scope::Publish, Scope::Write, Scope::Admin] {
            assert!(matches!(
                reader.require(scope),
                Err(ServiceError::MissingScope(s)) if s == scope
            ));
        }
    }

    #[test]
    fn a_request_naming_no_tenant_acts_in_the_callers_own_else_the_default() {
        let unbound = caller(&[Scope::Write], None);
        let bound = caller(&[Scope::Write], Some("acme"));
        let tenant = |c: &Caller, t: Option<&str>| {
            c.tenant(Scope::Write, &named(t, false))
                .map(|t| t.to_string())
        };
        assert_eq!(tenant(&unbound, None).unwrap(), "default");
        assert_eq!(tenant(&unbound, Some("globex")).unwrap(), "globex");
        assert_eq!(tenant(&bound, None).unwrap(), "acme");
        assert_eq!(tenant(&bound, Some("acme")).unwrap(), "acme");
        assert!(matches!(
            tenant(&bound, Some("globex")),
            Err(ServiceError::OtherTenant)
        ));
    }

    #[test]
    fn only_admins_span_tenants_and_only_in_reads() {
        let admin = caller(&[Scope::Admin], None);
        let reader = caller(&[Scope::Read], None);
        assert_eq!(
            admin.tenants(Scope::Read, &named(None, true)).unwrap(),
            TenantScope::All
        );
        assert!(matches!(
            reader.tenants(Scope::Read, &named(None, true)),
            Err(ServiceError::MissingScope(Scope::Admin))
        ));
        assert!(matches!(
            admin.tenants(Scope::Read, &named(Some("acme"), true)),
            Err(ServiceError::Invalid(_))
        ));
        assert!(matches!(
            admin.tenant(Scope::Write, &named(None, true)),
            Err(ServiceError::Invalid(_))
        ));
        let one = reader
            .tenants(Scope::Read, &named(Some("acme"), false))
            .unwrap();
        assert!(one.includes(&TenantId::parse("acme").unwrap()));
        assert!(!one.includes(&TenantId::default()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_publish_limit_takes_a_whole_batch_or_nothing() {
        let id = ApiKeyId::generate();
        let limit = RateLimit::try_new(3, Duration::from_secs(1), 3).unwrap();
        let limited = Caller {
            publish_limit: Some((id, limit)),
            ..caller(&[Scope::Publish], None)
        };
        let auth = Authenticator::new(AuthSettings::default());
        auth.admit_publish(&limited, 2).unwrap();
        let refused = auth.admit_publish(&limited, 2).unwrap_err();
        let ServiceError::PublishLimited { retry_after } = refused else {
            panic!("{refused:?}");
        };
        // Two events need one token more than the bucket holds: a third of the window.
        assert_eq!(retry_after, Duration::from_secs(1) / 3);
        // The refused batch took nothing: one event still fits.
        auth.admit_publish(&limited, 1).unwrap();
        assert!(auth.admit_publish(&limited, 1).is_err());
        tokio::time::advance(Duration::from_secs(1)).await;
        auth.admit_publish(&limited, 3).unwrap();
        // A caller without a limit is never refused.
        let free = caller(&[Scope::Publish], None);
        auth.admit_publish(&free, 1000).unwrap();
    }
}
