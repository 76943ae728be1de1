//! The Grafana dashboard and the Prometheus alerts in `deploy/`: well-formed, and using
//! only metrics Herald exports.

use herald::metrics::NAMES;

/// The metric names an expression refers to (histogram series mapped to their metric).
fn metrics_in(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|token| token.starts_with("webhook_") || token.starts_with("grpc_server_"))
        .map(|token| {
            ["_bucket", "_count", "_sum"]
                .iter()
                .fold(token, |t, suffix| t.strip_suffix(suffix).unwrap_or(t))
                .to_owned()
        })
        .collect()
}

fn assert_known(exprs: &[String], file: &str) {
    assert!(!exprs.is_empty(), "{file} has no expressions");
    for expr in exprs {
        let used = metrics_in(expr);
        assert!(!used.is_empty(), "{file}: {expr:?} uses no Herald metric");
        for name in used {
            assert!(
                NAMES.contains(&name.as_str()),
                "{file}: {name} is not a Herald metric"
            );
        }
    }
}

#[test]
fn grafana_dashboard_uses_only_herald_metrics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/herald.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("well-formed JSON");
    assert_eq!(dashboard["title"], "Herald");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| {
            p["targets"]
                .as_array()
                .expect("targets")
                .iter()
                .map(|t| t["expr"].as_str().expect("expr").to_owned())
        })
        .collect();
    assert_known(&exprs, "herald.json");
}

#[test]
fn prometheus_alerts_use_only_herald_metrics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus/alerts.yml");
    let docs = yaml_rust2::YamlLoader::load_from_str(&std::fs::read_to_string(path).unwrap())
        .expect("well-formed YAML");
    let rules = docs[0]["groups"][0]["rules"]
        .as_vec()
        .expect("a group with rules");
    for rule in rules {
        assert!(
            rule["alert"].as_str().is_some() && rule["for"].as_str().is_some(),
            "{rule:?}"
        );
    }
    let exprs: Vec<String> = rules
        .iter()
        .map(|r| r["expr"].as_str().expect("expr").to_owned())
        .collect();
    assert_known(&exprs, "alerts.yml");
}

/// The README's first command is `cargo run --release`; with more than one binary in the
/// package that works only while the service is the default one.
#[test]
fn cargo_run_starts_the_service() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("Cargo.toml");
    assert!(
        manifest
            .lines()
            .any(|l| l.trim() == "default-run = \"herald\""),
        "Cargo.toml names herald as the binary `cargo run` starts"
    );
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    assert!(
        readme.contains("cargo run --release          # start Herald"),
        "the README starts Herald with `cargo run --release`"
    );
}
