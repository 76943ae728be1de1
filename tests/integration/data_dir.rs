//! The embedded store's data directory across releases: one written by this release (kept
//! in `tests/fixtures/data-v3`, so later releases prove they still open it) and one of the
//! release before (`data-v2`, brought up to this schema when opened) open with everything
//! in it; a newer release's, another application's, a file that is no database and a
//! damaged one stop startup with an error that names the problem.

use std::path::Path;
use std::time::SystemTime;

use herald::config::{Config, StorageConfig};
use herald::domain::{DeliveryState, EndpointId, MessageId};
use herald::storage::{SqliteStore, Store};

use crate::child::{Herald, Settings};
use crate::support::share_machine;

/// What the fixtures hold (written by `herald` of schema version 2 through its API, then
/// opened by this release, which wrote `data-v3`).
const FIXTURE: &str = "tests/fixtures/data-v3/herald.sqlite3";
const EARLIER_FIXTURE: &str = "tests/fixtures/data-v2/herald.sqlite3";
const FIXTURE_ENDPOINT: &str = "fixture-endpoint";
const FIXTURE_MESSAGE: &str = "msg_01M8PBCQRH16RJV89494X8H8E8";

/// A data directory holding a copy of the fixture's database.
fn copy_of_fixture() -> tempfile::TempDir {
    copy_of(FIXTURE)
}

fn copy_of(fixture: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture, dir.path().join("herald.sqlite3")).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_this_release_opens_with_everything_in_it() {
    opens_with_everything_in_it(FIXTURE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_the_release_before_is_brought_up_to_this_one() {
    let expiry = opens_with_everything_in_it(EARLIER_FIXTURE).await;
    let retention = Config::with_storage(StorageConfig::Memory).store.retention;
    assert_eq!(
        expiry.1,
        expiry.0 + retention,
        "stored messages expire with the retention"
    );
}

/// Opens a copy of `fixture` and checks what it holds; the message's publication and
/// expiry.
async fn opens_with_everything_in_it(fixture: &str) -> (SystemTime, SystemTime) {
    let dir = copy_of(fixture);
    let options = Config::with_storage(StorageConfig::Memory).store;
    let store = SqliteStore::open_dir(dir.path(), options).expect("the fixture opens");
    let endpoint = store
        .get_endpoint(&EndpointId::parse(FIXTURE_ENDPOINT).unwrap())
        .await
        .unwrap();
    assert_eq!(endpoint.url.as_str(), "http://127.0.0.1:9/hook");
    assert_eq!(endpoint.headers[0].name, "x-fixture");
    assert_eq!(endpoint.headers[0].value, "kept");
    let (message, deliveries) = store
        .get_message(&MessageId::parse(FIXTURE_MESSAGE).unwrap())
        .await
        .unwrap();
    assert_eq!(message.event_type.as_str(), "fixture.created");
    assert_eq!(&message.payload[..], br#"{"kept":true}"#);
    assert_eq!(deliveries.len(), 1);
    assert_ne!(deliveries[0].state, DeliveryState::Succeeded);
    (message.created_at, message.expires_at)
}

/// Starts the real binary on `data_dir` and expects it to stop, saying `why`.
async fn refused(data_dir: &Path, why: &str) {
    let mut herald = Herald::spawn(&Settings::embedded(data_dir));
    let status = herald.wait_exit().await;
    let stderr = herald.stderr();
    assert!(status.code().is_some_and(|c| c != 0), "{status}: {stderr}");
    assert!(stderr.contains(why), "stderr says {why:?}:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!herald.logged("herald serving"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_newer_and_damaged_databases_stop_startup_saying_why() {
    let _machine = share_machine().await;
    let database = |dir: &tempfile::TempDir| dir.path().join("herald.sqlite3");

    let newer = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(database(&newer)).unwrap();
    conn.execute_batch("PRAGMA application_id = 1213353028; PRAGMA user_version = 99;")
        .unwrap();
    drop(conn);
    refused(newer.path(), "written by a newer Herald (schema version 99").await;

    let other = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(database(&other)).unwrap();
    conn.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);")
        .unwrap();
    drop(conn);
    refused(other.path(), "another application's SQLite database").await;

    let garbage = tempfile::tempdir().unwrap();
    std::fs::write(database(&garbage), "not a database, ".repeat(512)).unwrap();
    refused(garbage.path(), "is not a SQLite database").await;

    // A valid header over a page of nonsense: the schema itself is unreadable.
    let damaged = copy_of_fixture();
    let mut bytes = std::fs::read(database(&damaged)).unwrap();
    bytes[100..4096].fill(0xA5);
    std::fs::write(database(&damaged), bytes).unwrap();
    refused(damaged.path(), "is damaged").await;
}
