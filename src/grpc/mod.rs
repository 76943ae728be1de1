//! The gRPC transport: `herald.v1.WebhookService` over the [`Service`] handle. Each
//! handler converts its request into a command (`request`), calls one use case, and
//! converts the answer back (`response`); every error becomes a status in one place
//! (`error`), where field violations are also counted. No handler holds a rule of its
//! own. `layer` holds the tower layers (request ids, request metrics, panics), `codec`
//! the codec every RPC decodes with, `web` gRPC-Web and its CORS for browsers.

pub mod codec;
pub mod error;
pub mod layer;
pub mod request;
pub mod response;
pub mod web;

use std::sync::Arc;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use self::request::{
    GetMessage, ListPage, PageToken, PublishBatch, RecoverEndpoint, RetryDelivery, RotateSecret,
    Tenanted, UpdateEndpoint,
};
use crate::auth::ApiKeyId;
use crate::domain::{EndpointId, MessageId, TenantId};
use crate::metrics::Metrics;
use crate::service::{
    Accepted, Caller, NewApiKey, Publish, Service, ServiceError, Tenancy, Violations,
};
use crate::telemetry;

/// The generated API types, and the descriptor set served by reflection.
pub mod pb {
    tonic::include_proto!("herald.v1");

    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/herald_descriptor.bin"));
}

/// `herald.v1.WebhookService`.
pub struct WebhookApi {
    service: Service,
    metrics: Arc<Metrics>,
}

impl WebhookApi {
    pub fn new(service: Service, metrics: Arc<Metrics>) -> Self {
        Self { service, metrics }
    }

    /// Counts the fields a failed call violated, or why it was not authenticated, and
    /// answers its status.
    fn fail(&self, e: ServiceError) -> Status {
        match &e {
            ServiceError::Invalid(v) => {
                for f in v.iter() {
                    self.metrics.validation_error(&f.field);
                }
            }
            ServiceError::Unauthenticated { reason } => self.metrics.auth_failure(reason),
            _ => {}
        }
        error::status(e)
    }

