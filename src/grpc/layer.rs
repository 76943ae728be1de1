//! Tower layers around the gRPC server: request ids ([`RequestIdLayer`]) and request
//! metrics ([`GrpcMetricsLayer`]).
//!
//! The metrics layer counts every request by method and status code, and times it.
//! The code is read from the response headers: a failed call answers "trailers only",
//! with `grpc-status` there; a call without it in the headers went on to a body (unary
//! success, or a stream) and is counted as OK when the answer starts.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tower::{Layer, Service};

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct GrpcMetricsLayer(pub Arc<Metrics>);

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, R> Service<http::Request<B>> for GrpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let started = Instant::now();
        let metrics = self.metrics.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await;
            if let Ok(response) = &response {
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from);
                metrics.grpc_request(&method, &format!("{code:?}"), started.elapsed());
            }
            response
        })
    }
}

/// The metadata key of the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// A tower layer that gives every request an id (the client's `x-request-id`, or a new
/// one), runs the request inside a span carrying it, so every log line of the request
/// names it, and returns it in the response metadata.
#[derive(Clone, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestId { inner }
    }
}

#[derive(Clone)]
pub struct RequestId<S> {
    inner: S,
}

/// Longest client-given request id kept; a longer one is replaced by a new id.
const MAX_REQUEST_ID: usize = 128;

impl<S, B, R> Service<http::Request<B>> for RequestId<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let given = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID);
        let id = given.map_or_else(|| ulid::Ulid::new().to_string(), str::to_owned);
        let value = http::HeaderValue::from_str(&id).expect("a visible ASCII request id");
        request.headers_mut().insert(REQUEST_ID, value.clone());
        let path = request.uri().path();
        let span = tracing::info_span!(
            "rpc",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            method = %path,
            request_id = %id,
        );
        crate::telemetry::adopt_parent(&span, request.headers());
        let answer = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(tracing::Instrument::instrument(
            async move {
                let mut response = answer.await?;
                response.headers_mut().insert(REQUEST_ID, value);
                Ok(response)
            },
            span,
        ))
    }
}
