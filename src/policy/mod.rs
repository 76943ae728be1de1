//! Pure policies, below storage and delivery: when to retry (`retry`), when an endpoint's
//! circuit opens and closes (`breaker`), how fast it may be called (`limiter`), and the
//! protection settings, live status and the [`protection::Protection`] seam that both
//! the in-process guards and the Redis-backed shared state implement (`protection`), the
//! server's bounds on what an endpoint's overrides may ask for (`bounds`), and how much of
//! a process's workers endpoints that do not answer in time may hold (`pace`).
//!
//! Nothing here does I/O or knows of gRPC, configuration or a backend: settings and
//! proto fields are mapped from these types' typed errors by their callers.

pub mod bounds;
pub mod breaker;
pub mod limiter;
pub mod pace;
pub mod protection;
pub mod retry;
