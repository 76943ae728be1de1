//! Retention, as the writer runs it: settled messages past their expiry are deleted in
//! small batches with their deliveries, attempts and payloads; the pages they freed are
//! given back to the file system a bounded number at a time (incremental vacuum), so
//! neither stalls the commits queued behind a batch.

use rusqlite::params;

use super::writer::Writer;
use crate::domain::DeliveryState;
use crate::storage::codec::state_code;
use crate::storage::{RECHECK_UNSETTLED, StoreError, Swept};

/// Free pages (4 KiB each) kept for reuse before vacuum gives some back: under steady
/// traffic what retention frees is written again, and only a lasting drop of traffic
/// leaves more than this free.
const FREE_PAGES_KEPT: i64 = 16_384;
/// The most pages one sweep gives back: moving pages is the costly part of a vacuum.
const VACUUM_STEP: i64 = 64;

impl Writer {
    /// Deletes at most `limit` settled messages whose expiry is at or before `now` (ms);
    /// bumps the expiry of unsettled ones by [`RECHECK_UNSETTLED`].
    pub(super) fn sweep(&mut self, now: i64, limit: usize) -> Result<Swept, StoreError> {
        let ids: Vec<String> = self
            .conn
            .prepare_cached(
                "SELECT id FROM messages WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
            )?
            .query_map(params![now, limit], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut swept = Swept {
            more: ids.len() == limit,
            ..Swept::default()
        };
        let recheck =
            now.saturating_add(i64::try_from(RECHECK_UNSETTLED.as_millis()).unwrap_or(i64::MAX));
        for id in &ids {
            let unsettled: bool = self
                .conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE message_id = ?1 AND state IN (?2, ?3))",
                )?
                .query_row(
                    params![
                        id,
                        state_code(DeliveryState::Pending),
                        state_code(DeliveryState::InFlight)
                    ],
                    |r| r.get(0),
                )?;
            if unsettled {
                self.conn
                    .prepare_cached("UPDATE messages SET expires_at = ?2 WHERE id = ?1")?
                    .execute(params![id, recheck])?;
                continue;
            }
            swept.attempts += self
                .conn
                .prepare_cached("DELETE FROM attempts WHERE message_id = ?1")?
                .execute([id])? as u64;
            swept.deliveries += self
                .conn
                .prepare_cached("DELETE FROM deliveries WHERE message_id = ?1")?
                .execute([id])? as u64;
            let bytes: i64 = self
                .conn
                .prepare_cached("DELETE FROM messages WHERE id = ?1 RETURNING length(payload)")?
                .query_row([id], |r| r.get(0))?;
            swept.messages += 1;
            swept.payload_bytes += u64::try_from(bytes).unwrap_or(0);
        }
        self.stored_bytes_delta -= i64::try_from(swept.payload_bytes).unwrap_or(i64::MAX);
        if swept.messages > 0 {
            self.vacuum_some()?;
        }
        Ok(swept)
    }

    /// Gives back to the file system up to [`VACUUM_STEP`] free pages beyond the
    /// [`FREE_PAGES_KEPT`] kept for the next writes.
    fn vacuum_some(&mut self) -> rusqlite::Result<()> {
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        if free > FREE_PAGES_KEPT {
            let pages = (free - FREE_PAGES_KEPT).min(VACUUM_STEP);
            self.conn
                .execute_batch(&format!("PRAGMA incremental_vacuum({pages})"))?;
        }
        Ok(())
    }
}
