//! One webhook HTTP attempt and its classification.
//!
//! Builds the signed request (Standard Webhooks headers, the endpoint's custom headers),
//! sends it without following redirects, reads at most 64 KiB of the answer, and says what
//! happened: delivered, retryable (with the endpoint's `Retry-After` when it gave one), or
//! gone. It does not decide when to retry (`retry`) nor record anything (`storage`).
//!
//! The status line decides: once it has arrived with its head, a 2xx is a delivery
//! whatever the body does next (stalls, is cut short), and any other status is classified
//! by itself. The body is read afterwards for an excerpt only, bounded in size and in time
//! ([`BODY_READ_TIME`]), best effort. A head may have up to [`MAX_RESPONSE_HEADERS`] header
//! lines and about 400 KiB (the HTTP client's buffer); one past that cannot be read at
//! all, so nothing says whether it was a 2xx: it is recorded as an unreadable answer, with
//! no status, and retried, the one way a receiver's answer can lead to a duplicate.
//!
//! Every connection obeys the [`EgressPolicy`]: a literal address in the URL is checked
//! before anything is sent, and host names resolve through [`Resolver`], which hands the
//! connector only the addresses that passed (so the address checked is the address
//! connected to). A URL on one of Herald's own ports goes through a client of its own
//! whose resolver also knows the port, so it can refuse Herald's listening sockets. With
//! a proxy, the proxy resolves and enforces instead. Environment proxy variables are
//! ignored: the operator's `WEBHOOK_EGRESS_PROXY` is the only way out through a proxy.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::signer::signature_header;
use crate::domain::{AttemptRecord, CustomHeader, Secret, TraceContext, TransportError};
use crate::egress::{CustomResolver, EgressConfig, EgressPolicy, Refused};
use crate::policy::retry::parse_retry_after;
use crate::profile::Sizing;
use crate::telemetry::ErrorChain;

/// How much of a response body is read; the rest is dropped with the connection.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How much of the response body is kept with the attempt.
const EXCERPT_BYTES: usize = 1024;
/// How long the body is read once the status has arrived (within the request timeout):
/// the status decides the attempt, the body only gives its excerpt.
pub const BODY_READ_TIME: Duration = Duration::from_secs(1);
/// Header lines an answer's head may have (the HTTP client reads 100 by default).
pub const MAX_RESPONSE_HEADERS: usize = 1024;

/// The HTTP side of delivery: one pooled client for every endpoint (and one per port of
/// Herald's own, whose resolver refuses Herald's listening sockets).
#[derive(Clone)]
pub struct WebhookClient {
    client: reqwest::Client,
    own_ports: Vec<(u16, reqwest::Client)>,
    policy: Arc<EgressPolicy>,
    /// Also send `X-Webhook-Id`/`-Timestamp`/`-Signature` for receivers built for them.
    legacy_headers: bool,
}

/// Everything one attempt needs.
pub struct WebhookRequest<'a> {
    pub url: &'a url::Url,
    pub message_id: &'a str,
    pub event_type: &'a str,
    pub content_type: &'a str,
    pub body: Bytes,
    pub secrets: Vec<&'a Secret>,
    pub headers: &'a [CustomHeader],
    /// The W3C trace context the request carries.
    pub trace: Option<&'a TraceContext>,
    pub timeout: Duration,
}

/// What the endpoint's answer means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again later; `retry_after` when a 429/503 said when.
    Retryable {
        retry_after: Option<Duration>,
    },
    /// 410 Gone: the endpoint asked never to be called again.
    Gone,
}

/// The observed result of one attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub verdict: Verdict,
    pub record: AttemptRecord,
}

