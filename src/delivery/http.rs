//! One webhook HTTP attempt and its classification.
//!
//! Builds the signed request (Standard Webhooks headers, the endpoint's custom headers),
//! sends it without following redirects, reads at most 64 KiB of the answer, and says what
//! happened: delivered, retryable (with the endpoint's `Retry-After` when it gave one), or
//! gone. It does not decide when to retry (`retry`) nor record anything (`storage`).

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::signer::signature_header;
use crate::domain::{AttemptRecord, CustomHeader, Secret, TraceContext, TransportError};
use crate::policy::retry::parse_retry_after;
use crate::telemetry::ErrorChain;

/// How much of a response body is read; the rest is dropped with the connection.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How much of the response body is kept with the attempt.
const EXCERPT_BYTES: usize = 1024;

/// The HTTP side of delivery: one pooled client for every endpoint.
#[derive(Clone)]
pub struct WebhookClient {
    client: reqwest::Client,
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
#[error("cannot build the webhook HTTP client")]
pub struct ClientError(#[source] reqwest::Error);

impl WebhookClient {
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new(legacy_headers: bool) -> Result<Self, ClientError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Herald/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(std::sync::Arc::new(Resolver))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(ClientError)?;
        Ok(Self {
            client,
            legacy_headers,
        })
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

        let mut builder = self
            .client
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
        for h in req.headers {
            builder = builder.header(&h.name, &h.value);
        }

        let outcome = match builder.body(req.body).send().await {
            Ok(response) => Self::read(response, started_at).await,
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
            // The URL may carry credentials in its query; it is known from the endpoint anyway.
            Err(e) => AttemptResult {
                verdict: Verdict::Retryable { retry_after: None },
                record: AttemptRecord {
                    started_at,
                    latency,
                    status_code: None,
                    transport_error: Some(classify(&e)),
                    error: ErrorChain(&e.without_url()).to_string(),
                    response_excerpt: String::new(),
                },
            },
        }
    }

    /// Reads the status, `Retry-After` and at most [`MAX_RESPONSE_BYTES`] of the body.
    async fn read(
        mut response: reqwest::Response,
        now: SystemTime,
    ) -> Result<(StatusCode, Option<Duration>, Bytes), reqwest::Error> {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now));
        let mut body = BytesMut::new();
        while body.len() < MAX_RESPONSE_BYTES {
            match response.chunk().await? {
                Some(chunk) => body
                    .extend_from_slice(&chunk[..chunk.len().min(MAX_RESPONSE_BYTES - body.len())]),
                None => break,
            }
        }
        Ok((status, retry_after, body.freeze()))
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
    let mut cause: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(e) = cause {
        if e.is::<DnsError>() {
            return TransportError::Dns;
        }
        if e.is::<rustls::Error>() {
            return TransportError::Tls;
        }
        if e.is::<std::io::Error>() {
            return TransportError::Connection;
        }
        cause = e.source();
    }
    if error.is_connect() {
        TransportError::Connection
    } else {
        TransportError::Other
    }
}

/// A host name that did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}")]
struct DnsError {
    host: String,
    #[source]
    source: std::io::Error,
}

/// Resolves with the system resolver and marks failures as [`DnsError`], so that the
/// classifier tells DNS failures from connection failures without reading messages.
struct Resolver;

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host(format!("{host}:0")).await;
            match resolved {
                Ok(addrs) => Ok(Box::new(addrs.collect::<Vec<SocketAddr>>().into_iter()) as Addrs),
                Err(source) => {
                    Err(Box::new(DnsError { host, source }) as Box<dyn StdError + Send + Sync>)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_bounded_and_never_splits_a_character() {
        let body = "é".repeat(EXCERPT_BYTES);
        let text = excerpt(body.as_bytes());
        assert!(text.len() <= EXCERPT_BYTES);
        assert!(text.chars().all(|c| c == 'é'));
        assert_eq!(excerpt(b"ok"), "ok");
    }
}
