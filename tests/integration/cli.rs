//! `herald watch`, `herald stats` and `herald health`: the real binary, as a client of a
//! real server.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use tokio::sync::mpsc;

use crate::support::{ADMIN_KEY, Backend, PATIENCE, Sink, spawn_app};

fn herald(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .args(args)
        .env_remove("HERALD_SERVER")
        .env("HERALD_API_KEY", ADMIN_KEY)
        .stdin(Stdio::null());
    command
}

/// A child whose stdout lines arrive on a channel; killed when dropped.
struct Lines {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Lines {
    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("herald starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    async fn next(&mut self) -> String {
        tokio::time::timeout(PATIENCE, self.lines.recv())
            .await
            .expect("a line in time")
            .expect("the child is running")
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_deliveries_and_stats_reports_them() {
    let mut sink = Sink::start().await;
    let mut app = spawn_app(Backend::Memory).await;
    let server = format!("http://{}", app.addr);
    let (endpoint_id, _) = app.register_url(sink.url("/hook")).await;

    let mut json = Lines::spawn(herald(&[
        "watch",
        "--server",
        &server,
        "--after-cursor",
        "0",
        "--json",
        "--event-type",
        "order.*",
    ]));
    let mut table = Lines::spawn(herald(&[
        "watch",
        "--server",
        &server,
        "--after-cursor",
        "0",
        "--endpoint",
        &endpoint_id,
    ]));
    let id = app
        .publish_json("order.created", serde_json::json!({}))
        .await
        .message_id;
    sink.next().await;

    let started: serde_json::Value =
        serde_json::from_str(&json.next().await).expect("one JSON object per line");
    assert_eq!(
        (started["kind"].as_str(), started["message_id"].as_str()),
        (Some("started"), Some(id.as_str()))
    );
    let succeeded: serde_json::Value = serde_json::from_str(&json.next().await).unwrap();
    assert_eq!(succeeded["kind"], "succeeded");
    assert_eq!(succeeded["status_code"], 200);
    assert_eq!(
        succeeded["cursor"].as_u64(),
        Some(started["cursor"].as_u64().unwrap() + 1)
    );

    assert!(table.next().await.starts_with("time"), "a header line");
    let row = table.next().await;
    assert!(
        row.contains("started") && row.contains(&id) && row.contains(&endpoint_id),
        "{row}"
    );
    assert!(
        !row.contains('\u{1b}'),
        "no colour codes when stdout is not a terminal"
    );
    assert!(table.next().await.contains("succeeded"));

    let output = herald(&["stats", "--server", &server, "--json"])
        .env_remove("HERALD_API_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success(), "no key, no figures");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("credential"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = herald(&[
        "stats",
        "--server",
        &server,
        "--json",
        "--api-key",
        ADMIN_KEY,
    ])
    .env_remove("HERALD_API_KEY")
    .output()
    .unwrap();
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["totals"]["attempts"], 1);
    assert_eq!(report["health"]["status"], "excellent");
    let output = herald(&["stats", "--server", &server, "--endpoint", &endpoint_id])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("health        100 (excellent)")
            && text.contains("attempts      1 (1 succeeded, 0 failed)"),
        "{text}"
    );

    let refused = herald(&["stats", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot connect"));
    app.stop().await;
}

/// `herald health` as a health check runs it: from the server's own settings, and so with
/// its unspecified listening address.
fn probe(admin_addr: &str, timeout: &str) -> std::process::Output {
    herald(&["health", "--timeout", timeout])
        .env("WEBHOOK_ADMIN_ADDR", admin_addr)
        .output()
        .expect("herald runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_exits_0_only_when_the_server_says_it_is_ready() {
    let app = spawn_app(Backend::Memory).await;
    for asked in [
        app.admin.to_string(),
        format!("0.0.0.0:{}", app.admin.port()),
    ] {
        let ready = probe(&asked, "20s");
        assert!(
            ready.status.success(),
            "{asked}: {}",
            String::from_utf8_lossy(&ready.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&ready.stdout).trim(),
            format!("ready (http://{}/readyz)", app.admin)
        );
    }
    app.stop().await;

    // An admin port that answers 503, as Herald's does while its store is down.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let unready = listener.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/readyz",
        axum::routing::get(|| async { (http::StatusCode::SERVICE_UNAVAILABLE, "not ready") }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let answer = probe(&unready.to_string(), "20s");
    server.abort();
    assert_eq!(answer.status.code(), Some(1));
    assert!(answer.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&answer.stderr).trim(),
        format!("error: not ready: http://{unready}/readyz answered 503 \"not ready\"")
    );
}

#[tokio::test]
async fn health_fails_clearly_when_nothing_answers() {
    // A port bound but not listening: connecting to it is refused.
    let bound = tokio::net::TcpSocket::new_v4().unwrap();
    bound.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = bound.local_addr().unwrap();
    let refused = probe(&closed.to_string(), "20s");
    assert_eq!(refused.status.code(), Some(1));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.starts_with(&format!("error: cannot reach the admin port at {closed}: "))
            && message.contains("refused"),
        "{message}"
    );

    // A port that accepts the connection and never answers: the timeout ends the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let waited = probe(&addr.to_string(), "300ms");
    assert_eq!(waited.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&waited.stderr).trim(),
        format!("error: no answer from the admin port at {addr} within 300ms")
    );
}
