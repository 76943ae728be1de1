//! The connection to Herald and the calls a service makes over it.
//!
//! [`ClientBuilder`] turns an address, TLS material, an API key and a default tenant into
//! a tonic `Channel` with deadlines and keepalive; [`Client`] wraps the generated stub
//! with the credential on every call, the default tenant on every request that names
//! none, a deadline on every unary call, and list calls as paging streams. Calls this
//! wrapper does not cover (analytics, API keys, tenants, redelivery) are on
//! [`Client::stub`], with the same credential.

use std::time::Duration;

use tokio_stream::{Stream, StreamExt};
use tonic::Request;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::pb::webhook_service_client::WebhookServiceClient;
use crate::watch::{Backoff, Watch};
use crate::{Error, Event, pb};

/// The generated stub as this client drives it: every call carries the credential.
pub type Stub = WebhookServiceClient<InterceptedService<Channel, Credential>>;

/// Settings for a [`Client`]; start from [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    /// `host:port` or a URI; the scheme follows TLS when absent.
    address: String,
    api_key: Option<String>,
    /// Filled into every request whose `tenant_id` is empty (and not `all_tenants`).
    tenant: String,
    ca_certificate: Option<Vec<u8>>,
    /// Client certificate and key (PEM) for servers that ask for one.
    identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name the server's certificate must carry, when not the address's host.
    tls_domain: Option<String>,
    force_tls: bool,
    connect_timeout: Duration,
    /// The deadline of each unary call; the status stream has none.
    timeout: Duration,
    /// HTTP/2 pings while idle, so a dead connection is noticed (and a watch resumes)
    /// within `keepalive_interval + keepalive_timeout` instead of at the next TCP timeout.
    keepalive_interval: Duration,
    keepalive_timeout: Duration,
    watch_backoff: Backoff,
}

impl ClientBuilder {
    fn new(address: impl Into<String>) -> Self {
        ClientBuilder {
            address: address.into(),
            api_key: None,
            tenant: String::new(),
            ca_certificate: None,
            identity: None,
            tls_domain: None,
            force_tls: false,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            watch_backoff: Backoff::default(),
        }
    }

