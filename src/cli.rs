//! The terminal views: `herald watch` follows `StreamDeliveryStatus` as a compact,
//! colour-coded table with a running summary; `herald stats` prints `GetAnalytics` as a
//! report. Both take `--json` (one JSON object per line) for scripts. They are gRPC
//! clients of a running server, like any other.
//!
//! `herald health` is the probe of a container health check: it asks a running server's
//! admin port whether it is ready (`/readyz`), prints the answer, and fails unless it is.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic_types::StatusExt;

use crate::analytics::sketch::LatencySketch;
use crate::config::DEFAULT_ADMIN_ADDR;
use crate::grpc::pb;
use crate::grpc::pb::webhook_service_client::WebhookServiceClient;
use tonic::metadata::errors::InvalidMetadataValue;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// How often `watch` prints its running summary.
const SUMMARY_EVERY: Duration = Duration::from_secs(5);

/// Where the server is, and the credential to call it with.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The Herald server.
    #[arg(long, env = "HERALD_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// The API key (or JWT) sent as `authorization: Bearer …`.
    #[arg(long, env = "HERALD_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Only these endpoints (repeatable).
    #[arg(long = "endpoint")]
    pub endpoints: Vec<String>,
    /// Only these event types, exact or `prefix.*` (repeatable).
    #[arg(long = "event-type")]
    pub event_types: Vec<String>,
    /// Only this message.
    #[arg(long)]
    pub message: Option<String>,
    /// Start after this cursor instead of now.
    #[arg(long)]
    pub after_cursor: Option<u64>,
    /// One JSON object per line instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Only this endpoint.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Only this event type.
    #[arg(long)]
    pub event_type: Option<String>,
    /// The window, ending now (`1h`, `24h`, `7days`...).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub window: Duration,
    /// The report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// The server's admin port, as the server itself is configured; an unspecified
    /// address (0.0.0.0, [::]) is asked on loopback.
    #[arg(long, env = "WEBHOOK_ADMIN_ADDR", default_value = DEFAULT_ADMIN_ADDR)]
    pub admin_addr: SocketAddr,
    /// How long to wait for the answer.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Why a terminal view stopped.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{server} is not a server address")]
    Address {
        server: String,
        source: http::uri::InvalidUri,
    },
    #[error("cannot connect to {server}")]
    Connect {
        server: String,
        source: tonic::transport::Error,
    },
    #[error("the server refused: {0}")]
    Call(#[from] tonic::Status),
    #[error("the API key cannot be sent as a header (it has characters a header cannot carry)")]
    ApiKey,
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
}

/// Why `herald health` says the server is not ready.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("cannot reach the admin port at {addr}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("no answer from the admin port at {addr} within {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("the admin port at {addr} did not answer in HTTP")]
    NotHttp { addr: SocketAddr },
    #[error("not ready: http://{addr}/readyz answered {status} {body:?}")]
    NotReady {
        addr: SocketAddr,
        status: u16,
        body: String,
    },
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
}

/// Adds `authorization: Bearer <credential>` to every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// # Errors
    /// When the credential has characters a header cannot carry.
    pub fn new(credential: Option<&str>) -> Result<Self, InvalidMetadataValue> {
        credential
            .map(|c| format!("Bearer {c}").parse())
            .transpose()
            .map(Self)
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert(http::header::AUTHORIZATION.as_str(), value.clone());
        }
        Ok(request)
    }
}

/// A client of the API that sends a credential with every call.
pub type Client = WebhookServiceClient<InterceptedService<Channel, Bearer>>;

/// A client on `channel` that calls with `credential` (none: without one).
///
/// # Errors
/// When the credential has characters a header cannot carry.
pub fn client(channel: Channel, credential: Option<&str>) -> Result<Client, InvalidMetadataValue> {
    Ok(WebhookServiceClient::with_interceptor(
        channel,
        Bearer::new(credential)?,
    ))
}

