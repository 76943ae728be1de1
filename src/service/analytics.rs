//! Analytics: the window (whole minutes, defaulting to the last 24 hours), the window
//! before it for the trend, and the deliveries still pending; of one endpoint, of the
//! endpoints a tenant has now, or (for an admin) of every endpoint.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Caller, Service, ServiceError, Tenancy, TenantScope, Violations};
use crate::analytics::{self, Report};
use crate::auth::Scope;
use crate::domain::{EndpointId, EventType};

/// The window when none is given.
const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The shortest and the longest window.
const SHORTEST_WINDOW: Duration = Duration::from_secs(60);
const LONGEST_WINDOW: Duration = Duration::from_secs(400 * 24 * 3600);

/// Which figures to report.
#[derive(Debug, Clone, Default)]
pub struct AnalyticsQuery {
    /// `None`: `end` minus a day.
    pub start: Option<SystemTime>,
    /// `None`: now.
    pub end: Option<SystemTime>,
    pub endpoint: Option<EndpointId>,
    pub event_type: Option<EventType>,
}

/// The report of a window, with the deliveries not yet finished.
#[derive(Debug, Clone)]
pub struct Analytics {
    pub report: Report,
    pub pending: u64,
}

impl Service {
    /// The endpoints whose figures a query in `scope` covers; `None`: every endpoint.
    async fn covered(
        &self,
        scope: &TenantScope,
        endpoint: Option<&EndpointId>,
    ) -> Result<Option<Vec<EndpointId>>, ServiceError> {
        if let Some(id) = endpoint {
            return Ok(Some(vec![self.endpoint_in(scope, id).await?.id]));
        }
        let Some(tenant) = scope.only() else {
            return Ok(None);
        };
        let mut ids = Vec::new();
        loop {
            let page = self
                .0
                .store
                .list_endpoints(Some(tenant.clone()), ids.last().cloned(), 1000)
                .await?;
            let done = page.len() < 1000;
            ids.extend(page.into_iter().map(|e| e.id));
            if done {
                return Ok(Some(ids));
            }
        }
    }

    /// # Errors
    /// A caller without the `read` scope, an endpoint not in the caller's tenants, a
    /// time before the Unix epoch, a window that runs backwards, is shorter than a minute
    /// or longer than 400 days (named `start_time`), or a store failure.
    pub async fn analytics(
        &self,
        caller: &Caller,
        tenancy: &Tenancy,
        query: AnalyticsQuery,
    ) -> Result<Analytics, ServiceError> {
        let scope = caller.tenants(Scope::Read, tenancy)?;
        let mut v = Violations::default();
        for (field, time) in [("start_time", query.start), ("end_time", query.end)] {
            if time.is_some_and(|t| t < UNIX_EPOCH) {
                v.add(field, "must be at or after 1970-01-01T00:00:00Z");
            }
        }
        let end = query.end.unwrap_or_else(SystemTime::now);
        // A day before an end in the epoch's first day starts at the epoch.
        let start = query.start.unwrap_or_else(|| {
            end.checked_sub(DEFAULT_WINDOW)
                .map_or(UNIX_EPOCH, |start| start.max(UNIX_EPOCH))
        });
        match end.duration_since(start) {
            _ if !v.is_empty() => {}
            Ok(length) if (SHORTEST_WINDOW..=LONGEST_WINDOW).contains(&length) => {}
            _ => v.add(
                "start_time",
                "the window must run forward, from one minute to 400 days",
            ),
        }
        v.or(|| ())?;
        let endpoints = self.covered(&scope, query.endpoint.as_ref()).await?;
        // Whole minutes: from the one holding `start` to the one holding the last instant
        // before `end`, so that a window ending now includes the current minute. The
        // window is at least a minute long, so `end` is past the epoch.
        let first = analytics::minute_of(start);
        let last =
            analytics::minute_of(end.checked_sub(Duration::from_nanos(1)).unwrap_or(end)) + 1;
        // The window before, of the same length, gives the trend.
        let rows = self
            .0
            .store
            .rollups(
                first - (last - first),
                last,
                endpoints.clone(),
                query.event_type.clone(),
            )
            .await?;
        let report = analytics::report(
            &rows,
            analytics::time_of_minute(first),
            analytics::time_of_minute(last),
        );
        let pending = self.0.store.pending(endpoints, query.event_type).await?;
        Ok(Analytics { report, pending })
    }
}
