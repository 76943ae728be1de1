//! The status stream: retained status events after a cursor, then the live tail, with
//! heartbeats when idle.
//!
//! Every status event is written by the store in the same transaction as the change it
//! reports, with a cursor, and broadcast once committed. A watcher first replays what the
//! store retains after its cursor, then subscribes and replays once more (closing the gap
//! between the two), then follows the broadcast, skipping what it already sent. A watcher
//! whose consumer is too slow falls behind the broadcast and is ended with the cursor to
//! resume after: it never slows delivery and never holds more than the channel's events.
//! Nothing here knows of gRPC.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;

use crate::domain::{EndpointId, EventPattern, MessageId, StatusEvent, StatusKind, TenantId};
use crate::storage::{Store, StoreError};

/// Events read from the store at a time while catching up.
const REPLAY_PAGE: usize = 500;

/// Which events a watcher wants; empty lists mean all.
#[derive(Debug, Clone, Default)]
pub struct StatusFilter {
    /// Only events of this tenant's endpoints; `None`: every tenant's.
    pub tenant: Option<TenantId>,
    pub endpoints: Vec<EndpointId>,
    pub event_types: Vec<EventPattern>,
    pub message: Option<MessageId>,
    pub kinds: Vec<StatusKind>,
}

impl StatusFilter {
    pub fn matches(&self, e: &StatusEvent) -> bool {
        // An endpoint's stored id names its tenant, so a deleted endpoint's last events
        // still reach its own tenant.
        let tenant_ok = self
            .tenant
            .as_ref()
            .is_none_or(|t| e.endpoint_id.as_ref().is_some_and(|id| id.tenant() == *t));
        let endpoint_ok = self.endpoints.is_empty()
            || e.endpoint_id
                .as_ref()
                .is_some_and(|id| self.endpoints.contains(id));
        let type_ok = self.event_types.is_empty()
            || e.event_type
                .as_ref()
                .is_some_and(|t| self.event_types.iter().any(|p| p.matches(t)));
        let message_ok = self.message.is_none() || e.message_id == self.message;
        let kind_ok = self.kinds.is_empty() || self.kinds.contains(&e.kind);
        tenant_ok && endpoint_ok && type_ok && message_ok && kind_ok
    }
}

/// What a watch asks for.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    pub filter: StatusFilter,
    /// Resume after this cursor; `None`: from now on.
    pub after: Option<u64>,
    /// End once `filter.message` is settled on every endpoint.
    pub until_settled: bool,
    pub heartbeat: Duration,
}

/// One item of a watch.
#[derive(Debug, Clone)]
pub enum StatusItem {
    Event(Arc<StatusEvent>),
    /// Where a watch from now starts, then each time it was idle for the heartbeat
    /// interval; everything up to `cursor` was considered.
    Heartbeat {
        at: SystemTime,
        cursor: u64,
    },
}