async fn connect(connection: &Connection) -> Result<Client, CliError> {
    let server = &connection.server;
    let channel = Channel::from_shared(server.clone())
        .map_err(|source| CliError::Address {
            server: server.clone(),
            source,
        })?
        .connect()
        .await
        .map_err(|source| CliError::Connect {
            server: server.clone(),
            source,
        })?;
    client(channel, connection.api_key.as_deref()).map_err(|_| CliError::ApiKey)
}

fn kind_name(kind: i32) -> &'static str {
    match pb::StatusEventKind::try_from(kind).unwrap_or(pb::StatusEventKind::Unspecified) {
        pb::StatusEventKind::AttemptStarted => "started",
        pb::StatusEventKind::AttemptSucceeded => "succeeded",
        pb::StatusEventKind::AttemptFailed => "failed",
        pb::StatusEventKind::RetryScheduled => "retry",
        pb::StatusEventKind::DeliveryExhausted => "exhausted",
        pb::StatusEventKind::DeliveryCancelled => "cancelled",
        pb::StatusEventKind::EndpointDisabled => "disabled",
        pb::StatusEventKind::EndpointEnabled => "enabled",
        pb::StatusEventKind::CircuitOpened => "circuit-open",
        pb::StatusEventKind::CircuitClosed => "circuit-closed",
        pb::StatusEventKind::Unspecified => "unknown",
    }
}

/// ANSI colour of a kind: green for success, red for failure, yellow for waiting.
fn colour(kind: i32) -> &'static str {
    match pb::StatusEventKind::try_from(kind).unwrap_or(pb::StatusEventKind::Unspecified) {
        pb::StatusEventKind::AttemptSucceeded
        | pb::StatusEventKind::EndpointEnabled
        | pb::StatusEventKind::CircuitClosed => "\x1b[32m",
        pb::StatusEventKind::AttemptFailed
        | pb::StatusEventKind::DeliveryExhausted
        | pb::StatusEventKind::EndpointDisabled
        | pb::StatusEventKind::CircuitOpened => "\x1b[31m",
        pb::StatusEventKind::RetryScheduled | pb::StatusEventKind::DeliveryCancelled => "\x1b[33m",
        _ => "\x1b[2m",
    }
}

fn latency_ms(d: Option<&prost_types::Duration>) -> Option<f64> {
    d.map(|d| d.seconds as f64 * 1000.0 + f64::from(d.nanos) / 1e6)
}

fn event_json(e: &pb::DeliveryStatusEvent) -> serde_json::Value {
    json!({
        "cursor": e.cursor,
        "time": e.time.map(|t| t.to_string()),
        "kind": kind_name(e.kind),
        "message_id": e.message_id,
        "endpoint_id": e.endpoint_id,
        "event_type": e.event_type,
        "attempt": e.attempt_number,
        "status_code": e.status_code,
        "error": e.error,
        "latency_ms": latency_ms(e.latency.as_ref()),
    })
}

/// The outcome of an attempt, as the table's last columns show it.
fn detail(e: &pb::DeliveryStatusEvent) -> String {
    let mut parts = Vec::new();
    if e.status_code > 0 {
        parts.push(e.status_code.to_string());
    } else if !e.error.is_empty() {
        parts.push(e.error.chars().take(40).collect());
    }
    if let Some(ms) = latency_ms(e.latency.as_ref()) {
        parts.push(format!("{ms:.1}ms"));
    }
    parts.join(" ")
}

/// Counts behind the running summary.
#[derive(Default)]
struct Summary {
    attempts: u64,
    succeeded: u64,
    latency: LatencySketch,
}

impl Summary {
    fn add(&mut self, e: &pb::DeliveryStatusEvent) {
        let succeeded = e.kind == pb::StatusEventKind::AttemptSucceeded as i32;
        if succeeded || e.kind == pb::StatusEventKind::AttemptFailed as i32 {
            self.attempts += 1;
            self.succeeded += u64::from(succeeded);
            if let Some(ms) = latency_ms(e.latency.as_ref()) {
                self.latency.add((ms * 1000.0) as u64);
            }
        }
    }

