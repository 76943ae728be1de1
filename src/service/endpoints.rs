//! Endpoints: registration (the id, the signing secret and the times are made here, in
//! the caller's tenant, within the tenant's endpoint limit), reads with the live
//! protection state, updates, deletion, secret rotation; overrides are checked against
//! the server's defaults and bounds, each violation named by its field. Another tenant's
//! endpoint is not found, as a missing one. Custom header values (often the receiver's
//! credentials) are shown only to callers who may change the endpoint (`write`); others
//! read them empty. Every change is audited.

use std::time::{Duration, SystemTime};

use super::access::audit;
use super::{Caller, Page, Service, ServiceError, Tenancy, TenantScope, Violations};
use crate::auth::Scope;
use crate::domain::{
    CustomHeader, DisabledReason, Endpoint, EndpointId, EndpointUpdate, EventPattern,
    ProtectionOverride, RateLimitOverride, RetryOverride, Secret, SigningSecrets, TenantId,
};
use crate::policy::bounds::OutOfBounds;
use crate::policy::breaker::BreakerPolicyError;
use crate::policy::limiter::RateLimitError;
use crate::policy::protection::{EndpointStatus, ProtectionError};
use crate::policy::retry::PolicyError;
use crate::storage::StoreError;

/// An endpoint to register.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// `None`: one is generated.
    pub id: Option<EndpointId>,
    pub url: url::Url,
    pub description: String,
    pub event_types: Vec<EventPattern>,
    pub channels: Vec<String>,
    pub headers: Vec<CustomHeader>,
    pub retry: RetryOverride,
    pub protection: ProtectionOverride,
    /// `None`: one is generated.
    pub secret: Option<Secret>,
    pub enabled: bool,
}

/// An endpoint with its live protection state.
#[derive(Debug, Clone)]
pub struct EndpointView {
    pub endpoint: Endpoint,
    pub status: EndpointStatus,
}

/// The field below the endpoint that a protection override error is about.
fn protection_field(e: &ProtectionError) -> &'static str {
    match e {
        ProtectionError::Breaker(BreakerPolicyError::Threshold(_)) => {
            "circuit_breaker.failure_threshold"
        }
        ProtectionError::Breaker(BreakerPolicyError::Timeout(_)) => "circuit_breaker.timeout",
        ProtectionError::RateLimit(RateLimitError::Limit(_)) => "rate_limit.limit",
        ProtectionError::RateLimit(RateLimitError::Window(_)) => "rate_limit.window",
        ProtectionError::RateLimit(RateLimitError::Burst(_)) => "rate_limit.burst",
        ProtectionError::NoInFlight => "max_in_flight",
    }
}

/// The field below the endpoint that an override past the server's bounds is about.
fn bound_field(e: &OutOfBounds) -> &'static str {
    match e {
        OutOfBounds::Retries { .. } => "retry_policy.max_retries",
        OutOfBounds::InitialDelay { .. } => "retry_policy.initial_delay",
        OutOfBounds::MaxDelay { .. } => "retry_policy.max_delay",
        OutOfBounds::Unlimited { .. } | OutOfBounds::Rate { .. } => "rate_limit.limit",
        OutOfBounds::Burst { .. } => "rate_limit.burst",
        OutOfBounds::FailureThreshold { .. } => "circuit_breaker.failure_threshold",
        OutOfBounds::BreakerTimeout { .. } => "circuit_breaker.timeout",
        OutOfBounds::MaxInFlight { .. } => "max_in_flight",
    }
}

/// The field below the endpoint that a retry override error is about.
fn retry_field(e: &PolicyError) -> &'static str {
    match e {
        PolicyError::TooManyRetries { .. } => "retry_policy.max_retries",
        PolicyError::ZeroInitialDelay => "retry_policy.initial_delay",
        PolicyError::MaxDelay { .. } => "retry_policy.max_delay",
        PolicyError::Multiplier(_) => "retry_policy.multiplier",
    }
}