    /// The API key (or JWT), sent as `authorization: Bearer <key>` on every call.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The tenant of every request that names none; empty (the default) lets the server
    /// choose: the credential's own tenant, else `default`.
    pub fn tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant = tenant_id.into();
        self
    }

    /// Speaks TLS, trusting only this CA (PEM) for the server's certificate.
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate = Some(pem.into());
        self
    }

    /// Presents this client certificate and private key (PEM) to the server.
    pub fn identity(
        mut self,
        certificate_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((certificate_pem.into(), key_pem.into()));
        self
    }

    /// Checks the server's certificate against this name instead of the address's host.
    pub fn tls_domain_name(mut self, name: impl Into<String>) -> Self {
        self.tls_domain = Some(name.into());
        self
    }

    /// Speaks TLS even without a CA given here, trusting the roots enabled through
    /// tonic's `tls-native-roots` or `tls-webpki-roots` features. An `https://` address
    /// does the same.
    pub fn tls(mut self) -> Self {
        self.force_tls = true;
        self
    }

    /// How long establishing the connection may take (5 s by default).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The deadline of each unary call (30 s by default), sent to the server as
    /// `grpc-timeout` too.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// HTTP/2 keepalive: a ping after `interval` of silence, the connection declared
    /// dead when no answer comes within `timeout` (30 s and 10 s by default).
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keepalive_interval = interval;
        self.keepalive_timeout = timeout;
        self
    }

    /// How long [`Client::watch`] waits before reconnecting: `initial` after the first
    /// failure, doubling up to `max`, with jitter (100 ms and 10 s by default).
    pub fn watch_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.watch_backoff = Backoff::new(initial, max);
        self
    }

    fn uses_tls(&self) -> bool {
        self.force_tls
            || self.ca_certificate.is_some()
            || self.identity.is_some()
            || self.address.starts_with("https://")
    }

    fn endpoint(&self) -> Result<Endpoint, Error> {
        let uri = if self.address.contains("://") {
            self.address.clone()
        } else if self.uses_tls() {
            format!("https://{}", self.address)
        } else {
            format!("http://{}", self.address)
        };
        let mut endpoint = Endpoint::from_shared(uri)
            .map_err(|e| Error::Config(format!("address {:?}: {e}", self.address)))?
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .http2_keep_alive_interval(self.keepalive_interval)
            .keep_alive_timeout(self.keepalive_timeout)
            .keep_alive_while_idle(true)
            .tcp_keepalive(Some(self.keepalive_interval))
            .user_agent(concat!("herald-client-rust/", env!("CARGO_PKG_VERSION")))
            .map_err(Error::Connect)?;
        if self.uses_tls() {
            let mut tls = ClientTlsConfig::new().with_enabled_roots();
            if let Some(pem) = &self.ca_certificate {
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            if let Some((cert, key)) = &self.identity {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            if let Some(name) = &self.tls_domain {
                tls = tls.domain_name(name.clone());
            }
            endpoint = endpoint.tls_config(tls).map_err(Error::Connect)?;
        }
        Ok(endpoint)
    }

    fn credential(&self) -> Result<Credential, Error> {
        let header = self
            .api_key
            .as_ref()
            .map(|key| {
                MetadataValue::try_from(format!("Bearer {key}"))
                    .map_err(|_| Error::Config("the API key is not a valid header value".into()))
            })
            .transpose()?;
        Ok(Credential(header))
    }

    fn client(&self, channel: Channel) -> Result<Client, Error> {
        Ok(Client {
            stub: WebhookServiceClient::with_interceptor(channel, self.credential()?),
            tenant: self.tenant.clone(),
            timeout: self.timeout,
            watch_backoff: self.watch_backoff,
        })
    }

    /// Connects now, failing if Herald cannot be reached within the connect timeout.
    ///
    /// # Errors
    /// [`Error::Config`] for an unusable address or API key, [`Error::Connect`] when the
    /// connection (or its TLS handshake) fails.
    pub async fn connect(self) -> Result<Client, Error> {
        let channel = self.endpoint()?.connect().await.map_err(Error::Connect)?;
        self.client(channel)
    }

    /// A client that connects on its first call (and reconnects after a failure by
    /// itself), for services that start before Herald does.
    ///
    /// # Errors
    /// [`Error::Config`] for an unusable address or API key, [`Error::Connect`] for TLS
    /// material that cannot be used.
    pub fn connect_lazy(self) -> Result<Client, Error> {
        let channel = self.endpoint()?.connect_lazy();
        self.client(channel)
    }
}

/// Adds the `authorization` metadata to every call.
#[derive(Clone)]
pub struct Credential(Option<AsciiMetadataValue>);

impl Interceptor for Credential {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = if self.0.is_some() {
            "Bearer <redacted>"
        } else {
            "none"
        };
        f.debug_tuple("Credential").field(&shown).finish()
    }
}

/// A connection to Herald. Cheap to clone: clones share the connection.
///
/// ```no_run
/// # async fn run() -> Result<(), herald_client::Error> {
/// use herald_client::{Client, Event};
///
/// let client = Client::builder("herald.internal:50051")
///     .api_key(std::env::var("HERALD_API_KEY").unwrap_or_default())
///     .tenant("acme")
///     .connect()
///     .await?;
/// let published = client
///     .publish(Event::json("invoice.paid", serde_json::json!({"invoice": "in_1"})))
///     .await?;
/// println!("message {}", published.message_id);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    stub: Stub,
    tenant: String,
    timeout: Duration,
    watch_backoff: Backoff,
}

/// Requests that name a tenant, so the client can fill in its default.
trait Tenanted {
    fn tenant_slot(&mut self) -> &mut String;
    fn all_tenants(&self) -> bool {
        false
    }
}

