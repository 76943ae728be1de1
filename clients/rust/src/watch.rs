//! `watch`: the status stream as a `Stream` that outlives the connections under it.
//!
//! Herald gives every status event and heartbeat a cursor, and replays what followed a
//! cursor on request. [`Watch`] keeps the last cursor it has seen and, when the stream
//! breaks (a dropped connection, a server restarting, a `RESOURCE_EXHAUSTED` cut-off for
//! a slow consumer), opens it again after that cursor, waiting with jittered exponential
//! backoff between failed attempts. An event at or below the last cursor is never
//! yielded, so nothing is yielded twice; the replay from the cursor means nothing is
//! missed while events are still retained. Refusals a reconnect cannot cure (a cursor no
//! longer retained, a bad request, a missing permission) end the stream with the error.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio_stream::Stream;
use tonic::{Code, Status};

use crate::client::Stub;
use crate::{Error, pb};

/// The `ErrorInfo` reason and key with which Herald cuts off a consumer too far behind.
const TOO_SLOW: &str = "CONSUMER_TOO_SLOW";
const RESUME_AFTER: &str = "resume_after_cursor";

/// Reconnection delays: `initial`, doubling up to `max`, each drawn from its upper half
/// so that many watchers cut at once do not return at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(10))
    }
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
        }
    }

    /// The delay before reconnect attempt `failures` (1 for the first).
    fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let ceiling = self.initial.saturating_mul(1 << doublings).min(self.max);
        let half = ceiling / 2;
        let random = RandomState::new().build_hasher().finish();
        half + half.mul_f64(random as f64 / u64::MAX as f64)
    }
}

/// What to do after the stream under a watch ended.
#[derive(Debug, PartialEq)]
enum Next {
    /// Open it again, after at least this long.
    Reconnect(Option<Duration>),
    /// Yield the error and end: reconnecting would meet the same refusal.
    Fail,
}

/// Whether a status ending the stream is worth a reconnect, and when; `RESOURCE_EXHAUSTED`
/// from a slow-consumer cut-off also names the cursor to resume after.
fn classify(status: &crate::StatusError) -> Next {
    match status.code() {
        Code::Unavailable
        | Code::Unknown
        | Code::Internal
        | Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::ResourceExhausted => Next::Reconnect(status.retry_after()),
        _ => Next::Fail,
    }
}

/// Where a watch stands: the cursor it resumes after, which also keeps it from yielding
/// an event twice (a replay after a reconnect may repeat what was already yielded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Position {
    after: Option<u64>,
}

impl Position {
    /// The event to yield for this item, if any, moving the cursor past it. Heartbeats
    /// only move the cursor.
    fn take(&mut self, item: pb::StreamDeliveryStatusResponse) -> Option<pb::DeliveryStatusEvent> {
        use pb::stream_delivery_status_response::Item;
        match item.item? {
            Item::Event(event) if self.after.is_some_and(|a| event.cursor <= a) => None,
            Item::Event(event) => {
                self.after = Some(event.cursor);
                Some(event)
            }
            Item::Heartbeat(beat) => {
                if self.after.is_none_or(|a| beat.cursor > a) {
                    self.after = Some(beat.cursor);
                }
                None
            }
        }
    }

    /// A slow-consumer cut-off names the cursor to resume after; it matters only when
    /// nothing has arrived yet, else the watch's own cursor is at least as exact.
    fn cut_off(&mut self, ended: &crate::StatusError) {
        let too_slow = ended.error_info().is_some_and(|i| i.reason == TOO_SLOW);
        if self.after.is_none()
            && too_slow
            && let Some(cursor) = ended
                .error_metadata(RESUME_AFTER)
                .and_then(|c| c.parse().ok())
        {
            self.after = Some(cursor);
        }
    }
}

/// The live status events of a [`Client::watch`](crate::Client::watch) request.
///
/// A `Stream` of events (heartbeats are consumed: they only move the cursor). It
/// reconnects by itself from its last cursor and never yields an event twice; it ends
/// after an `Err` it cannot recover from, or when the server ends the stream of an
/// `until_settled` request. Dropping it closes the stream. Keep [`Watch::cursor`] to
/// resume later, in another process even, with `after_cursor`.
pub struct Watch {
    events: Pin<Box<dyn Stream<Item = Result<pb::DeliveryStatusEvent, Error>> + Send>>,
    position: Arc<Mutex<Position>>,
}

impl Watch {
    pub(crate) fn new(
        stub: Stub,
        request: pb::StreamDeliveryStatusRequest,
        backoff: Backoff,
    ) -> Self {
        let position = Arc::new(Mutex::new(Position {
            after: request.after_cursor,
        }));
        let events = Box::pin(events(stub, request, backoff, Arc::clone(&position)));
        Watch { events, position }
    }

    /// The cursor after which the stream would resume now: the last event yielded or the
    /// last heartbeat, whichever is later; `None` before either arrives (and without a
    /// starting cursor).
    pub fn cursor(&self) -> Option<u64> {
        lock(&self.position).after
    }
}

/// The position is only ever replaced whole, so a panic elsewhere cannot leave it torn.
fn lock(position: &Mutex<Position>) -> std::sync::MutexGuard<'_, Position> {
    position.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("cursor", &self.cursor())
            .finish_non_exhaustive()
    }
}

impl Stream for Watch {
    type Item = Result<pb::DeliveryStatusEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.as_mut().poll_next(cx)
    }
}

