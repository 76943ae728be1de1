//! The schema, and how a database written by an earlier version is brought up to it.
//!
//! A Herald database says so in its header: `application_id` is [`APPLICATION_ID`] and
//! `user_version` the schema [`VERSION`] that last wrote it. A database of another
//! application, or one written by a newer Herald, is refused before anything is changed.
//! Databases written before the header was stamped (application id 0, Herald's tables)
//! are recognised by their tables and stamped when migrated.

use rusqlite::Connection;

/// "HRLD": the database is Herald's.
pub(super) const APPLICATION_ID: i64 = 0x4852_4c44;
/// The schema this release writes: 1 added message traces, 2 tenants and API keys, 3
/// message expiry and expunge, and incremental vacuum.
pub(super) const VERSION: i64 = 3;

/// Why a database cannot be opened as Herald's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Foreign {
    #[error(
        "it was written by a newer Herald (schema version {found}; this release reads up to {known}): run that release, or restore a backup made for this one"
    )]
    Newer { found: i64, known: i64 },
    #[error("it is another application's SQLite database, not Herald's")]
    OtherApplication,
}

/// Checks the database is Herald's (or empty) and not newer than this release.
///
/// # Errors
/// [`Foreign`] inside `Ok(Err(..))`; SQLite errors (a file that is no database, a
/// damaged one) outside.
pub(super) fn identify(conn: &Connection) -> rusqlite::Result<Result<(), Foreign>> {
    let application: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let ours = application == APPLICATION_ID
        || (application == 0 && (tables.is_empty() || tables.iter().any(|t| t == "messages")));
    Ok(if !ours {
        Err(Foreign::OtherApplication)
    } else if version > VERSION {
        Err(Foreign::Newer {
            found: version,
            known: VERSION,
        })
    } else {
        Ok(())
    })
}

/// `PRAGMA auto_vacuum` value of incremental vacuum: pages freed by deletions are kept
/// for reuse and given back to the file system by `PRAGMA incremental_vacuum`.
pub(super) const INCREMENTAL: i64 = 2;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS endpoints (
    id        TEXT PRIMARY KEY,
    enabled   INTEGER NOT NULL,
    record    TEXT NOT NULL,
    tenant_id TEXT NOT NULL DEFAULT 'default'
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    id              TEXT PRIMARY KEY,
    event_type      TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    payload         BLOB NOT NULL,
    channels        TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    idempotency_key TEXT,
    created_at      INTEGER NOT NULL,
    trace           TEXT,
    tenant_id       TEXT NOT NULL DEFAULT 'default',
    expires_at      INTEGER NOT NULL DEFAULT 0,
    expunged_at     INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
    key          TEXT PRIMARY KEY,
    message_id   TEXT NOT NULL,
    content_hash BLOB NOT NULL,
    deliveries   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at);
CREATE TABLE IF NOT EXISTS deliveries (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL,
    endpoint_id     TEXT NOT NULL,
    state           INTEGER NOT NULL,
    attempt_count   INTEGER NOT NULL DEFAULT 0,
    round_start     INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_token     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (message_id, endpoint_id)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_endpoint_due ON deliveries (endpoint_id, state, next_attempt_at);
CREATE TABLE IF NOT EXISTS attempts (
    id               INTEGER PRIMARY KEY,
    delivery_id      INTEGER NOT NULL,
    message_id       TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL,
    number           INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    latency_us       INTEGER NOT NULL,
    status_code      INTEGER,
    transport_error  INTEGER,
    error            TEXT NOT NULL,
    response_excerpt TEXT NOT NULL,
    succeeded        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_message ON attempts (message_id, id);
CREATE INDEX IF NOT EXISTS attempts_endpoint ON attempts (endpoint_id, id);
CREATE TABLE IF NOT EXISTS rollups (
    minute      INTEGER NOT NULL,
    endpoint_id TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (minute, endpoint_id, event_type)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS status_events (
    cursor          INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    kind            INTEGER NOT NULL,
    message_id      TEXT,
    endpoint_id     TEXT,
    event_type      TEXT,
    attempt_number  INTEGER,
    status_code     INTEGER,
    transport_error INTEGER,
    error           TEXT NOT NULL,
    latency_us      INTEGER,
    next_attempt_at INTEGER,
    disabled_reason INTEGER
);
CREATE TABLE IF NOT EXISTS api_keys (
    id           TEXT PRIMARY KEY,
    record       TEXT NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
) WITHOUT ROWID;
";

/// Indexes on columns an earlier version may lack: made after [`migrate`] added them.
pub(super) const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS endpoints_tenant ON endpoints (tenant_id, id);
CREATE INDEX IF NOT EXISTS messages_expiry ON messages (expires_at);
";

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get(0),
    )
}

/// Brings a database written by an earlier version up to the current schema. Everything
/// written before tenants existed belongs to the default tenant, idempotency keys too;
/// messages written before they carried an expiry expire `retention_ms` after they were
/// published. A database made before incremental vacuum is vacuumed once to turn it on.
pub(super) fn migrate(conn: &Connection, retention_ms: i64) -> rusqlite::Result<()> {
    if conn.query_row("PRAGMA auto_vacuum", [], |r| r.get::<_, i64>(0))? != INCREMENTAL {
        tracing::info!("turning on incremental vacuum: the database is rewritten once");
        conn.pragma_update(None, "auto_vacuum", INCREMENTAL)?;
        conn.execute_batch("VACUUM")?;
    }
    if !has_column(conn, "messages", "trace")? {
        conn.execute_batch("ALTER TABLE messages ADD COLUMN trace TEXT")?;
    }
    if !has_column(conn, "messages", "tenant_id")? {
        conn.execute_batch(
            "BEGIN;
             ALTER TABLE messages ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'default';
             ALTER TABLE endpoints ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'default';
             UPDATE idempotency SET key = 'default/' || key;
             COMMIT;",
        )?;
    }
    if !has_column(conn, "messages", "expires_at")? {
        conn.execute_batch(
            "BEGIN;
             ALTER TABLE messages ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE messages ADD COLUMN expunged_at INTEGER;",
        )?;
        conn.execute(
            "UPDATE messages SET expires_at = created_at + ?1",
            [retention_ms],
        )?;
        conn.execute_batch("COMMIT")?;
    }
    conn.execute_batch(INDEXES)?;
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    conn.pragma_update(None, "user_version", VERSION)
}
