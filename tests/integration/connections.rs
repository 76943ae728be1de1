//! Idle and hostile connections: silent connections closed at their deadline while
//! served ones are kept, a newcomer taking a silent connection's place at the cap, the
//! cap on calls per connection and on status streams per credential, settings checked
//! against the open-file limit, and the real binary under a flood of idle sockets with
//! its soft open-file limit at 1,024 (and its hard one too), and out of descriptors.
//!
//! Floods are bounded in count and time and stay on loopback. Waiting is on the sockets
//! (their end of file), on log lines and on bounded polls; the child's CPU time and
//! memory come from `/proc`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use herald::app::{AppError, Application};
use herald::connections::{BudgetError, open_file_limit, raise_open_file_limit};
use herald::grpc::pb;
use pb::stream_delivery_status_response::Item;
use rustix::process::{Pid, Resource, Rlimit, getrlimit, prlimit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::auth::create_key;
use crate::child::{Client, Herald, OpenFiles, Settings, register_url};
use crate::support::{
    Backend, PATIENCE, Sink, admin_client, client_with, eventually, metric, publish_json, scrape,
    share_machine, spawn_app_with, test_config,
};

/// Idle connections of the flood: more than a soft open-file limit of 1,024 allows.
const FLOOD: usize = 1_100;
/// The flood child's deadline for a first request: long enough for the checks made
/// while the flood is open, short enough to wait for.
const FLOOD_DEADLINE: Duration = Duration::from_secs(5);
/// The HTTP/2 connection preface, then an empty SETTINGS frame: a client's opening.
const OPENING: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

/// The series `name` of the gRPC port, or of the admin port.
fn grpc(name: &str) -> String {
    format!("{name}{{port=\"grpc\"}}")
}

fn admin(name: &str) -> String {
    format!("{name}{{port=\"admin\"}}")
}

/// Reads (and drops) what the server sends until it closes the connection, for at
/// most `within`; when it did.
async fn closed(mut tcp: TcpStream, within: Duration) -> Instant {
    let mut buf = [0u8; 512];
    tokio::time::timeout(within, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server closes the connection in time")
}

/// Whether the server has not closed `tcp`, reading (and dropping) what it sent so far.
fn still_open(tcp: &TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tcp.try_read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

async fn health(client: &mut Client) -> Result<(), tonic::Status> {
    client.get_health(pb::GetHealthRequest {}).await.map(drop)
}

/// Polls the metrics at `admin_addr` until `series` has `value`.
async fn metric_reaches(admin_addr: SocketAddr, series: &str, value: f64) {
    eventually(&format!("{series} is {value}"), || async {
        (metric(&scrape(admin_addr).await, series) == Some(value)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_at_their_deadline_and_served_ones_kept() {
    let deadline = Duration::from_secs(1);
    let mut app = spawn_app_with(Backend::Memory, |c| {
        c.connections.first_request_timeout = deadline;
    })
    .await;
    // Served: its first request comes at once, so its connection is kept.
    health(&mut app.client).await.expect("served");

    let opened = Instant::now();
    let silent = TcpStream::connect(app.addr).await.unwrap();
    let mut opening_only = TcpStream::connect(app.addr).await.unwrap();
    opening_only.write_all(OPENING).await.unwrap();
    // A HEADERS frame (END_HEADERS, stream 1) announcing 10 bytes, of which 5 come.
    let mut half_request = TcpStream::connect(app.addr).await.unwrap();
    let headers: &[u8] = &[0, 0, 10, 0x1, 0x4, 0, 0, 0, 1, 0x82, 0x82, 0x82, 0x82, 0x82];
    half_request
        .write_all(&[OPENING, headers].concat())
        .await
        .unwrap();
    let admin_silent = TcpStream::connect(app.admin).await.unwrap();
    for tcp in [silent, opening_only, half_request, admin_silent] {
        let after = closed(tcp, deadline + PATIENCE).await - opened;
        assert!(
            after >= deadline,
            "closed after {after:?}, before its deadline"
        );
    }

    // The served connection outlived the deadline: only the silent ones timed out, and
    // the same channel still answers.
    health(&mut app.client).await.expect("still served");
    let scrape = app.scrape().await;
    let timed_out = "webhook_connections_timed_out_total";
    assert_eq!(metric(&scrape, &grpc(timed_out)), Some(3.0), "{scrape}");
    assert_eq!(metric(&scrape, &admin(timed_out)), Some(1.0), "{scrape}");
    assert_eq!(
        metric(&scrape, &grpc("webhook_connections_open")),
        Some(1.0)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_newcomer_takes_the_place_of_the_oldest_silent_connection() {
    let mut app = spawn_app_with(Backend::Memory, |c| {
        c.connections.max_connections = Some(4);
    })
    .await;
    health(&mut app.client).await.expect("served");
    let open = grpc("webhook_connections_open");
    // Three silent connections fill the other slots, accepted in order.
    let mut silent = Vec::new();
    for taken in 2..=4 {
        silent.push(TcpStream::connect(app.addr).await.unwrap());
        metric_reaches(app.admin, &open, f64::from(taken)).await;
    }

    // Each newcomer is served in the place of the oldest silent connection.
    let mut newcomers = Vec::new();
    for evicted in 0..3 {
        let mut newcomer = admin_client(app.addr).await;
        health(&mut newcomer).await.expect("a newcomer is served");
        newcomers.push(newcomer);
        let oldest = silent.remove(0);
        closed(oldest, PATIENCE).await;
        assert!(
            silent.iter().all(still_open),
            "only the oldest silent connection closes, for newcomer {evicted}"
        );
    }

    // Every slot holds a served connection: a newcomer is closed at once.
    let refused = TcpStream::connect(app.addr).await.unwrap();
    closed(refused, PATIENCE).await;
    let scrape = app.scrape().await;
    assert_eq!(
        metric(&scrape, &grpc("webhook_connections_evicted_total")),
        Some(3.0)
    );
    assert_eq!(
        metric(&scrape, &grpc("webhook_connections_refused_total")),
        Some(1.0)
    );
    assert_eq!(metric(&scrape, &open), Some(4.0));

    // A client that leaves frees its slot.
    newcomers.pop();
    metric_reaches(app.admin, &open, 3.0).await;
    let mut another = admin_client(app.addr).await;
    health(&mut another)
        .await
        .expect("served in the freed slot");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_per_connection_are_capped_by_the_http2_settings() {
    let app = spawn_app_with(Backend::Memory, |c| {
        c.connections.max_streams_per_connection = 7;
    })
    .await;
    let tcp = TcpStream::connect(app.addr).await.unwrap();
    let (_requests, mut connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
    // The server's SETTINGS arrive as the connection is driven.
    let announced = std::future::poll_fn(|cx| {
        if let Poll::Ready(ended) = Pin::new(&mut connection).poll(cx) {
            panic!("the connection ended before the server's settings: {ended:?}");
        }
        match connection.max_concurrent_send_streams() {
            usize::MAX => Poll::Pending,
            announced => Poll::Ready(announced),
        }
    });
    let announced = tokio::time::timeout(PATIENCE, announced)
        .await
        .expect("the server's settings in time");
    assert_eq!(announced, 7);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_connections_are_asked_to_go_so_clients_rebalance() {
    let mut app = spawn_app_with(Backend::Memory, |c| {
        c.connections.max_age = Duration::from_millis(300);
        c.connections.max_age_grace = Duration::from_millis(300);
    })
    .await;
    let tcp = TcpStream::connect(app.addr).await.unwrap();
    let (requests, connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
    // Resolves once the server has ended the connection.
    let driven = tokio::spawn(connection);
    let request = http::Request::post(format!("http://{}/grpc.health.v1.Health/Check", app.addr))
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let (answer, _) = requests
        .ready()
        .await
        .unwrap()
        .send_request(request, true)
        .unwrap();
    // A request was served: the first-request deadline no longer applies to it.
    answer.await.expect("an answer");
    let ended = tokio::time::timeout(PATIENCE, driven)
        .await
        .expect("the server ends a connection past its age")
        .unwrap();
    if let Err(e) = ended {
        assert!(e.is_go_away() || e.is_io(), "{e:?}");
    }
    // A tonic client reconnects by itself: calls keep working across the ages.
    for _ in 0..3 {
        health(&mut app.client).await.expect("served");
    }
    app.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_open_file_limit_stop_startup() {
    let (mut config, _store) = test_config(Backend::Memory).await;
    let limit = open_file_limit();
    config.connections.max_connections = Some(u32::try_from(limit).unwrap_or(u32::MAX));
    match Application::build(config).await {
        Ok(_) => panic!("{limit} connections beside the reserve fit a limit of {limit}"),
        Err(e) => {
            assert!(
                matches!(e, AppError::Budget(BudgetError::TooManyConnections { .. })),
                "{e:?}"
            );
            let source = std::error::Error::source(&e).expect("the budget's reason");
            assert!(
                source.to_string().contains("WEBHOOK_MAX_CONNECTIONS"),
                "{source}"
            );
        }
    }
}

/// Raises this process's soft open-file limit to the hard one: the flood's sockets and
/// the rest of the suite must fit.
fn room_for_the_flood() {
    let raised = raise_open_file_limit().expect("raise the test's open-file limit");
    let needed = 4 * FLOOD as u64;
    assert!(
        raised.now >= needed,
        "the tests need an open-file limit of {needed} (ulimit -Hn), not {}",
        raised.now
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_flood_with_a_soft_limit_of_1024() {
    idle_flood(OpenFiles {
        soft: 1024,
        hard: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_flood_with_soft_and_hard_limits_of_1024() {
    idle_flood(OpenFiles {
        soft: 1024,
        hard: Some(1024),
    })
    .await;
}

/// [`FLOOD`] idle connections against a child started with `limit`: a new client is
/// still served and a publish still delivered while they are open; every one of them is
/// closed by its deadline at the latest; the child does not spin meanwhile.
async fn idle_flood(limit: OpenFiles) {
    let _machine = share_machine().await;
    room_for_the_flood();
    let data = tempfile::tempdir().unwrap();
    let mut sink = Sink::start().await;
    let settings = Settings::embedded(data.path())
        .set(
            "WEBHOOK_CONNECTION_HANDSHAKE_TIMEOUT",
            &format!("{}s", FLOOD_DEADLINE.as_secs()),
        )
        .open_files(limit);
    let (mut herald, mut client) = Herald::start(&settings).await;
    register_url(&mut client, sink.url("/hook")).await;
    let (addr, admin_addr) = (herald.grpc_addr(), herald.admin_addr());
    let shared = herald.wait_for_message("descriptors shared out").await;
    let max_connections = shared["max_connections"].as_u64().expect("the cap");
    let own_hard = getrlimit(Resource::Nofile).maximum.unwrap_or(u64::MAX);
    let expected_limit = limit.hard.unwrap_or(own_hard);
    assert_eq!(
        shared["open_file_limit"].as_u64(),
        Some(expected_limit),
        "the soft limit is raised to the hard one: {shared}"
    );

    let rss_before = herald.rss_kib();
    let flood_started = Instant::now();
    let mut idle = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        idle.push(TcpStream::connect(addr).await.expect("loopback connects"));
    }
    // Every slot but the served client's holds a silent connection: all of the flood
    // when the limit allows, else as many as fit (newer ones took older ones' places).
    let open = grpc("webhook_connections_open");
    let held = (FLOOD as u64 + 1).min(max_connections);
    metric_reaches(admin_addr, &open, held as f64).await;
    let rss_flooded = herald.rss_kib();

    // While they are open: a new client is served, and a publish is delivered.
    let mut fresh = admin_client(addr).await;
    health(&mut fresh).await.expect("a new client is served");
    let published = client
        .publish(publish_json(
            "flood.test",
            serde_json::json!({"during": "flood"}),
        ))
        .await
        .expect("publish during the flood")
        .into_inner();
    let received = sink.next().await;
    assert_eq!(received.header("webhook-id"), published.message_id);
    let scrape_during = scrape(admin_addr).await;
    assert_eq!(
        metric(&scrape_during, &grpc("webhook_connections_timed_out_total")),
        None,
        "no idle connection reached its deadline before the checks"
    );
    assert!(
        flood_started.elapsed() < FLOOD_DEADLINE,
        "the checks took longer than the deadline they must beat"
    );

    // Then every idle connection is closed by its deadline; the child idles meanwhile.
    let (cpu_before, quiet_from) = (herald.cpu_time(), Instant::now());
    let mut waiting = JoinSet::new();
    for tcp in idle {
        waiting.spawn(closed(tcp, FLOOD_DEADLINE + PATIENCE));
    }
    let mut last_closed = flood_started;
    while let Some(at) = waiting.join_next().await {
        last_closed = last_closed.max(at.expect("a reader"));
    }
    let (cpu, quiet) = (herald.cpu_time() - cpu_before, quiet_from.elapsed());
    assert!(
        cpu < quiet / 4,
        "the child used {cpu:?} of CPU in {quiet:?} while {FLOOD} connections idled"
    );
    let scrape = scrape(admin_addr).await;
    let count = |name: &str| metric(&scrape, &grpc(name)).unwrap_or(0.0) as usize;
    let (timed_out, evicted, refused) = (
        count("webhook_connections_timed_out_total"),
        count("webhook_connections_evicted_total"),
        count("webhook_connections_refused_total"),
    );
    assert_eq!(
        timed_out + evicted + refused,
        FLOOD,
        "each idle connection timed out, or gave its place to a newer one: {scrape}"
    );
    assert_eq!(
        refused, 0,
        "newcomers always found a silent connection to replace"
    );
    // Two served clients are left.
    metric_reaches(admin_addr, &open, 2.0).await;
    health(&mut client)
        .await
        .expect("the first client is still served");

    println!(
        "idle flood ({limit:?}): open-file limit {expected_limit}, {max_connections} connections allowed; \
         {timed_out} timed out, {evicted} evicted; RSS {rss_before} KiB before, {rss_flooded} KiB with {held} \
         connections held ({} bytes each); CPU {cpu:?} in {quiet:?} while idle; last closed after {:?}",
        (rss_flooded.saturating_sub(rss_before) * 1024) / held.max(1),
        last_closed - flood_started,
    );
    herald.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_beyond_a_low_open_file_limit_stop_the_binary() {
    let data = tempfile::tempdir().unwrap();
    let low = OpenFiles {
        soft: 1024,
        hard: Some(1024),
    };
    for (name, value) in [
        ("WEBHOOK_MAX_CONNECTIONS", "1000"),
        ("WEBHOOK_MAX_WORKERS", "500"),
    ] {
        let settings = Settings::embedded(data.path())
            .set(name, value)
            .open_files(low);
        let mut herald = Herald::spawn(&settings);
        let status = herald.wait_exit().await;
        assert!(!status.success(), "{name}={value} fits a limit of 1024?");
        assert!(
            herald.logged(name) && herald.logged("open-file limit of 1024"),
            "the error names {name} and the limit:\n{}",
            herald.stderr()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_accepting_pauses_instead_of_spinning() {
    let _machine = share_machine().await;
    let data = tempfile::tempdir().unwrap();
    // In memory: reads need no new descriptor while there are none.
    let settings = Settings::embedded(data.path()).set("WEBHOOK_STORAGE_TYPE", "memory");
    let (mut herald, mut client) = Herald::start(&settings).await;
    health(&mut client).await.expect("served");
    let addr = herald.grpc_addr();

    // No descriptor left: the soft limit below every one the child holds.
    let pid = Pid::from_raw(i32::try_from(herald.pid()).unwrap()).expect("a pid");
    let hard = getrlimit(Resource::Nofile).maximum;
    let exhausted = Rlimit {
        current: Some(3),
        maximum: hard,
    };
    let before = prlimit(Some(pid), Resource::Nofile, exhausted).expect("lower its limit");
    let waiting = tokio::spawn(async move {
        let mut client = admin_client(addr).await;
        health(&mut client).await
    });
    herald
        .wait_for_message("accepting connections failed")
        .await;
    // A window to measure, not a wait for anything: a spinning accept loop would use
    // all of it.
    let window = Duration::from_secs(1);
    let cpu_before = herald.cpu_time();
    tokio::time::sleep(window).await;
    let cpu = herald.cpu_time() - cpu_before;
    assert!(
        cpu < window / 4,
        "the child used {cpu:?} of CPU in {window:?} while it could not accept"
    );

    // Descriptors back: the waiting client is served.
    prlimit(Some(pid), Resource::Nofile, before).expect("restore its limit");
    tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("served once descriptors are back")
        .expect("the client task")
        .expect("the waiting client is served");
    herald.wait_for_message("accepting connections again").await;
    herald.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_stream_flood_is_capped_per_credential() {
    const CAP: usize = 50;
    const ATTEMPTS: usize = 2_000;
    let _machine = share_machine().await;
    let data = tempfile::tempdir().unwrap();
    let mut sink = Sink::start().await;
    let settings =
        Settings::embedded(data.path()).set("WEBHOOK_MAX_STREAMS_PER_CREDENTIAL", &CAP.to_string());
    let (mut herald, mut admin) = Herald::start(&settings).await;
    let addr = herald.grpc_addr();
    register_url(&mut admin, sink.url("/hook")).await;
    let (reader_token, _) = create_key(&mut admin, &[pb::Scope::Read], "", None).await;
    let open_stream = |mut client: Client| async move {
        client
            .stream_delivery_status(pb::StreamDeliveryStatusRequest::default())
            .await
            .map(tonic::Response::into_inner)
    };

    let rss_idle = herald.rss_kib();
    let mut streams = Vec::new();
    for _ in 0..CAP {
        let mut stream = open_stream(admin.clone()).await.expect("within the cap");
        // The first item says where the stream starts: it is open.
        stream.next().await.expect("an item").expect("a heartbeat");
        streams.push(stream);
    }
    let rss_streams = herald.rss_kib();

    // The same credential, from several connections: refused, naming the limit.
    let flooders: Vec<Client> = {
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(admin_client(addr).await);
        }
        clients
    };
    for i in 0..ATTEMPTS {
        let refused = open_stream(flooders[i % flooders.len()].clone())
            .await
            .expect_err("beyond the cap");
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        assert!(
            refused
                .message()
                .contains("WEBHOOK_MAX_STREAMS_PER_CREDENTIAL")
                && refused.message().contains(&CAP.to_string()),
            "{refused:?}"
        );
    }
    let rss_flooded = herald.rss_kib();
    assert!(
        rss_flooded < rss_streams + 16 * 1024,
        "RSS grew from {rss_streams} KiB to {rss_flooded} KiB over {ATTEMPTS} refused streams"
    );

    // Another credential is served: its stream shows a message published meanwhile.
    let mut other = open_stream(client_with(addr, Some(&reader_token)).await)
        .await
        .expect("another credential opens a stream");
    other.next().await.expect("an item").expect("a heartbeat");
    let published = admin
        .publish(publish_json("stream.flood", serde_json::json!({"n": 1})))
        .await
        .expect("publish")
        .into_inner();
    sink.next().await;
    let seen = tokio::time::timeout(PATIENCE, async {
        while let Some(item) = other.next().await {
            if let Some(Item::Event(e)) = item.expect("an item").item
                && e.message_id == published.message_id
            {
                return true;
            }
        }
        false
    })
    .await
    .expect("the other credential sees the delivery in time");
    assert!(seen, "the other credential's stream shows the delivery");

    // A stream closed frees its place.
    streams.pop();
    eventually("a stream of the full credential opens again", || {
        let client = admin.clone();
        async move { open_stream(client).await.ok() }
    })
    .await;

    println!(
        "status streams: RSS {rss_idle} KiB idle, {rss_streams} KiB with {CAP} streams ({} bytes each), \
         {rss_flooded} KiB after {ATTEMPTS} refused",
        (rss_streams.saturating_sub(rss_idle) * 1024) / CAP as u64
    );
    herald.stop().await;
}