/// Failed to build the HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the webhook HTTP client")]
    Build(#[source] reqwest::Error),
    #[error("cannot read --egress-ca-file (WEBHOOK_EGRESS_CA_FILE) {path}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--egress-ca-file (WEBHOOK_EGRESS_CA_FILE) {path} holds no PEM certificate")]
    NoCertificates { path: PathBuf },
    #[error("--egress-proxy (WEBHOOK_EGRESS_PROXY) {0} is not a usable proxy URL")]
    Proxy(String, #[source] reqwest::Error),
}

impl WebhookClient {
    /// The client for the egress settings `config`, enforcing `policy`.
    ///
    /// # Errors
    /// When the CA file cannot be read, the proxy URL is unusable, or the TLS backend
    /// cannot be initialised.
    pub fn new(
        legacy_headers: bool,
        config: &EgressConfig,
        policy: Arc<EgressPolicy>,
        sizing: &Sizing,
    ) -> Result<Self, ClientError> {
        let roots = match &config.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| ClientError::CaFile {
                    path: path.clone(),
                    source,
                })?;
                reqwest::Certificate::from_pem_bundle(&pem)
                    .ok()
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| ClientError::NoCertificates { path: path.clone() })?
            }
            None => Vec::new(),
        };
        let proxy = config
            .proxy
            .as_ref()
            .map(|url| {
                reqwest::Proxy::all(url.as_str())
                    .map_err(|e| ClientError::Proxy(url.to_string(), e))
            })
            .transpose()?;
        let build = |checked: Option<Option<u16>>| {
            let resolver = Resolver {
                lookup: config.resolver.clone(),
                checked: checked.map(|port| (policy.clone(), port)),
            };
            let builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("Herald/", env!("CARGO_PKG_VERSION")))
                .dns_resolver(Arc::new(resolver))
                .tcp_nodelay(true)
                .http1_max_headers(MAX_RESPONSE_HEADERS)
                .pool_idle_timeout(sizing.idle_timeout)
                .pool_max_idle_per_host(sizing.idle_connections_per_host.unwrap_or(usize::MAX))
                .tls_certs_merge(roots.clone());
            match &proxy {
                Some(proxy) => builder.proxy(proxy.clone()),
                None => builder.no_proxy(),
            }
            .build()
            .map_err(ClientError::Build)
        };
        let (client, own_ports) = if policy.proxied() {
            (build(None)?, Vec::new())
        } else {
            let own_ports = policy
                .own_ports()
                .map(|port| Ok((port, build(Some(Some(port)))?)))
                .collect::<Result<_, ClientError>>()?;
            (build(Some(None))?, own_ports)
        };
        Ok(Self {
            client,
            own_ports,
            policy,
            legacy_headers,
        })
    }

    /// The client for `url`, or why nothing may be sent to it.
    fn route(&self, url: &url::Url) -> Result<&reqwest::Client, Refused> {
        self.policy.check_literal(url)?;
        let port = url.port_or_known_default();
        Ok(self
            .own_ports
            .iter()
            .find(|(own, _)| Some(*own) == port)
            .map_or(&self.client, |(_, client)| client))
    }

    /// Sends one signed attempt. Never fails: every failure is an [`AttemptResult`].
    pub async fn send(&self, req: WebhookRequest<'_>) -> AttemptResult {
        let started_at = SystemTime::now();
        let clock = Instant::now();
        let timestamp = started_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let signature = signature_header(
            req.secrets.iter().copied(),
            req.message_id,
            timestamp,
            &req.body,
        );
        let timestamp = timestamp.to_string();
        let client = match self.route(req.url) {
            Ok(client) => client,
            Err(refused) => {
                let why = format!("blocked: {refused}; {}", refused.remedy());
                return unanswered(TransportError::Blocked, why, started_at, clock.elapsed());
            }
        };

        let mut builder = client
            .post(req.url.clone())
            .timeout(req.timeout)
            .header(http::header::CONTENT_TYPE, req.content_type)
            .header("webhook-id", req.message_id)
            .header("webhook-timestamp", &timestamp)
            .header("webhook-signature", &signature)
            .header("webhook-event-type", req.event_type);
        if self.legacy_headers {
            builder = builder
                .header("x-webhook-id", req.message_id)
                .header("x-webhook-timestamp", &timestamp)
                .header("x-webhook-signature", &signature);
        }
        if let Some(trace) = req.trace {
            builder = builder.header("traceparent", &trace.traceparent);
            if !trace.tracestate.is_empty() {
                builder = builder.header("tracestate", &trace.tracestate);
            }
        }
        // Headers stored before a name was reserved are not sent.
        for h in req
            .headers
            .iter()
            .filter(|h| !CustomHeader::is_reserved(&h.name))
        {
            builder = builder.header(&h.name, &h.value);
        }

        let outcome = match builder.body(req.body).send().await {
            Ok(response) => Ok(Self::read(response, started_at).await),
            Err(e) => Err(e),
        };
        let latency = clock.elapsed();
        match outcome {
            Ok((status, retry_after, body)) => {
                let verdict = if status.is_success() {
                    Verdict::Delivered
                } else if status == StatusCode::GONE {
                    Verdict::Gone
                } else {
                    let honoured = matches!(
                        status,
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    );
                    Verdict::Retryable {
                        retry_after: retry_after.filter(|_| honoured),
                    }
                };
                let error = match verdict {
                    Verdict::Delivered => String::new(),
                    _ if status.is_redirection() => {
                        format!("HTTP {} (redirects are not followed)", status.as_u16())
                    }
                    _ => format!("HTTP {}", status.as_u16()),
                };
                AttemptResult {
                    verdict,
                    record: AttemptRecord {
                        started_at,
                        latency,
                        status_code: Some(status.as_u16()),
                        transport_error: None,
                        error,
                        response_excerpt: excerpt(&body),
                    },
                }
            }
            Err(e) => {
                let transport_error = classify(&e);
                // A refusal says it all; the layers above it add nothing.
                let blocked = causes(&e)
                    .find_map(|c| c.downcast_ref::<BlockedError>())
                    .map(ToString::to_string);
                let head_too_large = causes(&e)
                    .filter_map(|c| c.downcast_ref::<hyper::Error>())
                    .any(hyper::Error::is_parse_too_large);
                let error = match blocked {
                    Some(blocked) => blocked,
                    None if head_too_large => format!(
                        "the answer's head is past what Herald reads ({MAX_RESPONSE_HEADERS} header lines, about 400 KiB): its status is unknown"
                    ),
                    // The URL may carry credentials in its query; it is known from the
                    // endpoint.
                    None => ErrorChain(&e.without_url()).to_string(),
                };
                unanswered(transport_error, error, started_at, latency)
            }
        }
    }

    /// Reads the status, `Retry-After` and, for at most [`BODY_READ_TIME`], at most
    /// [`MAX_RESPONSE_BYTES`] of the body: what arrived of it by then, if it stalls or is
    /// cut short.
    async fn read(
        mut response: reqwest::Response,
        now: SystemTime,
    ) -> (StatusCode, Option<Duration>, Bytes) {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now));
        let mut body = BytesMut::new();
        let reading = async {
            while body.len() < MAX_RESPONSE_BYTES {
                // The end, or a body cut short (the request timeout among the causes):
                // the status has said what matters.
                let Ok(Some(chunk)) = response.chunk().await else {
                    break;
                };
                body.extend_from_slice(&chunk[..chunk.len().min(MAX_RESPONSE_BYTES - body.len())]);
            }
        };
        let _ = tokio::time::timeout(BODY_READ_TIME, reading).await;
        (status, retry_after, body.freeze())
    }
}

