//! Receivers that answer in odd ways, written byte for byte on a raw socket (the sink, a
//! real HTTP server, cannot stall mid-body): a 2xx whose body then stalls, a 2xx with
//! hundreds of headers, a head past what Herald reads, a 5xx whose body stalls. The status
//! line decides: a 2xx is delivered once, with no retry; any other status fails the
//! attempt by itself; an answer whose status cannot be read is retried, saying why.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use herald::grpc::pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::each_backend;
use crate::support::{Backend, PATIENCE, spawn_app};

/// Past the tests' whole fast retry schedule (three retries, each within 200 ms of the
/// attempt before): a retry would have arrived by then.
const RETRY_WINDOW: Duration = Duration::from_secs(2);

/// A receiver on a raw socket: reads each request (head, then its `Content-Length`
/// body) and writes `answer` as it is. With `stall`, the answer is left unfinished and the
/// connection held open, silent; otherwise the connection takes the next request.
struct RawReceiver {
    addr: SocketAddr,
    /// The `webhook-id` of each request, as it arrives.
    requests: mpsc::UnboundedReceiver<String>,
}

impl RawReceiver {
    async fn start(answer: Vec<u8>, stall: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, requests) = mpsc::unbounded_channel();
        let answer: Arc<[u8]> = answer.into();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, answer.clone(), stall, tx.clone()));
            }
        });
        Self { addr, requests }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The `webhook-id` of the next request, waiting at most [`PATIENCE`].
    async fn next(&mut self) -> String {
        tokio::time::timeout(PATIENCE, self.requests.recv())
            .await
            .expect("the receiver got a request in time")
            .expect("the receiver runs")
    }

    /// Whether no request arrives within `window`.
    async fn quiet_for(&mut self, window: Duration) -> bool {
        tokio::time::timeout(window, self.requests.recv())
            .await
            .is_err()
    }
}

async fn serve(
    mut socket: TcpStream,
    answer: Arc<[u8]>,
    stall: bool,
    requests: mpsc::UnboundedSender<String>,
) {
    while let Some(id) = read_request(&mut socket).await {
        let _ = requests.send(id);
        if socket.write_all(&answer).await.is_err() {
            return;
        }
        if stall {
            // Holds the socket, and says nothing more, until the test ends.
            std::future::pending::<()>().await;
        }
    }
}

/// Reads one request; its `webhook-id`, or `None` once the client has gone.
async fn read_request(socket: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("a text head");
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (n, value) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let length: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0; length];
    socket.read_exact(&mut body).await.ok()?;
    Some(header("webhook-id").expect("a webhook-id"))
}

/// An answer's head: the status line, then `headers`, then a `Content-Length` of
/// `length`, followed by `body` (which may be shorter).
fn answer(status: &str, headers: &[String], length: usize, body: &str) -> Vec<u8> {
    let mut text = format!("HTTP/1.1 {status}\r\n");
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str(&format!("content-length: {length}\r\n\r\n{body}"));
    text.into_bytes()
}

/// `n` distinct header lines.
fn many_headers(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("x-receiver-{i}: value number {i}"))
        .collect()
}

each_backend!(
    a_2xx_whose_body_stalls_is_delivered_once,
    a_2xx_with_hundreds_of_headers_is_delivered_once,
    a_head_past_what_herald_reads_is_retried_saying_why,
    a_5xx_whose_body_stalls_fails_by_its_status,
);

/// Publishes one message to a new endpoint at `receiver`; its id and the endpoint's.
async fn publish_to(app: &mut crate::support::TestApp, receiver: &RawReceiver) -> (String, String) {
    let (endpoint, _) = app.register_url(receiver.url()).await;
    let message = app
        .publish_json("order.created", serde_json::json!({"n": 1}))
        .await
        .message_id;
    (message, endpoint)
}

async fn a_2xx_whose_body_stalls_is_delivered_once(backend: Backend) {
    let mut receiver = RawReceiver::start(answer("200 OK", &[], 1000, "accepted"), true).await;
    let mut app = spawn_app(backend).await;
    let (message, endpoint) = publish_to(&mut app, &receiver).await;
    assert_eq!(receiver.next().await, message);
    app.wait_for_delivery(&message, &endpoint, pb::DeliveryState::Succeeded)
        .await;
    let attempts = app.attempts(&message).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    let attempt = &attempts[0];
    assert!(attempt.succeeded, "{attempt:?}");
    assert_eq!(attempt.status_code, 200);
    assert_eq!(attempt.error, "");
    assert_eq!(
        attempt.response_excerpt, "accepted",
        "what arrived of the body"
    );
    assert!(
        receiver.quiet_for(RETRY_WINDOW).await,
        "the delivered message was sent again"
    );
    assert_eq!(app.attempts(&message).await.len(), 1);
    app.stop().await;
}

async fn a_2xx_with_hundreds_of_headers_is_delivered_once(backend: Backend) {
    let mut receiver =
        RawReceiver::start(answer("200 OK", &many_headers(500), 2, "ok"), false).await;
    let mut app = spawn_app(backend).await;
    let (message, endpoint) = publish_to(&mut app, &receiver).await;
    assert_eq!(receiver.next().await, message);
    app.wait_for_delivery(&message, &endpoint, pb::DeliveryState::Succeeded)
        .await;
    let attempts = app.attempts(&message).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert!(attempts[0].succeeded && attempts[0].status_code == 200);
    assert_eq!(attempts[0].response_excerpt, "ok");
    assert!(
        receiver.quiet_for(RETRY_WINDOW).await,
        "the delivered message was sent again"
    );
    app.stop().await;
}

/// Past the client's limit on header lines nothing of the answer can be read, its status
/// included: Herald cannot tell a 2xx, so it records why and tries again.
async fn a_head_past_what_herald_reads_is_retried_saying_why(backend: Backend) {
    let mut receiver =
        RawReceiver::start(answer("200 OK", &many_headers(2000), 2, "ok"), false).await;
    let mut app = spawn_app(backend).await;
    let (message, _) = publish_to(&mut app, &receiver).await;
    assert_eq!(receiver.next().await, message);
    assert_eq!(receiver.next().await, message, "tried again");
    let attempts = app
        .attempts_when(&message, |attempts| !attempts.is_empty())
        .await;
    let first = &attempts[0];
    assert!(!first.succeeded);
    assert_eq!(first.status_code, 0, "no status could be read");
    assert_eq!(first.error_kind, pb::AttemptErrorKind::Transport as i32);
    assert!(
        first
            .error
            .contains("the answer's head is past what Herald reads"),
        "{first:?}"
    );
    app.stop().await;
}

/// Only a 2xx is a delivery: a 503 whose body stalls is a failed attempt with its status,
/// retried.
async fn a_5xx_whose_body_stalls_fails_by_its_status(backend: Backend) {
    let mut receiver =
        RawReceiver::start(answer("503 Service Unavailable", &[], 1000, "busy"), true).await;
    let mut app = spawn_app(backend).await;
    let (message, _) = publish_to(&mut app, &receiver).await;
    assert_eq!(receiver.next().await, message);
    assert_eq!(receiver.next().await, message, "tried again");
    let attempts = app
        .attempts_when(&message, |attempts| !attempts.is_empty())
        .await;
    let first = &attempts[0];
    assert!(!first.succeeded);
    assert_eq!(first.status_code, 503);
    assert_eq!(first.error, "HTTP 503");
    assert_eq!(first.response_excerpt, "busy");
    app.stop().await;
}