impl Service {
    /// Checks overrides against the server's defaults: the retry override as a whole, and
    /// each protection override (rate limit, breaker, in-flight cap) on its own, so every
    /// bad one is named; then each that works against the server's bounds, so a field is
    /// named once, for the first thing wrong with it.
    fn check_overrides(
        &self,
        v: &mut Violations,
        retry: Option<&RetryOverride>,
        rate_limit: Option<RateLimitOverride>,
        circuit_breaker: Option<(Option<u32>, Option<Duration>)>,
        max_in_flight: Option<Option<u32>>,
    ) {
        let defaults = &self.0.protection_defaults;
        let mut past_bounds = Vec::new();
        if let Some(retry) = retry {
            match self.0.retry.with_override(retry) {
                Ok(_) => past_bounds.extend(defaults.bounds.check_retry(retry)),
                Err(e) => v.add(retry_field(&e), e.to_string()),
            }
        }
        let parts = [
            rate_limit.map(|rate_limit| ProtectionOverride {
                rate_limit,
                ..Default::default()
            }),
            circuit_breaker.map(|(failure_threshold, breaker_timeout)| ProtectionOverride {
                failure_threshold,
                breaker_timeout,
                ..Default::default()
            }),
            max_in_flight.map(|max_in_flight| ProtectionOverride {
                max_in_flight,
                ..Default::default()
            }),
        ];
        for part in parts.into_iter().flatten() {
            match defaults.resolve(&part) {
                Ok(_) => past_bounds.extend(
                    defaults
                        .bounds
                        .check_protection(&part, defaults.rate_limit_window),
                ),
                Err(e) => v.add(protection_field(&e), e.to_string()),
            }
        }
        for e in past_bounds {
            v.add(bound_field(&e), e.to_string());
        }
    }

    /// Endpoint `id` (as its tenant names it), if it is in `scope`: another tenant's is
    /// as missing as a missing one. Across tenants, an id names a default-tenant
    /// endpoint; others are found by naming their tenant.
    pub(super) async fn endpoint_in(
        &self,
        scope: &TenantScope,
        id: &EndpointId,
    ) -> Result<Endpoint, ServiceError> {
        let stored = scope.only().map_or_else(|| id.clone(), |t| id.in_tenant(t));
        let missing = || ServiceError::from(StoreError::endpoint_not_found(id));
        match self.0.store.get_endpoint(&stored).await {
            Ok(endpoint) if scope.includes(&endpoint.tenant) => Ok(endpoint),
            Ok(_) | Err(StoreError::NotFound { .. }) => Err(missing()),
            Err(e) => Err(e.into()),
        }
    }

    /// The tenant of a change to endpoint `id` by `caller`, and the id the store keeps
    /// it under, once the endpoint is known to be there.
    async fn changing(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        id: &EndpointId,
    ) -> Result<(TenantId, EndpointId), ServiceError> {
        let tenant = caller.tenant(Scope::Write, tenancy)?;
        let endpoint = self
            .endpoint_in(&TenantScope::One(tenant.clone()), id)
            .await?;
        Ok((tenant, endpoint.id))
    }

    /// The endpoint as `caller` may read it: custom header values only with `write`.
    fn readable(caller: &Caller, mut endpoint: Endpoint) -> Endpoint {
        if caller.require(Scope::Write).is_err() {
            endpoint.headers = endpoint
                .headers
                .iter()
                .map(CustomHeader::redacted)
                .collect();
        }
        endpoint
    }

    /// The endpoint with its live protection state.
    async fn view(&self, endpoint: Endpoint) -> Result<EndpointView, ServiceError> {
        let status = self.0.protection.status(&endpoint).await?;
        Ok(EndpointView { endpoint, status })
    }

    /// Registers an endpoint; answers it with its signing secret, shown only now.
    ///
    /// # Errors
    /// A caller without the `write` scope or in another tenant, overrides that cannot
    /// work with the server's defaults or are past its bounds, an id already taken, a
    /// tenant with as many endpoints as it may have, or a store failure.
    pub async fn register_endpoint(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        new: NewEndpoint,
    ) -> Result<(EndpointView, Secret), ServiceError> {
        let tenant = caller.tenant(Scope::Write, tenancy)?;
        let mut v = Violations::default();
        v.check("url", self.0.egress.check_url(&new.url));
        let p = &new.protection;
        self.check_overrides(
            &mut v,
            Some(&new.retry),
            Some(p.rate_limit),
            Some((p.failure_threshold, p.breaker_timeout)),
            Some(p.max_in_flight),
        );
        v.or(|| ())?;
        let secret = new.secret.unwrap_or_else(Secret::generate);
        let now = SystemTime::now();
        let id = new.id.unwrap_or_else(EndpointId::generate);
        let endpoint = Endpoint {
            id: id.in_tenant(&tenant),
            tenant,
            url: new.url,
            description: new.description,
            event_types: new.event_types,
            channels: new.channels,
            headers: new.headers,
            retry: new.retry,
            protection: new.protection,
            disabled: (!new.enabled).then_some(DisabledReason::Manual),
            failing_since: None,
            secrets: SigningSecrets::new(secret.clone()),
            created_at: now,
            updated_at: now,
        };
        let endpoint = self
            .0
            .store
            .create_endpoint(endpoint, self.0.config.max_endpoints_per_tenant)
            .await
            .map_err(|e| match e {
                // Named as the tenant named it.
                StoreError::AlreadyExists { kind, .. } => ServiceError::AlreadyExists {
                    kind,
                    id: id.to_string(),
                },
                e => e.into(),
            })?;
        audit(
            &caller.principal,
            "endpoint.register",
            Some(&endpoint.tenant),
            endpoint.id.public(),
        );
        Ok((self.view(endpoint).await?, secret))
    }

