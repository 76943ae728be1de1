//! The gRPC API: thin handlers that parse the request into domain values (`convert`),
//! call the store, wake the dispatcher when work became due, and convert back. Every
//! error becomes a status in one place (`error`).

pub mod convert;
pub mod error;
pub mod layer;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use self::convert::PageToken;
use self::error::{Violations, exhausted};
use crate::analytics;
use crate::delivery::guard::{Guards, ProtectionConfig};
use crate::delivery::retry::RetryPolicy;
use crate::domain::{
    DisabledReason, Endpoint, EndpointId, EventType, MessageId, NewMessage, ProtectionOverride,
    RetryOverride, Secret, SigningSecrets,
};
use crate::health::{Health, Overall};
use crate::metrics::Metrics;
use crate::status::{self, WatchError};
use crate::storage::{AttemptQuery, EndpointUpdate, Published, Store};
use crate::telemetry;

/// The generated API types, and the descriptor set served by reflection.
pub mod pb {
    tonic::include_proto!("herald.v1");

    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/herald_descriptor.bin"));
}

/// Most events in one PublishBatch.
pub const MAX_BATCH: usize = 1000;
/// The window of `GetAnalytics` when none is given.
const ANALYTICS_DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The longest window `GetAnalytics` takes.
const ANALYTICS_LONGEST_WINDOW: Duration = Duration::from_secs(400 * 24 * 3600);
/// What a client told to back off is asked to wait.
const BACKLOG_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Settings of the API layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Unfinished deliveries beyond which publishing is refused.
    pub max_queue_size: u64,
    /// Default grace period of a secret rotation.
    pub secret_rotation_grace: Duration,
    pub max_payload_bytes: usize,
    /// The server's retry policy, against which endpoint overrides are validated.
    pub retry: RetryPolicy,
    /// The server's protection defaults, against which endpoint overrides are validated.
    pub protection: ProtectionConfig,
    /// Idle time after which a status stream sends a heartbeat.
    pub stream_heartbeat: Duration,
}

/// `herald.v1.WebhookService`.
pub struct WebhookApi {
    store: Arc<dyn Store>,
    /// Tells the dispatcher that deliveries may be due now.
    wake: Arc<Notify>,
    /// The endpoints' live protection state, shown with each endpoint.
    guards: Arc<Guards>,
    /// Fires at shutdown: open status streams end so they do not hold the server open.
    streams_stop: CancellationToken,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    config: ApiConfig,
}

impl WebhookApi {
    pub fn new(
        store: Arc<dyn Store>,
        wake: Arc<Notify>,
        guards: Arc<Guards>,
        streams_stop: CancellationToken,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        config: ApiConfig,
    ) -> Self {
        Self {
            store,
            wake,
            guards,
            streams_stop,
            metrics,
            health,
            config,
        }
    }

    /// `Ok` when the request had no violation; else counts each and answers INVALID_ARGUMENT.
    fn finish(&self, v: Violations) -> Result<(), Status> {
        for field in v.fields() {
            self.metrics.validation_error(field);
        }
        v.finish()
    }

    /// The endpoint with its live protection state, from the store when it shares that
    /// state among processes, else from this process's guards.
    async fn endpoint_proto(&self, endpoint: &Endpoint) -> Result<pb::Endpoint, Status> {
        let status = match self.store.protection_status(endpoint).await? {
            Some(status) => status,
            None => self.guards.status(endpoint),
        };
        Ok(convert::endpoint(endpoint, &status))
    }

    /// Refuses new work while the backlog is over its limit; nothing accepted is dropped.
    fn admit(&self) -> Result<(), Status> {
        let backlog = self.store.backlog();
        if backlog >= self.config.max_queue_size {
            return Err(exhausted(
                format!(
                    "{backlog} deliveries are waiting, the limit is {}; retry later",
                    self.config.max_queue_size
                ),
                BACKLOG_RETRY_AFTER,
            ));
        }
        Ok(())
    }

    async fn publish_all(&self, messages: Vec<NewMessage>) -> Result<Vec<Published>, Status> {
        self.admit()?;
        let published = self.store.publish(messages, SystemTime::now()).await?;
        if published
            .iter()
            .any(|p| matches!(p, Published::Created { deliveries, .. } if *deliveries > 0))
        {
            self.wake.notify_one();
        }
        Ok(published)
    }
}