    /// The caller the request's `authorization: Bearer …` metadata proves.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let header = request
            .metadata()
            .get(http::header::AUTHORIZATION.as_str())
            .map(|v| v.to_str().unwrap_or_default());
        // Anything but a bearer credential is refused like a wrong one.
        let bearer = header.map(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
                .unwrap_or_default()
                .trim()
        });
        self.service
            .authenticate(bearer)
            .await
            .map_err(|e| self.fail(e))
    }

    /// The command a request carries, or `INVALID_ARGUMENT` naming every bad field.
    fn parse<R, C: TryFrom<R, Error = Violations>>(&self, request: R) -> Result<C, Status> {
        C::try_from(request).map_err(|v| self.fail(v.into()))
    }

    /// The tenants a request names and the command it carries, or `INVALID_ARGUMENT`
    /// naming every bad field of both.
    fn parse_scoped<R: Tenanted, C: TryFrom<R, Error = Violations>>(
        &self,
        request: R,
    ) -> Result<(Tenancy, C), Status> {
        request::scoped(request).map_err(|v| self.fail(v.into()))
    }

    /// The result of the batch's event `i`; its violations are named at `requests[i]`.
    fn batch_result(
        &self,
        i: usize,
        result: Result<Accepted, ServiceError>,
    ) -> pb::PublishBatchResult {
        use pb::publish_batch_result::Result as Item;
        let item = match result {
            Ok(accepted) => Item::Published(response::accepted(accepted)),
            Err(e) => {
                let e = match e {
                    ServiceError::Invalid(v) => v.within(&format!("requests[{i}]")).into(),
                    e => e,
                };
                let field_violations = match &e {
                    ServiceError::Invalid(v) => v
                        .shown(error::VIOLATIONS_BUDGET)
                        .into_iter()
                        .map(|f| pb::FieldViolation {
                            field: f.field,
                            description: f.description,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let status = self.fail(e);
                Item::Error(pb::PublishError {
                    code: status.code() as i32,
                    message: status.message().to_owned(),
                    field_violations,
                })
            }
        };
        pb::PublishBatchResult { result: Some(item) }
    }
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

type StatusStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<pb::StreamDeliveryStatusResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::webhook_service_server::WebhookService for WebhookApi {
    type StreamDeliveryStatusStream = StatusStream;

    async fn stream_delivery_status(
        &self,
        request: Request<pb::StreamDeliveryStatusRequest>,
    ) -> Result<Response<StatusStream>, Status> {
        let caller = self.caller(&request).await?;
        let (tenancy, query) = self.parse_scoped(request.into_inner())?;
        let items = self
            .service
            .watch(&caller, &tenancy, query)
            .await
            .map_err(|e| self.fail(e))?;
        let subscriber = Subscriber::new(self.metrics.clone());
        let items = items.map(move |item| {
            let _open = &subscriber;
            item.map(response::status_item).map_err(error::status)
        });
        Ok(Response::new(Box::pin(items)))
    }

    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let caller = self.caller(&request).await?;
        let trace = telemetry::trace_to_store(request.metadata().as_ref());
        let mut publish: Publish = self.parse(request.into_inner())?;
        publish.message.trace = trace;
        let accepted = self
            .service
            .publish(&caller, publish)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Response::new(response::accepted(accepted)))
    }

    async fn publish_batch(
        &self,
        request: Request<pb::PublishBatchRequest>,
    ) -> Result<Response<pb::PublishBatchResponse>, Status> {
        let caller = self.caller(&request).await?;
        let trace = telemetry::trace_to_store(request.metadata().as_ref());
        let PublishBatch(events) = self.parse(request.into_inner())?;
        let events = events
            .into_iter()
            .map(|event| {
                event.map(|mut publish| {
                    publish.message.trace.clone_from(&trace);
                    publish
                })
            })
            .collect();
        let results = self
            .service
            .publish_batch(&caller, events)
            .await
            .map_err(|e| self.fail(e))?
            .into_iter()
            .enumerate()
            .map(|(i, result)| self.batch_result(i, result))
            .collect();
        Ok(Response::new(pb::PublishBatchResponse { results }))
    }

    async fn register_endpoint(
        &self,
        request: Request<pb::RegisterEndpointRequest>,
    ) -> Result<Response<pb::RegisterEndpointResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (tenancy, new) = self.parse_scoped(request.into_inner())?;
        let (view, secret) = self
            .service
            .register_endpoint(&caller, &tenancy, new)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Response::new(pb::RegisterEndpointResponse {
            endpoint: Some(response::endpoint(&view)),
            secret: secret.expose(),
        }))
    }

    async fn get_endpoint(
        &self,
        request: Request<pb::GetEndpointRequest>,
    ) -> Result<Response<pb::GetEndpointResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (tenancy, id): (_, EndpointId) = self.parse_scoped(request.into_inner())?;
        let view = self
            .service
            .get_endpoint(&caller, &tenancy, &id)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Response::new(pb::GetEndpointResponse {
            endpoint: Some(response::endpoint(&view)),
        }))
    }

    async fn list_endpoints(
        &self,
        request: Request<pb::ListEndpointsRequest>,
    ) -> Result<Response<pb::ListEndpointsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (tenancy, ListPage { after, limit }) = self.parse_scoped(request.into_inner())?;
        let page = self
            .service
            .list_endpoints(&caller, &tenancy, after, limit)
            .await
            .map_err(|e| self.fail(e))?;
        let (endpoints, next) = response::fit(&page.items, page.next, 0, response::endpoint, |v| {
            v.endpoint.id.clone()
        });
        Ok(Response::new(pb::ListEndpointsResponse {
            endpoints,
            next_page_token: next
                .map(|id| PageToken::Endpoints(id).encode())
                .unwrap_or_default(),
        }))
    }

    async fn update_endpoint(
        &self,
        request: Request<pb::UpdateEndpointRequest>,
    ) -> Result<Response<pb::UpdateEndpointResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (tenancy, UpdateEndpoint { id, update }) = self.parse_scoped(request.into_inner())?;
        let view = self
            .service
            .update_endpoint(&caller, &tenancy, &id, update)
            .await
            .map_err(|e| match e {
                // The service names fields below the endpoint, which this request nests.
                ServiceError::Invalid(v) => self.fail(v.within("endpoint").into()),
                e => self.fail(e),
            })?;
        Ok(Response::new(pb::UpdateEndpointResponse {
            endpoint: Some(response::endpoint(&view)),
        }))
    }

    async fn delete_endpoint(
        &self,
        request: Request<pb::DeleteEndpointRequest>,
    ) -> Result<Response<pb::DeleteEndpointResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (tenancy, id): (_, EndpointId) = self.parse_scoped(request.into_inner())?;
        let cancelled = self
            .service
            .delete_endpoint(&caller, &tenancy, &id)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Response::new(pb::DeleteEndpointResponse {
            cancelled_deliveries: cancelled,
        }))
    }

    async fn rotate_endpoint_secret(
        &self,
        request: Request<pb::RotateEndpointSecretRequest>,
    ) -> Result<Response<pb::RotateEndpointSecretResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (tenancy, RotateSecret { id, grace }) = self.parse_scoped(request.into_inner())?;
        let (view, secret) = self
            .service
            .rotate_secret(&caller, &tenancy, &id, grace)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Response::new(pb::RotateEndpointSecretResponse {
            endpoint: Some(response::endpoint(&view)),
            secret: secret.expose(),
        }))
    }

    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::GetMessageResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (tenancy, GetMessage { id, after }) = self.parse_scoped(request.into_inner())?;
        let (message, mut deliveries) = self
            .service
            .get_message(&caller, &tenancy, &id)
            .await
            .map_err(|e| self.fail(e))?;
        // In endpoint order, as the stores keep them, after those already answered.
        if let Some(after) = after {
            deliveries.retain(|d| d.endpoint_id > after);
        }
        let message = response::message(&message);
        let used = response::field_len(&message);
        let (deliveries, next) = response::fit(&deliveries, None, used, response::delivery, |d| {
            d.endpoint_id.clone()
        });
        Ok(Response::new(pb::GetMessageResponse {
            message: Some(message),
            deliveries,
            next_page_token: next
                .map(|id| PageToken::Deliveries(id).encode())
                .unwrap_or_default(),
        }))
    }

    async fn list_attempts(
        &self,
        request: Request<pb::ListAttemptsRequest>,
    ) -> Result<Response<pb::ListAttemptsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (tenancy, query) = self.parse_scoped(request.into_inner())?;
        let page = self
            .service
            .list_attempts(&caller, &tenancy, query)
            .await
            .map_err(|e| self.fail(e))?;
        let (attempts, next) =
            response::fit(&page.items, page.next, 0, response::attempt, |a| a.id);
        Ok(Response::new(pb::ListAttemptsResponse {
            attempts,
            next_page_token: next
                .map(|id| PageToken::Attempts(id).encode())
                .unwrap_or_default(),
        }))
    }

    async fn retry_delivery(
        &self,
        request: Request<pb::RetryDeliveryRequest>,
    ) -> Result<Response<pb::RetryDeliveryResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (tenancy, RetryDelivery { message, endpoint }) =
            self.parse_scoped(request.into_inner())?;
        let delivery = self
            .service
            .retry_delivery(&caller, &tenancy, &message, &endpoint)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Response::new(pb::RetryDeliveryResponse {
            delivery: Some(response::delivery(&delivery)),
        }))
    }

    async fn replay_message(
        &self,
        request: Request<pb::ReplayMessageRequest>,
    ) -> Result<Response<pb::ReplayMessageResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (tenancy, id): (_, MessageId) = self.parse_scoped(request.into_inner())?;
        let delivery_count = self
            .service
            .replay_message(&caller, &tenancy, &id)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Response::new(pb::ReplayMessageResponse { delivery_count }))
    }

    async fn expunge_message(
        &self,
        request: Request<pb::ExpungeMessageRequest>,
    ) -> Result<Response<pb::ExpungeMessageResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (tenancy, id): (_, MessageId) = self.parse_scoped(request.into_inner())?;
        let expunged = self
            .service
            .expunge_message(&caller, &tenancy, &id)
            .await
            .map_err(|e| self.fail(e))?;
        self.metrics.messages_expunged(u64::from(expunged.fresh));
        Ok(Response::new(pb::ExpungeMessageResponse {
            expunge_time: Some(response::timestamp(expunged.at)),
            cancelled_deliveries: expunged.cancelled,
        }))
    }

    async fn get_analytics(
        &self,
        request: Request<pb::GetAnalyticsRequest>,
    ) -> Result<Response<pb::GetAnalyticsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (tenancy, query) = self.parse_scoped(request.into_inner())?;
        let analytics = self
            .service
            .analytics(&caller, &tenancy, query)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Response::new(response::analytics(&analytics)))
    }

    async fn get_health(
        &self,
        request: Request<pb::GetHealthRequest>,
    ) -> Result<Response<pb::GetHealthResponse>, Status> {
        let caller = self.caller(&request).await?;
        let report = self
            .service
            .health(&caller)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Response::new(response::health(report)))
    }

    async fn recover_endpoint(
        &self,
        request: Request<pb::RecoverEndpointRequest>,
    ) -> Result<Response<pb::RecoverEndpointResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (tenancy, RecoverEndpoint { id, since }) = self.parse_scoped(request.into_inner())?;
        let requeued = self
            .service
            .recover_endpoint(&caller, &tenancy, &id, since)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Response::new(pb::RecoverEndpointResponse { requeued }))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let caller = self.caller(&request).await?;
        let new: NewApiKey = self.parse(request.into_inner())?;
        let (key, token) = self
            .service
            .create_api_key(&caller, new)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Response::new(pb::CreateApiKeyResponse {
            api_key: Some(response::api_key(&key)),
            token: token.expose().to_owned(),
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let caller = self.caller(&request).await?;
        let ListPage { after, limit } = self.parse(request.into_inner())?;
        let page = self
            .service
            .list_api_keys(&caller, after, limit)
            .await
            .map_err(|e| self.fail(e))?;
        let (api_keys, next) = response::fit(&page.items, page.next, 0, response::api_key, |k| {
            k.id.clone()
        });
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys,
            next_page_token: next
                .map(|id| PageToken::ApiKeys(id).encode())
                .unwrap_or_default(),
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let caller = self.caller(&request).await?;
        let id: ApiKeyId = self.parse(request.into_inner())?;
        let key = self
            .service
            .revoke_api_key(&caller, &id)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Response::new(pb::RevokeApiKeyResponse {
            api_key: Some(response::api_key(&key)),
        }))
    }

    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let ListPage { after, limit } = self.parse(request.into_inner())?;
        let page = self
            .service
            .list_tenants(&caller, after, limit)
            .await
            .map_err(|e| self.fail(e))?;
        let (tenants, next) = response::fit(&page.items, page.next, 0, response::tenant, |t| {
            t.tenant.clone()
        });
        Ok(Response::new(pb::ListTenantsResponse {
            tenants,
            next_page_token: next
                .map(|id| PageToken::Tenants(id).encode())
                .unwrap_or_default(),
        }))
    }

    async fn delete_tenant(
        &self,
        request: Request<pb::DeleteTenantRequest>,
    ) -> Result<Response<pb::DeleteTenantResponse>, Status> {
        let caller = self.caller(&request).await?;
        let tenant: TenantId = self.parse(request.into_inner())?;
        let deleted = self
            .service
            .delete_tenant(&caller, &tenant)
            .await
            .map_err(|e| self.fail(e))?;
        self.metrics
            .messages_expunged(u64::from(deleted.expunged_messages));
        Ok(Response::new(pb::DeleteTenantResponse {
            deleted_endpoints: deleted.endpoints,
            cancelled_deliveries: deleted.cancelled_deliveries,
            expunged_messages: deleted.expunged_messages,
        }))
    }
}
