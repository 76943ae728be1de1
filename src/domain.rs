//! Domain values, parsed once at the edge ("parse, don't validate").
//!
//! Every type here is valid by construction: the gRPC layer turns wire input into these
//! with `parse`, and the core (`delivery`, `storage`) never checks them again. This module
//! knows nothing of gRPC or of any storage backend; a parse failure is a [`Invalid`]
//! carrying only a description, to which the caller adds the field path.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Why a value was rejected; the caller names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(description: impl Into<String>) -> Invalid {
    Invalid(description.into())
}

/// Checks the characters and length shared by ids, keys and channel names.
fn check_token(
    value: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
    what: &str,
) -> Result<(), Invalid> {
    if value.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if value.len() > max {
        return Err(invalid(format!("must be at most {max} characters")));
    }
    if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
        return Err(invalid(format!("{bad:?} is not allowed; {what}")));
    }
    Ok(())
}

/// The characters of event types and tenant ids: `[a-z0-9_.-]`.
fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.')
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// `String` conversions through `parse` (or the parser named), so serde and callers can
/// only build valid values.
macro_rules! string_conversions {
    ($name:ident) => {
        string_conversions!($name, parse);
    };
    ($name:ident, $parse:ident) => {
        impl TryFrom<String> for $name {
            type Error = Invalid;
            fn try_from(value: String) -> Result<Self, Invalid> {
                Self::$parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

/// A dotted lowercase event name such as `invoice.paid`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventType(String);

impl EventType {
    pub const MAX_LEN: usize = 128;

    /// # Errors
    /// When the name is empty, too long, has characters outside `[a-z0-9_.-]`, or has an
    /// empty dotted segment.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        check_token(value, Self::MAX_LEN, is_name_char, "use [a-z0-9_.-]")?;
        if value.split('.').any(str::is_empty) {
            return Err(invalid("dotted segments must not be empty"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_conversions!(EventType);

/// An endpoint's event-type filter entry: an exact name or `prefix.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventPattern(String);

impl EventPattern {
    /// # Errors
    /// When the pattern is neither a valid event type nor a valid event type followed by `.*`.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let name = value.strip_suffix(".*").unwrap_or(value);
        EventType::parse(name)
            .map_err(|e| invalid(format!("{e} (an event type, or a prefix followed by .*)")))?;
        Ok(Self(value.to_owned()))
    }

    pub fn matches(&self, event: &EventType) -> bool {
        match self.0.strip_suffix(".*") {
            Some(prefix) => event
                .0
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.')),
            None => self.0 == event.0,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_conversions!(EventPattern);

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            /// A new unique id: the prefix and a ULID, so ids sort by creation time.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, ulid::Ulid::new()))
            }

            /// The id as a client names it.
            ///
            /// # Errors
            /// When the id is empty, too long or has characters outside `[A-Za-z0-9_.-]`.
            pub fn parse(value: &str) -> Result<Self, Invalid> {
                check_token(value, Self::MAX_LEN, is_id_char, "use [A-Za-z0-9_.-]")?;
                Ok(Self(value.to_owned()))
            }

            /// The id as a store keeps it: as a client names it, or scoped to a tenant
            /// (`tenant~id`).
            ///
            /// # Errors
            /// When either part is not valid.
            pub fn parse_stored(value: &str) -> Result<Self, Invalid> {
                if let Some((tenant, id)) = value.split_once(TENANT_SCOPE) {
                    TenantId::parse(tenant)?;
                    Self::parse(id)?;
                    return Ok(Self(value.to_owned()));
                }
                Self::parse(value)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        string_conversions!($name, parse_stored);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Identifies an endpoint: client-chosen or `ep_<ulid>`.
    EndpointId, "ep_", 64
);
id_type!(
    /// Identifies a message: `msg_<ulid>`, also the `webhook-id` of every request.
    MessageId, "msg_", 64
);

/// Separates a tenant from an id the tenant chose, in the ids the stores keep.
const TENANT_SCOPE: char = '~';

impl EndpointId {
    /// The id under which the store keeps endpoint `self` of `tenant`. Endpoint ids are
    /// chosen per tenant, so two tenants may both have an `orders`, and registering one
    /// never tells whether another tenant has it: outside the default tenant the stored
    /// id is `tenant~id`. The default tenant's ids are stored as they are, as they were
    /// before tenants existed.
    pub fn in_tenant(&self, tenant: &TenantId) -> Self {
        if tenant.as_str() == TenantId::DEFAULT {
            self.clone()
        } else {
            Self(format!("{tenant}{TENANT_SCOPE}{}", self.0))
        }
    }

    /// The tenant of the endpoint a stored id names.
    pub fn tenant(&self) -> TenantId {
        self.0
            .split_once(TENANT_SCOPE)
            .map_or_else(TenantId::default, |(tenant, _)| TenantId(tenant.to_owned()))
    }

    /// The id as its tenant knows it: the stored id without its tenant.
    pub fn public(&self) -> &str {
        self.0
            .split_once(TENANT_SCOPE)
            .map_or(self.0.as_str(), |(_, id)| id)
    }
}

/// A customer of the deployment: every endpoint and message belongs to one, and nothing
/// crosses from one tenant to another.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub const MAX_LEN: usize = 64;
    /// The tenant of a request that names none.
    pub const DEFAULT: &'static str = "default";

    /// # Errors
    /// When the id is empty, too long or has characters outside `[a-z0-9_.-]`.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        check_token(value, Self::MAX_LEN, is_name_char, "use [a-z0-9_.-]")?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

string_conversions!(TenantId);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a channel name or idempotency key: printable ASCII without spaces.
///
/// # Errors
/// When the value is empty, longer than `max`, or not printable ASCII.
pub fn parse_label(value: &str, max: usize) -> Result<String, Invalid> {
    check_token(
        value,
        max,
        |c| c.is_ascii_graphic(),
        "use printable ASCII without spaces",
    )?;
    Ok(value.to_owned())
}

pub const MAX_CHANNEL_LEN: usize = 128;
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 256;

/// An HMAC signing key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    const PREFIX: &'static str = "whsec_";
    const MIN_BYTES: usize = 24;
    const MAX_BYTES: usize = 64;

    /// 32 fresh random bytes.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    /// # Errors
    /// When the value lacks the `whsec_` prefix, is not base64, or does not decode to
    /// 24–64 bytes.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let encoded = value
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| invalid("must start with whsec_"))?;
        let key = BASE64
            .decode(encoded)
            .map_err(|_| invalid("must be whsec_ followed by base64"))?;
        if !(Self::MIN_BYTES..=Self::MAX_BYTES).contains(&key.len()) {
            return Err(invalid(format!(
                "must decode to {}–{} bytes",
                Self::MIN_BYTES,
                Self::MAX_BYTES
            )));
        }
        Ok(Self(key))
    }

    pub fn key(&self) -> &[u8] {
        &self.0
    }

    /// The `whsec_…` form shown to the user once.
    pub fn expose(&self) -> String {
        format!("{}{}", Self::PREFIX, BASE64.encode(&self.0))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.expose())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The secrets that sign an endpoint's requests: the current one and, during a rotation's
/// grace period, the previous one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningSecrets {
    pub current: Secret,
    pub previous: Option<(Secret, SystemTime)>,
}

impl SigningSecrets {
    pub fn new(current: Secret) -> Self {
        Self {
            current,
            previous: None,
        }
    }

    /// Every secret valid at `now`, the current one first.
    pub fn valid_at(&self, now: SystemTime) -> impl Iterator<Item = &Secret> {
        let previous = self
            .previous
            .as_ref()
            .filter(|(_, until)| now < *until)
            .map(|(s, _)| s);
        std::iter::once(&self.current).chain(previous)
    }

    /// Makes `next` current; the current secret stays valid until `previous_until`.
    pub fn rotate(&mut self, next: Secret, previous_until: SystemTime) {
        let previous = std::mem::replace(&mut self.current, next);
        self.previous = Some((previous, previous_until));
    }

    pub fn previous_expires_at(&self) -> Option<SystemTime> {
        self.previous.as_ref().map(|(_, until)| *until)
    }
}

/// How delays between attempts are randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// Uniform in `[0, backoff]`: spreads retries of many deliveries widest.
    Full,
    /// The backoff ±20 %: keeps the schedule recognisable.
    Proportional,
}

/// An endpoint's partial override of the server's retry policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetryOverride {
    pub max_retries: Option<u32>,
    pub initial_delay: Option<Duration>,
    pub max_delay: Option<Duration>,
    pub multiplier: Option<f64>,
    pub jitter: Option<Jitter>,
}

/// An endpoint's rate limit, relative to the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitOverride {
    /// The server's `WEBHOOK_RATE_LIMIT`.
    #[default]
    Default,
    /// No limit for this endpoint.
    Unlimited,
    /// `limit` requests per `window` (the server's window when unset), with `burst`
    /// saved up (`limit` when unset).
    Custom {
        limit: u32,
        window: Option<Duration>,
        burst: Option<u32>,
    },
}

/// An endpoint's overrides of the server's protection settings; `None` keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProtectionOverride {
    pub rate_limit: RateLimitOverride,
    pub failure_threshold: Option<u32>,
    pub breaker_timeout: Option<Duration>,
    pub max_in_flight: Option<u32>,
}

/// Why an endpoint receives nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    Manual,
    Gone,
    Failing,
}

/// A custom request header: an HTTP token as its name (lowercased) and a value with no
/// control character but tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomHeader {
    pub name: String,
    pub value: String,
}

