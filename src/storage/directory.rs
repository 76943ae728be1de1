//! Every endpoint a store keeps in memory, indexed by the event types it subscribes to, so
//! that finding a message's receivers costs a few lookups however many endpoints there
//! are (a deployment with one endpoint per customer has hundreds of thousands).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::domain::{Endpoint, EndpointId, EventType, TenantId};

/// What an endpoint subscribes to, as the index files it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subscription {
    /// Every event type (no filter).
    Every,
    /// One event type, or every type below a prefix (`order.*`): the pattern as written.
    Pattern(String),
}

/// The endpoints by id, and by tenant and subscription.
#[derive(Debug, Default)]
pub struct Directory {
    endpoints: HashMap<EndpointId, Arc<Endpoint>>,
    index: HashMap<TenantId, HashMap<Subscription, HashSet<EndpointId>>>,
    per_tenant: HashMap<TenantId, usize>,
}

impl Directory {
    pub fn get(&self, id: &EndpointId) -> Option<&Arc<Endpoint>> {
        self.endpoints.get(id)
    }

    pub fn contains(&self, id: &EndpointId) -> bool {
        self.endpoints.contains_key(id)
    }

    pub fn values(&self) -> impl Iterator<Item = &Arc<Endpoint>> {
        self.endpoints.values()
    }

    /// How many endpoints the tenant has.
    pub fn count(&self, tenant: &TenantId) -> usize {
        self.per_tenant.get(tenant).copied().unwrap_or(0)
    }

    /// Adds the endpoint, or replaces the one with its id.
    pub fn insert(&mut self, endpoint: Arc<Endpoint>) {
        self.remove(&endpoint.id);
        let tenant = self.index.entry(endpoint.tenant.clone()).or_default();
        for key in subscriptions(&endpoint) {
            tenant.entry(key).or_default().insert(endpoint.id.clone());
        }
        *self.per_tenant.entry(endpoint.tenant.clone()).or_default() += 1;
        self.endpoints.insert(endpoint.id.clone(), endpoint);
    }

    pub fn remove(&mut self, id: &EndpointId) -> Option<Arc<Endpoint>> {
        let endpoint = self.endpoints.remove(id)?;
        if let Some(n) = self.per_tenant.get_mut(&endpoint.tenant) {
            *n -= 1;
            if *n == 0 {
                self.per_tenant.remove(&endpoint.tenant);
            }
        }
        if let Some(tenant) = self.index.get_mut(&endpoint.tenant) {
            for key in subscriptions(&endpoint) {
                if let Some(ids) = tenant.get_mut(&key) {
                    ids.remove(id);
                    if ids.is_empty() {
                        tenant.remove(&key);
                    }
                }
            }
            if tenant.is_empty() {
                self.index.remove(&endpoint.tenant);
            }
        }
        Some(endpoint)
    }

    /// The enabled endpoints a message of this tenant, type and channels goes to.
    pub fn subscribers<'a>(
        &'a self,
        tenant: &'a TenantId,
        event_type: &'a EventType,
        channels: &'a [String],
    ) -> impl Iterator<Item = &'a Arc<Endpoint>> + 'a {
        let name = event_type.as_str();
        // The patterns that can match: the type itself and each prefix ending before a dot.
        let prefixes = name
            .match_indices('.')
            .map(|(at, _)| Subscription::Pattern(format!("{}.*", &name[..at])));
        let keys = [Subscription::Every, Subscription::Pattern(name.to_owned())]
            .into_iter()
            .chain(prefixes);
        let mut seen = HashSet::new();
        let index = self.index.get(tenant);
        keys.filter_map(move |key| index?.get(&key))
            .flatten()
            .filter(move |id| seen.insert(*id))
            .filter_map(|id| self.endpoints.get(id))
            .filter(|e| e.receives(tenant, event_type, channels))
    }
}

/// The index keys, within its tenant, of what `endpoint` subscribes to.
fn subscriptions(endpoint: &Endpoint) -> Vec<Subscription> {
    if endpoint.event_types.is_empty() {
        return vec![Subscription::Every];
    }
    endpoint
        .event_types
        .iter()
        .map(|p| Subscription::Pattern(p.as_str().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::domain::{EventPattern, Secret, SigningSecrets};

    fn endpoint(n: u32, tenant: &str, patterns: &[&str]) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            id: EndpointId::parse(&format!("ep_{n}")).unwrap(),
            tenant: TenantId::parse(tenant).unwrap(),
            url: "https://example.com/hook".parse().unwrap(),
            description: String::new(),
            event_types: patterns
                .iter()
                .map(|p| EventPattern::parse(p).unwrap())
                .collect(),
            channels: Vec::new(),
            headers: Vec::new(),
            retry: Default::default(),
            protection: Default::default(),
            disabled: None,
            failing_since: None,
            secrets: SigningSecrets::new(Secret::generate()),
            created_at: SystemTime::UNIX_EPOCH,
            updated_at: SystemTime::UNIX_EPOCH,
        })
    }

    fn receivers(d: &Directory, tenant: &str, event: &str) -> Vec<EndpointId> {
        let tenant = TenantId::parse(tenant).unwrap();
        let event = EventType::parse(event).unwrap();
        let mut ids: Vec<EndpointId> = d
            .subscribers(&tenant, &event, &[])
            .map(|e| e.id.clone())
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn finds_exactly_the_endpoints_a_linear_scan_finds() {
        let mut d = Directory::default();
        let all = [
            endpoint(1, "acme", &[]),
            endpoint(2, "acme", &["order.created"]),
            endpoint(3, "acme", &["order.*"]),
            endpoint(4, "acme", &["order.created.*"]),
            endpoint(5, "acme", &["order.*", "order.created"]),
            endpoint(6, "other", &["order.created"]),
            endpoint(7, "acme", &["invoice.paid"]),
        ];
        for e in &all {
            d.insert(e.clone());
        }
        for event in [
            "order.created",
            "order.created.eu",
            "order",
            "invoice.paid",
            "x",
        ] {
            for tenant in ["acme", "other"] {
                let t = TenantId::parse(tenant).unwrap();
                let ev = EventType::parse(event).unwrap();
                let mut expected: Vec<EndpointId> = all
                    .iter()
                    .filter(|e| e.receives(&t, &ev, &[]))
                    .map(|e| e.id.clone())
                    .collect();
                expected.sort();
                assert_eq!(receivers(&d, tenant, event), expected, "{tenant} {event}");
            }
        }
        assert_eq!(receivers(&d, "acme", "order.created").len(), 4);
        assert_eq!(d.count(&TenantId::parse("acme").unwrap()), 6);
    }

    #[test]
    fn a_replaced_or_removed_endpoint_leaves_the_index() {
        let mut d = Directory::default();
        d.insert(endpoint(1, "acme", &["order.*"]));
        d.insert(endpoint(1, "acme", &["invoice.paid"]));
        assert!(receivers(&d, "acme", "order.created").is_empty());
        assert_eq!(receivers(&d, "acme", "invoice.paid").len(), 1);
        let id = d.values().next().unwrap().id.clone();
        assert!(d.remove(&id).is_some());
        assert!(receivers(&d, "acme", "invoice.paid").is_empty());
        assert!(d.index.is_empty());
        assert_eq!(d.count(&TenantId::parse("acme").unwrap()), 0);
    }
}
