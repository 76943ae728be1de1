//! Herald: webhook delivery with a gRPC API.
//!
//! Layout (the map of the system):
//! - `admin`: the admin HTTP port: metrics, liveness, readiness, health report.
//! - `analytics`: per-minute rollups of attempts and the latency sketch behind percentiles.
//! - `domain`: the values everything else passes around, valid by construction.
//! - `cli`: `herald watch` and `herald stats`, terminal views over the API.
//! - `config`: CLI flags and environment variables, validated into one struct per subsystem.
//! - `app`: wires store, dispatcher and gRPC server; runs them; shuts them down in order.
//! - `grpc`: `herald.v1.WebhookService` handlers, proto ⇄ domain conversion, error mapping.
//! - `delivery`: scheduler and workers (`http` attempt, `retry` schedule, `signer`).
//! - `status`: the status stream: retained events after a cursor, then the live tail.
//! - `storage`: the `Store` trait and its SQLite backend (embedded file or memory).
//! - `health`: the health report behind GetHealth, /healthz and grpc.health.v1.
//! - `metrics`: every Prometheus metric, in one registry per application.
//! - `telemetry`: logging setup.
//!
//! Publishing commits a message and one delivery per matching endpoint; the dispatcher
//! claims due deliveries under a lease, attempts each over HTTP, and records the attempt
//! with the delivery's next state in one store transition.

pub mod admin;
pub mod analytics;
pub mod app;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod grpc;
pub mod health;
pub mod metrics;
pub mod policy;
pub mod service;
pub mod status;
pub mod storage;
pub mod telemetry;