macro_rules! tenanted {
    ($($request:ty),* $(,)?) => {$(
        impl Tenanted for $request {
            fn tenant_slot(&mut self) -> &mut String {
                &mut self.tenant_id
            }
        }
    )*};
    (all: $($request:ty),* $(,)?) => {$(
        impl Tenanted for $request {
            fn tenant_slot(&mut self) -> &mut String {
                &mut self.tenant_id
            }
            fn all_tenants(&self) -> bool {
                self.all_tenants
            }
        }
    )*};
}

tenanted!(
    pb::PublishRequest,
    pb::RegisterEndpointRequest,
    pb::UpdateEndpointRequest,
    pb::DeleteEndpointRequest,
    pb::RotateEndpointSecretRequest,
);
tenanted!(all:
    pb::GetEndpointRequest,
    pb::ListEndpointsRequest,
    pb::GetMessageRequest,
    pb::ListAttemptsRequest,
    pb::StreamDeliveryStatusRequest,
);

/// Requests whose answers come in pages: the token asking for the page after another,
/// and where an answer names that next page (empty on the last).
trait Paged: Tenanted + Clone + Send + 'static {
    type Page: Send + 'static;
    fn page_token(&mut self) -> &mut String;
    fn next_page_token(page: &mut Self::Page) -> &mut String;
}

macro_rules! paged {
    ($($request:ty => $page:ty),* $(,)?) => {$(
        impl Paged for $request {
            type Page = $page;
            fn page_token(&mut self) -> &mut String {
                &mut self.page_token
            }
            fn next_page_token(page: &mut $page) -> &mut String {
                &mut page.next_page_token
            }
        }
    )*};
}

paged!(
    pb::ListEndpointsRequest => pb::ListEndpointsResponse,
    pb::GetMessageRequest => pb::GetMessageResponse,
    pb::ListAttemptsRequest => pb::ListAttemptsResponse,
);

impl Client {
    /// Settings for a client of the Herald at `address` (`host:port` or a URI).
    pub fn builder(address: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(address)
    }

    /// The generated stub, carrying the credential, for calls not wrapped here. Requests
    /// made through it get no default tenant and no deadline but the channel's.
    pub fn stub(&self) -> Stub {
        self.stub.clone()
    }

    /// The client's default tenant (empty: the server decides).
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    fn with_tenant<T: Tenanted>(&self, mut message: T) -> T {
        if !message.all_tenants() && message.tenant_slot().is_empty() {
            message.tenant_slot().clone_from(&self.tenant);
        }
        message
    }

    /// A unary request: the default tenant filled in, and the call's deadline.
    fn unary<T: Tenanted>(&self, message: T) -> Request<T> {
        let mut request = Request::new(self.with_tenant(message));
        request.set_timeout(self.timeout);
        request
    }