impl CustomHeader {
    /// Most custom headers one endpoint may have.
    pub const MAX_COUNT: usize = 32;
    /// Most bytes of names and values, over all of an endpoint's custom headers.
    pub const MAX_TOTAL_SIZE: usize = 8 * 1024;
    /// Names an endpoint may not set: what Herald sets itself (the payload's framing and
    /// type, the signature, the trace context, its own name), what changes how the
    /// connection or a proxy behaves, and what would make a request smuggle another.
    const RESERVED: [&'static str; 14] = [
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "upgrade",
        "expect",
        "te",
        "trailer",
        "keep-alive",
        "traceparent",
        "tracestate",
        "user-agent",
    ];
    /// Prefixes of reserved names: proxy credentials and directions, and the signature
    /// headers (Standard Webhooks' and the legacy `x-webhook-*` ones).
    const RESERVED_PREFIXES: [&'static str; 3] = ["proxy-", "webhook-", "x-webhook-"];

    /// Whether `name` (lowercase) is one an endpoint may not set.
    pub fn is_reserved(name: &str) -> bool {
        Self::RESERVED.contains(&name)
            || Self::RESERVED_PREFIXES.iter().any(|p| name.starts_with(p))
    }

    /// One header, on its own; the rules over a set of headers (count, size, names
    /// differing only in case) are the caller's.
    ///
    /// # Errors
    /// When the name is not an HTTP token (RFC 9110 §5.6.2) or is reserved, compared
    /// without case; or when the value holds a control character other than tab (CR, LF,
    /// NUL, DEL…). Non-ASCII text is allowed in values and sent as its UTF-8 bytes.
    pub fn parse(name: &str, value: &str) -> Result<Self, Invalid> {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(invalid(
                "not a header name: use letters, digits and !#$%&'*+-.^_`|~",
            ));
        }
        let name = name.to_ascii_lowercase();
        if Self::is_reserved(&name) {
            return Err(invalid(format!(
                "{name} is reserved: Herald sets it, or it changes how the request is carried"
            )));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(invalid(
                "the value must not hold control characters (CR, LF, NUL…) other than tab",
            ));
        }
        Ok(Self {
            name,
            value: value.to_owned(),
        })
    }