    fn line(&self, elapsed: Duration) -> String {
        let rate = self.attempts as f64 / elapsed.as_secs_f64().max(0.001);
        let success = if self.attempts == 0 {
            100.0
        } else {
            100.0 * self.succeeded as f64 / self.attempts as f64
        };
        let p95 = self
            .latency
            .quantile(0.95)
            .map_or("-".to_owned(), |us| format!("{:.1}ms", us / 1000.0));
        format!(
            "── {} attempts, {rate:.1}/s, {success:.1}% succeeded, p95 {p95}",
            self.attempts
        )
    }
}

/// `herald watch`: follows the status stream until interrupted, resuming by itself when
/// the server cuts it off for falling behind.
///
/// # Errors
/// When the server cannot be reached or refuses the request.
pub async fn watch(args: WatchArgs) -> Result<(), CliError> {
    let mut client = connect(&args.connection).await?;
    let colour_on = !args.json && std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut last_summary = Instant::now();
    let mut after_cursor = args.after_cursor;
    if !args.json {
        writeln!(
            out,
            "{:<12} {:<14} {:<24} {:<30} {:<24} {:>3}  result",
            "time", "kind", "endpoint", "message", "event type", "#"
        )?;
    }
    loop {
        let request = pb::StreamDeliveryStatusRequest {
            after_cursor,
            endpoint_ids: args.endpoints.clone(),
            event_types: args.event_types.clone(),
            message_id: args.message.clone().unwrap_or_default(),
            ..Default::default()
        };
        let mut stream = client.stream_delivery_status(request).await?.into_inner();
        while let Some(item) = stream.next().await {
            let item = match item {
                Ok(item) => item,
                Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                    // Fell behind: pick up where the server says.
                    after_cursor = status.get_details_error_info().and_then(|i| {
                        i.metadata
                            .get("resume_after_cursor")
                            .and_then(|c| c.parse().ok())
                    });
                    break;
                }
                Err(status) => return Err(status.into()),
            };
            match item.item {
                Some(pb::stream_delivery_status_response::Item::Event(e)) => {
                    after_cursor = Some(e.cursor);
                    summary.add(&e);
                    if args.json {
                        writeln!(out, "{}", event_json(&e))?;
                    } else {
                        let time = e
                            .time
                            .and_then(|t| std::time::SystemTime::try_from(t).ok())
                            .map(humantime::format_rfc3339_millis)
                            .map(|t| t.to_string()[11..23].to_owned())
                            .unwrap_or_default();
                        let (on, off) = if colour_on {
                            (colour(e.kind), "\x1b[0m")
                        } else {
                            ("", "")
                        };
                        let attempt = if e.attempt_number > 0 {
                            e.attempt_number.to_string()
                        } else {
                            String::new()
                        };
                        writeln!(
                            out,
                            "{time:<12} {on}{:<14}{off} {:<24} {:<30} {:<24} {attempt:>3}  {}",
                            kind_name(e.kind),
                            e.endpoint_id,
                            e.message_id,
                            e.event_type,
                            detail(&e)
                        )?;
                    }
                }
                Some(pb::stream_delivery_status_response::Item::Heartbeat(h)) => {
                    after_cursor = Some(h.cursor);
                    if args.json {
                        writeln!(out, "{}", json!({ "heartbeat": h.cursor }))?;
                    }
                }
                None => {}
            }
            if !args.json && last_summary.elapsed() >= SUMMARY_EVERY {
                writeln!(out, "{}", summary.line(started.elapsed()))?;
                last_summary = Instant::now();
            }
            out.flush()?;
        }
        if after_cursor.is_none() {
            return Ok(());
        }
    }
}