    /// Every page of a paged call, asking for the next while the answer names one; each
    /// page is a unary request (the default tenant, the call's deadline). A page that
    /// fails ends the stream with its error.
    fn pages<T, F, Fut>(
        &self,
        mut request: T,
        call: F,
    ) -> impl Stream<Item = Result<T::Page, Error>> + Send + 'static
    where
        T: Paged,
        F: Fn(Stub, Request<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<tonic::Response<T::Page>, tonic::Status>> + Send,
    {
        let client = self.clone();
        async_stream::try_stream! {
            loop {
                let mut page = call(client.stub.clone(), client.unary(request.clone()))
                    .await?
                    .into_inner();
                let next = std::mem::take(T::next_page_token(&mut page));
                yield page;
                if next.is_empty() {
                    break;
                }
                *request.page_token() = next;
            }
        }
    }

    /// Publishes one event. OK means the message and its deliveries are durably stored.
    ///
    /// # Errors
    /// The call's status: `INVALID_ARGUMENT` with field violations, `ALREADY_EXISTS` for
    /// an idempotency key reused with another payload, `RESOURCE_EXHAUSTED` with a retry
    /// delay when publishing too fast, and so on.
    pub async fn publish(&self, event: Event) -> Result<pb::PublishResponse, Error> {
        let request = self.unary(event.into_request());
        Ok(self.stub.clone().publish(request).await?.into_inner())
    }

    /// Publishes up to 1,000 events in one call; each has its own outcome, in order.
    ///
    /// # Errors
    /// The call's status when the batch as a whole is refused; an event refused alone is
    /// an `Err` in its place in the result.
    pub async fn publish_batch(
        &self,
        events: impl IntoIterator<Item = Event>,
    ) -> Result<Vec<Result<pb::PublishResponse, pb::PublishError>>, Error> {
        let requests = events
            .into_iter()
            .map(|e| self.with_tenant(e.into_request()))
            .collect();
        let mut request = Request::new(pb::PublishBatchRequest { requests });
        request.set_timeout(self.timeout);
        let response = self.stub.clone().publish_batch(request).await?.into_inner();
        Ok(response
            .results
            .into_iter()
            .map(|r| match r.result {
                Some(pb::publish_batch_result::Result::Published(p)) => Ok(p),
                Some(pb::publish_batch_result::Result::Error(e)) => Err(e),
                None => Err(pb::PublishError {
                    code: tonic::Code::Unknown as i32,
                    message: "the server sent an empty result".into(),
                    field_violations: Vec::new(),
                }),
            })
            .collect())
    }

    /// Registers an endpoint. The response holds the signing secret: it is not shown
    /// again.
    ///
    /// # Errors
    /// The call's status, e.g. `INVALID_ARGUMENT` naming each invalid field,
    /// `ALREADY_EXISTS` for a taken id.
    pub async fn register_endpoint(
        &self,
        request: pb::RegisterEndpointRequest,
    ) -> Result<pb::RegisterEndpointResponse, Error> {
        let request = self.unary(request);
        Ok(self
            .stub
            .clone()
            .register_endpoint(request)
            .await?
            .into_inner())
    }

    /// One endpoint of the default tenant.
    ///
    /// # Errors
    /// `NOT_FOUND` when there is none with this id (in this tenant), or the call's status.
    pub async fn get_endpoint(
        &self,
        endpoint_id: impl Into<String>,
    ) -> Result<pb::Endpoint, Error> {
        let request = self.unary(pb::GetEndpointRequest {
            endpoint_id: endpoint_id.into(),
            ..Default::default()
        });
        let response = self.stub.clone().get_endpoint(request).await?.into_inner();
        response.endpoint.ok_or_else(|| missing("endpoint"))
    }

    /// Every endpoint the request selects, fetching page after page as the stream is
    /// read. `ListEndpointsRequest::default()` lists the default tenant's.
    ///
    /// Each item is `Err` when a page fails; the stream ends after it.
    pub fn list_endpoints(
        &self,
        request: pb::ListEndpointsRequest,
    ) -> impl Stream<Item = Result<pb::Endpoint, Error>> + Send + 'static {
        let pages = self.pages(request, |mut stub, call| async move {
            stub.list_endpoints(call).await
        });
        async_stream::try_stream! {
            for await page in pages {
                for endpoint in page?.endpoints {
                    yield endpoint;
                }
            }
        }
    }

