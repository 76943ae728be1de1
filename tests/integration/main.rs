//! The integration suite: real servers on loopback, real HTTP sinks, every backend.
//!
//! - `support`: the test Herald, the scriptable sink, waiting helpers.
//! - `analytics`: GetAnalytics against the attempts actually made.
//! - `api`: endpoints, validation, idempotency, pagination, reflection and health.
//! - `cli`: `herald watch` and `herald stats` against a live server.
//! - `deploy`: the Grafana dashboard and Prometheus alerts use only Herald's metrics.
//! - `delivery`: signing, filters, retries, outcomes of each HTTP answer, rotation.
//! - `protection`: breakers, rate limits, in-flight caps, isolation, auto-disable,
//!   recovery.
//! - `status`: the live status stream: order, filters, resume, heartbeats, cut-off.
//! - `observability`: the admin port's metrics and health against what happened.
//! - `process`: the real binary as a child process: crash recovery, graceful shutdown,
//!   configuration errors.

mod analytics;
mod api;
mod cli;
mod delivery;
mod deploy;
mod observability;
mod process;
mod protection;
mod status;
mod support;
