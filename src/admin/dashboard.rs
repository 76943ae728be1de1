//! The dashboard at `/ui` on the admin port: a page built from `dashboard/` (checked in
//! under `dashboard/dist/`, embedded here, so building Herald needs no Node) and
//! `/ui/config.json`, which tells the page where the gRPC port is. The page calls that
//! port over gRPC-Web with the operator's API key; this module serves files only and
//! holds no credential.
//!
//! Every `/ui` answer, a 404 included, carries a strict Content-Security-Policy whose
//! `connect-src` names the page's own origin and the gRPC port's, and headers that keep
//! the page out of frames and its address out of referrers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use sha2::{Digest, Sha256};

const INDEX: &[u8] = include_bytes!("../../dashboard/dist/index.html");
const SCRIPT: &[u8] = include_bytes!("../../dashboard/dist/app.js");
const STYLE: &[u8] = include_bytes!("../../dashboard/dist/app.css");

/// The page itself and the page's settings: read afresh on every load.
const NO_STORE: &str = "no-store";
/// The script and the style sheet keep their URLs across releases: a browser may keep
/// them, but asks whether they changed (their `ETag`) before using them.
const REVALIDATE: &str = "no-cache";

/// Where the page finds the gRPC port: on the host it was loaded from.
#[derive(Debug, Clone, Copy)]
pub struct Dashboard {
    /// The gRPC port, as bound (the real one when 0 was asked).
    pub grpc_port: u16,
    /// Whether the gRPC port speaks TLS: the page then calls it over https.
    pub tls: bool,
}

/// An embedded file with its validator.
struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: &'static [u8], content_type: &'static str) -> Self {
        let digest = Sha256::digest(body);
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            body,
            content_type,
            etag: HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a header value"),
        }
    }

    fn serve(&self, request: &HeaderMap, cache: &'static str) -> Response {
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .is_some_and(|tags| tags.as_bytes() == self.etag.as_bytes());
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::ETAG, self.etag.clone()),
        ];
        if fresh {
            (StatusCode::NOT_MODIFIED, headers).into_response()
        } else {
            (headers, self.body).into_response()
        }
    }
}

/// What the `/ui` routes share.
struct Site {
    dashboard: Dashboard,
    index: Asset,
    script: Asset,
    style: Asset,
}

impl Dashboard {
    /// The origin of the gRPC port as a page loaded through `Host: host` reaches it; `None`
    /// when the request names no host a URL could hold.
    pub fn grpc_origin(&self, host: Option<&HeaderValue>) -> Option<String> {
        let authority: http::uri::Authority = host?.to_str().ok()?.parse().ok()?;
        let name = authority.host();
        // Only what a host name or an IP address is made of (no user info, no quotes): the
        // result goes into a header and a URL.
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        let port_ok = authority.port_u16().is_some() || authority.as_str() == name;
        if !plain || !port_ok || authority.as_str().contains('@') {
            return None;
        }
        let host = url::Host::parse(name).ok()?;
        let scheme = if self.tls { "https" } else { "http" };
        Some(format!("{scheme}://{host}:{}", self.grpc_port))
    }
}

/// The policy of every `/ui` answer: the page's own files, and calls to the gRPC port.
fn content_security_policy(grpc_origin: Option<&str>) -> String {
    let connect = match grpc_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
}

/// The `/ui` routes, each answer with the security headers.
pub fn router(dashboard: Dashboard) -> axum::Router {
    let site = Arc::new(Site {
        dashboard,
        index: Asset::new(INDEX, "text/html; charset=utf-8"),
        script: Asset::new(SCRIPT, "text/javascript; charset=utf-8"),
        style: Asset::new(STYLE, "text/css; charset=utf-8"),
    });
    axum::Router::new()
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/app.js", get(script))
        .route("/ui/app.css", get(style))
        .route("/ui/config.json", get(config))
        .route("/ui/{*rest}", any(not_found))
        .layer(middleware::from_fn_with_state(site.clone(), secure))
        .with_state(site)
}

async fn index(State(site): State<Arc<Site>>, headers: HeaderMap) -> Response {
    site.index.serve(&headers, NO_STORE)
}

async fn script(State(site): State<Arc<Site>>, headers: HeaderMap) -> Response {
    site.script.serve(&headers, REVALIDATE)
}

async fn style(State(site): State<Arc<Site>>, headers: HeaderMap) -> Response {
    site.style.serve(&headers, REVALIDATE)
}

/// `{"grpcUrl": "http://<the page's host>:<gRPC port>"}`.
async fn config(State(site): State<Arc<Site>>, headers: HeaderMap) -> Response {
    let Some(origin) = site.dashboard.grpc_origin(headers.get(header::HOST)) else {
        return (
            StatusCode::BAD_REQUEST,
            "the request names no host the gRPC port could be reached at",
        )
            .into_response();
    };
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE))],
        axum::Json(serde_json::json!({ "grpcUrl": origin })),
    )
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

/// Adds the security headers to every `/ui` answer; an answer that set no cache policy
/// is not stored.
async fn secure(State(site): State<Arc<Site>>, request: Request, next: Next) -> Response {
    let origin = site
        .dashboard
        .grpc_origin(request.headers().get(header::HOST));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let policy = content_security_policy(origin.as_deref());
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&policy).expect("the policy holds only checked host characters"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static(NO_STORE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(tls: bool, host: &str) -> Option<String> {
        Dashboard {
            grpc_port: 50051,
            tls,
        }
        .grpc_origin(Some(&HeaderValue::from_str(host).unwrap()))
    }

    #[test]
    fn the_grpc_port_is_on_the_pages_host() {
        assert_eq!(
            origin(false, "127.0.0.1:9464").as_deref(),
            Some("http://127.0.0.1:50051")
        );
        assert_eq!(
            origin(true, "Dash.Example.com").as_deref(),
            Some("https://dash.example.com:50051")
        );
        assert_eq!(
            origin(false, "[::1]:9464").as_deref(),
            Some("http://[::1]:50051")
        );
    }

    #[test]
    fn a_host_that_is_not_one_names_no_origin() {
        for bad in [
            "",
            "user@example.com",
            "example.com/path",
            "exa mple.com",
            "example.com:port",
            "'self'",
            "a;b",
        ] {
            assert_eq!(origin(false, bad), None, "{bad:?}");
        }
        assert_eq!(
            Dashboard {
                grpc_port: 1,
                tls: false
            }
            .grpc_origin(None),
            None
        );
    }

    #[test]
    fn the_policy_allows_only_the_page_and_the_grpc_port() {
        let policy = content_security_policy(Some("http://127.0.0.1:50051"));
        assert_eq!(
            policy,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self' http://127.0.0.1:50051; frame-ancestors 'none'; \
             base-uri 'none'; form-action 'none'"
        );
        assert!(content_security_policy(None).contains("connect-src 'self';"));
    }
}
