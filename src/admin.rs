//! The admin HTTP port, apart from gRPC: `/metrics` (Prometheus text), `/livez`,
//! `/readyz` (storage answers and the server is not shutting down) and `/healthz` (a
//! JSON health report with per-check detail).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::delivery::guard::Guards;
use crate::metrics::Metrics;
use crate::storage::Store;

/// What the admin endpoints read.
pub struct AdminState {
    /// `None` when metrics are turned off.
    pub metrics: Option<Arc<Metrics>>,
    pub store: Arc<dyn Store>,
    pub guards: Arc<Guards>,
    /// Fired when shutdown starts: no longer ready.
    pub stopping: CancellationToken,
    /// The backlog limit, against which the report judges the backlog.
    pub max_queue_size: u64,
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
    let (in_flight, circuits) = s.guards.snapshot();
    let text = metrics.render(
        s.store.backlog().saturating_sub(in_flight),
        in_flight,
        &circuits,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn readyz(State(s): State<Arc<AdminState>>) -> Response {
    if s.stopping.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match s.store.pending(None, None).await {
        Ok(_) => "ready".into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response(),
    }
}

async fn healthz(State(s): State<Arc<AdminState>>) -> Response {
    let storage = s.store.pending(None, None).await;
    let backlog = s.store.backlog();
    let (_, circuits) = s.guards.snapshot();
    let open = circuits.iter().filter(|(_, state)| *state != 0).count();
    let backlog_high = backlog.saturating_mul(5) >= s.max_queue_size.saturating_mul(4);
    let status = if storage.is_err() || s.stopping.is_cancelled() {
        "unhealthy"
    } else if backlog_high || open > 0 {
        "degraded"
    } else {
        "healthy"
    };
    let code = if status == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let report = json!({
        "status": status,
        "checks": {
            "storage": {"ok": storage.is_ok()},
            "shutting_down": s.stopping.is_cancelled(),
            "backlog": {"unfinished": backlog, "limit": s.max_queue_size, "ok": !backlog_high},
            "circuits": {"open": open, "ok": open == 0},
        },
    });
    (code, Json(report)).into_response()
}