fn conflict_status(key: Option<&str>, message_id: &MessageId) -> Status {
    let description = format!("idempotency key was used by {message_id} with a different payload");
    Status::with_error_details(
        tonic::Code::AlreadyExists,
        description.clone(),
        ErrorDetails::with_resource_info(
            "idempotency_key",
            key.unwrap_or_default(),
            "",
            description,
        ),
    )
}

fn publish_response(
    published: Published,
    key: Option<&str>,
) -> Result<pb::PublishResponse, Status> {
    match published {
        Published::Created {
            message_id,
            deliveries,
        } => Ok(pb::PublishResponse {
            message_id: message_id.to_string(),
            delivery_count: deliveries,
            duplicate: false,
        }),
        Published::Duplicate {
            message_id,
            deliveries,
        } => Ok(pb::PublishResponse {
            message_id: message_id.to_string(),
            delivery_count: deliveries,
            duplicate: true,
        }),
        Published::Conflict { message_id } => Err(conflict_status(key, &message_id)),
    }
}

fn batch_error(
    code: tonic::Code,
    message: String,
    field_violations: Vec<pb::FieldViolation>,
) -> pb::publish_batch_result::Result {
    pb::publish_batch_result::Result::Error(pb::PublishError {
        code: code as i32,
        message,
        field_violations,
    })
}

/// Counts an open status stream for as long as it lives.
struct Subscriber(Arc<Metrics>);

impl Subscriber {
    fn new(metrics: Arc<Metrics>) -> Self {
        metrics.stream_opened();
        Self(metrics)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.0.stream_closed();
    }
}

/// How a watch that ended early is told to the client.
fn watch_status(e: WatchError) -> Status {
    match e {
        WatchError::Pruned { after } => Status::with_error_details(
            tonic::Code::OutOfRange,
            e.to_string(),
            ErrorDetails::with_error_info(
                "CURSOR_NOT_RETAINED",
                "herald.v1",
                [("after_cursor".to_owned(), after.to_string())],
            ),
        ),
        WatchError::Lagged { resume_after } => {
            let mut details = ErrorDetails::with_error_info(
                "CONSUMER_TOO_SLOW",
                "herald.v1",
                [("resume_after_cursor".to_owned(), resume_after.to_string())],
            );
            details.set_retry_info(Some(Duration::ZERO));
            Status::with_error_details(tonic::Code::ResourceExhausted, e.to_string(), details)
        }
        WatchError::Store(e) => e.into(),
    }
}

type StatusStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<pb::StreamDeliveryStatusResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::webhook_service_server::WebhookService for WebhookApi {
    type StreamDeliveryStatusStream = StatusStream;

    async fn stream_delivery_status(
        &self,
        request: Request<pb::StreamDeliveryStatusRequest>,
    ) -> Result<Response<StatusStream>, Status> {
        let mut v = Violations::default();
        let watch =
            convert::parse_watch(&mut v, request.into_inner(), self.config.stream_heartbeat);
        self.finish(v)?;
        let items = status::watch(self.store.clone(), watch, self.streams_stop.clone());
        let subscriber = Subscriber::new(self.metrics.clone());
        let responses = items.map(move |item| {
            let _open = &subscriber;
            item.map(convert::status_item).map_err(watch_status)
        });
        Ok(Response::new(Box::pin(responses)))
    }

    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let trace = telemetry::trace_to_store(request.metadata().as_ref());
        let mut v = Violations::default();
        let message = convert::parse_publish(request.into_inner(), "", &self.config, &mut v);
        self.finish(v)?;
        let message = NewMessage {
            trace,
            ..message.expect("parsed without violations")
        };
        let key = message.idempotency_key.clone();
        let published = self
            .publish_all(vec![message])
            .await?
            .pop()
            .expect("one result per message");
        Ok(Response::new(publish_response(published, key.as_deref())?))
    }

    async fn publish_batch(
        &self,
        request: Request<pb::PublishBatchRequest>,
    ) -> Result<Response<pb::PublishBatchResponse>, Status> {
        let trace = telemetry::trace_to_store(request.metadata().as_ref());
        let requests = request.into_inner().requests;
        if requests.is_empty() || requests.len() > MAX_BATCH {
            let mut v = Violations::default();
            v.add(
                "requests",
                format!("must hold 1 to {MAX_BATCH} events, not {}", requests.len()),
            );
            self.finish(v)?;
        }
        let mut results: Vec<Option<pb::publish_batch_result::Result>> =
            Vec::with_capacity(requests.len());
        let mut valid = Vec::new();
        for (i, req) in requests.into_iter().enumerate() {
            let mut v = Violations::default();
            match convert::parse_publish(req, &format!("requests[{i}]"), &self.config, &mut v) {
                Some(message) => {
                    let trace = trace.clone();
                    valid.push((i, NewMessage { trace, ..message }));
                    results.push(None);
                }
                None => {
                    let violations = v.into_inner();
                    for f in &violations {
                        self.metrics.validation_error(&f.field);
                    }
                    let message = error::summary(&violations);
                    let violations = violations
                        .into_iter()
                        .map(|f| pb::FieldViolation {
                            field: f.field,
                            description: f.description,
                        })
                        .collect();
                    results.push(Some(batch_error(
                        tonic::Code::InvalidArgument,
                        message,
                        violations,
                    )));
                }
            }
        }
        let (indices, messages): (Vec<usize>, Vec<NewMessage>) = valid.into_iter().unzip();
        let keys: Vec<Option<String>> =
            messages.iter().map(|m| m.idempotency_key.clone()).collect();
        if !messages.is_empty() {
            let published = self.publish_all(messages).await?;
            for ((i, p), key) in indices.into_iter().zip(published).zip(keys) {
                results[i] = Some(match publish_response(p, key.as_deref()) {
                    Ok(r) => pb::publish_batch_result::Result::Published(r),
                    Err(status) => {
                        batch_error(status.code(), status.message().to_owned(), Vec::new())
                    }
                });
            }
        }
        let results = results
            .into_iter()
            .map(|r| pb::PublishBatchResult { result: r })
            .collect();
        Ok(Response::new(pb::PublishBatchResponse { results }))
    }

    async fn register_endpoint(
        &self,
        request: Request<pb::RegisterEndpointRequest>,
    ) -> Result<Response<pb::RegisterEndpointResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let id = if req.endpoint_id.is_empty() {
            Some(EndpointId::generate())
        } else {
            convert::parse_endpoint_id(&mut v, "endpoint_id", &req.endpoint_id)
        };
        let url = v.check("url", Endpoint::parse_url(&req.url));
        let description = convert::parse_description(&mut v, "description", req.description);
        let event_types = convert::parse_event_types(&mut v, "event_types", req.event_types);
        let channels = convert::parse_endpoint_channels(&mut v, "channels", req.channels);
        let headers = convert::parse_headers(&mut v, "headers", req.headers);
        let retry = match req.retry_policy {
            None => Some(RetryOverride::default()),
            Some(p) => convert::parse_retry(p, "retry_policy", &self.config, &mut v),
        };
        let secret = if req.secret.is_empty() {
            Some(Secret::generate())
        } else {
            v.check("secret", Secret::parse(&req.secret))
        };
        let (failure_threshold, breaker_timeout) = convert::parse_circuit_breaker(
            &mut v,
            "circuit_breaker",
            req.circuit_breaker,
            &self.config,
        );
        let protection = ProtectionOverride {
            rate_limit: convert::parse_rate_limit(
                &mut v,
                "rate_limit",
                req.rate_limit,
                &self.config,
            ),
            failure_threshold,
            breaker_timeout,
            max_in_flight: convert::parse_max_in_flight(
                &mut v,
                "max_in_flight",
                req.max_in_flight,
                &self.config,
            ),
        };
        self.finish(v)?;
        let (Some(id), Some(url), Some(retry), Some(secret)) = (id, url, retry, secret) else {
            unreachable!("every field parsed without violations")
        };
        let now = SystemTime::now();
        let endpoint = Endpoint {
            id,
            url,
            description,
            event_types,
            channels,
            headers,
            retry,
            protection,
            disabled: req.disabled.then_some(DisabledReason::Manual),
            failing_since: None,
            secrets: SigningSecrets::new(secret.clone()),
            created_at: now,
            updated_at: now,
        };
        let endpoint = self.store.create_endpoint(endpoint).await?;
        tracing::info!(endpoint = %endpoint.id, "endpoint registered");
        Ok(Response::new(pb::RegisterEndpointResponse {
            endpoint: Some(self.endpoint_proto(&endpoint).await?),
            secret: secret.expose(),
        }))
    }

    async fn get_endpoint(
        &self,
        request: Request<pb::GetEndpointRequest>,
    ) -> Result<Response<pb::GetEndpointResponse>, Status> {
        let mut v = Violations::default();
        let id = convert::parse_endpoint_id(&mut v, "endpoint_id", &request.get_ref().endpoint_id);
        self.finish(v)?;
        let endpoint = self.store.get_endpoint(&id.expect("parsed")).await?;
        Ok(Response::new(pb::GetEndpointResponse {
            endpoint: Some(self.endpoint_proto(&endpoint).await?),
        }))
    }

    async fn list_endpoints(
        &self,
        request: Request<pb::ListEndpointsRequest>,
    ) -> Result<Response<pb::ListEndpointsResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let limit = convert::parse_page_size(&mut v, req.page_size);
        let after = PageToken::parse_endpoints(&mut v, &req.page_token);
        self.finish(v)?;
        let mut endpoints = self.store.list_endpoints(after, limit + 1).await?;
        let next_page_token = PageToken::next(&mut endpoints, limit, |e| {
            PageToken::Endpoints(e.id.clone())
        });
        Ok(Response::new(pb::ListEndpointsResponse {
            endpoints: {
                let mut protos = Vec::with_capacity(endpoints.len());
                for e in &endpoints {
                    protos.push(self.endpoint_proto(e).await?);
                }
                protos
            },
            next_page_token,
        }))
    }

    async fn update_endpoint(
        &self,
        request: Request<pb::UpdateEndpointRequest>,
    ) -> Result<Response<pb::UpdateEndpointResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let Some(fields) = req.endpoint else {
            v.add(
                "endpoint",
                "required: the endpoint with its id and the new values",
            );
            return Err(self.finish(v).expect_err("a violation was added"));
        };
        let id = convert::parse_endpoint_id(&mut v, "endpoint.id", &fields.id);
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            v.add("update_mask", "required: name the fields to change");
        }
        let mut update = EndpointUpdate::default();
        for path in paths {
            let field = format!("endpoint.{path}");
            match path.as_str() {
                "url" => update.url = v.check(field, Endpoint::parse_url(&fields.url)),
                "description" => update.description = Some(convert::parse_description(&mut v, &field, fields.description.clone())),
                "event_types" => update.event_types = Some(convert::parse_event_types(&mut v, &field, fields.event_types.clone())),
                "channels" => update.channels = Some(convert::parse_endpoint_channels(&mut v, &field, fields.channels.clone())),
                "headers" => update.headers = Some(convert::parse_headers(&mut v, &field, fields.headers.clone())),
                "retry_policy" => update.retry = Some(fields.retry_policy.and_then(|p| convert::parse_retry(p, &field, &self.config, &mut v)).unwrap_or_default()),
                "rate_limit" => update.rate_limit = Some(convert::parse_rate_limit(&mut v, &field, fields.rate_limit, &self.config)),
                "circuit_breaker" => update.circuit_breaker = Some(convert::parse_circuit_breaker(&mut v, &field, fields.circuit_breaker, &self.config)),
                "max_in_flight" => update.max_in_flight = Some(convert::parse_max_in_flight(&mut v, &field, fields.max_in_flight, &self.config)),
                "enabled" => update.enabled = Some(fields.enabled),
                other => v.add(
                    "update_mask",
                    format!("{other:?} cannot be updated; use url, description, event_types, channels, headers, retry_policy, rate_limit, circuit_breaker, max_in_flight or enabled"),
                ),
            }
        }
        self.finish(v)?;
        let endpoint = self
            .store
            .update_endpoint(&id.expect("parsed"), update, SystemTime::now())
            .await?;
        // Enabled again, or given more room: its deliveries may start now.
        self.wake.notify_one();
        Ok(Response::new(pb::UpdateEndpointResponse {
            endpoint: Some(self.endpoint_proto(&endpoint).await?),
        }))
    }

    async fn delete_endpoint(
        &self,
        request: Request<pb::DeleteEndpointRequest>,
    ) -> Result<Response<pb::DeleteEndpointResponse>, Status> {
        let mut v = Violations::default();
        let id = convert::parse_endpoint_id(&mut v, "endpoint_id", &request.get_ref().endpoint_id);
        self.finish(v)?;
        let id = id.expect("parsed");
        let cancelled = self.store.delete_endpoint(&id, SystemTime::now()).await?;
        self.guards.forget(&id);
        tracing::info!(endpoint = %id, cancelled, "endpoint deleted");
        Ok(Response::new(pb::DeleteEndpointResponse {
            cancelled_deliveries: cancelled,
        }))
    }

    async fn rotate_endpoint_secret(
        &self,
        request: Request<pb::RotateEndpointSecretRequest>,
    ) -> Result<Response<pb::RotateEndpointSecretResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let id = convert::parse_endpoint_id(&mut v, "endpoint_id", &req.endpoint_id);
        let grace = convert::parse_rotation_grace(
            &mut v,
            req.grace_period,
            self.config.secret_rotation_grace,
        );
        self.finish(v)?;
        let secret = Secret::generate();
        let now = SystemTime::now();
        let endpoint = self
            .store
            .rotate_secret(&id.expect("parsed"), secret.clone(), now + grace, now)
            .await?;
        tracing::info!(endpoint = %endpoint.id, grace_secs = grace.as_secs(), "endpoint secret rotated");
        Ok(Response::new(pb::RotateEndpointSecretResponse {
            endpoint: Some(self.endpoint_proto(&endpoint).await?),
            secret: secret.expose(),
        }))
    }

    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::GetMessageResponse>, Status> {
        let mut v = Violations::default();
        let id = v.check(
            "message_id",
            MessageId::parse(&request.get_ref().message_id),
        );
        self.finish(v)?;
        let (message, deliveries) = self.store.get_message(&id.expect("parsed")).await?;
        Ok(Response::new(pb::GetMessageResponse {
            message: Some(convert::message(&message)),
            deliveries: deliveries.iter().map(convert::delivery).collect(),
        }))
    }

    async fn list_attempts(
        &self,
        request: Request<pb::ListAttemptsRequest>,
    ) -> Result<Response<pb::ListAttemptsResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        if req.message_id.is_empty() && req.endpoint_id.is_empty() {
            v.add("message_id", "set message_id, endpoint_id or both");
        }
        let message_id = (!req.message_id.is_empty())
            .then(|| v.check("message_id", MessageId::parse(&req.message_id)))
            .flatten();
        let endpoint_id = (!req.endpoint_id.is_empty())
            .then(|| convert::parse_endpoint_id(&mut v, "endpoint_id", &req.endpoint_id))
            .flatten();
        let delivery_state =
            convert::parse_delivery_state(&mut v, "delivery_state", req.delivery_state);
        let limit = convert::parse_page_size(&mut v, req.page_size);
        let after_id = PageToken::parse_attempts(&mut v, &req.page_token);
        self.finish(v)?;
        let mut attempts = self
            .store
            .list_attempts(AttemptQuery {
                message_id,
                endpoint_id,
                delivery_state,
                after_id,
                limit: limit + 1,
            })
            .await?;
        let next_page_token = PageToken::next(&mut attempts, limit, |a| PageToken::Attempts(a.id));
        Ok(Response::new(pb::ListAttemptsResponse {
            attempts: attempts.iter().map(convert::attempt).collect(),
            next_page_token,
        }))
    }

    async fn retry_delivery(
        &self,
        request: Request<pb::RetryDeliveryRequest>,
    ) -> Result<Response<pb::RetryDeliveryResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let message_id = v.check("message_id", MessageId::parse(&req.message_id));
        let endpoint_id = convert::parse_endpoint_id(&mut v, "endpoint_id", &req.endpoint_id);
        self.finish(v)?;
        let delivery = self
            .store
            .retry_delivery(
                &message_id.expect("parsed"),
                &endpoint_id.expect("parsed"),
                SystemTime::now(),
            )
            .await?;
        self.wake.notify_one();
        Ok(Response::new(pb::RetryDeliveryResponse {
            delivery: Some(convert::delivery(&delivery)),
        }))
    }

    async fn replay_message(
        &self,
        request: Request<pb::ReplayMessageRequest>,
    ) -> Result<Response<pb::ReplayMessageResponse>, Status> {
        let mut v = Violations::default();
        let id = v.check(
            "message_id",
            MessageId::parse(&request.get_ref().message_id),
        );
        self.finish(v)?;
        let delivery_count = self
            .store
            .replay_message(&id.expect("parsed"), SystemTime::now())
            .await?;
        self.wake.notify_one();
        Ok(Response::new(pb::ReplayMessageResponse { delivery_count }))
    }

    async fn get_analytics(
        &self,
        request: Request<pb::GetAnalyticsRequest>,
    ) -> Result<Response<pb::GetAnalyticsResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let end =
            convert::parse_time(&mut v, "end_time", req.end_time).unwrap_or_else(SystemTime::now);
        let start = convert::parse_time(&mut v, "start_time", req.start_time)
            .unwrap_or_else(|| end - ANALYTICS_DEFAULT_WINDOW);
        match end.duration_since(start) {
            Ok(length)
                if length >= Duration::from_secs(60) && length <= ANALYTICS_LONGEST_WINDOW => {}
            _ => v.add(
                "start_time",
                "the window must run forward, from one minute to 400 days",
            ),
        }
        let endpoint = (!req.endpoint_id.is_empty())
            .then(|| convert::parse_endpoint_id(&mut v, "endpoint_id", &req.endpoint_id))
            .flatten();
        let event_type = (!req.event_type.is_empty())
            .then(|| v.check("event_type", EventType::parse(&req.event_type)))
            .flatten();
        self.finish(v)?;
        // Whole minutes: from the one holding `start` to the one holding the last instant
        // before `end`, so that a window ending now includes the current minute.
        let first = analytics::minute_of(start);
        let last = analytics::minute_of(end - Duration::from_nanos(1)) + 1;
        // The window before, of the same length, gives the trend.
        let rows = self
            .store
            .rollups(
                first - (last - first),
                last,
                endpoint.clone(),
                event_type.clone(),
            )
            .await?;
        let report = analytics::report(
            &rows,
            analytics::time_of_minute(first),
            analytics::time_of_minute(last),
        );
        let pending = self.store.pending(endpoint, event_type).await?;
        Ok(Response::new(convert::analytics(&report, pending)))
    }

    async fn get_health(
        &self,
        _request: Request<pb::GetHealthRequest>,
    ) -> Result<Response<pb::GetHealthResponse>, Status> {
        let report = self.health.report().await;
        let health = match report.overall {
            Overall::Healthy => pb::ServiceHealth::Healthy,
            Overall::Degraded => pb::ServiceHealth::Degraded,
            Overall::Unhealthy => pb::ServiceHealth::Unhealthy,
        };
        let checks = report
            .checks
            .into_iter()
            .map(|c| pb::HealthCheck {
                name: c.name.to_owned(),
                ok: c.ok,
                detail: c.detail,
            })
            .collect();
        Ok(Response::new(pb::GetHealthResponse {
            health: health as i32,
            checks,
        }))
    }

    async fn recover_endpoint(
        &self,
        request: Request<pb::RecoverEndpointRequest>,
    ) -> Result<Response<pb::RecoverEndpointResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let id = convert::parse_endpoint_id(&mut v, "endpoint_id", &req.endpoint_id);
        if req.since.is_none() {
            v.add(
                "since",
                "required: recover deliveries that failed at or after this time",
            );
        }
        let since = convert::parse_time(&mut v, "since", req.since);
        self.finish(v)?;
        let id = id.expect("parsed");
        let requeued = self
            .store
            .recover_endpoint(&id, since.expect("parsed"), SystemTime::now())
            .await?;
        tracing::info!(endpoint = %id, requeued, "endpoint recovery requeued failed deliveries");
        self.wake.notify_one();
        Ok(Response::new(pb::RecoverEndpointResponse { requeued }))
    }
}
