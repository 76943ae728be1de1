//! The benchmark tool works end to end: `herald-bench --smoke` against the debug-built
//! server, on the embedded store and on a `redis-server` of its own, exits 0 with every
//! workload in its JSON, each ledger balanced and each rate above zero.
//!
//! It takes the machine (no other test's load beside it) but runs a debug build: it
//! checks the tool, never Herald's performance, which only the release benchmark in
//! BENCHMARKS.md measures.

use std::process::Command;

use crate::support::take_machine;

/// Every row a run reports, in order.
const ROWS: [&str; 8] = ["W1", "W2", "W3", "W4", "W5", "W6a", "W6b", "W9"];
/// The embedded store's rows after them: W1 and W3 on a big store.
const BIG_STORE_ROWS: [&str; 2] = ["W8a", "W8b"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_smoke_run_balances_every_ledger() {
    let _machine = take_machine().await;
    for store in ["embedded", "redis"] {
        smoke(store).await;
    }
}

async fn smoke(store: &str) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald-bench"));
    command
        .args(["--smoke", "--store", store])
        .args(["--herald", env!("CARGO_BIN_EXE_herald")])
        .arg("--json")
        .arg(&json);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("herald-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "herald-bench --smoke --store {store}: {}\n{stdout}\n{stderr}",
        output.status
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON file is written"))
            .expect("the JSON file parses");
    assert_eq!(report["store"], store);
    assert_eq!(report["ok"], true, "{}", report["problems"]);
    let rows = report["rows"].as_array().expect("rows");
    let keys: Vec<&str> = rows.iter().filter_map(|r| r["key"].as_str()).collect();
    let big_store: &[&str] = if store == "embedded" {
        &BIG_STORE_ROWS
    } else {
        &[]
    };
    assert_eq!(keys, [&ROWS[..], big_store].concat(), "{store}");
    for row in rows {
        let key = format!("{store} {}", row["key"]);
        let ledger = &row["ledger"];
        assert_eq!(ledger["missing"], 0, "{key}: {ledger}");
        assert_eq!(ledger["delivered"], ledger["expected"], "{key}: {ledger}");
        assert!(ledger["expected"].as_u64() > Some(0), "{key}: {ledger}");
        assert_eq!(row["publish_errors"], 0, "{key}");
        for figure in ["publish_calls_per_s", "deliveries_per_s"] {
            assert!(row[figure].as_f64() > Some(0.0), "{key}: {figure}");
        }
    }
    let w5 = &rows[4];
    assert!(
        w5["refused_attempts"].as_u64() > Some(0),
        "{store}: the failing endpoint was attempted"
    );
    let w3_rate = rows[2]["deliveries_per_s"].as_f64().expect("W3's rate");
    assert_eq!(rate_bound(&rows[7]), Some((w3_rate * 0.8).round()), "W9");
    if store == "embedded" {
        assert_eq!(report["settings"]["big_store"], 2_000);
        let w1_rate = rows[0]["deliveries_per_s"].as_f64().expect("W1's rate");
        assert_eq!(rate_bound(&rows[8]), Some((w1_rate * 0.8).round()), "W8a");
        assert_eq!(rate_bound(&rows[9]), Some((w3_rate * 0.8).round()), "W8b");
    }
    for figure in ["idle_rss_mb", "peak_rss_mb", "start_ms_median"] {
        assert!(
            report["footprint"][figure].as_f64() > Some(0.0),
            "{store}: {figure}"
        );
    }
}

/// The deliveries/s a row is judged against, if it is.
fn rate_bound(row: &serde_json::Value) -> Option<f64> {
    row["checks"]
        .as_array()?
        .iter()
        .find(|c| c["figure"] == "deliveries_per_s")?["limit"]
        .as_f64()
}
