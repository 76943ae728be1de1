//! Tower layers around the gRPC server: request ids ([`RequestIdLayer`]), request
//! metrics ([`GrpcMetricsLayer`]) and panics ([`CatchPanicLayer`]).
//!
//! The metrics layer counts every request by method and status code, and times it.
//! The code is read from the response headers: a failed call answers "trailers only",
//! with `grpc-status` there; a call without it in the headers went on to a body (unary
//! success, or a stream) and is counted as OK when the answer starts.
//!
//! The panic layer sits inside the metrics layer: a call whose handling panicked is
//! answered `INTERNAL`, and counted so; a streamed answer whose stream panics ends with
//! `INTERNAL` trailers (it was counted when it started). Either way only that call ends:
//! the connection and its other calls go on.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
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

/// Turns a panic while handling a call, or while producing its streamed answer, into
/// `INTERNAL` for that call (see the module's documentation).
#[derive(Clone, Default)]
pub struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic { inner }
    }
}

#[derive(Clone)]
pub struct CatchPanic<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for CatchPanic<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<PanicSafe<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let answer = catch_unwind(AssertUnwindSafe(|| self.inner.call(request)));
        Box::pin(async move {
            let mut answer = match answer {
                Ok(answer) => Box::pin(answer),
                Err(panic) => return Ok(panicked(&*panic)),
            };
            let caught = std::future::poll_fn(|cx| {
                match catch_unwind(AssertUnwindSafe(|| answer.as_mut().poll(cx))) {
                    Ok(polled) => polled.map(Ok),
                    Err(panic) => Poll::Ready(Err(panic)),
                }
            })
            .await;
            match caught {
                Ok(response) => response.map(|r| r.map(PanicSafe::Body)),
                Err(panic) => Ok(panicked(&*panic)),
            }
        })
    }
}

/// What a client of a call that panicked is told; the panic itself is logged.
const PANICKED: &str = "internal error";

/// Logs a panic of the current call.
fn log_panic(panic: &(dyn Any + Send)) {
    let what = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(panic = what, "a call panicked; it is answered INTERNAL");
}

/// The trailers-only `INTERNAL` answer of a call whose handling panicked.
fn panicked<R>(panic: &(dyn Any + Send)) -> http::Response<PanicSafe<R>> {
    log_panic(panic);
    tonic::Status::internal(PANICKED).into_http()
}

/// A response body that ends with `INTERNAL` trailers if producing it panics.
#[derive(Default)]
pub enum PanicSafe<R> {
    Body(R),
    /// Nothing (more) to send: an answer in its headers only, or a body that panicked
    /// and sent its trailers.
    #[default]
    Done,
}

impl<R> Body for PanicSafe<R>
where
    R: Body + Unpin,
{
    type Data = R::Data;
    type Error = R::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match this {
            Self::Body(body) => {
                match catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *body).poll_frame(cx))) {
                    Ok(polled) => polled,
                    Err(panic) => {
                        log_panic(&*panic);
                        let mut trailers = http::HeaderMap::new();
                        // A status of a fixed, valid message always fits in headers.
                        let _ = tonic::Status::internal(PANICKED).add_header(&mut trailers);
                        *this = Self::Done;
                        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                    }
                }
            }
            Self::Done => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Body(body) => body.is_end_stream(),
            Self::Done => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Body(body) => body.size_hint(),
            Self::Done => SizeHint::with_exact(0),
        }
    }
}
