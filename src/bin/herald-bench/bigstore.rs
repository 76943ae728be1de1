//! W8's big store: settled messages written straight into an embedded store's database,
//! in large transactions without syncs, far faster than publishing them would be. Herald
//! made the schema and stopped first; it is started again on the filled directory.
//!
//! Each message is what a workload leaves behind, one delivery that succeeded on its first
//! attempt and that attempt, with a payload of [`PAYLOAD`] bytes: the rows are what makes
//! a store big for its indexes, and ten million 1 KiB payloads would take about 30 GB of
//! disk (half-full B-tree pages). Each expires a year on, so retention deletes none of them
//! during the run.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use herald::domain::{DeliveryState, MessageId, TenantId};
use herald::storage::codec::{ms, state_code};
use indicatif::ProgressBar;
use rusqlite::{Connection, params};

use crate::report;

/// Bytes of each settled message's payload.
const PAYLOAD: usize = 256;
/// Messages per transaction.
const CHUNK: u64 = 50_000;
/// The endpoint the settled messages went to (no longer registered).
const ENDPOINT: &str = "bench-w8-settled";

/// Adds `messages` settled messages to the database at `database`.
///
/// # Errors
///
/// When the database cannot be opened or written.
pub fn fill(database: &Path, messages: u64, bar: &ProgressBar) -> anyhow::Result<()> {
    let mut conn =
        Connection::open(database).with_context(|| format!("open {}", database.display()))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")?;
    let now = SystemTime::now();
    let at = ms(now - Duration::from_secs(3600));
    let expires = ms(now + Duration::from_secs(365 * 24 * 3600));
    let body = vec![b'x'; PAYLOAD];
    let tenant = TenantId::default();
    let succeeded = state_code(DeliveryState::Succeeded);
    let mut written = 0;
    while written < messages {
        let chunk = CHUNK.min(messages - written);
        let tx = conn.transaction()?;
        {
            let mut message = tx.prepare(
                "INSERT INTO messages (id, event_type, content_type, payload, channels, metadata, created_at, tenant_id, expires_at)
                 VALUES (?1, 'w8.settled', 'application/json', ?2, '[]', '{}', ?3, ?4, ?5)",
            )?;
            let mut delivery = tx.prepare(
                "INSERT INTO deliveries (message_id, endpoint_id, state, attempt_count, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 1, ?4, ?4)",
            )?;
            let mut attempt = tx.prepare(
                "INSERT INTO attempts (delivery_id, message_id, endpoint_id, number, started_at, latency_us, status_code, error, response_excerpt, succeeded)
                 VALUES (?1, ?2, ?3, 1, ?4, 1000, 204, '', '', 1)",
            )?;
            for _ in 0..chunk {
                let id = MessageId::generate();
                message.execute(params![id.as_str(), body, at, tenant.as_str(), expires])?;
                delivery.execute(params![id.as_str(), ENDPOINT, succeeded, at])?;
                let delivery_id = tx.last_insert_rowid();
                attempt.execute(params![delivery_id, id.as_str(), ENDPOINT, at])?;
            }
        }
        tx.commit()?;
        written += chunk;
        bar.set_message(format!(
            "W8: {} of {} settled messages written",
            report::number(written as f64),
            report::number(messages as f64)
        ));
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}
