//! The integration suite: real servers on loopback, real HTTP sinks, every backend.
//!
//! - `support`: the test Herald, the scriptable sink, waiting helpers.
//! - `redis`: a private `redis-server` per test; what is particular to Redis.
//! - `child`: the real binary as a child process, for `process` and `cluster`.
//! - `amplification`: endpoints on one host never send it more than its host ceilings.
//! - `analytics`: GetAnalytics against the attempts actually made.
//! - `bench`: `herald-bench --smoke` runs every workload with a balanced ledger.
//! - `api`: endpoints, validation, idempotency, pagination, reflection and health.
//! - `endpoint_bounds`: custom header rules and who reads their values; overrides
//!   within the server's bounds.
//! - `connections`: idle and hostile connections: deadlines for a first request, the
//!   connection cap and its evictions, streams per connection and per credential, the
//!   binary flooded with idle sockets under a soft (and hard) open-file limit of 1,024.
//! - `cli`: `herald watch`, `herald stats` and `herald health` against a live server.
//! - `dashboard`: the page at `/ui` on the admin port: content types, security headers,
//!   the gRPC port named on the page's host, nothing else under `/ui`.
//! - `deploy`: the deploy kit against the binary: the Grafana dashboard and Prometheus
//!   alerts use only Herald's metrics; the Dockerfile, compose and Kubernetes manifests
//!   name only Herald's settings, with values it accepts, listen and probe where it
//!   does, keep secrets out, outlast its shutdown grace and pin their images.
//! - `grpc_web`: gRPC-Web as a browser speaks it: credentials, the status stream over
//!   HTTP/1.1, CORS for the listed origins only.
//! - `profile`: the sizing profile chosen from the environment, logged, reported and in
//!   effect.
//! - `egress`: only public destinations unless allowed: IP literals refused at
//!   registration, every resolved address checked at delivery (rebinding included),
//!   Herald's own ports, a CONNECT proxy, a private CA.
//! - `data_dir`: the embedded store's directory across releases: this release's fixture
//!   opens; newer, foreign and damaged databases stop startup saying why.
//! - `expunge`: ExpungeMessage and DeleteTenant remove payloads and response excerpts,
//!   keep the record, cancel what is unfinished and never send the message again.
//! - `faults`: the embedded store on a full disk (refuses, loses nothing, recovers by
//!   itself) and on a file system turned read-only (the process exits to be restarted).
//! - `hostile`: what an attacker would send: absurd times, malformed protobuf, cursors
//!   from the future, a bug that panics, answers too large for stock clients, deep JSON,
//!   batches that would flood the backlog.
//! - `delivery`: signing, filters, retries, outcomes of each HTTP answer, rotation.
//! - `protection`: breakers, rate limits, in-flight caps, auto-disable, recovery.
//! - `starvation`: endpoints that never answer, fail or answer slowly beside healthy
//!   ones: the healthy ones' latency stays near what it is alone; the slow endpoints'
//!   share of the workers, and the health report naming what holds them.
//! - `receivers`: receivers answering oddly on a raw socket: a 2xx whose body stalls or
//!   with hundreds of headers is delivered once; an unreadable head is retried, saying why.
//! - `status`: the live status stream: order, filters, resume, heartbeats, cut-off.
//! - `store`: the `Store` trait's contract on every backend, without the API in between.
//! - `observability`: the admin port's metrics and health against what happened.
//! - `outages`: store outages (Redis replaying its AOF, failed over, out of memory; the
//!   embedded database locked elsewhere) answer `UNAVAILABLE` with `RetryInfo`.
//! - `process`: the real binary as a child process: crash recovery, graceful shutdown,
//!   configuration errors.
//! - `traces`: W3C trace context from the publisher into every attempt, and the spans
//!   exported to an OTLP collector running in the test.
//! - `cluster`: several instances sharing one Redis: no loss and no duplicate, an
//!   instance or Redis killed mid-run, a shared rate limit, one status stream for all.
//! - `auth`: every RPC refused without a valid credential or scope; keys, expiry,
//!   revocation, publish limits; health and reflection open.
//! - `tenants`: two tenants on one sink never see each other's traffic; admins see all.
//! - `jwt`: bearer JWTs (HS256, and EdDSA from a JWKS served in the test).
//! - `tls`: TLS and mTLS with certificates made in the test, reloaded without restart.
//! - `retention`: settled messages deleted past their retention on every backend; the
//!   stores return to the same size after each round of traffic expires.
//! - `secrets`: signing secrets and header values encrypted at rest, master key
//!   rotation, a wrong key refused, the data directory's modes.

mod amplification;
mod analytics;
mod api;
mod auth;
mod bench;
mod child;
mod cli;
mod cluster;
mod connections;
mod dashboard;
mod data_dir;
mod delivery;
mod deploy;
mod egress;
mod endpoint_bounds;
mod expunge;
mod faults;
mod grpc_web;
mod hostile;
mod jwt;
mod observability;
mod outages;
mod process;
mod profile;
mod protection;
mod receivers;
mod redis;
mod retention;
mod secrets;
mod starvation;
mod status;
mod store;
mod support;
mod tenants;
mod tls;
mod traces;