    /// The endpoint, its custom header values empty unless the caller has `write`.
    ///
    /// # Errors
    /// A caller without the `read` scope, an endpoint not in the caller's tenants, or a
    /// store failure.
    pub async fn get_endpoint(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        id: &EndpointId,
    ) -> Result<EndpointView, ServiceError> {
        let scope = caller.tenants(Scope::Read, tenancy)?;
        let endpoint = self.endpoint_in(&scope, id).await?;
        self.view(Self::readable(caller, endpoint)).await
    }

    /// Endpoints in id order, after `after`; custom header values are empty unless the
    /// caller has `write`.
    ///
    /// # Errors
    /// A caller without the `read` scope, or a store failure.
    pub async fn list_endpoints(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        after: Option<EndpointId>,
        limit: usize,
    ) -> Result<Page<EndpointView, EndpointId>, ServiceError> {
        let scope = caller.tenants(Scope::Read, tenancy)?;
        let endpoints = self
            .0
            .store
            .list_endpoints(scope.only().cloned(), after, limit + 1)
            .await?;
        let page = Page::cut(endpoints, limit, |e| e.id.clone());
        let mut items = Vec::with_capacity(page.items.len());
        for endpoint in page.items {
            items.push(self.view(Self::readable(caller, endpoint)).await?);
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// Changes the fields the update names. Fields are named below the endpoint.
    ///
    /// # Errors
    /// A caller without the `write` scope, overrides that cannot work with the server's
    /// defaults or are past its bounds, an endpoint not in the caller's tenant, or a
    /// store failure.
    pub async fn update_endpoint(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        id: &EndpointId,
        update: EndpointUpdate,
    ) -> Result<EndpointView, ServiceError> {
        let tenant = caller.tenant(Scope::Write, tenancy)?;
        let mut v = Violations::default();
        if let Some(url) = &update.url {
            v.check("url", self.0.egress.check_url(url));
        }
        self.check_overrides(
            &mut v,
            update.retry.as_ref(),
            update.rate_limit,
            update.circuit_breaker,
            update.max_in_flight,
        );
        v.or(|| ())?;
        let stored = self
            .endpoint_in(&TenantScope::One(tenant.clone()), id)
            .await?
            .id;
        let endpoint = self
            .0
            .store
            .update_endpoint(&stored, update, SystemTime::now())
            .await?;
        audit(
            &caller.principal,
            "endpoint.update",
            Some(&tenant),
            id.as_str(),
        );
        // Enabled again, or given more room: its deliveries may start now.
        self.work_queued();
        self.view(endpoint).await
    }

    /// Deletes the endpoint and cancels its unfinished deliveries; answers how many.
    ///
    /// # Errors
    /// A caller without the `write` scope, an endpoint not in the caller's tenant, or a
    /// store failure.
    pub async fn delete_endpoint(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        id: &EndpointId,
    ) -> Result<u32, ServiceError> {
        let (tenant, stored) = self.changing(caller, tenancy, id).await?;
        self.remove_endpoint(caller, &tenant, &stored).await
    }

    /// Deletes an endpoint known to be in `tenant`, by the id the store keeps it under.
    pub(super) async fn remove_endpoint(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        stored: &EndpointId,
    ) -> Result<u32, ServiceError> {
        let cancelled = self
            .0
            .store
            .delete_endpoint(stored, SystemTime::now())
            .await?;
        self.0.protection.forget(stored);
        audit(
            &caller.principal,
            "endpoint.delete",
            Some(tenant),
            stored.public(),
        );
        Ok(cancelled)
    }

    /// Makes a new signing secret current; the old one keeps signing for `grace` (the
    /// server's default when `None`). Answers the new secret, shown only now.
    ///
    /// # Errors
    /// A caller without the `write` scope, an endpoint not in the caller's tenant, or a
    /// store failure.
    pub async fn rotate_secret(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        id: &EndpointId,
        grace: Option<Duration>,
    ) -> Result<(EndpointView, Secret), ServiceError> {
        let (tenant, stored) = self.changing(caller, tenancy, id).await?;
        let grace = grace.unwrap_or(self.0.config.secret_rotation_grace);
        let secret = Secret::generate();
        let now = SystemTime::now();
        let endpoint = self
            .0
            .store
            .rotate_secret(&stored, secret.clone(), now + grace, now)
            .await?;
        audit(
            &caller.principal,
            "endpoint.rotate_secret",
            Some(&tenant),
            id.as_str(),
        );
        Ok((self.view(endpoint).await?, secret))
    }
}
