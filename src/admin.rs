//! The admin HTTP port, apart from gRPC: `/metrics` (Prometheus text), `/livez`,
//! `/readyz` (storage answers and the server is not shutting down), `/healthz` (a
//! JSON health report with per-check detail) and the dashboard under `/ui`.

pub mod dashboard;

use std::sync::Arc;

use crate::health::{Health, Overall};
use crate::metrics::Metrics;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// What the admin endpoints read.
pub struct AdminState {
    /// `None` when metrics are turned off.
    pub metrics: Option<Arc<Metrics>>,
    pub health: Arc<Health>,
    /// Where the dashboard's page finds the gRPC port.
    pub dashboard: dashboard::Dashboard,
}

pub fn router(state: Arc<AdminState>) -> axum::Router {
    let dashboard = dashboard::router(state.dashboard);
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/healthz", get(healthz))
        .with_state(state)
        .merge(dashboard)
}

async fn metrics(State(s): State<Arc<AdminState>>) -> Response {
    let Some(metrics) = &s.metrics else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are turned off (ENABLE_METRICS=false)",
        )
            .into_response();
    };
    let in_flight = s.health.protection.in_flight();
    metrics.set_slow_workers(s.health.liveness.workers().slow);
    let circuits = s.health.circuits().await;
    let text = metrics.render(
        s.health.store.backlog().saturating_sub(in_flight),
        in_flight,
        s.health.store.stored_bytes(),
        &circuits,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn readyz(State(s): State<Arc<AdminState>>) -> Response {
    if s.health.report().await.overall == Overall::Unhealthy {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response();
    }
    "ready".into_response()
}

async fn healthz(State(s): State<Arc<AdminState>>) -> Response {
    let report = s.health.report().await;
    let code = if report.overall == Overall::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let checks: serde_json::Map<String, serde_json::Value> = report
        .checks
        .iter()
        .map(|c| (c.name.to_owned(), json!({"ok": c.ok, "detail": c.detail})))
        .collect();
    (
        code,
        Json(
            json!({"status": report.overall.as_str(), "checks": checks, "profile": report.profile}),
        ),
    )
        .into_response()
}
