//! Every metric name in one place, in one registry per application (no global state:
//! two servers in one process keep their own figures).
//!
//! Labels that users choose (event types, endpoint ids) are capped at
//! [`MAX_LABEL_VALUES`] distinct values per metric; later ones share the value `other`,
//! so a flood of new event types or endpoints cannot grow the scrape without bound.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::analytics::FailureKind;
use crate::domain::EndpointId;
use crate::policy::protection::CircuitStatus;
use crate::storage::Swept;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The name of every metric Herald exports (dashboards and alerts may use only these).
pub const NAMES: [&str; 24] = [
    "webhook_deliveries_total",
    "webhook_attempt_failures_total",
    "webhook_delivery_duration_seconds",
    "webhook_retry_attempts_total",
    "webhook_queue_size",
    "webhook_circuit_breaker_state",
    "webhook_rate_limit_hits_total",
    "webhook_host_ceiling_waits_total",
    "webhook_validation_errors_total",
    "webhook_auth_failures_total",
    "webhook_worker_utilization",
    "webhook_slow_workers",
    "webhook_status_stream_subscribers",
    "webhook_secrets_pending_reseal",
    "webhook_stored_payload_bytes",
    "webhook_retention_deleted_total",
    "webhook_retention_sweep_seconds",
    "webhook_messages_expunged_total",
    "webhook_connections_open",
    "webhook_connections_refused_total",
    "webhook_connections_evicted_total",
    "webhook_connections_timed_out_total",
    "grpc_server_handled_total",
    "grpc_server_handling_seconds",
];

/// Distinct user-chosen values a label takes before the rest are counted as `other`.
pub const MAX_LABEL_VALUES: usize = 100;

/// Keeps a label's distinct values bounded.
struct LabelCap(Mutex<HashSet<String>>);

impl LabelCap {
    fn new() -> Self {
        Self(Mutex::new(HashSet::new()))
    }

    fn value<'a>(&self, value: &'a str) -> &'a str {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(value) {
            return value;
        }
        if seen.len() < MAX_LABEL_VALUES {
            seen.insert(value.to_owned());
            return value;
        }
        "other"
    }
}

/// How an attempt ended, as `webhook_deliveries_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptStatus {
    Succeeded,
    /// Failed; a retry is scheduled.
    Failed,
    /// Failed with no retry left (or 410 Gone).
    Exhausted,
}

impl AttemptStatus {
    fn label(self) -> &'static str {
        match self {
            // The label value the replaced service documented its success-rate query with.
            Self::Succeeded => "success",
            Self::Failed => "failed",
            Self::Exhausted => "exhausted",
        }
    }
}