    /// The header with its value hidden, for callers who may not see it: the value may
    /// be the receiver's credential.
    pub fn redacted(&self) -> Self {
        Self {
            name: self.name.clone(),
            value: String::new(),
        }
    }
}

/// A `tchar` of RFC 9110: the characters of header names.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A webhook receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: EndpointId,
    /// Endpoints written before tenants existed belong to the default tenant.
    #[serde(default)]
    pub tenant: TenantId,
    pub url: url::Url,
    pub description: String,
    /// Empty: every event type.
    pub event_types: Vec<EventPattern>,
    /// Empty: every message.
    pub channels: Vec<String>,
    pub headers: Vec<CustomHeader>,
    pub retry: RetryOverride,
    /// Overrides of the server's endpoint protection.
    #[serde(default)]
    pub protection: ProtectionOverride,
    /// `None` when enabled.
    pub disabled: Option<DisabledReason>,
    /// Since when every attempt has failed; cleared by any success.
    #[serde(default)]
    pub failing_since: Option<SystemTime>,
    pub secrets: SigningSecrets,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

impl Endpoint {
    pub const MAX_DESCRIPTION_LEN: usize = 1024;

    /// # Errors
    /// When the URL does not parse, is not http(s) or carries credentials.
    pub fn parse_url(value: &str) -> Result<url::Url, Invalid> {
        if value.len() > 2048 {
            return Err(invalid("must be at most 2048 characters"));
        }
        let url = url::Url::parse(value).map_err(|e| invalid(format!("not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("scheme must be http or https"));
        }
        if url.host().is_none() {
            return Err(invalid("must have a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry credentials; use custom headers"));
        }
        Ok(url)
    }

    pub fn is_enabled(&self) -> bool {
        self.disabled.is_none()
    }

    /// Whether a message of this tenant, type and channels goes to this endpoint: it is
    /// the endpoint's own tenant (there is no way across tenants), the endpoint is
    /// enabled and its filters match.
    pub fn receives(&self, tenant: &TenantId, event: &EventType, channels: &[String]) -> bool {
        let type_ok =
            self.event_types.is_empty() || self.event_types.iter().any(|p| p.matches(event));
        let channel_ok =
            self.channels.is_empty() || self.channels.iter().any(|c| channels.contains(c));
        self.tenant == *tenant && self.is_enabled() && type_ok && channel_ok
    }
}

/// The fields of an endpoint to replace; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointUpdate {
    pub url: Option<url::Url>,
    pub description: Option<String>,
    pub event_types: Option<Vec<EventPattern>>,
    pub channels: Option<Vec<String>>,
    pub headers: Option<Vec<CustomHeader>>,
    pub retry: Option<RetryOverride>,
    pub rate_limit: Option<RateLimitOverride>,
    /// Failure threshold and open period of the circuit breaker.
    pub circuit_breaker: Option<(Option<u32>, Option<Duration>)>,
    pub max_in_flight: Option<Option<u32>>,
    pub enabled: Option<bool>,
}

impl EndpointUpdate {
    /// Applies the update to `endpoint`, as of `now`. Enabling clears the reason it was
    /// disabled for; disabling by hand keeps an earlier reason.
    pub fn apply(self, endpoint: &mut Endpoint, now: SystemTime) {
        let Self {
            url,
            description,
            event_types,
            channels,
            headers,
            retry,
            rate_limit,
            circuit_breaker,
            max_in_flight,
            enabled,
        } = self;
        if let Some(u) = url {
            endpoint.url = u;
        }
        if let Some(d) = description {
            endpoint.description = d;
        }
        if let Some(e) = event_types {
            endpoint.event_types = e;
        }
        if let Some(c) = channels {
            endpoint.channels = c;
        }
        if let Some(h) = headers {
            endpoint.headers = h;
        }
        if let Some(r) = retry {
            endpoint.retry = r;
        }
        let protection = &mut endpoint.protection;
        protection.rate_limit = rate_limit.unwrap_or(protection.rate_limit);
        if let Some((threshold, timeout)) = circuit_breaker {
            (protection.failure_threshold, protection.breaker_timeout) = (threshold, timeout);
        }
        protection.max_in_flight = max_in_flight.unwrap_or(protection.max_in_flight);
        match enabled {
            Some(true) => endpoint.disabled = None,
            Some(false) => endpoint.disabled = endpoint.disabled.or(Some(DisabledReason::Manual)),
            None => {}
        }
        endpoint.updated_at = now;
    }
}

/// Where an endpoint's requests go: its URL's host (as the URL parser normalised it) and
/// port. Every endpoint pointing at one destination shares that host's ceiling on
/// attempts in flight and requests per second.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination(String);

impl Destination {
    pub fn of(url: &url::Url) -> Self {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or(0);
        Self(format!("{host}:{port}"))
    }

