//! gRPC-Web on the gRPC port, spoken as a browser speaks it: HTTP/1.1 POSTs of
//! length-prefixed frames, trailers in the last frame, CORS for the listed origins.

use std::time::Duration;

use herald::grpc::pb;
use herald::grpc::web::CorsOrigins;
use http::HeaderValue;
use prost::Message;

use crate::support::{
    ADMIN_KEY, Backend, PATIENCE, Sink, TestApp, browser, publish_json, spawn_app, spawn_app_with,
};

const SERVICE: &str = "herald.v1.WebhookService";
const DASHBOARD: &str = "http://dash.herald.test:8080";

/// One gRPC-Web message frame: flag 0, length, the message.
fn frame(message: &impl Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut framed = vec![0];
    framed.extend(u32::try_from(body.len()).unwrap().to_be_bytes());
    framed.extend(body);
    framed
}

/// A gRPC-Web call of `method` as a page of `origin` (if any) makes it.
fn call(
    app: &TestApp,
    method: &str,
    message: &impl Message,
    key: Option<&str>,
    origin: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut request = browser()
        .post(format!("http://{}/{SERVICE}/{method}", app.addr))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(frame(message));
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request
}

/// The frames of a gRPC-Web body as they arrive: messages, then the trailers.
#[derive(Default)]
struct Frames {
    buffer: Vec<u8>,
}

enum Frame {
    Message(Vec<u8>),
    Trailers(String),
}

impl Frames {
    fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    fn next(&mut self) -> Option<Frame> {
        let header = self.buffer.get(..5)?;
        let len = u32::from_be_bytes(header[1..5].try_into().unwrap()) as usize;
        let flag = header[0];
        let body = self.buffer.get(5..5 + len)?.to_vec();
        self.buffer.drain(..5 + len);
        Some(if flag & 0x80 == 0 {
            Frame::Message(body)
        } else {
            Frame::Trailers(String::from_utf8(body).unwrap())
        })
    }
}

/// The grpc-status of an answer: in its headers (a trailers-only answer) or its
/// trailers frame; and its message frames.
async fn unary(response: reqwest::Response) -> (String, Vec<Vec<u8>>) {
    assert_eq!(response.status(), 200);
    let in_headers = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut frames = Frames::default();
    frames.push(&response.bytes().await.unwrap());
    let mut messages = Vec::new();
    let mut status = in_headers;
    while let Some(frame) = frames.next() {
        match frame {
            Frame::Message(m) => messages.push(m),
            Frame::Trailers(t) => {
                status = t
                    .lines()
                    .find_map(|l| l.strip_prefix("grpc-status:"))
                    .map(|s| s.trim().to_owned());
            }
        }
    }
    (status.expect("a grpc-status"), messages)
}

