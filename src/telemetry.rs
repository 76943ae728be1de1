//! Logs, traces, and how errors appear in them.
//!
//! Logs are structured `tracing` events, as text or JSON lines; the level comes from
//! `RUST_LOG` (default `info`). Secrets and payloads are never logged.
//!
//! Traces: with `ENABLE_TRACING`, the same `tracing` spans are exported over OTLP/gRPC
//! (batched, from a background thread). Each RPC's span takes its parent from the
//! `traceparent` of the request's metadata; the publishing request's trace context is
//! stored with the message ([`TraceContext`]), so every attempt, however much later,
//! belongs to that trace and carries it to the receiver. Without tracing nothing is
//! exported and nothing runs in the background; the publisher's `traceparent` and
//! `tracestate` are still passed on to the webhook unchanged.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::domain::TraceContext;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where traces go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracingConfig {
    /// OTLP/gRPC collector URL.
    pub endpoint: String,
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the OTLP trace exporter for {endpoint}")]
pub struct TelemetryError {
    endpoint: String,
    #[source]
    source: opentelemetry_otlp::ExporterBuildError,
}

/// Keeps the trace exporter of the process; [`Telemetry::shutdown`] sends what is left.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the trace exporter, if there is one.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "cannot flush the last spans");
        }
    }
}

/// Installs the global subscriber: logs, and with `tracing` the OTLP exporter. Later
/// calls keep the first subscriber (tests run many servers in one process). Must run
/// inside the tokio runtime (the exporter's gRPC client needs it).
///
/// # Errors
/// When the exporter cannot be built (an unusable endpoint).
pub fn init(
    format: LogFormat,
    tracing: Option<&TracingConfig>,
) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = tracing.map(exporter).transpose()?;
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("herald")));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let _ = match format {
        LogFormat::Text => registry.with(fmt).try_init(),
        LogFormat::Json => registry.with(fmt.json().flatten_event(true)).try_init(),
    };
    if let Some(config) = tracing {
        tracing::info!(endpoint = %config.endpoint, "exporting traces over OTLP");
    }
    Ok(Telemetry { provider })
}

fn exporter(config: &TracingConfig) -> Result<SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(&config.endpoint)
        .build()
        .map_err(|source| TelemetryError {
            endpoint: config.endpoint.clone(),
            source,
        })?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("herald")
                .build(),
        )
        .build())
}

/// Makes the request's `traceparent` (if any) the parent of `span`.
pub fn adopt_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent =
        TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        // Without the exporter's layer there is nothing to attach to; that is fine.
        let _ = span.set_parent(parent);
    }
}

/// The trace context to store with a message published in the current span: the span's
/// own when traces are exported, else the request's `traceparent` and `tracestate` as
/// they came (when well-formed).
pub fn trace_to_store(headers: &http::HeaderMap) -> Option<TraceContext> {
    let own = tracing::Span::current().context();
    if own.span().span_context().is_valid() {
        return inject(&own);
    }
    let given =
        TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    given
        .span()
        .span_context()
        .is_valid()
        .then(|| inject(&given))
        .flatten()
}

/// Makes the stored context the parent of `span` (an attempt), and returns what the
/// webhook request carries: the attempt span's context when traces are exported, else
/// the stored one.
pub fn continue_trace(span: &tracing::Span, stored: Option<&TraceContext>) -> Option<TraceContext> {
    let stored = stored?;
    let mut carrier = HashMap::from([("traceparent".to_owned(), stored.traceparent.clone())]);
    if !stored.tracestate.is_empty() {
        carrier.insert("tracestate".to_owned(), stored.tracestate.clone());
    }
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
    let own = span.context();
    if own.span().span_context().is_valid() {
        inject(&own)
    } else {
        Some(stored.clone())
    }
}

fn inject(cx: &opentelemetry::Context) -> Option<TraceContext> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    Some(TraceContext {
        traceparent: carrier.remove("traceparent")?,
        tracestate: carrier.remove("tracestate").unwrap_or_default(),
    })
}

/// Displays an error followed by every `source()` in its chain.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn without_exporter_the_publisher_context_is_passed_on() {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", PARENT.parse().unwrap());
        headers.insert("tracestate", "vendor=x".parse().unwrap());
        let stored = trace_to_store(&headers).expect("a valid traceparent is kept");
        assert_eq!(stored.traceparent, PARENT);
        assert_eq!(stored.tracestate, "vendor=x");
        let sent = continue_trace(&tracing::Span::none(), Some(&stored));
        assert_eq!(sent, Some(stored));
    }

    #[test]
    fn malformed_or_missing_context_is_not_kept() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(trace_to_store(&headers), None);
        headers.insert(
            "traceparent",
            "00-nothex-00f067aa0ba902b7-01".parse().unwrap(),
        );
        assert_eq!(trace_to_store(&headers), None);
        assert_eq!(continue_trace(&tracing::Span::none(), None), None);
    }
}