    /// `host:port`, an IPv6 host in brackets.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Endpoint {
    pub fn destination(&self) -> Destination {
        Destination::of(&self.url)
    }
}

/// The W3C trace context a message was published in (`traceparent`, `tracestate`),
/// carried into every attempt to deliver it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    pub traceparent: String,
    /// Empty when the publisher sent none.
    pub tracestate: String,
}

/// A message as published, before it has an id.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub tenant: TenantId,
    pub event_type: EventType,
    pub payload: Bytes,
    pub content_type: String,
    pub idempotency_key: Option<String>,
    pub channels: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub trace: Option<TraceContext>,
    /// How long the message is kept once settled, counted from its publication.
    pub retention: Duration,
}

impl NewMessage {
    pub const DEFAULT_CONTENT_TYPE: &'static str = "application/json";
    /// How deeply a JSON payload may nest objects and arrays: the deepest whose
    /// `google.protobuf.Value` form (GetMessage's `payload_json`) every stock protobuf
    /// library decodes, under the recursion limit of 100 nested messages they keep by
    /// default (prost, Java, Python, C++): a level of objects takes three of them.
    pub const MAX_JSON_DEPTH: usize = 32;

    /// Refuses a JSON payload (by its media type) nested deeper than
    /// [`NewMessage::MAX_JSON_DEPTH`]; other payloads are not looked at.
    ///
    /// # Errors
    /// The depth found and the one allowed.
    pub fn check_json_depth(content_type: &str, payload: &[u8]) -> Result<(), Invalid> {
        let depth = if is_json(content_type) {
            json_depth(payload)
        } else {
            0
        };
        if depth > Self::MAX_JSON_DEPTH {
            Err(invalid(format!(
                "JSON nested {depth} levels deep; at most {} are allowed",
                Self::MAX_JSON_DEPTH
            )))
        } else {
            Ok(())
        }
    }
}

