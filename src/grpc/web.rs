//! gRPC-Web on the gRPC port, for browsers: tonic-web translates it (over HTTP/1.1, or
//! HTTP/2 where TLS lets the browser choose), and CORS lets the pages of the origins an
//! operator lists call it. A page of any other origin is refused by the browser; callers
//! that are not browsers need no CORS at all. Every call still needs its credential.

use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::layer::REQUEST_ID;

/// The origins whose pages may call the gRPC port (`WEBHOOK_CORS_ORIGINS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// These, as browsers send them (`https://dash.example.com:8443`); none by default.
    #[default]
    None,
    Listed(Vec<HeaderValue>),
    /// Every origin: only while authentication is off.
    Any,
}

/// Why an origin cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error("\"*\" lets every web page call Herald; it is allowed only with WEBHOOK_AUTH=off")]
    AnyWithAuthentication,
    #[error("\"*\" cannot be listed beside other origins")]
    AnyAmongOthers,
    #[error(
        "{0:?} is not an origin: scheme http or https and a host, optionally a port, nothing else"
    )]
    NotAnOrigin(String),
}

impl CorsOrigins {
    /// The origins of a comma-separated setting, as browsers write them (lowercase
    /// scheme and host, no default port, no trailing slash).
    ///
    /// # Errors
    /// A value that is not an origin, or `*` while `authenticated`.
    pub fn parse(values: &[String], authenticated: bool) -> Result<Self, OriginError> {
        let values: Vec<&str> = values
            .iter()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .collect();
        if values.contains(&"*") {
            return match (values.len(), authenticated) {
                (1, false) => Ok(Self::Any),
                (1, true) => Err(OriginError::AnyWithAuthentication),
                _ => Err(OriginError::AnyAmongOthers),
            };
        }
        if values.is_empty() {
            return Ok(Self::None);
        }
        values
            .into_iter()
            .map(origin)
            .collect::<Result<_, _>>()
            .map(Self::Listed)
    }

    /// The CORS layer answering preflights and marking answers for these origins.
    pub fn layer(&self) -> CorsLayer {
        let allowed = match self {
            Self::None => AllowOrigin::list([]),
            Self::Listed(origins) => AllowOrigin::list(origins.iter().cloned()),
            Self::Any => AllowOrigin::any(),
        };
        let names = |names: &[&'static str]| -> Vec<HeaderName> {
            names.iter().map(|n| HeaderName::from_static(n)).collect()
        };
        let mut request_headers = names(&[
            "x-grpc-web",
            "x-user-agent",
            "grpc-timeout",
            REQUEST_ID,
            "traceparent",
            "tracestate",
        ]);
        request_headers.extend([CONTENT_TYPE, AUTHORIZATION]);
        CorsLayer::new()
            .allow_origin(allowed)
            .allow_methods([Method::POST])
            .allow_headers(request_headers)
            .expose_headers(names(&[
                "grpc-status",
                "grpc-message",
                "grpc-status-details-bin",
                REQUEST_ID,
            ]))
            .max_age(Duration::from_secs(24 * 3600))
    }
}

/// `value` as the `Origin` header of a page served from it.
fn origin(value: &str) -> Result<HeaderValue, OriginError> {
    let not_an_origin = || OriginError::NotAnOrigin(value.to_owned());
    let url = url::Url::parse(value).map_err(|_| not_an_origin())?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && !value.trim_end_matches('/').ends_with(['?', '#']);
    if !plain {
        return Err(not_an_origin());
    }
    // `ascii_serialization` drops a default port and lowercases, as browsers do.
    HeaderValue::from_str(&url.origin().ascii_serialization()).map_err(|_| not_an_origin())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str], authenticated: bool) -> Result<CorsOrigins, OriginError> {
        let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        CorsOrigins::parse(&values, authenticated)
    }

    #[test]
    fn origins_are_written_as_browsers_send_them() {
        let listed = parse(
            &["https://Dash.Example.com:443/", " http://localhost:5173 "],
            true,
        )
        .unwrap();
        assert_eq!(
            listed,
            CorsOrigins::Listed(vec![
                HeaderValue::from_static("https://dash.example.com"),
                HeaderValue::from_static("http://localhost:5173"),
            ])
        );
        assert_eq!(parse(&[], true).unwrap(), CorsOrigins::None);
        assert_eq!(parse(&[""], true).unwrap(), CorsOrigins::None);
    }

    #[test]
    fn what_is_not_an_origin_is_refused() {
        for bad in [
            "dash.example.com",
            "ftp://example.com",
            "https://example.com/app",
            "https://example.com?x=1",
            "https://user@example.com",
            "https://",
        ] {
            assert!(
                matches!(parse(&[bad], true), Err(OriginError::NotAnOrigin(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn any_origin_only_without_authentication() {
        assert!(matches!(
            parse(&["*"], true),
            Err(OriginError::AnyWithAuthentication)
        ));
        assert_eq!(parse(&["*"], false).unwrap(), CorsOrigins::Any);
        assert!(matches!(
            parse(&["*", "https://a.example"], false),
            Err(OriginError::AnyAmongOthers)
        ));
    }
}
