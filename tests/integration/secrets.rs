//! Secrets at rest: with a master key no byte of a signing secret or a custom header value
//! reaches the data directory or Redis; restarts and master key rotations keep every
//! endpoint signing as before; a missing or wrong key stops the start; the data directory
//! is its owner's alone.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use herald::app::Application;
use herald::config::StorageConfig;
use herald::domain::Secret;
use herald::grpc::pb;
use herald::storage::sealing::{Keyring, MasterKey};
use herald::telemetry::ErrorChain;
use redis::AsyncCommands;

use crate::child::{Herald, Settings};
use crate::redis::RedisServer;
use crate::support::{
    Backend, Sink, TestApp, eventually, metric, redis_storage, share_machine, spawn_app_with,
    test_config,
};

/// A fresh master key, as the operator would set it (base64).
fn new_key() -> String {
    BASE64.encode(rand::random::<[u8; 32]>())
}

fn key_id(key: &str) -> String {
    MasterKey::parse(key).unwrap().id().to_string()
}

fn keyring(current: Option<&str>, previous: &[&str]) -> Arc<Keyring> {
    Arc::new(Keyring::new(
        current.map(|k| MasterKey::parse(k).unwrap()),
        previous
            .iter()
            .map(|k| MasterKey::parse(k).unwrap())
            .collect(),
    ))
}

/// A store that outlives the servers of a test: a data directory, or a Redis.
enum Durable {
    Embedded(tempfile::TempDir),
    Redis {
        server: RedisServer,
        storage: StorageConfig,
    },
}

impl Durable {
    async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Embedded => Self::Embedded(tempfile::tempdir().unwrap()),
            Backend::Redis => {
                let server = RedisServer::start().await;
                let storage = redis_storage(&server);
                Self::Redis { server, storage }
            }
            Backend::Memory => unreachable!("memory keeps nothing at rest"),
        }
    }

    fn storage(&self) -> StorageConfig {
        match self {
            Self::Embedded(dir) => StorageConfig::Embedded {
                data_dir: dir.path().to_owned(),
            },
            Self::Redis { storage, .. } => storage.clone(),
        }
    }

    /// A server on this store with these master keys.
    async fn start(&self, keys: Arc<Keyring>) -> TestApp {
        let storage = self.storage();
        spawn_app_with(Backend::Memory, |c| {
            c.storage = storage;
            c.store.keyring = keys;
        })
        .await
    }

    /// Every byte the store holds: each file of the data directory, or each value of
    /// every Redis key (read by its type) and Redis's own files (the AOF).
    async fn every_byte(&self) -> Vec<Vec<u8>> {
        match self {
            Self::Embedded(dir) => files_in(dir.path()),
            Self::Redis { server, .. } => {
                let mut held = files_in(server.dir());
                let mut conn = redis_connection(server).await;
                let keys: Vec<String> = conn.keys("*").await.unwrap();
                assert!(!keys.is_empty(), "Redis holds Herald's keys");
                for key in keys {
                    let kind: String = redis::cmd("TYPE")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    let read: &[&str] = match kind.as_str() {
                        "string" => &["GET"],
                        "hash" => &["HGETALL"],
                        "list" => &["LRANGE", "0", "-1"],
                        "set" => &["SMEMBERS"],
                        "zset" => &["ZRANGE", "0", "-1", "WITHSCORES"],
                        "stream" => &["XRANGE", "-", "+"],
                        other => panic!("{key} is a {other}"),
                    };
                    let value: redis::Value = redis::cmd(read[0])
                        .arg(&key)
                        .arg(&read[1..])
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    held.push(key.into_bytes());
                    flatten(&value, &mut held);
                }
                held
            }
        }
    }

    /// The stored endpoint records, as the store holds them now.
    async fn endpoint_records(&self) -> Vec<serde_json::Value> {
        let texts: Vec<String> = match self {
            Self::Embedded(dir) => {
                let conn = rusqlite::Connection::open_with_flags(
                    dir.path().join("herald.sqlite3"),
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .unwrap();
                let mut stmt = conn.prepare("SELECT record FROM endpoints").unwrap();
                stmt.query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            }
            Self::Redis { server, storage } => {
                let StorageConfig::Redis(config) = storage else {
                    unreachable!()
                };
                let mut conn = redis_connection(server).await;
                let keys: Vec<String> = conn
                    .keys(format!("{{{}}}:ep:*", config.prefix))
                    .await
                    .unwrap();
                let mut records = Vec::new();
                for key in keys {
                    records.push(conn.get(key).await.unwrap());
                }
                records
            }
        };
        texts
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect()
    }
}