/// Whether a media type is JSON: `application/json`, or a `+json` suffix.
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// How deeply JSON text nests objects and arrays (a scalar: 0), counted by its brackets
/// outside strings, without parsing it: text that is not JSON is measured the same way.
pub fn json_depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub tenant: TenantId,
    pub event_type: EventType,
    pub payload: Bytes,
    pub content_type: String,
    pub idempotency_key: Option<String>,
    pub channels: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: SystemTime,
    pub trace: Option<TraceContext>,
    /// When the message may be deleted, once every delivery has settled.
    pub expires_at: SystemTime,
    /// When its payload (and its attempts' response excerpts) were removed.
    pub expunged_at: Option<SystemTime>,
}

/// Where a (message, endpoint) delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    InFlight,
    Succeeded,
    Failed,
    Cancelled,
}

impl DeliveryState {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub message_id: MessageId,
    pub endpoint_id: EndpointId,
    pub state: DeliveryState,
    pub attempt_count: u32,
    pub next_attempt_at: Option<SystemTime>,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

/// Why no HTTP response arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    Timeout,
    Dns,
    Connection,
    Tls,
    /// The egress policy refused every address: nothing was sent.
    Blocked,
    Other,
}

/// What one HTTP attempt observed.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub started_at: SystemTime,
    pub latency: Duration,
    /// The HTTP status, when a response arrived.
    pub status_code: Option<u16>,
    /// Why no response arrived.
    pub transport_error: Option<TransportError>,
    /// Why the attempt failed; empty on success.
    pub error: String,
    pub response_excerpt: String,
}

/// One HTTP attempt of a delivery, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub id: i64,
    pub message_id: MessageId,
    pub endpoint_id: EndpointId,
    pub number: u32,
    pub succeeded: bool,
    pub record: AttemptRecord,
}

/// What a status event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    AttemptStarted,
    AttemptSucceeded,
    AttemptFailed,
    RetryScheduled,
    /// Retries exhausted (or 410 Gone): the delivery failed.
    DeliveryExhausted,
    DeliveryCancelled,
    EndpointDisabled,
    EndpointEnabled,
    CircuitOpened,
    CircuitClosed,
}

impl StatusKind {
    pub const ALL: [Self; 10] = [
        Self::AttemptStarted,
        Self::AttemptSucceeded,
        Self::AttemptFailed,
        Self::RetryScheduled,
        Self::DeliveryExhausted,
        Self::DeliveryCancelled,
        Self::EndpointDisabled,
        Self::EndpointEnabled,
        Self::CircuitOpened,
        Self::CircuitClosed,
    ];
}

/// A change of a delivery or an endpoint, as the status stream shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEvent {
    /// Position in the stream: increases with every event, never reused.
    pub cursor: u64,
    pub at: SystemTime,
    pub kind: StatusKind,
    pub message_id: Option<MessageId>,
    pub endpoint_id: Option<EndpointId>,
    pub event_type: Option<EventType>,
    pub attempt_number: Option<u32>,
    pub status_code: Option<u16>,
    pub transport_error: Option<TransportError>,
    pub error: String,
    pub latency: Option<Duration>,
    /// The next attempt (retry scheduled) or the probe (circuit opened).
    pub next_attempt_at: Option<SystemTime>,
    pub disabled_reason: Option<DisabledReason>,
}

