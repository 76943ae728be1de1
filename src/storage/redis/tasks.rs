//! The store's background readers, tracked and ended with it: the status-event stream
//! of every instance into the local broadcast (with the backlog figure), and the
//! work channel that wakes the local scheduler when another instance queues work.

use std::sync::Arc;
use std::time::Duration;

use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, RedisError};
use tokio_stream::StreamExt;

use super::codec::event_from;
use super::{EVENT_BLOCK, RECONNECT_PAUSE, RedisStore};
use crate::telemetry::ErrorChain;

impl RedisStore {
    /// Follows the status-event stream of every instance into the local broadcast, and
    /// keeps the counters' copies fresh.
    pub(super) fn spawn_event_reader(&self, client: redis::Client, mut last: u64) {
        let (stop, status, counters) = (
            self.stop.clone(),
            self.status.clone(),
            self.counters.clone(),
        );
        let (events, all_keys) = (self.keys.events(), self.keys.clone());
        self.tasks.spawn(async move {
            let mut conn = None;
            while !stop.is_cancelled() {
                if conn.is_none() {
                    // Reads block in Redis for EVENT_BLOCK: the answer may take that long.
                    let config = redis::AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(Duration::from_secs(2)))
                        .set_response_timeout(Some(EVENT_BLOCK * 3));
                    conn = client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                        .ok();
                }
                let Some(c) = conn.as_mut() else {
                    tokio::select! { () = tokio::time::sleep(RECONNECT_PAUSE) => continue, () = stop.cancelled() => break }
                };
                let options = StreamReadOptions::default()
                    .block(usize::try_from(EVENT_BLOCK.as_millis()).unwrap_or(1000))
                    .count(512);
                let from = [format!("0-{last}")];
                let keys = [&events];
                let read = tokio::select! {
                    r = c.xread_options::<_, _, Option<StreamReadReply>>(&keys, &from, &options) => r,
                    () = stop.cancelled() => break,
                };
                match read {
                    Ok(reply) => {
                        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                            match event_from(&entry.id, &entry.map) {
                                Ok(event) => {
                                    last = event.cursor;
                                    let _ = status.send(Arc::new(event));
                                }
                                Err(e) => {
                                    tracing::warn!(error = %ErrorChain(&e), id = %entry.id, "unreadable status event")
                                }
                            }
                        }
                        if let Err(e) = counters.refresh(c, &all_keys).await {
                            tracing::debug!(error = %ErrorChain(&e), "cannot read the counters");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %ErrorChain(&e), "cannot read status events from Redis; retrying");
                        conn = None;
                    }
                }
            }
        });
    }

    /// Wakes the local scheduler when another instance publishes or requeues work.
    pub(super) fn spawn_work_listener(&self, client: redis::Client) {
        let (stop, work, channel) = (self.stop.clone(), self.work.clone(), self.keys.work());
        self.tasks.spawn(async move {
            while !stop.is_cancelled() {
                let subscribed = async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    Ok::<_, RedisError>(pubsub)
                };
                let mut pubsub = tokio::select! {
                    p = subscribed => match p {
                        Ok(p) => p,
                        Err(_) => {
                            tokio::select! { () = tokio::time::sleep(RECONNECT_PAUSE) => continue, () = stop.cancelled() => break }
                        }
                    },
                    () = stop.cancelled() => break,
                };
                // Work may have arrived while not subscribed.
                work.notify_one();
                let mut messages = pubsub.on_message();
                loop {
                    tokio::select! {
                        m = messages.next() => match m {
                            Some(_) => work.notify_one(),
                            None => break,
                        },
                        () = stop.cancelled() => return,
                    }
                }
            }
        });
    }
}