fn events(
    mut stub: Stub,
    request: pb::StreamDeliveryStatusRequest,
    backoff: Backoff,
    position: Arc<Mutex<Position>>,
) -> impl Stream<Item = Result<pb::DeliveryStatusEvent, Error>> + Send {
    async_stream::stream! {
        let mut failures = 0u32;
        loop {
            let attempt = pb::StreamDeliveryStatusRequest {
                after_cursor: lock(&position).after,
                ..request.clone()
            };
            // The stream itself has no deadline: it is meant to stay open.
            let ended = match stub.stream_delivery_status(attempt).await {
                Err(status) => status,
                Ok(response) => {
                    let mut stream = response.into_inner();
                    loop {
                        match stream.message().await {
                            Ok(Some(item)) => {
                                failures = 0;
                                // The guard is gone before the yield: the stream stays Send.
                                let event = lock(&position).take(item);
                                if let Some(event) = event {
                                    yield Ok(event);
                                }
                            }
                            // The server ends an `until_settled` stream once the message
                            // settled; any other clean end is a server going away.
                            Ok(None) if request.until_settled => return,
                            Ok(None) => break Status::unavailable("the server ended the stream"),
                            Err(status) => break status,
                        }
                    }
                }
            };
            let ended = crate::StatusError::from(ended);
            let Next::Reconnect(asked) = classify(&ended) else {
                yield Err(Error::Status(Box::new(ended)));
                return;
            };
            lock(&position).cut_off(&ended);
            failures = failures.saturating_add(1);
            tokio::time::sleep(asked.unwrap_or_else(|| backoff.delay(failures))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn backoff_doubles_up_to_its_ceiling_and_stays_in_the_upper_half() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        for (failures, ceiling) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            let delay = backoff.delay(failures);
            let ceiling = Duration::from_millis(ceiling);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{failures}: {delay:?}"
            );
        }
    }

    #[test]
    fn reconnects_after_transport_failures_and_slow_consumer_cut_offs() {
        let unavailable = crate::StatusError::from(Status::unavailable("connection reset"));
        assert_eq!(classify(&unavailable), Next::Reconnect(None));

        let mut details = ErrorDetails::with_error_info(
            TOO_SLOW,
            "herald.v1",
            [(RESUME_AFTER.to_owned(), "41".to_owned())],
        );
        details.set_retry_info(Some(Duration::ZERO));
        let too_slow = crate::StatusError::from(Status::with_error_details(
            Code::ResourceExhausted,
            "too slow",
            details,
        ));
        assert_eq!(classify(&too_slow), Next::Reconnect(Some(Duration::ZERO)));
        assert_eq!(too_slow.error_metadata(RESUME_AFTER), Some("41"));
    }

    fn event(cursor: u64) -> pb::StreamDeliveryStatusResponse {
        pb::StreamDeliveryStatusResponse {
            item: Some(pb::stream_delivery_status_response::Item::Event(
                pb::DeliveryStatusEvent {
                    cursor,
                    ..Default::default()
                },
            )),
        }
    }

    fn heartbeat(cursor: u64) -> pb::StreamDeliveryStatusResponse {
        pb::StreamDeliveryStatusResponse {
            item: Some(pb::stream_delivery_status_response::Item::Heartbeat(
                pb::Heartbeat { cursor, time: None },
            )),
        }
    }

    #[test]
    fn a_replay_after_a_reconnect_yields_nothing_twice() {
        let mut position = Position::default();
        let first: Vec<u64> = [event(1), heartbeat(1), event(2)]
            .into_iter()
            .filter_map(|i| position.take(i))
            .map(|e| e.cursor)
            .collect();
        assert_eq!(first, [1, 2]);
        // The server replays from an older point than asked, say after a failover.
        let replayed: Vec<u64> = [event(1), event(2), event(3)]
            .into_iter()
            .filter_map(|i| position.take(i))
            .map(|e| e.cursor)
            .collect();
        assert_eq!(replayed, [3]);
        assert_eq!(position.after, Some(3));
    }

    #[test]
    fn heartbeats_move_the_cursor_forward_only() {
        let mut position = Position::default();
        assert!(position.take(heartbeat(7)).is_none());
        assert_eq!(position.after, Some(7));
        assert!(position.take(heartbeat(5)).is_none());
        assert_eq!(position.after, Some(7));
        assert!(position.take(event(6)).is_none());
    }

    #[test]
    fn a_cut_off_before_anything_arrived_resumes_where_the_server_says() {
        let mut details = ErrorDetails::with_error_info(
            TOO_SLOW,
            "herald.v1",
            [(RESUME_AFTER.to_owned(), "41".to_owned())],
        );
        details.set_retry_info(Some(Duration::ZERO));
        let too_slow = crate::StatusError::from(Status::with_error_details(
            Code::ResourceExhausted,
            "too slow",
            details,
        ));
        let mut fresh = Position::default();
        fresh.cut_off(&too_slow);
        assert_eq!(fresh.after, Some(41));
        let mut ahead = Position { after: Some(50) };
        ahead.cut_off(&too_slow);
        assert_eq!(ahead.after, Some(50));
    }

    #[test]
    fn gives_up_on_refusals_a_reconnect_cannot_cure() {
        for status in [
            Status::out_of_range("cursor 3 is no longer retained"),
            Status::invalid_argument("bad filter"),
            Status::permission_denied("missing scope"),
            Status::unauthenticated("no credential"),
        ] {
            assert_eq!(classify(&crate::StatusError::from(status)), Next::Fail);
        }
    }
}
