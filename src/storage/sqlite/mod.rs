//! The embedded store (SQLite in WAL mode in `WEBHOOK_DATA_DIR`) and the memory store
//! (the same schema in an in-memory SQLite database).
//!
//! Why SQLite rather than redb: the queries Herald needs (due deliveries to enabled
//! endpoints in due order, attempts filtered by message, endpoint and delivery state with
//! cursor pagination) are indexes and joins that SQL states in a line each; in WAL mode
//! readers never wait for the writer; and on this class of machine it commits batched
//! durable writes faster than redb (42–63k against 30–46k items/s, 200 items a commit).
//! Its crash safety with `synchronous=FULL` is among the most tested there is.
//!
//! Writes go through one thread that owns the write connection and practises group
//! commit: it takes every job waiting in its queue, runs each inside its own savepoint,
//! commits them in one transaction (one fsync), and only then answers each caller. So
//! `Publish` is acknowledged only after fsync, and concurrent publishers share fsyncs.
//! The writer also keeps the endpoints in memory, so fan-out matching costs no query.
//!
//! The data directory is created readable by its owner only (0700), and so are its files
//! (0600): the database is pre-created so that SQLite's `-wal` and `-shm` files, which
//! take the database file's mode, are too. Endpoint records are stored as
//! [`sealing`](super::sealing) makes them; every one is opened at start, so a missing or
//! wrong master key stops the open.
//!
//! The data directory is locked for the life of the process. On open, deliveries left in
//! flight by a previous process (killed mid-attempt) are made due again at once: the lock
//! proves their worker is gone.
//!
//! Layout: `schema` (tables, indexes, migrations), `rows` (rows into domain values),
//! `writer` (the group-commit thread and what it keeps in memory), `transitions` (the
//! delivery state machine the writer runs), `faults` (a full disk, a database that can
//! no longer be written, a panic: the store's [`Condition`](super::Condition)), `store`
//! (the [`Store`](super::Store) implementation: transitions as writer jobs, reads on the
//! read pool). This file opens the store and carries jobs to the writer and reads to a
//! connection.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};

use self::faults::Monitor;
use self::schema::{Foreign, INCREMENTAL, SCHEMA, identify, migrate};
use self::writer::{Durability, Job, Reply, Work, Writer};
use super::codec::{ms, ms_after};
use super::directory::Directory;
use super::sealing::{Keyring, SealError};
use super::{StoreError, StoreOptions};
use crate::domain::StatusEvent;

mod faults;
mod retention;
mod rows;
mod schema;
mod store;
mod transitions;
mod writer;

/// The most jobs one commit carries.
const MAX_BATCH: usize = 512;
/// Prepared statements kept per connection: more than the store has distinct queries.
const STATEMENT_CACHE: usize = 64;
/// Jobs waiting for the writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 8192;
/// Reader connections at most: reads beyond wait for one. Plenty for the cores of one
/// machine, and each holds descriptors (the database and its WAL).
const MAX_READERS: usize = 32;

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

impl From<rusqlite::Error> for StoreError {
    /// A lock another process holds past the busy timeout is passing; anything else is a
    /// failure of the backend.
    fn from(e: rusqlite::Error) -> Self {
        match faults::fault(&e) {
            Some(faults::Fault::Busy) => Self::Unavailable(Box::new(e)),
            _ => backend(e),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        backend(e)
    }
}

/// The transaction carrying a job did not open or did not commit: the job had no effect.
#[derive(Debug)]
struct TransactionFailed(Arc<rusqlite::Error>);

impl std::fmt::Display for TransactionFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("store transaction failed")
    }
}