async fn redis_connection(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every bulk string inside a Redis reply.
fn flatten(value: &redis::Value, out: &mut Vec<Vec<u8>>) {
    match value {
        redis::Value::BulkString(bytes) => out.push(bytes.clone()),
        redis::Value::SimpleString(s) => out.push(s.clone().into_bytes()),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().for_each(|v| flatten(v, out));
        }
        redis::Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            flatten(k, out);
            flatten(v, out);
        }),
        _ => {}
    }
}

/// The content of every file under `dir`.
fn files_in(dir: &Path) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_in(&path));
        } else {
            files.push(std::fs::read(&path).unwrap());
        }
    }
    assert!(!files.is_empty(), "{} holds files", dir.display());
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A secret in every form it could be stored in: `whsec_…`, its base64 body, its bytes.
fn forms(secret: &Secret) -> Vec<Vec<u8>> {
    vec![
        secret.expose().into_bytes(),
        BASE64.encode(secret.key()).into_bytes(),
        secret.key().to_vec(),
    ]
}

const HEADER: &str = "x-receiver-token";

/// Registers an endpoint at the sink with a custom header holding a credential of its
/// own; returns its id, secret and header value.
async fn register(app: &mut TestApp, sink: &Sink) -> (String, Secret, String) {
    let token = format!("token-{}", BASE64.encode(rand::random::<[u8; 18]>()));
    let (id, secret) = app
        .register(pb::RegisterEndpointRequest {
            url: sink.url("/hook"),
            headers: [(HEADER.to_owned(), token.clone())].into(),
            ..Default::default()
        })
        .await;
    (id, secret, token)
}

/// Publishes one event; every endpoint in `endpoints` receives it signed with its secret
/// and with its header.
async fn delivers_signed(
    app: &mut TestApp,
    sink: &mut Sink,
    endpoints: &[(String, Secret, String)],
) {
    app.publish_json("secret.check", serde_json::json!({"n": 1}))
        .await;
    let received = sink.take(endpoints.len()).await;
    for (id, secret, token) in endpoints {
        let r = received
            .iter()
            .find(|r| r.header(HEADER) == token)
            .unwrap_or_else(|| panic!("endpoint {id} received the event with its header"));
        r.verify(secret)
            .unwrap_or_else(|e| panic!("endpoint {id}: the signature verifies: {e:?}"));
    }
}

/// Waits until the admin port says no record is left under another key.
async fn resealed(app: &TestApp) {
    eventually("every record is sealed under the current key", || async {
        let pending = metric(&app.scrape().await, "webhook_secrets_pending_reseal")
            .expect("the gauge is exported");
        (pending == 0.0).then_some(())
    })
    .await;
}

/// The key id each stored record is sealed with (`None`: in clear).
async fn sealing_keys(store: &Durable) -> Vec<Option<String>> {
    store
        .endpoint_records()
        .await
        .iter()
        .map(|r| r["sealed"]["key"].as_str().map(str::to_owned))
        .collect()
}

mod nothing_secret_is_stored_in_clear {
    use crate::support::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        super::nothing_secret_is_stored_in_clear(Backend::Embedded).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis() {
        super::nothing_secret_is_stored_in_clear(Backend::Redis).await;
    }
}

