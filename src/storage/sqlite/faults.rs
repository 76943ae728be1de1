//! The embedded store's lasting faults, told apart from a failure of one call.
//!
//! A full file system is passing: the failed commit is rolled back, callers hear
//! [`StoreError::DiskFull`], and the first commit that goes through once space is freed
//! ends the episode (logged once at each end). A database that can no longer be written
//! (the file system turned read-only, an I/O error, damage) or a writer that panicked is
//! fatal: the writer stops and the [`Condition`] turns `Failed`, so the application can
//! exit and be restarted. Faults are recognised by SQLite's error codes and the kinds of
//! I/O errors in a cause chain, never by messages. What to do about them is the writer's
//! and the application's business.

use std::any::Any;
use std::error::Error;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::ErrorCode;
use tokio::sync::watch;

use crate::storage::{Condition, Failure, StoreError};

/// What a failed write means beyond its own call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// No room on the file system: writes work again once space is freed.
    NoSpace,
    /// The database cannot be written any more: nothing will commit again.
    Fatal,
    /// Another process holds the database's lock (a backup, a `sqlite3` shell) past the
    /// busy timeout: the same write may work once it lets go.
    Busy,
}

/// The lasting fault named anywhere in `e`'s cause chain, if any.
pub(super) fn fault(e: &(dyn Error + 'static)) -> Option<Fault> {
    std::iter::successors(Some(e), |&e| e.source()).find_map(|e| {
        if let Some(e) = e.downcast_ref::<rusqlite::Error>() {
            match e.sqlite_error_code()? {
                ErrorCode::DiskFull => Some(Fault::NoSpace),
                ErrorCode::SystemIoFailure
                | ErrorCode::ReadOnly
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase => Some(Fault::Fatal),
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Some(Fault::Busy),
                _ => None,
            }
        } else {
            match e.downcast_ref::<std::io::Error>()?.kind() {
                ErrorKind::StorageFull => Some(Fault::NoSpace),
                ErrorKind::ReadOnlyFilesystem => Some(Fault::Fatal),
                _ => None,
            }
        }
    })
}

/// Why the writer stopped for good.
#[derive(Debug, thiserror::Error)]
pub(super) enum Stopped {
    #[error("the embedded store cannot write its database in {dir} any more")]
    Unwritable {
        dir: PathBuf,
        #[source]
        source: Arc<rusqlite::Error>,
    },
    #[error("the embedded store's writer panicked: {0}")]
    Panicked(String),
}

/// The store's [`Condition`], which the writer keeps current and the store hands out.
pub(super) struct Monitor {
    /// The data directory, named in what is said of a full disk.
    dir: PathBuf,
    condition: watch::Sender<Condition>,
}

impl Monitor {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            condition: watch::Sender::new(Condition::Sound),
        }
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<Condition> {
        self.condition.subscribe()
    }

    /// What a caller hears of its failed write: a full disk says so, with the directory;
    /// once the writer stopped, the store is closing (the application reports why).
    pub(super) fn error(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Backend(source) => match fault(&*source) {
                Some(Fault::NoSpace) => StoreError::DiskFull {
                    dir: self.dir.clone(),
                    source,
                },
                Some(Fault::Busy) => StoreError::Unavailable(source),
                _ if self.stopped() => StoreError::Closed,
                _ => StoreError::Backend(source),
            },
            e => e,
        }
    }

    /// A transaction that wrote something committed: a full disk has room again.
    pub(super) fn committed(&self) {
        self.condition.send_if_modified(|c| {
            let full = matches!(c, Condition::Full { .. });
            if full {
                tracing::info!(data_dir = %self.dir.display(), "the embedded store writes again: its disk has room");
                *c = Condition::Sound;
            }
            full
        });
    }

    /// A transaction did not open or did not commit, with `e`: noted before its callers
    /// hear of it, so that they hear what it means.
    pub(super) fn failed(&self, e: &Arc<rusqlite::Error>) {
        match fault(&**e) {
            Some(Fault::NoSpace) => {
                self.condition.send_if_modified(|c| {
                    let first = matches!(c, Condition::Sound);
                    if first {
                        tracing::error!(data_dir = %self.dir.display(), error = %e, "the embedded store's disk is full: publishes and changes are refused, deliveries wait, until space is freed");
                        *c = Condition::Full {
                            dir: self.dir.clone(),
                        };
                    } else {
                        tracing::debug!(error = %e, "store commit failed: the disk is still full");
                    }
                    first
                });
            }
            Some(Fault::Fatal) => self.stop(Stopped::Unwritable {
                dir: self.dir.clone(),
                source: e.clone(),
            }),
            Some(Fault::Busy) => {
                tracing::warn!(data_dir = %self.dir.display(), error = %e, "another process holds the embedded store's database lock; the batch had no effect and is refused as unavailable")
            }
            None => {
                tracing::error!(error = %e, "store transaction failed; the batch had no effect")
            }
        }
    }

    /// Whether the writer must stop: nothing can be written any more.
    pub(super) fn stopped(&self) -> bool {
        self.condition.borrow().failure().is_some()
    }

    /// The writer panicked with `payload`; its jobs were dropped, so their callers heard
    /// that the store closed.
    pub(super) fn panicked(&self, payload: &(dyn Any + Send)) {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        self.stop(Stopped::Panicked(message));
    }

    /// The application that watches the condition logs the failure and exits.
    fn stop(&self, why: Stopped) {
        let failure: Failure = Arc::new(why);
        self.condition.send_replace(Condition::Failed(failure));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::ffi;

    use super::*;
    use crate::storage::sqlite::SqliteStore;
    use crate::storage::{StoreOptions, sealing::Keyring};

    fn sqlite(extended_code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(extended_code), None)
    }

    #[test]
    fn faults_are_told_by_code_and_kind_anywhere_in_the_chain() {
        let cases: [(Box<dyn Error + Send + Sync>, Option<Fault>); 8] = [
            (Box::new(sqlite(ffi::SQLITE_FULL)), Some(Fault::NoSpace)),
            (
                Box::new(sqlite(ffi::SQLITE_IOERR_WRITE)),
                Some(Fault::Fatal),
            ),
            (
                Box::new(sqlite(ffi::SQLITE_IOERR_FSYNC)),
                Some(Fault::Fatal),
            ),
            (Box::new(sqlite(ffi::SQLITE_READONLY)), Some(Fault::Fatal)),
            (Box::new(sqlite(ffi::SQLITE_CORRUPT)), Some(Fault::Fatal)),
            (Box::new(sqlite(ffi::SQLITE_BUSY)), Some(Fault::Busy)),
            (
                Box::new(std::io::Error::from(ErrorKind::StorageFull)),
                Some(Fault::NoSpace),
            ),
            (
                Box::new(std::io::Error::from(ErrorKind::ReadOnlyFilesystem)),
                Some(Fault::Fatal),
            ),
        ];
        for (e, expected) in cases {
            assert_eq!(fault(&*e), expected, "{e}");
            let wrapped = StoreError::Backend(e);
            assert_eq!(fault(&wrapped), expected, "through a chain: {wrapped}");
        }
    }

    #[test]
    fn a_full_disk_names_the_data_directory_and_a_lock_held_elsewhere_is_unavailable() {
        let monitor = Monitor::new(PathBuf::from("/var/lib/herald"));
        let full = monitor.error(StoreError::Backend(Box::new(sqlite(ffi::SQLITE_FULL))));
        assert!(
            matches!(&full, StoreError::DiskFull { dir, .. } if dir == &PathBuf::from("/var/lib/herald")),
            "{full:?}"
        );
        let busy = monitor.error(StoreError::Backend(Box::new(sqlite(ffi::SQLITE_BUSY))));
        assert!(matches!(busy, StoreError::Unavailable(_)), "{busy:?}");
        let other = monitor.error(StoreError::Backend(Box::new(sqlite(ffi::SQLITE_MISMATCH))));
        assert!(matches!(other, StoreError::Backend(_)), "{other:?}");
    }

    #[test]
    fn a_full_episode_ends_with_the_next_commit() {
        let monitor = Monitor::new(PathBuf::from("data"));
        let condition = monitor.subscribe();
        monitor.failed(&Arc::new(sqlite(ffi::SQLITE_FULL)));
        monitor.failed(&Arc::new(sqlite(ffi::SQLITE_FULL)));
        assert!(matches!(*condition.borrow(), Condition::Full { .. }));
        assert!(!monitor.stopped());
        monitor.committed();
        assert!(matches!(*condition.borrow(), Condition::Sound));
        monitor.failed(&Arc::new(sqlite(ffi::SQLITE_IOERR_WRITE)));
        assert!(monitor.stopped());
        let closed = monitor.error(StoreError::Backend(Box::new(sqlite(
            ffi::SQLITE_IOERR_WRITE,
        ))));
        assert!(matches!(closed, StoreError::Closed), "{closed:?}");
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_caller_and_the_store() {
        let store = SqliteStore::open_memory(StoreOptions {
            idempotency_ttl: Duration::from_secs(60),
            status_retention: 100,
            status_buffer: 16,
            retention: Duration::from_secs(3600),
            keyring: Arc::new(Keyring::default()),
            readers: 1,
        })
        .unwrap();
        let mut condition = store.monitor.subscribe();
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            store.write(|_| -> Result<(), StoreError> { panic!("a bug in a job") }),
        )
        .await
        .expect("the caller of a panicking job gets an answer");
        assert!(matches!(answer, Err(StoreError::Closed)), "{answer:?}");
        let failed = tokio::time::timeout(
            Duration::from_secs(10),
            condition.wait_for(|c| c.failure().is_some()),
        )
        .await
        .expect("the store reports the failure")
        .expect("the store keeps its condition")
        .clone();
        assert_eq!(
            failed.failure().expect("waited for it").to_string(),
            "the embedded store's writer panicked: a bug in a job"
        );
        let later = store.write(|_| Ok(())).await;
        assert!(matches!(later, Err(StoreError::Closed)), "{later:?}");
    }
}