fn report_json(r: &pb::GetAnalyticsResponse) -> serde_json::Value {
    let totals = r.totals.unwrap_or_default();
    let latency = r.latency.unwrap_or_default();
    let trend = r.trend.unwrap_or_default();
    let figures = |list: &[pb::EndpointFigures]| {
        list.iter().map(|f| json!({"endpoint_id": f.endpoint_id, "attempts": f.attempts, "failed": f.failed, "success_rate": f.success_rate, "p95_ms": f.p95_ms})).collect::<Vec<_>>()
    };
    let buckets = |list: &[pb::TimeBucket]| {
        list.iter().map(|b| json!({"start": b.start_time.map(|t| t.to_string()), "attempts": b.attempts, "succeeded": b.succeeded, "failed": b.failed, "p95_ms": b.p95_ms})).collect::<Vec<_>>()
    };
    json!({
        "start": r.start_time.map(|t| t.to_string()),
        "end": r.end_time.map(|t| t.to_string()),
        "totals": {"deliveries": totals.deliveries, "attempts": totals.attempts, "succeeded": totals.succeeded, "failed": totals.failed, "exhausted": totals.exhausted, "pending": totals.pending},
        "success_rate": r.success_rate,
        "latency_ms": {"avg": latency.avg_ms, "p50": latency.p50_ms, "p95": latency.p95_ms, "p99": latency.p99_ms, "max": latency.max_ms, "min": latency.min_ms},
        "status_codes": r.status_codes.iter().map(|s| (s.status_code.to_string(), json!(s.count))).collect::<serde_json::Map<_, _>>(),
        "failure_kinds": r.failure_kinds.iter().map(|k| (failure_name(k.kind).to_owned(), json!(k.count))).collect::<serde_json::Map<_, _>>(),
        "top_by_volume": figures(&r.top_endpoints_by_volume),
        "top_by_failure_rate": figures(&r.top_endpoints_by_failure_rate),
        "hourly": buckets(&r.hourly),
        "daily": buckets(&r.daily),
        "trend": {"previous_attempts": trend.previous_attempts, "previous_success_rate": trend.previous_success_rate, "attempts_change": trend.attempts_change, "success_rate_change": trend.success_rate_change},
        "health": {"score": r.health_score, "status": health_name(r.health_status)},
    })
}

fn failure_name(kind: i32) -> &'static str {
    match pb::FailureKind::try_from(kind).unwrap_or(pb::FailureKind::Unspecified) {
        pb::FailureKind::Timeout => "timeout",
        pb::FailureKind::Connection => "connection",
        pb::FailureKind::Dns => "dns",
        pb::FailureKind::Tls => "tls",
        pb::FailureKind::Transport => "transport",
        pb::FailureKind::Redirect => "redirect",
        pb::FailureKind::ClientError => "4xx",
        pb::FailureKind::ServerError => "5xx",
        pb::FailureKind::Blocked => "blocked",
        pb::FailureKind::Unspecified => "unknown",
    }
}

fn health_name(status: i32) -> &'static str {
    match pb::HealthStatus::try_from(status).unwrap_or(pb::HealthStatus::Unspecified) {
        pb::HealthStatus::Excellent => "excellent",
        pb::HealthStatus::Good => "good",
        pb::HealthStatus::Fair => "fair",
        pb::HealthStatus::Poor => "poor",
        pb::HealthStatus::Critical => "critical",
        pb::HealthStatus::Unspecified => "unknown",
    }
}