/// An attempt that got no answer (or was refused before anything was sent): retried.
fn unanswered(
    kind: TransportError,
    error: String,
    started_at: SystemTime,
    latency: Duration,
) -> AttemptResult {
    AttemptResult {
        verdict: Verdict::Retryable { retry_after: None },
        record: AttemptRecord {
            started_at,
            latency,
            status_code: None,
            transport_error: Some(kind),
            error,
            response_excerpt: String::new(),
        },
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BYTES)]);
    text.trim_end_matches('\u{FFFD}').to_owned()
}

/// Classifies a transport failure by walking its `source()` chain.
fn classify(error: &reqwest::Error) -> TransportError {
    if error.is_timeout() {
        return TransportError::Timeout;
    }
    for e in causes(error) {
        if e.is::<DnsError>() {
            return TransportError::Dns;
        }
        if e.is::<BlockedError>() {
            return TransportError::Blocked;
        }
        if e.is::<rustls::Error>() {
            return TransportError::Tls;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // A handshake failure travels inside an I/O error, which hides it from the
            // chain of sources.
            let tls = io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>());
            return if tls {
                TransportError::Tls
            } else {
                TransportError::Connection
            };
        }
    }
    if error.is_connect() {
        TransportError::Connection
    } else {
        TransportError::Other
    }
}