impl StatusEvent {
    /// An event about `kind` with every detail empty, to fill in.
    pub fn new(kind: StatusKind, at: SystemTime) -> Self {
        Self {
            cursor: 0,
            at,
            kind,
            message_id: None,
            endpoint_id: None,
            event_type: None,
            attempt_number: None,
            status_code: None,
            transport_error: None,
            error: String::new(),
            latency: None,
            next_attempt_at: None,
            disabled_reason: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_depth_counts_brackets_outside_strings() {
        assert_eq!(json_depth(b"1"), 0);
        assert_eq!(json_depth(br#"{"a":[1,{"b":2}],"c":{}}"#), 3);
        assert_eq!(json_depth(br#"["[[[{", "\"]]]"]"#), 1);
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert_eq!(json_depth(deep.as_bytes()), 40);
        assert!(NewMessage::check_json_depth("application/json", deep.as_bytes()).is_err());
        assert!(
            NewMessage::check_json_depth("application/vnd.x+json; v=1", deep.as_bytes()).is_err()
        );
        assert!(NewMessage::check_json_depth("text/plain", deep.as_bytes()).is_ok());
        let limit = "[".repeat(NewMessage::MAX_JSON_DEPTH);
        assert!(NewMessage::check_json_depth("application/json", limit.as_bytes()).is_ok());
    }

    #[test]
    fn a_destination_is_the_normalised_host_and_its_port() {
        let of = |url: &str| Destination::of(&url::Url::parse(url).unwrap()).to_string();
        assert_eq!(of("https://Hooks.Example.COM/a?b"), "hooks.example.com:443");
        assert_eq!(
            of("http://hooks.example.com:80/other"),
            "hooks.example.com:80"
        );
        assert_eq!(
            of("http://hooks.example.com:8080/"),
            "hooks.example.com:8080"
        );
        assert_eq!(of("http://[::1]:9000/"), "[::1]:9000");
        assert_eq!(
            of("http://127.1/"),
            "127.0.0.1:80",
            "one host however it is written"
        );
    }

    #[test]
    fn endpoint_ids_are_stored_per_tenant_and_shown_as_chosen() {
        let id = EndpointId::parse("orders").unwrap();
        let acme = TenantId::parse("acme").unwrap();
        let stored = id.in_tenant(&acme);
        assert_eq!(stored.as_str(), "acme~orders");
        assert_eq!((stored.public(), stored.tenant()), ("orders", acme.clone()));
        assert_eq!(EndpointId::parse_stored("acme~orders").unwrap(), stored);
        // The default tenant's ids are stored as they are, as before tenants existed.
        let default = id.in_tenant(&TenantId::default());
        assert_eq!(default, id);
        assert_eq!(default.tenant(), TenantId::default());
        // A client never names a stored form, and a stored form has valid parts.
        assert!(EndpointId::parse("acme~orders").is_err());
        for bad in ["Acme~orders", "acme~", "~orders", "acme~or~ders"] {
            assert!(EndpointId::parse_stored(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_types_are_dotted_lowercase() {
        assert!(EventType::parse("invoice.paid").is_ok());
        assert!(EventType::parse("a-b_c.d9").is_ok());
        for bad in [
            "",
            "Invoice.paid",
            "invoice..paid",
            ".paid",
            "paid.",
            "in voice",
            &"a".repeat(129),
        ] {
            assert!(EventType::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn patterns_match_exact_names_and_dotted_prefixes() {
        let event = EventType::parse("invoice.paid").unwrap();
        assert!(EventPattern::parse("invoice.paid").unwrap().matches(&event));
        assert!(EventPattern::parse("invoice.*").unwrap().matches(&event));
        assert!(
            !EventPattern::parse("invoice.paid.*")
                .unwrap()
                .matches(&event)
        );
        assert!(!EventPattern::parse("inv.*").unwrap().matches(&event));
        assert!(!EventPattern::parse("invoice").unwrap().matches(&event));
        assert!(EventPattern::parse("*").is_err());
        assert!(EventPattern::parse("invoice.*.x").is_err());
    }

    #[test]
    fn secrets_round_trip_and_never_print() {
        let secret = Secret::generate();
        let exposed = secret.expose();
        assert!(exposed.starts_with("whsec_"));
        assert_eq!(Secret::parse(&exposed).unwrap(), secret);
        assert_eq!(format!("{secret:?}"), "Secret(redacted)");
        assert!(Secret::parse("whsec_c2hvcnQ=").is_err());
        assert!(Secret::parse("nope").is_err());
    }

    #[test]
    fn previous_secret_signs_only_until_its_expiry() {
        let now = SystemTime::now();
        let mut secrets = SigningSecrets::new(Secret::generate());
        let old = secrets.current.clone();
        let new = Secret::generate();
        secrets.rotate(new.clone(), now + Duration::from_secs(60));
        assert_eq!(secrets.valid_at(now).collect::<Vec<_>>(), vec![&new, &old]);
        assert_eq!(
            secrets
                .valid_at(now + Duration::from_secs(60))
                .collect::<Vec<_>>(),
            vec![&new]
        );
    }

    #[test]
    fn custom_header_names_are_lowercased_tokens() {
        let h = CustomHeader::parse("X-Tenant", "acme").unwrap();
        assert_eq!((h.name.as_str(), h.value.as_str()), ("x-tenant", "acme"));
        assert!(CustomHeader::parse("x!#$%&'*+-.^_`|~9", "v").is_ok());
        for bad in [
            "", "bad name", "x:y", "x\r\ny", "x\0", "x(y)", "é", "x\"", "x/y",
        ] {
            assert!(CustomHeader::parse(bad, "v").is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn reserved_header_names_are_refused_in_any_case() {
        let reserved = [
            "host",
            "content-length",
            "content-type",
            "content-encoding",
            "transfer-encoding",
            "connection",
            "upgrade",
            "expect",
            "te",
            "trailer",
            "keep-alive",
            "traceparent",
            "tracestate",
            "user-agent",
            "proxy-authorization",
            "proxy-connection",
            "proxy-",
            "webhook-signature",
            "webhook-id",
            "x-webhook-signature",
            "x-webhook-foo",
        ];
        let title = |s: &str| {
            s.split('-')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("-")
        };
        let alternating = |s: &str| {
            s.chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect::<String>()
        };
        for name in reserved {
            for spelling in [
                name.to_owned(),
                name.to_ascii_uppercase(),
                title(name),
                alternating(name),
            ] {
                let e = CustomHeader::parse(&spelling, "v").unwrap_err();
                assert!(e.0.contains("reserved"), "{spelling}: {e}");
            }
        }
        assert!(CustomHeader::parse("Proxy-Authorization", "Basic eA==").is_err());
        assert!(CustomHeader::parse("X-Webhook-Foo", "1").is_err());
        // Names that only look alike are free.
        for free in [
            "x-host",
            "hosts",
            "webhook",
            "x-webhook",
            "proxy",
            "x-proxy-a",
            "tes",
        ] {
            assert!(CustomHeader::parse(free, "v").is_ok(), "{free} refused");
        }
    }

    #[test]
    fn custom_header_values_hold_no_control_character_but_tab() {
        for bad in [
            "a\r\nx-injected: 1",
            "a\nb",
            "a\rb",
            "a\0b",
            "\u{7f}",
            "\u{1b}[31m",
            "\u{85}",
        ] {
            assert!(
                CustomHeader::parse("x-ok", bad).is_err(),
                "{bad:?} accepted"
            );
        }
        // Tabs, spaces and non-ASCII text (sent as UTF-8 bytes) are allowed, and whatever
        // is allowed is a header the HTTP client can send.
        for good in ["", "a\tb", "Bearer abc.def", "café ☕", " padded "] {
            let h = CustomHeader::parse("X-Ok", good).unwrap();
            assert!(http::HeaderName::from_bytes(h.name.as_bytes()).is_ok());
            assert!(http::HeaderValue::from_str(&h.value).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn a_redacted_header_keeps_its_name_only() {
        let h = CustomHeader::parse("Authorization", "Bearer s3cret").unwrap();
        assert_eq!(
            h.redacted(),
            CustomHeader {
                name: "authorization".into(),
                value: String::new()
            }
        );
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(Endpoint::parse_url("https://example.com/hook").is_ok());
        assert!(Endpoint::parse_url("ftp://example.com").is_err());
        assert!(Endpoint::parse_url("not a url").is_err());
        assert!(Endpoint::parse_url("https://user:pw@example.com").is_err());
    }
}
