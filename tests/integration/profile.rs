//! The sizing profile, as the binary chooses it from its environment: logged at start,
//! shown in the health report, and in effect (the worker pool's size).

use herald::grpc::pb;

use crate::child::{Herald, Settings};
use crate::support::PATIENCE;

/// What the running child says of its profile: the start-up log line, `GetHealth`,
/// `/healthz`, and the size of its worker pool as the report counts it.
struct Sized {
    logged_profile: String,
    logged_workers: u64,
    logged: String,
    reported: String,
    healthz: String,
    workers_check: String,
}

async fn sized(adjust: impl FnOnce(Settings) -> Settings) -> Sized {
    let data = tempfile::tempdir().unwrap();
    let (herald, mut client) = Herald::start(&adjust(Settings::embedded(data.path()))).await;
    let line = herald
        .logged_message("sizing:")
        .expect("the profile is logged at start");
    let health = client
        .get_health(pb::GetHealthRequest::default())
        .await
        .unwrap()
        .into_inner();
    // No Herald runs in this process to have chosen reqwest's TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let healthz = tokio::time::timeout(
        PATIENCE,
        reqwest::get(format!("http://{}/healthz", herald.admin_addr())),
    )
    .await
    .unwrap()
    .unwrap()
    .text()
    .await
    .unwrap();
    let healthz: serde_json::Value = serde_json::from_str(&healthz).unwrap();
    Sized {
        logged_profile: line["profile"].as_str().unwrap().to_owned(),
        logged_workers: line["workers"].as_u64().unwrap(),
        logged: line["message"].as_str().unwrap().to_owned(),
        reported: health.profile,
        healthz: healthz["profile"].as_str().unwrap().to_owned(),
        workers_check: health
            .checks
            .iter()
            .find(|c| c.name == "workers")
            .unwrap()
            .detail
            .clone(),
    }
}

#[tokio::test]
async fn a_serverless_platform_is_detected_and_sized_for() {
    let serverless = sized(|s| s.set("K_SERVICE", "orders")).await;
    assert_eq!(serverless.logged_profile, "serverless");
    assert_eq!(serverless.logged_workers, 32);
    assert!(
        serverless.reported.starts_with(
            "serverless (K_SERVICE is set): 32 workers by default, 4 idle HTTP connections per host, kept 10s, 4 embedded-store readers"
        ),
        "{}",
        serverless.reported
    );
    assert_eq!(
        serverless.logged,
        format!("sizing: {}", serverless.reported)
    );
    assert_eq!(serverless.healthz, serverless.reported);
    assert_eq!(serverless.workers_check, "0 of 32 attempts in flight");

    let server = sized(|s| s).await;
    assert_eq!(server.logged_profile, "server");
    assert!(
        server
            .reported
            .starts_with("server (no serverless platform detected): 256 workers by default"),
        "{}",
        server.reported
    );
    assert_eq!(server.workers_check, "0 of 256 attempts in flight");
}

#[tokio::test]
async fn a_named_profile_and_an_explicit_setting_win() {
    let named = sized(|s| {
        s.set("AWS_LAMBDA_FUNCTION_NAME", "orders")
            .set("WEBHOOK_PROFILE", "server")
    })
    .await;
    assert!(
        named.reported.starts_with("server (WEBHOOK_PROFILE)"),
        "{}",
        named.reported
    );
    assert_eq!(named.workers_check, "0 of 256 attempts in flight");

    let explicit = sized(|s| {
        s.set("FUNCTIONS_WORKER_RUNTIME", "custom")
            .set("WEBHOOK_MAX_WORKERS", "7")
    })
    .await;
    assert_eq!(explicit.logged_profile, "serverless");
    assert_eq!(explicit.logged_workers, 7);
    assert_eq!(explicit.workers_check, "0 of 7 attempts in flight");
}
