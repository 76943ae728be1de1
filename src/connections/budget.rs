//! The process's open files, and how they are shared out: raising the soft limit to the
//! hard one at startup, and the budget that keeps descriptors for deliveries, the store
//! and the process itself before any is given to connections, so that a flood of
//! clients can never leave a delivery without a socket.

use std::io;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Connections the admin port holds at once (scrapers and probes).
pub const ADMIN_MAX_CONNECTIONS: usize = 32;
/// Descriptors kept per delivery worker: the socket of its attempt, and as many again
/// for the connections the HTTP client keeps idle between attempts and name lookups.
const PER_WORKER: u64 = 2;
/// Descriptors kept for the process itself: standard streams, the runtime's event
/// queue and wakers, the listeners, files read at startup or on reload, the log.
const MARGIN: u64 = 64;
/// The fewest gRPC connections a budget may leave: below it the server could hardly be
/// reached, and the settings are better fixed than run.
const MIN_CONNECTIONS: u64 = 16;

/// The soft open-file limit before and after [`raise_open_file_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    pub before: u64,
    pub now: u64,
    /// The hard limit; `None`: unlimited.
    pub hard: Option<u64>,
}

/// Raises the soft open-file limit (`RLIMIT_NOFILE`) to the hard limit: many hosts start
/// services with a soft limit of 1,024, which a few hundred clients exhaust. An
/// unlimited hard limit leaves the soft one as it is (no kernel accepts it as a soft
/// limit for open files).
///
/// # Errors
/// When the kernel refuses the new limit.
pub fn raise_open_file_limit() -> io::Result<OpenFileLimit> {
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current.unwrap_or(u64::MAX);
    let Some(hard) = limit.maximum else {
        return Ok(OpenFileLimit {
            before,
            now: before,
            hard: None,
        });
    };
    if before < hard {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            },
        )?;
    }
    Ok(OpenFileLimit {
        before,
        now: open_file_limit(),
        hard: Some(hard),
    })
}

/// The soft open-file limit: the descriptors this process may hold at once.
pub fn open_file_limit() -> u64 {
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Descriptors kept out of the connections' reach, by what needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserve {
    /// The delivery workers' sockets.
    pub deliveries: u64,
    /// The store's files or sockets.
    pub store: u64,
    /// The admin port's connections.
    pub admin: u64,
    /// The process's own.
    pub margin: u64,
}

impl Reserve {
    /// What `workers` delivery workers and a store needing `store` descriptors keep.
    pub fn new(workers: usize, store: u64) -> Self {
        Self {
            deliveries: PER_WORKER.saturating_mul(workers as u64),
            store,
            admin: ADMIN_MAX_CONNECTIONS as u64,
            margin: MARGIN,
        }
    }

    pub fn total(&self) -> u64 {
        self.deliveries
            .saturating_add(self.store)
            .saturating_add(self.admin)
            .saturating_add(self.margin)
    }
}

/// The open-file limit shared out: what is kept, and the gRPC connections allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u64,
    pub reserve: Reserve,
    pub max_connections: usize,
}

/// Settings that do not fit the open-file limit.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BudgetError {
    #[error(
        "invalid setting --max-connections (WEBHOOK_MAX_CONNECTIONS): {asked} connections and the {reserved} descriptors kept ({reserve}) need more than the open-file limit of {limit}; lower it, or raise the limit (ulimit -n, LimitNOFILE=)"
    )]
    TooManyConnections {
        asked: u64,
        reserved: u64,
        reserve: String,
        limit: u64,
    },
    #[error(
        "the open-file limit of {limit} leaves {left} gRPC connections, fewer than {MIN_CONNECTIONS}, once {reserved} descriptors are kept ({reserve}); raise the limit (ulimit -n, LimitNOFILE=) or lower --max-workers (WEBHOOK_MAX_WORKERS)"
    )]
    LimitTooLow {
        limit: u64,
        left: u64,
        reserved: u64,
        reserve: String,
    },
}

impl Budget {
    /// Shares `limit` descriptors out: `reserve` first, then `asked` connections (`None`:
    /// every descriptor left).
    ///
    /// # Errors
    /// When the connections asked for, or fewer than 16, do not fit beside the reserve.
    pub fn plan(limit: u64, reserve: Reserve, asked: Option<u32>) -> Result<Self, BudgetError> {
        let reserved = reserve.total();
        let left = limit.saturating_sub(reserved);
        let parts = || {
            format!(
                "{} for deliveries, {} for the store, {} for admin connections, {} for the process",
                reserve.deliveries, reserve.store, reserve.admin, reserve.margin
            )
        };
        let max_connections = match asked.map(u64::from) {
            Some(asked) if asked > left => {
                return Err(BudgetError::TooManyConnections {
                    asked,
                    reserved,
                    reserve: parts(),
                    limit,
                });
            }
            Some(asked) => asked,
            None if left < MIN_CONNECTIONS => {
                return Err(BudgetError::LimitTooLow {
                    limit,
                    left,
                    reserved,
                    reserve: parts(),
                });
            }
            None => left,
        };
        Ok(Self {
            limit,
            reserve,
            max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_get_what_the_reserve_leaves() {
        // The defaults: 256 workers, the embedded store's 72.
        let reserve = Reserve::new(256, 72);
        assert_eq!(reserve.total(), 512 + 72 + 32 + 64);
        let budget = Budget::plan(1024, reserve, None).unwrap();
        assert_eq!(budget.max_connections, 1024 - 680);
        let budget = Budget::plan(1024, reserve, Some(300)).unwrap();
        assert_eq!(budget.max_connections, 300);
        let unlimited = Budget::plan(u64::MAX, reserve, None).unwrap();
        assert!(unlimited.max_connections > 1 << 30);
    }

    #[test]
    fn settings_past_the_limit_are_refused_naming_them() {
        let reserve = Reserve::new(256, 72);
        let e = Budget::plan(1024, reserve, Some(345)).unwrap_err();
        assert!(matches!(
            e,
            BudgetError::TooManyConnections {
                asked: 345,
                reserved: 680,
                limit: 1024,
                ..
            }
        ));
        assert!(e.to_string().contains("WEBHOOK_MAX_CONNECTIONS"), "{e}");
        assert!(e.to_string().contains("512 for deliveries"), "{e}");
        let e = Budget::plan(1024, Reserve::new(480, 72), None).unwrap_err();
        assert!(matches!(e, BudgetError::LimitTooLow { left: 0, .. }));
        assert!(e.to_string().contains("WEBHOOK_MAX_WORKERS"), "{e}");
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let raised = raise_open_file_limit().unwrap();
        assert!(raised.now >= raised.before);
        assert_eq!(Some(raised.now), raised.hard.or(Some(raised.before)));
        assert_eq!(open_file_limit(), raised.now);
    }
}