/// The errors below `error`, nearest first.
fn causes(error: &reqwest::Error) -> impl Iterator<Item = &(dyn StdError + 'static)> {
    std::iter::successors(error.source(), |&e| e.source())
}

/// A host name that did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}")]
struct DnsError {
    host: String,
    #[source]
    source: std::io::Error,
}

/// A host name none of whose addresses Herald may reach.
#[derive(Debug, thiserror::Error)]
#[error("blocked: {host} has no address Herald may reach ({refused}); {remedy}")]
struct BlockedError {
    host: String,
    /// Each address and why it was refused.
    refused: String,
    remedy: &'static str,
}

/// Resolves names (with the system resolver, or the configured one), marks failures as
/// [`DnsError`] so that the classifier tells DNS failures from connection failures
/// without reading messages, and, unless a proxy enforces instead, keeps only the
/// addresses the egress policy allows (on a port of Herald's own, knowing the port).
struct Resolver {
    lookup: Option<CustomResolver>,
    /// `None`: a proxy decides.
    checked: Option<(Arc<EgressPolicy>, Option<u16>)>,
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let lookup = self.lookup.clone();
        let checked = self.checked.clone();
        Box::pin(async move {
            let resolved = match lookup {
                Some(CustomResolver(resolver)) => resolver.lookup(&host).await,
                None => tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .map(|addrs| addrs.map(|a| a.ip()).collect()),
            };
            let ips: Vec<IpAddr> = match resolved {
                Ok(ips) => ips,
                Err(source) => {
                    return Err(
                        Box::new(DnsError { host, source }) as Box<dyn StdError + Send + Sync>
                    );
                }
            };
            let Some((policy, port)) = checked else {
                return Ok(Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0))) as Addrs);
            };
            let mut allowed = Vec::new();
            let mut refused = Vec::new();
            for ip in ips {
                match policy.check(ip, port) {
                    Ok(()) => allowed.push(SocketAddr::new(ip, 0)),
                    Err(why) => refused.push(why),
                }
            }
            if allowed.is_empty() {
                let remedy = refused.first().map_or("", Refused::remedy);
                let refused = refused.iter().map(ToString::to_string).collect::<Vec<_>>();
                return Err(Box::new(BlockedError {
                    host,
                    refused: refused.join(", "),
                    remedy,
                }) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Kind;

    #[test]
    fn excerpt_is_bounded_and_never_splits_a_character() {
        let body = "é".repeat(EXCERPT_BYTES);
        let text = excerpt(body.as_bytes());
        assert!(text.len() <= EXCERPT_BYTES);
        assert!(text.chars().all(|c| c == 'é'));
        assert_eq!(excerpt(b"ok"), "ok");
    }

    #[tokio::test]
    async fn headers_stored_before_their_name_was_reserved_are_not_sent() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url =
            url::Url::parse(&format!("http://{}/hook", listener.local_addr().unwrap())).unwrap();
        let receiver = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0; 1];
            while !head.ends_with(b"\r\n\r\n") {
                socket.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            socket
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8(head).unwrap().to_ascii_lowercase()
        });
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = EgressConfig {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        let client = WebhookClient::new(
            false,
            &config,
            Arc::new(EgressPolicy::new(&config, Vec::new())),
            &Kind::Server.sizing(),
        )
        .unwrap();
        let header = |name: &str| CustomHeader {
            name: name.to_owned(),
            value: "x".to_owned(),
        };
        let secret = Secret::generate();
        let result = client
            .send(WebhookRequest {
                url: &url,
                message_id: "msg_1",
                event_type: "order.created",
                content_type: "application/json",
                body: Bytes::from_static(b"{}"),
                secrets: vec![&secret],
                headers: &[header("x-tenant"), header("proxy-authorization")],
                trace: None,
                timeout: Duration::from_secs(5),
            })
            .await;
        assert_eq!(result.verdict, Verdict::Delivered, "{:?}", result.record);
        let head = receiver.await.unwrap();
        assert!(head.contains("x-tenant: x"), "{head}");
        assert!(!head.contains("proxy-authorization"), "{head}");
    }
}