#[tokio::test]
async fn grpc_web_calls_need_the_same_credentials() {
    let mut app = spawn_app(Backend::Memory).await;
    app.register_url("https://hooks.example.com/a".into()).await;
    let list = pb::ListEndpointsRequest::default();

    for key in [None, Some("not-a-key")] {
        let (status, messages) = unary(
            call(&app, "ListEndpoints", &list, key, None)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, (tonic::Code::Unauthenticated as i32).to_string());
        assert!(messages.is_empty());
    }

    let (status, messages) = unary(
        call(&app, "ListEndpoints", &list, Some(ADMIN_KEY), None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, "0");
    let listed = pb::ListEndpointsResponse::decode(&messages[0][..]).unwrap();
    assert_eq!(listed.endpoints.len(), 1);
    assert_eq!(listed.endpoints[0].url, "https://hooks.example.com/a");
}

#[tokio::test]
async fn a_page_publishes_and_follows_the_delivery_live_over_grpc_web() {
    let mut sink = Sink::start().await;
    let mut app = spawn_app_with(Backend::Memory, |c| {
        c.cors = CorsOrigins::Listed(vec![HeaderValue::from_static(DASHBOARD)]);
    })
    .await;
    let (endpoint, _) = app.register_url(sink.url("/web")).await;

    // The status stream, as a page opens it, read frame by frame as it arrives.
    let mut stream = call(
        &app,
        "StreamDeliveryStatus",
        &pb::StreamDeliveryStatusRequest::default(),
        Some(ADMIN_KEY),
        Some(DASHBOARD),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["access-control-allow-origin"], DASHBOARD);
    let mut frames = Frames::default();
    let mut next_event = async || -> pb::StreamDeliveryStatusResponse {
        loop {
            if let Some(frame) = frames.next() {
                match frame {
                    Frame::Message(m) => {
                        return pb::StreamDeliveryStatusResponse::decode(&m[..]).unwrap();
                    }
                    Frame::Trailers(t) => panic!("the stream ended: {t}"),
                }
            }
            let chunk = tokio::time::timeout(PATIENCE, stream.chunk())
                .await
                .expect("the stream answers in time")
                .unwrap()
                .expect("the stream stays open");
            frames.push(&chunk);
        }
    };
    // Opened without a cursor, it names where it starts first.
    let first = next_event().await;
    assert!(
        matches!(
            first.item,
            Some(pb::stream_delivery_status_response::Item::Heartbeat(_))
        ),
        "{first:?}"
    );

    let (status, messages) = unary(
        call(
            &app,
            "Publish",
            &publish_json("order.created", serde_json::json!({"from": "browser"})),
            Some(ADMIN_KEY),
            Some(DASHBOARD),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, "0");
    let published = pb::PublishResponse::decode(&messages[0][..]).unwrap();
    let delivered = sink.next().await;
    assert_eq!(delivered.path, "/web");

    let succeeded = loop {
        if let Some(pb::stream_delivery_status_response::Item::Event(e)) = next_event().await.item
            && e.kind == pb::StatusEventKind::AttemptSucceeded as i32
        {
            break e;
        }
    };
    assert_eq!(succeeded.message_id, published.message_id);
    assert_eq!(succeeded.endpoint_id, endpoint);
    assert_eq!(delivered.header("webhook-id"), published.message_id);
    assert!((200..300).contains(&succeeded.status_code), "{succeeded:?}");
}

#[tokio::test]
async fn cors_answers_the_listed_origins_only() {
    let app = spawn_app_with(Backend::Memory, |c| {
        c.cors = CorsOrigins::Listed(vec![HeaderValue::from_static(DASHBOARD)]);
    })
    .await;
    let preflight = |origin: &'static str| {
        browser()
            .request(
                reqwest::Method::OPTIONS,
                format!("http://{}/{SERVICE}/Publish", app.addr),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,x-grpc-web,x-user-agent",
            )
            .send()
    };
    let allowed = preflight(DASHBOARD).await.unwrap();
    assert!(allowed.status().is_success());
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], DASHBOARD);
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
    for needed in [
        "authorization",
        "content-type",
        "x-grpc-web",
        "x-user-agent",
    ] {
        assert!(allowed_headers.contains(needed), "{allowed_headers}");
    }
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );

    let other = preflight("http://elsewhere.test").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // A call from the listed origin shows the page its status.
    let answer = call(
        &app,
        "GetHealth",
        &pb::GetHealthRequest::default(),
        Some(ADMIN_KEY),
        Some(DASHBOARD),
    )
    .send()
    .await
    .unwrap();
    let exposed = answer.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        exposed.contains("grpc-status") && exposed.contains("grpc-message"),
        "{exposed}"
    );
    assert_eq!(unary(answer).await.0, "0");
}

/// Without listed origins no page is allowed; gRPC over HTTP/2 is unchanged meanwhile.
#[tokio::test]
async fn no_origin_is_allowed_by_default() {
    let mut app = spawn_app(Backend::Memory).await;
    let answer = browser()
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{}/{SERVICE}/Publish", app.addr),
        )
        .header("origin", DASHBOARD)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let health = tokio::time::timeout(
        Duration::from_secs(10),
        app.client.get_health(pb::GetHealthRequest::default()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!health.into_inner().checks.is_empty());
}