    /// Replaces the fields of `endpoint` named in `fields` (e.g. `["url", "enabled"]`)
    /// on the endpoint with id `endpoint.id`, and returns it as stored.
    ///
    /// # Errors
    /// `NOT_FOUND`, `INVALID_ARGUMENT` with field violations, or the call's status.
    pub async fn update_endpoint(
        &self,
        endpoint: pb::Endpoint,
        fields: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<pb::Endpoint, Error> {
        let request = self.unary(pb::UpdateEndpointRequest {
            endpoint: Some(endpoint),
            update_mask: Some(prost_types::FieldMask {
                paths: fields.into_iter().map(Into::into).collect(),
            }),
            tenant_id: String::new(),
        });
        let response = self
            .stub
            .clone()
            .update_endpoint(request)
            .await?
            .into_inner();
        response.endpoint.ok_or_else(|| missing("endpoint"))
    }

    /// Deletes an endpoint; returns how many pending deliveries were cancelled.
    ///
    /// # Errors
    /// `NOT_FOUND` or the call's status.
    pub async fn delete_endpoint(&self, endpoint_id: impl Into<String>) -> Result<u32, Error> {
        let request = self.unary(pb::DeleteEndpointRequest {
            endpoint_id: endpoint_id.into(),
            tenant_id: String::new(),
        });
        let response = self
            .stub
            .clone()
            .delete_endpoint(request)
            .await?
            .into_inner();
        Ok(response.cancelled_deliveries)
    }

    /// Issues a new signing secret (in the response, shown only there). The previous one
    /// keeps signing beside it for `grace_period`, or the server's default when `None`.
    ///
    /// # Errors
    /// `NOT_FOUND` or the call's status.
    pub async fn rotate_endpoint_secret(
        &self,
        endpoint_id: impl Into<String>,
        grace_period: Option<Duration>,
    ) -> Result<pb::RotateEndpointSecretResponse, Error> {
        let grace_period = grace_period
            .map(|d| {
                prost_types::Duration::try_from(d)
                    .map_err(|_| Error::Config(format!("grace period {d:?} is too long")))
            })
            .transpose()?;
        let request = self.unary(pb::RotateEndpointSecretRequest {
            endpoint_id: endpoint_id.into(),
            grace_period,
            tenant_id: String::new(),
        });
        Ok(self
            .stub
            .clone()
            .rotate_endpoint_secret(request)
            .await?
            .into_inner())
    }

    /// A message with the state of its delivery to every endpoint: the server's pages
    /// followed (each with the call's deadline) and their deliveries joined in endpoint
    /// order, so `next_page_token` is empty.
    ///
    /// # Errors
    /// `NOT_FOUND` or the status of the call for any page.
    pub async fn get_message(
        &self,
        message_id: impl Into<String>,
    ) -> Result<pb::GetMessageResponse, Error> {
        let request = pb::GetMessageRequest {
            message_id: message_id.into(),
            ..Default::default()
        };
        let pages = self.pages(request, |mut stub, call| async move {
            stub.get_message(call).await
        });
        let mut pages = std::pin::pin!(pages);
        let mut answer = pb::GetMessageResponse::default();
        while let Some(page) = pages.next().await {
            let page = page?;
            // The same message on every page.
            answer.message = page.message;
            answer.deliveries.extend(page.deliveries);
        }
        Ok(answer)
    }

    /// Every delivery attempt the request selects, oldest first, page after page.
    ///
    /// Each item is `Err` when a page fails; the stream ends after it.
    pub fn list_attempts(
        &self,
        request: pb::ListAttemptsRequest,
    ) -> impl Stream<Item = Result<pb::Attempt, Error>> + Send + 'static {
        let pages = self.pages(request, |mut stub, call| async move {
            stub.list_attempts(call).await
        });
        async_stream::try_stream! {
            for await page in pages {
                for attempt in page?.attempts {
                    yield attempt;
                }
            }
        }
    }

    /// The live status events the request selects, as a stream that reconnects by
    /// itself (see [`Watch`]). Leave `after_cursor` unset to start from now, or set it
    /// to a cursor kept from an earlier watch to miss nothing since.
    pub fn watch(&self, request: pb::StreamDeliveryStatusRequest) -> Watch {
        Watch::new(
            self.stub.clone(),
            self.with_tenant(request),
            self.watch_backoff,
        )
    }
}

fn missing(field: &str) -> Error {
    tonic::Status::internal(format!("the server's answer has no {field}")).into()
}