/// With a master key, no stored byte holds a secret or a header value; without one, the
/// same search finds them (so the search can fail).
async fn nothing_secret_is_stored_in_clear(backend: Backend) {
    let sink = Sink::start().await;
    for sealed in [true, false] {
        let store = Durable::new(backend).await;
        let key = new_key();
        let mut app = store
            .start(keyring(sealed.then_some(key.as_str()), &[]))
            .await;
        let (id, secret, token) = register(&mut app, &sink).await;
        // A rotated-out secret is a secret too.
        let rotated = app
            .client
            .rotate_endpoint_secret(pb::RotateEndpointSecretRequest {
                endpoint_id: id,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let current = Secret::parse(&rotated.secret).unwrap();
        app.stop().await;
        let mut needles = forms(&secret);
        needles.extend(forms(&current));
        needles.push(token.into_bytes());
        let held = store.every_byte().await;
        let found: Vec<String> = needles
            .iter()
            .filter(|n| held.iter().any(|h| contains(h, n)))
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        if sealed {
            assert!(
                found.is_empty(),
                "stored in clear with a master key: {found:?}"
            );
        } else {
            assert!(
                found.contains(&secret.expose()) && found.contains(&current.expose()),
                "without a master key the secrets are found in clear (found {found:?})"
            );
        }
    }
}

mod restarts_and_key_rotations_keep_every_endpoint_signing {
    use crate::support::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        super::restarts_and_key_rotations_keep_every_endpoint_signing(Backend::Embedded).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis() {
        super::restarts_and_key_rotations_keep_every_endpoint_signing(Backend::Redis).await;
    }
}

/// A store's life: in clear, then under key A (the clear record is sealed), restarted on
/// A, rotated to B with A as previous (every record moves to B), then on B alone. Every
/// endpoint verifies with the secret it got at registration throughout.
async fn restarts_and_key_rotations_keep_every_endpoint_signing(backend: Backend) {
    let mut sink = Sink::start().await;
    let store = Durable::new(backend).await;
    let (a, b) = (new_key(), new_key());

    let mut app = store.start(keyring(None, &[])).await;
    let mut endpoints = vec![register(&mut app, &sink).await];
    delivers_signed(&mut app, &mut sink, &endpoints).await;
    app.stop().await;
    assert_eq!(sealing_keys(&store).await, [None]);

    let mut app = store.start(keyring(Some(&a), &[])).await;
    resealed(&app).await;
    assert_eq!(sealing_keys(&store).await, [Some(key_id(&a))]);
    endpoints.push(register(&mut app, &sink).await);
    delivers_signed(&mut app, &mut sink, &endpoints).await;
    app.stop().await;

    let mut app = store.start(keyring(Some(&a), &[])).await;
    delivers_signed(&mut app, &mut sink, &endpoints).await;
    app.stop().await;

    let mut app = store.start(keyring(Some(&b), &[&a])).await;
    delivers_signed(&mut app, &mut sink, &endpoints).await;
    resealed(&app).await;
    assert_eq!(
        sealing_keys(&store).await,
        [Some(key_id(&b)), Some(key_id(&b))],
        "no record is left under the old key"
    );
    app.stop().await;

    let mut app = store.start(keyring(Some(&b), &[])).await;
    delivers_signed(&mut app, &mut sink, &endpoints).await;
    app.stop().await;
}

/// The binary refuses a data directory whose secrets its keys cannot open, and says which
/// key it needs and where keys are set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_key_stops_the_start() {
    let _machine = share_machine().await;
    let data = tempfile::tempdir().unwrap();
    let (right, wrong) = (new_key(), new_key());
    let settings = Settings::embedded(data.path());
    let (mut herald, mut client) =
        Herald::start(&settings.clone().set("WEBHOOK_MASTER_KEY", &right)).await;
    crate::child::register_url(&mut client, "http://127.0.0.1:9/hook".to_owned()).await;
    herald.stop().await;

    for (case, settings) in [
        (
            "a wrong key",
            settings.clone().set("WEBHOOK_MASTER_KEY", &wrong),
        ),
        (
            "a wrong key with a wrong previous key",
            settings
                .clone()
                .set("WEBHOOK_MASTER_KEY", &wrong)
                .set("WEBHOOK_PREVIOUS_MASTER_KEYS", &new_key()),
        ),
        ("no key", settings.clone()),
    ] {
        let mut herald = Herald::spawn(&settings);
        let status = herald.wait_exit().await;
        let stderr = herald.stderr();
        assert!(
            status.code().is_some_and(|c| c != 0),
            "{case}: exits with an error, not {status}; stderr:\n{stderr}"
        );
        for needle in [
            key_id(&right).as_str(),
            "WEBHOOK_MASTER_KEY",
            "WEBHOOK_PREVIOUS_MASTER_KEYS",
        ] {
            assert!(stderr.contains(needle), "{case}: says {needle}:\n{stderr}");
        }
        assert!(!herald.logged("herald serving"), "{case}: {stderr}");
    }

    // The right key as a previous one opens them.
    let (mut herald, _client) = Herald::start(&settings.set("WEBHOOK_MASTER_KEY", &wrong).set(
        "WEBHOOK_PREVIOUS_MASTER_KEYS",
        &format!("{},{right}", new_key()),
    ))
    .await;
    herald.stop().await;
}

/// On Redis too, a key that cannot open the stored secrets stops the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_stops_the_start_on_redis() {
    let store = Durable::new(Backend::Redis).await;
    let key = new_key();
    let mut app = store.start(keyring(Some(&key), &[])).await;
    app.register_url("http://127.0.0.1:9/hook".to_owned()).await;
    app.stop().await;
    for keys in [keyring(Some(&new_key()), &[]), keyring(None, &[])] {
        let (mut config, _guard) = test_config(Backend::Memory).await;
        config.storage = store.storage();
        config.store.keyring = keys;
        let Err(e) = Application::build(config).await else {
            panic!("herald started with keys that cannot open the stored secrets")
        };
        let text = ErrorChain(&e).to_string();
        assert!(text.contains(&key_id(&key)), "{text}");
        assert!(text.contains("WEBHOOK_MASTER_KEY"), "{text}");
    }
}