/// `herald stats`: prints the analytics of a window ending now.
///
/// # Errors
/// When the server cannot be reached or refuses the request.
pub async fn stats(args: StatsArgs) -> Result<(), CliError> {
    let mut client = connect(&args.connection).await?;
    let end = std::time::SystemTime::now();
    let request = pb::GetAnalyticsRequest {
        tenant_id: String::new(),
        all_tenants: false,
        start_time: Some((end - args.window).into()),
        end_time: Some(end.into()),
        endpoint_id: args.endpoint.unwrap_or_default(),
        event_type: args.event_type.unwrap_or_default(),
    };
    let report = client.get_analytics(request).await?.into_inner();
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", report_json(&report))?;
        return Ok(());
    }
    let totals = report.totals.unwrap_or_default();
    let latency = report.latency.unwrap_or_default();
    let trend = report.trend.unwrap_or_default();
    writeln!(
        out,
        "Deliveries over the last {}",
        humantime::format_duration(args.window)
    )?;
    writeln!(
        out,
        "  health        {} ({})",
        report.health_score,
        health_name(report.health_status)
    )?;
    writeln!(
        out,
        "  attempts      {} ({} succeeded, {} failed), {} deliveries, {} exhausted, {} pending",
        totals.attempts,
        totals.succeeded,
        totals.failed,
        totals.deliveries,
        totals.exhausted,
        totals.pending
    )?;
    if trend.previous_attempts > 0 {
        writeln!(
            out,
            "  success rate  {:.1}% ({:+.1} points on the window before)",
            100.0 * report.success_rate,
            100.0 * trend.success_rate_change
        )?;
    } else {
        writeln!(out, "  success rate  {:.1}%", 100.0 * report.success_rate)?;
    }
    writeln!(
        out,
        "  latency       avg {:.1} ms, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latency.avg_ms, latency.p50_ms, latency.p95_ms, latency.p99_ms, latency.max_ms
    )?;
    if !report.status_codes.is_empty() {
        let codes: Vec<String> = report
            .status_codes
            .iter()
            .map(|s| format!("{}×{}", s.status_code, s.count))
            .collect();
        writeln!(out, "  status codes  {}", codes.join("  "))?;
    }
    if !report.failure_kinds.is_empty() {
        let kinds: Vec<String> = report
            .failure_kinds
            .iter()
            .map(|k| format!("{}×{}", failure_name(k.kind), k.count))
            .collect();
        writeln!(out, "  failures      {}", kinds.join("  "))?;
    }
    for (title, list) in [
        ("busiest", &report.top_endpoints_by_volume),
        ("most failing", &report.top_endpoints_by_failure_rate),
    ] {
        if !list.is_empty() {
            writeln!(out, "  {title}")?;
            for f in list.iter().take(5) {
                writeln!(
                    out,
                    "    {:<30} {:>8} attempts  {:>5.1}% ok  p95 {:.1} ms",
                    f.endpoint_id,
                    f.attempts,
                    100.0 * f.success_rate,
                    f.p95_ms
                )?;
            }
        }
    }
    Ok(())
}

/// Most bytes of the admin port's answer read (`/readyz` answers a word).
const READYZ_ANSWER_CAP: u64 = 4096;

/// `herald health`: asks `/readyz` on the admin port and prints its answer.
///
/// # Errors
/// When the port cannot be reached, does not answer within the timeout, or answers
/// anything but 200.
pub async fn health(args: HealthArgs) -> Result<(), HealthError> {
    let mut addr = args.admin_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let (status, body) = tokio::time::timeout(args.timeout, get_readyz(addr))
        .await
        .map_err(|_| HealthError::Timeout {
            addr,
            timeout: args.timeout,
        })??;
    if status != 200 {
        return Err(HealthError::NotReady { addr, status, body });
    }
    writeln!(std::io::stdout(), "{body} (http://{addr}/readyz)")?;
    Ok(())
}

/// One `GET /readyz` on a connection of its own: the answer's status code and body. The
/// admin port is plain HTTP/1.1, and the answer is a word: no client library needed.
async fn get_readyz(addr: SocketAddr) -> Result<(u16, String), HealthError> {
    let unreachable = |source| HealthError::Connect { addr, source };
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(unreachable)?;
    let request = format!("GET /readyz HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(unreachable)?;
    let mut answer = Vec::new();
    stream
        .take(READYZ_ANSWER_CAP)
        .read_to_end(&mut answer)
        .await
        .map_err(unreachable)?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or(HealthError::NotHttp { addr })?;
    let status = head
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or(HealthError::NotHttp { addr })?;
    Ok((status, body.trim().to_owned()))
}
