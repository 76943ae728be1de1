//! API keys, for admins: creating one (its token is answered once and never stored),
//! listing them (never a secret), revoking one; and the first admin key of a deployment
//! that has none. Every change is audited.

use std::time::SystemTime;

use super::access::audit;
use super::{Caller, Page, Principal, Service, ServiceError, Violations};
use crate::auth::{ApiKey, ApiKeyId, ApiKeyToken, IssuedToken, Scope, Scopes};
use crate::domain::TenantId;
use crate::policy::limiter::RateLimit;

/// A key to create.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Scopes,
    /// The only tenant the key acts in; `None`: any.
    pub tenant: Option<TenantId>,
    pub expires_at: Option<SystemTime>,
    pub publish_limit: Option<RateLimit>,
}

impl Service {
    /// Stores a new key and answers it with its token, shown only now.
    fn issue(new: NewApiKey, now: SystemTime) -> (ApiKey, IssuedToken) {
        let (id, token, secret_hash) = ApiKeyToken::generate();
        let key = ApiKey {
            id,
            name: new.name,
            scopes: new.scopes,
            tenant: new.tenant,
            secret_hash,
            created_at: now,
            expires_at: new.expires_at,
            publish_limit: new.publish_limit,
            revoked_at: None,
            last_used_at: None,
        };
        (key, token)
    }

    /// # Errors
    /// A caller without the `admin` scope, an admin key bound to a tenant, an expiry in
    /// the past, or a store failure.
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        new: NewApiKey,
    ) -> Result<(ApiKey, IssuedToken), ServiceError> {
        caller.require(Scope::Admin)?;
        let now = SystemTime::now();
        let mut v = Violations::default();
        if new.tenant.is_some() && new.scopes.iter().any(|s| s == Scope::Admin) {
            v.add(
                "tenant_id",
                "an admin key acts in every tenant; it cannot be bound to one",
            );
        }
        if new.expires_at.is_some_and(|at| at <= now) {
            v.add("expire_time", "must be in the future");
        }
        v.or(|| ())?;
        let (key, token) = Self::issue(new, now);
        self.0.store.create_api_key(key.clone()).await?;
        audit(
            &caller.principal,
            "api_key.create",
            key.tenant.as_ref(),
            key.id.as_str(),
        );
        Ok((key, token))
    }

    /// Keys in creation order after `after`, revoked ones included.
    ///
    /// # Errors
    /// A caller without the `admin` scope, or a store failure.
    pub async fn list_api_keys(
        &self,
        caller: &Caller,
        after: Option<ApiKeyId>,
        limit: usize,
    ) -> Result<Page<ApiKey, ApiKeyId>, ServiceError> {
        caller.require(Scope::Admin)?;
        let keys = self.0.store.list_api_keys(after, limit + 1).await?;
        Ok(Page::cut(keys, limit, |k| k.id.clone()))
    }

    /// Revokes a key: it stops working here at once, on other instances within a second.
    ///
    /// # Errors
    /// A caller without the `admin` scope, an unknown key, or a store failure.
    pub async fn revoke_api_key(
        &self,
        caller: &Caller,
        id: &ApiKeyId,
    ) -> Result<ApiKey, ServiceError> {
        caller.require(Scope::Admin)?;
        let key = self.0.store.revoke_api_key(id, SystemTime::now()).await?;
        self.0.auth.forget(id);
        audit(
            &caller.principal,
            "api_key.revoke",
            key.tenant.as_ref(),
            id.as_str(),
        );
        Ok(key)
    }

    /// When authentication is on, no operator key is configured and the store holds no
    /// key at all: creates an admin key and answers its token, to be shown once.
    ///
    /// # Errors
    /// A store failure.
    pub async fn first_admin_key(&self) -> Result<Option<IssuedToken>, ServiceError> {
        if !self.0.auth.enabled() || self.0.auth.has_operator_key() {
            return Ok(None);
        }
        if !self.0.store.list_api_keys(None, 1).await?.is_empty() {
            return Ok(None);
        }
        let (key, token) = Self::issue(
            NewApiKey {
                name: "first admin key".to_owned(),
                scopes: Scopes::admin(),
                tenant: None,
                expires_at: None,
                publish_limit: None,
            },
            SystemTime::now(),
        );
        self.0.store.create_api_key(key.clone()).await?;
        audit(&Principal::Startup, "api_key.create", None, key.id.as_str());
        Ok(Some(token))
    }
}
