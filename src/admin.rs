//! The admin HTTP port, apart from gRPC: `/metrics` (Prometheus text), `/livez`,
//! `/readyz` (storage answers and the server is not shutting down) and `/healthz` (a
//! JSON health report with per-check detail).

use std::sync::Arc;

use crate::health::Overall;
use crate::metrics::Metrics;
use crate::service::Service;
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
    pub service: Service,
}

pub fn router(state: Arc<AdminState>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/healthz", get(healthz))
        .with_state(state)
}

async fn metrics(State(s): State<Arc<AdminState>>) -> Response {
    let Some(metrics) = &s.metrics else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are turned off (ENABLE_METRICS=false)",
        )
            .into_response();
    };
    let gauges = s.service.gauges().await;
    let text = metrics.render(gauges.waiting, gauges.in_flight, &gauges.circuits);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn readyz(State(s): State<Arc<AdminState>>) -> Response {
    if s.service.health().await.overall == Overall::Unhealthy {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response();
    }
    "ready".into_response()
}

async fn healthz(State(s): State<Arc<AdminState>>) -> Response {
    let report = s.service.health().await;
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
        Json(json!({"status": report.overall.as_str(), "checks": checks})),
    )
        .into_response()
}