/// Invalid key settings are configuration errors naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_key_is_a_configuration_error() {
    let _machine = share_machine().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    for (env, value, flag) in [
        ("WEBHOOK_MASTER_KEY", "c2hvcnQ=", "--master-key"),
        (
            "WEBHOOK_PREVIOUS_MASTER_KEYS",
            "not base64",
            "--previous-master-keys",
        ),
    ] {
        let mut herald = Herald::spawn(&Settings::embedded(&data_dir).set(env, value));
        let status = herald.wait_exit().await;
        let stderr = herald.stderr();
        assert!(
            status.code().is_some_and(|c| c != 0),
            "{env}: {status}: {stderr}"
        );
        assert!(
            stderr.contains(env) && stderr.contains(flag),
            "{env}: names the setting:\n{stderr}"
        );
        assert!(!data_dir.exists(), "{env}: the store was not opened");
    }
}

/// Without a master key the start says secrets are stored in clear; with one, it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_clear_are_announced() {
    let _machine = share_machine().await;
    let dir = tempfile::tempdir().unwrap();
    let mut clear = Herald::spawn(&Settings::embedded(dir.path()));
    let warning = clear.wait_for_message("endpoint signing secrets").await;
    assert_eq!(warning["level"], "WARN", "{warning}");
    clear.wait_for_message("herald serving").await;
    clear.stop().await;

    let settings = Settings::embedded(dir.path()).set("WEBHOOK_MASTER_KEY", &new_key());
    let (mut sealed, _client) = Herald::start(&settings).await;
    assert!(!sealed.logged("stored in clear"), "{}", sealed.stderr());
    sealed.stop().await;
}

/// The data directory is created for its owner alone, and so is every file in it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let storage = StorageConfig::Embedded {
        data_dir: data_dir.clone(),
    };
    let sink = Sink::start().await;
    let mut app = spawn_app_with(Backend::Memory, |c| c.storage = storage).await;
    app.register_url(sink.url("/hook")).await;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data_dir), 0o700, "the data directory");
    let names: Vec<String> = std::fs::read_dir(&data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for name in ["herald.sqlite3", "herald.sqlite3-wal", "herald.sqlite3-shm"] {
        assert!(names.iter().any(|n| n == name), "{name} is among {names:?}");
    }
    for name in &names {
        assert_eq!(mode(&data_dir.join(name)), 0o600, "{name}");
    }
    app.stop().await;
}
