//! Trace context: the publisher's `traceparent` reaches every attempt of its message
//! (also a retry, on every store), and with tracing on, Herald exports its spans to an
//! OTLP collector — here a tonic server in the test process — in the publisher's trace.

use std::collections::HashMap;
use std::net::SocketAddr;

use herald::grpc::pb;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::child::{Herald, Settings, register};
use crate::each_backend;
use crate::support::{Backend, PATIENCE, Reply, Sink, publish_json, share_machine, spawn_app};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{PARENT_ID}-01")
}

/// A publish request carrying the publisher's trace context.
fn traced(request: pb::PublishRequest, request_id: &str) -> Request<pb::PublishRequest> {
    let mut request = Request::new(request);
    let metadata = request.metadata_mut();
    metadata.insert("traceparent", traceparent().parse().unwrap());
    metadata.insert("tracestate", "vendor=abc".parse().unwrap());
    metadata.insert("x-request-id", request_id.parse().unwrap());
    request
}

each_backend!(the_publishers_trace_context_reaches_every_attempt);

async fn the_publishers_trace_context_reaches_every_attempt(backend: Backend) {
    let mut sink = Sink::start().await;
    sink.queue("/hook", [Reply::status(500), Reply::status(200)]);
    let mut app = spawn_app(backend).await;
    app.register_url(sink.url("/hook")).await;
    app.client
        .publish(traced(
            publish_json("order.created", serde_json::json!({"n": 1})),
            "traced-1",
        ))
        .await
        .expect("publish");
    // No exporter in this process: the context is passed on as it came, stored with
    // the message, so the retry carries it too.
    for attempt in sink.take(2).await {
        assert_eq!(attempt.header("traceparent"), traceparent());
        assert_eq!(attempt.header("tracestate"), "vendor=abc");
    }
    // A message published without one carries none.
    app.publish_json("order.created", serde_json::json!({"n": 2}))
        .await;
    let untraced = sink.next().await;
    assert!(untraced.headers.get("traceparent").is_none());
    app.stop().await;
}

/// An OTLP trace collector: every exported span goes to the channel.
struct Collector(mpsc::UnboundedSender<Span>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        for span in spans {
            let _ = self.0.send(span);
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn start_collector() -> (SocketAddr, mpsc::UnboundedReceiver<Span>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(tx)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (addr, rx)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A span's attributes as text.
fn attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .filter_map(|kv| {
            let value = match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => s.clone(),
                Value::IntValue(i) => i.to_string(),
                Value::DoubleValue(d) => d.to_string(),
                Value::BoolValue(b) => b.to_string(),
                _ => return None,
            };
            Some((kv.key.clone(), value))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_in_the_publishers_trace() {
    let _machine = share_machine().await;
    let (collector, mut spans) = start_collector().await;
    let mut sink = Sink::start().await;
    sink.queue("/hook", [Reply::status(500), Reply::status(200)]);
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::embedded(dir.path())
        .set("ENABLE_TRACING", "true")
        .set(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            &format!("http://{collector}"),
        )
        .set("OTEL_BSP_SCHEDULE_DELAY", "100");
    let (mut herald, mut client) = Herald::start(&settings).await;
    let endpoint = register(
        &mut client,
        pb::RegisterEndpointRequest {
            url: sink.url("/hook"),
            ..Default::default()
        },
    )
    .await;
    let message = client
        .publish(traced(
            publish_json("order.created", serde_json::json!({"n": 1})),
            "traced-2",
        ))
        .await
        .expect("publish")
        .into_inner()
        .message_id;

    // Each attempt carries the publisher's trace, as a child of its own span.
    let mut sent = Vec::new();
    for attempt in sink.take(2).await {
        let header = attempt.header("traceparent").to_owned();
        let parts: Vec<&str> = header.split('-').collect();
        assert_eq!(parts.len(), 4, "{header}");
        assert_eq!(parts[1], TRACE_ID, "the publisher's trace: {header}");
        assert_ne!(
            parts[2], PARENT_ID,
            "Herald's own span is the parent: {header}"
        );
        assert_eq!(attempt.header("tracestate"), "vendor=abc");
        sent.push(parts[2].to_owned());
    }
    assert_ne!(sent[0], sent[1], "one span per attempt");

    // The collector gets the RPC span (child of the publisher's) and a span per attempt.
    let mut publish_span = None;
    let mut attempts: HashMap<String, Span> = HashMap::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while publish_span.is_none() || attempts.len() < 2 {
        let span = tokio::time::timeout_at(deadline, spans.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "spans in time: publish {}, attempts {}; stderr:\n{}",
                    publish_span.is_some(),
                    attempts.len(),
                    herald.stderr()
                )
            })
            .expect("collector running");
        if hex(&span.trace_id) != TRACE_ID {
            continue;
        }
        match span.name.as_str() {
            "herald.v1.WebhookService/Publish" => publish_span = Some(span),
            "webhook.deliver" => {
                attempts.insert(hex(&span.span_id), span);
            }
            _ => {}
        }
    }
    let publish_span = publish_span.unwrap();
    assert_eq!(hex(&publish_span.parent_span_id), PARENT_ID);
    assert_eq!(attributes(&publish_span)["request_id"], "traced-2");
    for (number, (span_id, status)) in sent.iter().zip(["500", "200"]).enumerate() {
        let span = attempts
            .get(span_id)
            .unwrap_or_else(|| panic!("the span of attempt {} was exported", number + 1));
        let attributes = attributes(span);
        assert_eq!(attributes["endpoint.id"], endpoint);
        assert_eq!(attributes["message.id"], message);
        assert_eq!(attributes["event_type"], "order.created");
        assert_eq!(attributes["attempt"], (number + 1).to_string());
        assert_eq!(attributes["http.response.status_code"], status);
        assert!(attributes.contains_key("duration_ms"), "{attributes:?}");
        assert_eq!(
            attributes.contains_key("error"),
            status == "500",
            "the failed attempt's error, and only its: {attributes:?}"
        );
    }
    herald.stop().await;
}
