//! Herald: webhook delivery with a gRPC API.
//!
//! Layout (the map of the system), bottom up: each module imports only modules above it.
//! - `domain`: the values everything else passes around, valid by construction.
//! - `profile`: sizing for a long-lived server or a serverless platform (detected).
//! - `egress`: where webhooks may go: the address classifier, the operator's allow-list
//!   and Herald's own sockets, checked at registration and at connect time.
//! - `policy`: pure policies: retry schedule, circuit breaker, token bucket, endpoint
//!   protection settings and status, the bounds on endpoints' overrides, the
//!   `Protection` seam, and the pacing that keeps workers for endpoints answering in time.
//! - `auth`: credentials as values: scopes, stored API keys, the key token format and
//!   hash, bearer JWT validation. Deciding what a caller may do is the service's.
//! - `analytics`: per-minute rollups of attempts and the latency sketch behind percentiles.
//! - `telemetry`: logging and trace export, and how errors appear in logs.
//! - `storage`: the `Store` trait and its backends, each a folder by concern: `sqlite`
//!   (the embedded file, or memory) and `redis` (shared by several instances, with the
//!   endpoint protection they share); `sealing` encrypts endpoint secrets at rest.
//! - `metrics`: every Prometheus metric, in one registry per application.
//! - `status`: the status stream: retained events after a cursor, then the live tail.
//! - `delivery`: the scheduler and workers (`http` attempt, `signer`), and `guard`, the
//!   in-process endpoint protection.
//! - `health`: the health report behind GetHealth, /healthz and grpc.health.v1.
//! - `service`: every use case, transport-free: publish, endpoints, redelivery, watch,
//!   analytics, health, keys and tenants; authentication, authorisation and tenant
//!   scoping, once; the one handle every transport calls.
//! - `grpc`: the gRPC transport: requests into commands, answers into protos, one error
//!   mapping, tower layers.
//! - `connections`: the clients' connections to both ports: a slot each (capped, the
//!   oldest silent one giving way to a newcomer), the deadline for a first request,
//!   accepting with a pause when descriptors run out; the open-file limit and the
//!   budget that keeps descriptors for deliveries and the store.
//! - `tls`: TLS and mTLS for the gRPC port, with certificates re-read when they change.
//! - `admin`: the admin HTTP port: metrics, liveness, readiness, health report, and the
//!   dashboard page (`/ui`, built from `dashboard/` and embedded).
//! - `config`: settings from flags and environment, validated into one struct per
//!   subsystem.
//! - `app`: wires everything and runs it; spawns every long-lived task (the stores track
//!   their own and end them on close) and shuts down within one deadline.
//! - `cli`: `herald watch` and `herald stats`, terminal views over the API (gRPC clients),
//!   and `herald health`, the readiness probe of a container health check.
//!
//! Publishing commits a message and one delivery per matching endpoint; the dispatcher
//! claims due deliveries under a lease, attempts each over HTTP, and records the attempt
//! with the delivery's next state, and what it means for the endpoint, in one store
//! transition.

pub mod admin;
pub mod analytics;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connections;
pub mod delivery;
pub mod domain;
pub mod egress;
pub mod grpc;
pub mod health;
pub mod metrics;
pub mod policy;
pub mod profile;
pub mod service;
pub mod status;
pub mod storage;
pub mod telemetry;
pub mod tls;