/// The application's metrics.
pub struct Metrics {
    registry: Registry,
    deliveries: IntCounterVec,
    delivery_duration: Histogram,
    retry_attempts: IntCounter,
    queue_size: IntGaugeVec,
    circuit_state: IntGaugeVec,
    attempt_failures: IntCounterVec,
    rate_limit_hits: IntCounterVec,
    host_ceiling_waits: IntCounter,
    validation_errors: IntCounterVec,
    auth_failures: IntCounterVec,
    worker_utilization: Gauge,
    /// Workers held by attempts to slow endpoints (no answer within `slow_after`).
    slow_workers: IntGauge,
    stream_subscribers: IntGauge,
    /// Endpoint records not yet sealed under the current master key.
    secrets_pending_reseal: IntGauge,
    /// Payload bytes the store holds, against `WEBHOOK_MAX_STORED_BYTES`.
    stored_payload_bytes: IntGauge,
    /// What retention deleted: messages, deliveries, attempts and payload bytes.
    retention_deleted: IntCounterVec,
    /// How long each retention batch took (the store did nothing else meanwhile).
    retention_sweep: Histogram,
    /// Messages whose payloads were expunged, by request or with their tenant.
    messages_expunged: IntCounter,
    /// Connections holding a slot, by port (`grpc`, `admin`).
    connections_open: IntGaugeVec,
    /// Connections closed at once because every slot held a served connection.
    connections_refused: IntCounterVec,
    /// Connections closed before their first request to make room for a newer one.
    connections_evicted: IntCounterVec,
    /// Connections closed for not completing a first request in time.
    connections_timed_out: IntCounterVec,
    grpc_requests: IntCounterVec,
    grpc_duration: HistogramVec,
    event_types: LabelCap,
    endpoints: LabelCap,
    methods: LabelCap,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<T>,
) -> T {
    let metric = metric.expect("metric definitions are valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let latency_buckets = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        Self {
            deliveries: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "webhook_deliveries_total",
                        "Delivery attempts by outcome and event type",
                    ),
                    &["status", "event_type"],
                ),
            ),
            delivery_duration: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "webhook_delivery_duration_seconds",
                        "Duration of delivery attempts",
                    )
                    .buckets(latency_buckets.clone()),
                ),
            ),
            retry_attempts: register(
                &r,
                IntCounter::new(
                    "webhook_retry_attempts_total",
                    "Attempts after the first of a delivery",
                ),
            ),
            queue_size: register(
                &r,
                IntGaugeVec::new(
                    Opts::new("webhook_queue_size", "Unfinished deliveries by state"),
                    &["state"],
                ),
            ),
            circuit_state: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "webhook_circuit_breaker_state",
                        "Circuit state per endpoint: 0 closed, 1 open, 2 half-open",
                    ),
                    &["endpoint"],
                ),
            ),
            attempt_failures: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "webhook_attempt_failures_total",
                        "Failed attempts by failure kind (blocked: refused by the egress policy, nothing sent)",
                    ),
                    &["kind"],
                ),
            ),
            rate_limit_hits: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "webhook_rate_limit_hits_total",
                        "Times an endpoint used up its rate limit",
                    ),
                    &["endpoint"],
                ),
            ),
            host_ceiling_waits: register(
                &r,
                IntCounter::new(
                    "webhook_host_ceiling_waits_total",
                    "Times endpoints with work due were held back by their destination host's ceiling",
                ),
            ),
            validation_errors: register(
                &r,
                IntCounterVec::new(
                    Opts::new("webhook_validation_errors_total", "Rejected request fields"),
                    &["field"],
                ),
            ),
            auth_failures: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "webhook_auth_failures_total",
                        "Calls refused as unauthenticated, by reason",
                    ),
                    &["reason"],
                ),
            ),
            worker_utilization: register(
                &r,
                Gauge::new(
                    "webhook_worker_utilization",
                    "Share of delivery workers busy, 0 to 1",
                ),
            ),
            slow_workers: register(
                &r,
                IntGauge::new(
                    "webhook_slow_workers",
                    "Delivery workers held by attempts to slow endpoints (no answer within WEBHOOK_SLOW_AFTER)",
                ),
            ),
            stream_subscribers: register(
                &r,
                IntGauge::new("webhook_status_stream_subscribers", "Open status streams"),
            ),
            secrets_pending_reseal: register(
                &r,
                IntGauge::new(
                    "webhook_secrets_pending_reseal",
                    "Endpoint records not yet encrypted under the current master key",
                ),
            ),
            stored_payload_bytes: register(
                &r,
                IntGauge::new(
                    "webhook_stored_payload_bytes",
                    "Payload bytes stored, of every message not yet deleted or expunged",
                ),
            ),
            retention_deleted: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "webhook_retention_deleted_total",
                        "Settled messages deleted past their retention, and what went with them, by kind",
                    ),
                    &["kind"],
                ),
            ),
            retention_sweep: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "webhook_retention_sweep_seconds",
                        "Time one retention batch took",
                    )
                    .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]),
                ),
            ),
            messages_expunged: register(
                &r,
                IntCounter::new(
                    "webhook_messages_expunged_total",
                    "Messages whose payload and response excerpts were expunged",
                ),
            ),
            connections_open: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "webhook_connections_open",
                        "Client connections open, by port",
                    ),
                    &["port"],
                ),
            ),
            connections_refused: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "webhook_connections_refused_total",
                        "Connections closed on arrival: every slot held a client being served (WEBHOOK_MAX_CONNECTIONS)",
                    ),
                    &["port"],
                ),
            ),
            connections_evicted: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "webhook_connections_evicted_total",
                        "Connections closed before their first request to make room for a newer one",
                    ),
                    &["port"],
                ),
            ),
            connections_timed_out: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "webhook_connections_timed_out_total",
                        "Connections closed for not completing a first request in time (WEBHOOK_CONNECTION_HANDSHAKE_TIMEOUT)",
                    ),
                    &["port"],
                ),
            ),
            grpc_requests: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "grpc_server_handled_total",
                        "gRPC requests by method and code",
                    ),
                    &["grpc_method", "grpc_code"],
                ),
            ),
            grpc_duration: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "grpc_server_handling_seconds",
                        "gRPC request handling time",
                    )
                    .buckets(latency_buckets),
                    &["grpc_method"],
                ),
            ),
            event_types: LabelCap::new(),
            endpoints: LabelCap::new(),
            methods: LabelCap::new(),
            registry: r,
        }
    }

    pub fn attempt(
        &self,
        status: AttemptStatus,
        event_type: &str,
        attempt_number: u32,
        latency: Duration,
        failure: Option<FailureKind>,
    ) {
        self.deliveries
            .with_label_values(&[status.label(), self.event_types.value(event_type)])
            .inc();
        if let Some(kind) = failure {
            self.attempt_failures
                .with_label_values(&[kind.name()])
                .inc();
        }
        self.delivery_duration.observe(latency.as_secs_f64());
        if attempt_number > 1 {
            self.retry_attempts.inc();
        }
    }

    pub fn rate_limit_hit(&self, endpoint: &str) {
        self.rate_limit_hits
            .with_label_values(&[self.endpoints.value(endpoint)])
            .inc();
    }

    /// `n` endpoints with work due held back by their host's ceiling (no host label: the
    /// hosts are the users' choice, and unbounded).
    pub fn host_ceiling_waits(&self, n: u64) {
        self.host_ceiling_waits.inc_by(n);
    }

    /// One retention batch: what it deleted and how long it took.
    pub fn swept(&self, swept: &Swept, took: Duration) {
        for (kind, n) in [
            ("messages", swept.messages),
            ("deliveries", swept.deliveries),
            ("attempts", swept.attempts),
            ("payload_bytes", swept.payload_bytes),
        ] {
            self.retention_deleted.with_label_values(&[kind]).inc_by(n);
        }
        self.retention_sweep.observe(took.as_secs_f64());
    }

    pub fn validation_error(&self, field: &str) {
        // Field paths carry indexes (`requests[7].event_type`); count by the path's shape.
        let shape: String = field
            .split('[')
            .map(|part| part.split_once(']').map_or(part, |(_, rest)| rest))
            .collect::<Vec<_>>()
            .join("[]");
        self.validation_errors.with_label_values(&[&shape]).inc();
    }

    /// A call refused as unauthenticated; `reason` is one of a fixed set of words.
    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures.with_label_values(&[reason]).inc();
    }

    pub fn set_worker_utilization(&self, busy: usize, workers: usize) {
        self.worker_utilization
            .set(busy as f64 / workers.max(1) as f64);
    }

    pub fn set_slow_workers(&self, held: usize) {
        self.slow_workers
            .set(i64::try_from(held).unwrap_or(i64::MAX));
    }

    pub fn stream_opened(&self) {
        self.stream_subscribers.inc();
    }

    pub fn stream_closed(&self) {
        self.stream_subscribers.dec();
    }

    pub fn set_secrets_pending_reseal(&self, records: u64) {
        self.secrets_pending_reseal
            .set(i64::try_from(records).unwrap_or(i64::MAX));
    }

    /// `n` messages expunged (those expunged before are not counted again).
    pub fn messages_expunged(&self, n: u64) {
        self.messages_expunged.inc_by(n);
    }

    pub fn connection_opened(&self, port: &str) {
        self.connections_open.with_label_values(&[port]).inc();
    }

    pub fn connection_closed(&self, port: &str) {
        self.connections_open.with_label_values(&[port]).dec();
    }

    pub fn connection_refused(&self, port: &str) {
        self.connections_refused.with_label_values(&[port]).inc();
    }

    pub fn connection_evicted(&self, port: &str) {
        self.connections_evicted.with_label_values(&[port]).inc();
    }

    pub fn connection_timed_out(&self, port: &str) {
        self.connections_timed_out.with_label_values(&[port]).inc();
    }

    pub fn grpc_request(&self, method: &str, code: &str, duration: Duration) {
        // Clients choose the path too: unknown methods must not grow the scrape.
        let method = self.methods.value(method);
        self.grpc_requests.with_label_values(&[method, code]).inc();
        self.grpc_duration
            .with_label_values(&[method])
            .observe(duration.as_secs_f64());
    }

    /// Brings the gauges read from live state up to date and renders the text format.
    pub fn render(
        &self,
        pending: u64,
        in_flight: u64,
        stored_bytes: u64,
        circuits: &[(EndpointId, CircuitStatus)],
    ) -> String {
        self.stored_payload_bytes
            .set(i64::try_from(stored_bytes).unwrap_or(i64::MAX));
        self.queue_size
            .with_label_values(&["pending"])
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.queue_size
            .with_label_values(&["in_flight"])
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
        self.circuit_state.reset();
        for (endpoint, circuit) in circuits.iter().take(MAX_LABEL_VALUES) {
            let state = match circuit {
                CircuitStatus::Closed => 0,
                CircuitStatus::Open { .. } => 1,
                CircuitStatus::HalfOpen => 2,
            };
            self.circuit_state
                .with_label_values(&[endpoint.as_str()])
                .set(state);
        }
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .expect("text encoding does not fail");
        String::from_utf8(text).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_chosen_labels_are_capped() {
        let m = Metrics::new();
        for i in 0..MAX_LABEL_VALUES + 20 {
            m.attempt(
                AttemptStatus::Succeeded,
                &format!("type.{i}"),
                1,
                Duration::from_millis(1),
                None,
            );
        }
        let text = m.render(0, 0, 0, &[]);
        assert_eq!(
            text.matches("webhook_deliveries_total{").count(),
            MAX_LABEL_VALUES + 1
        );
        assert!(
            text.contains(r#"webhook_deliveries_total{event_type="other",status="success"} 20"#)
        );
    }

    #[test]
    fn every_registered_metric_is_named_in_names() {
        let m = Metrics::new();
        m.attempt(
            AttemptStatus::Failed,
            "a.b",
            2,
            Duration::from_millis(3),
            Some(FailureKind::Blocked),
        );
        m.rate_limit_hit("e");
        m.host_ceiling_waits(1);
        m.messages_expunged(1);
        m.validation_error("url");
        m.auth_failure("missing");
        m.set_worker_utilization(1, 2);
        m.set_slow_workers(1);
        m.stream_opened();
        m.connection_opened("grpc");
        m.connection_refused("grpc");
        m.connection_evicted("grpc");
        m.connection_timed_out("grpc");
        m.grpc_request("/m", "Ok", Duration::from_millis(1));
        m.swept(&crate::storage::Swept::default(), Duration::from_millis(1));
        let text = m.render(
            1,
            1,
            1,
            &[(
                EndpointId::parse("e").unwrap(),
                CircuitStatus::Open {
                    until: std::time::SystemTime::UNIX_EPOCH,
                },
            )],
        );
        let mut registered: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap().to_owned())
            .collect();
        registered.sort();
        let mut names: Vec<String> = NAMES.iter().map(|n| (*n).to_owned()).collect();
        names.sort();
        assert_eq!(registered, names);
    }

    #[test]
    fn validation_fields_are_counted_by_shape() {
        let m = Metrics::new();
        m.validation_error("requests[3].event_type");
        m.validation_error("requests[12].event_type");
        assert!(
            m.render(0, 0, 0, &[])
                .contains(r#"webhook_validation_errors_total{field="requests[].event_type"} 2"#)
        );
    }
}