impl std::error::Error for TransactionFailed {
    /// The SQLite error itself (not the `Arc`), so that its code can be told.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// How reads reach the database.
enum Reads {
    /// WAL readers on their own connections, never waiting for the writer.
    Pool {
        path: PathBuf,
        idle: Mutex<Vec<Connection>>,
        /// One permit per reader connection: at most `StoreOptions::readers` (and never
        /// more than [`MAX_READERS`]) ever exist.
        readers: Arc<Semaphore>,
    },
    /// An in-memory database has one connection: reads queue with the writes.
    ThroughWriter,
}

/// The SQLite-backed [`Store`].
pub struct SqliteStore {
    /// Jobs for the writer thread; `None` asks it to stop.
    jobs: mpsc::Sender<Option<Job>>,
    /// The writer thread, joined by [`Store::close`].
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    reads: Arc<Reads>,
    backlog: Arc<AtomicU64>,
    /// Payload bytes stored, as committed.
    stored_bytes: Arc<AtomicU64>,
    /// Committed status events, for subscribers.
    status: broadcast::Sender<Arc<StatusEvent>>,
    /// Opens the endpoint records that reads return.
    keyring: Arc<Keyring>,
    /// The store's condition, kept current by the writer.
    monitor: Arc<Monitor>,
    /// Held for the life of the store: one process per data directory.
    _lock: Option<File>,
}

/// Why the store could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create data directory {path}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create {path}")]
    CreateFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data directory {path} is in use by another Herald process")]
    Locked { path: PathBuf },
    #[error("cannot lock data directory {path}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {path}")]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "{path} is not a SQLite database (a foreign or damaged file): move it away, or restore a backup"
    )]
    NotADatabase { path: PathBuf },
    #[error(
        "database {path} is damaged: restore a backup, or salvage it with `sqlite3 {path} .recover`"
    )]
    Corrupt { path: PathBuf },
    #[error("cannot open database {path}")]
    Foreign {
        path: PathBuf,
        #[source]
        reason: Foreign,
    },
    #[error("cannot start the store writer thread")]
    Thread(#[source] std::io::Error),
    #[error("cannot open the stored endpoint secrets")]
    Secrets(#[source] SealError),
}

impl SqliteStore {
    const DATABASE_FILE: &'static str = "herald.sqlite3";

    /// File descriptors the store holds at most: the writer's database, WAL and shared
    /// memory, the directory lock, and two per reader connection.
    pub const MAX_DESCRIPTORS: u64 = 8 + 2 * MAX_READERS as u64;

    /// Opens (creating if needed) the durable store in `dir`.
    ///
    /// # Errors
    /// When the directory cannot be created or is locked by another process, the
    /// database cannot be opened or migrated, or an endpoint's secrets cannot be opened
    /// with the keyring.
    pub fn open_dir(dir: &Path, options: StoreOptions) -> Result<Self, OpenError> {
        private_dir(dir).map_err(|source| OpenError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let lock_path = dir.join("herald.lock");
        let lock = private_file(&lock_path).map_err(|source| OpenError::Lock {
            path: lock_path.clone(),
            source,
        })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OpenError::Locked {
                    path: dir.to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(OpenError::Lock {
                    path: lock_path,
                    source,
                });
            }
        }
        let path = dir.join(Self::DATABASE_FILE);
        let database = |source| database_error(&path, source);
        private_file(&path).map_err(|source| OpenError::CreateFile {
            path: path.clone(),
            source,
        })?;
        let conn = Connection::open(&path).map_err(database)?;
        conn.execute_batch(
            // A checkpoint that reset the WAL also cuts its file back to 64 MiB.
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;
             PRAGMA journal_size_limit = 67108864;",
        )
        .map_err(database)?;
        let reads = Reads::Pool {
            path: path.clone(),
            idle: Mutex::new(Vec::new()),
            readers: Arc::new(Semaphore::new(options.readers.clamp(1, MAX_READERS))),
        };
        let monitor = Monitor::new(dir.to_owned());
        Self::start(conn, reads, options, monitor, Some(lock)).map_err(|e| e.opening(&path))
    }

    /// Opens an empty in-memory store: nothing survives the process.
    ///
    /// # Errors
    /// When SQLite cannot allocate the database or the writer thread cannot start.
    pub fn open_memory(options: StoreOptions) -> Result<Self, OpenError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| database_error(&path, e))?;
        // Nothing is at rest: records are kept in clear.
        let options = StoreOptions {
            keyring: Arc::default(),
            ..options
        };
        let monitor = Monitor::new(path.clone());
        Self::start(conn, Reads::ThroughWriter, options, monitor, None)
            .map_err(|e| e.opening(&path))
    }

    fn start(
        conn: Connection,
        reads: Reads,
        options: StoreOptions,
        monitor: Monitor,
        lock: Option<File>,
    ) -> Result<Self, StartError> {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Every job runs in a savepoint, whose undo journal SQLite otherwise keeps in a
        // temporary file: tens of thousands of small writes a second under load.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Deleted and expunged content is overwritten in the pages that held it, where
        // that costs no extra I/O, rather than left readable in free pages.
        conn.pragma_update(None, "secure_delete", "FAST")?;
        identify(&conn)??;
        // Before the first table exists, so that a new database starts with it.
        conn.pragma_update(None, "auto_vacuum", INCREMENTAL)?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn, ms_after(SystemTime::UNIX_EPOCH, options.retention))?;
        let now = ms(SystemTime::now());
        // The data directory lock proves no other worker holds these.
        let recovered = conn.execute("UPDATE deliveries SET state = 1, next_attempt_at = ?1, lease_token = NULL WHERE state = 2", [now])?;
        if recovered > 0 {
            tracing::info!(
                deliveries = recovered,
                "requeued deliveries left in flight by the previous process"
            );
        }
        let backlog: u64 = conn.query_row(
            "SELECT COUNT(*) FROM deliveries WHERE state IN (1, 2)",
            [],
            |r| r.get(0),
        )?;
        let backlog = Arc::new(AtomicU64::new(backlog));
        let stored_bytes: u64 = conn.query_row(
            "SELECT COALESCE(SUM(length(payload)), 0) FROM messages",
            [],
            |r| r.get(0),
        )?;
        let stored_bytes = Arc::new(AtomicU64::new(stored_bytes));
        let (status, _) = broadcast::channel(options.status_buffer);
        let monitor = Arc::new(monitor);
        let mut writer = Writer {
            conn,
            synced: true,
            endpoints: Directory::default(),
            due: HashMap::new(),
            next_lease: 0,
            idempotency_ttl: options.idempotency_ttl,
            status_retention: options.status_retention,
            backlog_delta: 0,
            stored_bytes_delta: 0,
            events: Vec::new(),
            rollups: HashMap::new(),
            rollup_cache: HashMap::new(),
            status: status.clone(),
            backlog: backlog.clone(),
            stored_bytes: stored_bytes.clone(),
            keyring: options.keyring.clone(),
            stale: BTreeSet::new(),
            monitor: monitor.clone(),
        };
        writer.load_endpoints()?;
        writer.load_due()?;
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let watcher = monitor.clone();
        let thread = std::thread::Builder::new()
            .name("herald-store".into())
            .spawn(move || {
                // Unwinding drops every job it held and the queue: no caller is left waiting.
                if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| writer.run(queue)))
                {
                    watcher.panicked(&*panic);
                }
            })
            .map_err(StartError::Thread)?;
        Ok(Self {
            jobs,
            writer: Mutex::new(Some(thread)),
            reads: Arc::new(reads),
            backlog,
            stored_bytes,
            status,
            keyring: options.keyring,
            monitor,
            _lock: lock,
        })
    }

    /// Runs `f` in the next group commit and answers once that commit is durable.
    /// Runs `f` in the next commit, synced to disk before the answer.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.write_with(Durability::Synced, f).await
    }

    async fn write_with<T: Send + 'static>(
        &self,
        durability: Durability,
        f: impl FnOnce(&mut Writer) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let work: Work =
            Box::new(
                move |writer: Result<&mut Writer, Arc<rusqlite::Error>>| match writer {
                    Ok(writer) => {
                        let result = writer.in_savepoint(f);
                        Some(
                            Box::new(move |committed: Result<(), Arc<rusqlite::Error>>| {
                                let _ = tx.send(
                                    committed
                                        .map_err(|e| backend(TransactionFailed(e)))
                                        .and(result),
                                );
                            }) as Reply,
                        )
                    }
                    Err(e) => {
                        let _ = tx.send(Err(backend(TransactionFailed(e))));
                        None
                    }
                },
            );
        self.jobs
            .send(Some(Job { durability, work }))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await
            .map_err(|_| StoreError::Closed)?
            .map_err(|e| self.monitor.error(e))
    }

    /// Runs a read-only `f` on a connection that sees every committed write.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        match &*self.reads {
            Reads::ThroughWriter => self.write(move |w| f(&w.conn)).await,
            Reads::Pool { readers, .. } => {
                // Held until the read is done, even if the caller leaves meanwhile.
                let reader = readers.clone().acquire_owned().await.map_err(backend)?;
                let reads = self.reads.clone();
                tokio::task::spawn_blocking(move || {
                    let _reader = reader;
                    let Reads::Pool { path, idle, .. } = &*reads else {
                        unreachable!("checked above")
                    };
                    let pooled = idle
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .pop();
                    let conn = match pooled {
                        Some(conn) => conn,
                        None => Connection::open_with_flags(
                            path,
                            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                        )?,
                    };
                    let result = f(&conn);
                    idle.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(conn);
                    result
                })
                .await
                .map_err(backend)?
            }
        }
    }
}

/// Why the store did not start.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Foreign(#[from] Foreign),
    #[error(transparent)]
    Sealed(#[from] SealError),
    #[error("cannot start the store writer thread")]
    Thread(#[source] std::io::Error),
}

impl StartError {
    /// The error of opening the database at `path`.
    fn opening(self, path: &Path) -> OpenError {
        match self {
            Self::Sql(source) => database_error(path, source),
            Self::Foreign(reason) => OpenError::Foreign {
                path: path.to_owned(),
                reason,
            },
            Self::Sealed(e) => OpenError::Secrets(e),
            Self::Thread(e) => OpenError::Thread(e),
        }
    }
}

/// An SQLite failure while opening `path`, named for what it means to an operator.
fn database_error(path: &Path, source: rusqlite::Error) -> OpenError {
    let path = path.to_owned();
    match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => OpenError::NotADatabase { path },
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => OpenError::Corrupt { path },
        _ => OpenError::Database { path, source },
    }
}

/// Creates `dir` (and its parents) if needed; one it creates only its owner may enter.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Opens `path` for writing, creating it if needed readable by its owner only.
fn private_file(path: &Path) -> std::io::Result<File> {
    let mut options = File::options();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