/// Why a watch ended early.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("events after cursor {after} are no longer retained")]
    Pruned { after: u64 },
    /// A cursor no event has had yet: the store's newest is `latest`.
    #[error("cursor {after} is beyond the newest event, {latest}")]
    Ahead { after: u64, latest: u64 },
    #[error("the consumer fell too far behind; resume after cursor {resume_after}")]
    Lagged { resume_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Follows the status events that match `request`, until `stop` or the end of the
/// consumer's interest.
pub fn watch(
    store: Arc<dyn Store>,
    request: WatchRequest,
    stop: CancellationToken,
) -> impl Stream<Item = Result<StatusItem, WatchError>> + Send + 'static {
    async_stream::stream! {
        let WatchRequest { filter, after, until_settled, heartbeat } = request;
        let settle_on = filter.message.clone().filter(|_| until_settled);
        let mut last = match after {
            Some(cursor) => cursor,
            None => match store.events_after(u64::MAX, 1).await {
                Ok(page) => page.latest,
                Err(e) => { yield Err(e.into()); return; }
            },
        };
        if after.is_none() {
            // Where "now" is, so that a watcher cut off before any event resumes from
            // here rather than from a later now, and misses nothing.
            yield Ok(StatusItem::Heartbeat { at: SystemTime::now(), cursor: last });
        }
        // Catch up from the store; subscribe; catch up with what committed meanwhile; then
        // follow the broadcast. A settled message ends the watch after one more catch-up:
        // its state is visible only once its events are committed, so they are all read.
        let mut live = None;
        let mut ending = false;
        loop {
            loop {
                let page = match store.events_after(last, REPLAY_PAGE).await {
                    Ok(page) => page,
                    Err(e) => { yield Err(e.into()); return; }
                };
                // Cursors come from events and heartbeats, never past the newest event; a
                // later one would be followed by heartbeats for ever.
                if last > page.latest {
                    yield Err(WatchError::Ahead { after: last, latest: page.latest });
                    return;
                }
                if page.pruned {
                    yield Err(WatchError::Pruned { after: last });
                    return;
                }
                let caught_up = page.events.len() < REPLAY_PAGE;
                for event in page.events {
                    last = event.cursor;
                    if filter.matches(&event) {
                        yield Ok(StatusItem::Event(Arc::new(event)));
                    }
                }
                if caught_up {
                    break;
                }
            }
            if ending {
                return;
            }
            let Some(receiver) = live.as_mut() else {
                live = Some(store.subscribe());
                continue;
            };
            // Events read by the catch-ups may have settled the message.
            if let Some(message) = &settle_on {
                match settled(&*store, message).await {
                    Ok(true) => {
                        ending = true;
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => { yield Err(e.into()); return; }
                }
            }
            // Idle means nothing sent to this consumer, whatever its filter skipped.
            let mut idle_until = Instant::now() + heartbeat;
            loop {
                let received = tokio::select! {
                    received = receiver.recv() => received,
                    () = tokio::time::sleep_until(idle_until) => {
                        idle_until = Instant::now() + heartbeat;
                        yield Ok(StatusItem::Heartbeat { at: SystemTime::now(), cursor: last });
                        continue;
                    }
                    () = stop.cancelled() => return,
                };
                let event = match received {
                    Ok(event) => event,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        yield Err(WatchError::Lagged { resume_after: last });
                        return;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                if event.cursor <= last {
                    continue;
                }
                last = event.cursor;
                if !filter.matches(&event) {
                    continue;
                }
                let concerns_settling = settle_on.is_some() && event.message_id == settle_on;
                idle_until = Instant::now() + heartbeat;
                yield Ok(StatusItem::Event(event));
                if concerns_settling {
                    match settled(&*store, settle_on.as_ref().expect("checked")).await {
                        Ok(true) => {
                            ending = true;
                            break;
                        }
                        Ok(false) => {}
                        Err(e) => { yield Err(e.into()); return; }
                    }
                }
            }
        }
    }
}

/// Whether every delivery of the message has finished.
async fn settled(store: &dyn Store, message: &MessageId) -> Result<bool, StoreError> {
    let (_, deliveries) = store.get_message(message).await?;
    Ok(deliveries.iter().all(|d| d.state.is_terminal()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventType;

    fn event(kind: StatusKind, endpoint: &str, event_type: Option<&str>) -> StatusEvent {
        StatusEvent {
            endpoint_id: Some(EndpointId::parse(endpoint).unwrap()),
            event_type: event_type.map(|t| EventType::parse(t).unwrap()),
            ..StatusEvent::new(kind, SystemTime::now())
        }
    }

    #[test]
    fn filters_combine_and_empty_means_all() {
        let paid = event(StatusKind::AttemptFailed, "a", Some("invoice.paid"));
        let circuit = event(StatusKind::CircuitOpened, "a", None);
        assert!(
            StatusFilter::default().matches(&paid) && StatusFilter::default().matches(&circuit)
        );
        let by_type = StatusFilter {
            event_types: vec![EventPattern::parse("invoice.*").unwrap()],
            ..Default::default()
        };
        assert!(by_type.matches(&paid));
        assert!(
            !by_type.matches(&circuit),
            "endpoint-level events have no event type"
        );
        let by_endpoint = StatusFilter {
            endpoints: vec![EndpointId::parse("b").unwrap()],
            ..Default::default()
        };
        assert!(!by_endpoint.matches(&paid));
        let by_kind = StatusFilter {
            kinds: vec![StatusKind::AttemptFailed],
            ..Default::default()
        };
        assert!(by_kind.matches(&paid) && !by_kind.matches(&circuit));
    }
}
