//! The deploy kit in `deploy/`, checked against the binary and its settings: the Grafana
//! dashboard and the Prometheus alerts use only metrics Herald exports; the Dockerfile,
//! the compose file and its configuration files, and every Kubernetes manifest name only
//! settings Herald has, listen and probe where Herald does, keep secrets out of the
//! files, stop no sooner than Herald's shutdown grace, and pin their images.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Args as _;
use herald::cli::HealthArgs;
use herald::config::ServeArgs;
use herald::metrics::NAMES;
use yaml_rust2::{Yaml, YamlLoader};

use crate::support::{Backend, spawn_app};

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

/// A path under `deploy/`.
fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(path: &Path) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A scalar as text: YAML reads `30s` as a string, `50051` as a number.
fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn text(value: &Yaml) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a string, not {value:?}"))
}

/// A list of strings, or one string of words (compose accepts both for a command).
fn words(value: &Yaml) -> Vec<String> {
    match value.as_vec() {
        Some(list) => list.iter().filter_map(scalar).collect(),
        None => text(value).split_whitespace().map(str::to_owned).collect(),
    }
}

/// An image reference names its version: a tag other than `latest`, or a digest.
fn assert_pinned(image: &str, file: &str) {
    let name = image.rsplit('/').next().unwrap_or(image);
    let pinned = image.contains("@sha256:")
        || name
            .split_once(':')
            .is_some_and(|(_, tag)| !tag.is_empty() && tag != "latest");
    assert!(pinned, "{file}: image {image} is not pinned to a version");
}

/// Herald's settings (`herald serve`) as its binary reads them, from flags and
/// environment.
fn settings() -> clap::Command {
    ServeArgs::augment_args(clap::Command::new("herald"))
}

/// Stand-ins, of the form Herald accepts, for what a manifest leaves to run time (a
/// Secret, the shell, the pod): the settings are checked as a deployment runs them.
const SUPPLIED_AT_RUN_TIME: [(&str, &str); 4] = [
    ("REDIS_URL", "redis://redis.invalid:6379"),
    ("WEBHOOK_INSTANCE_ID", "herald-0"),
    (
        "WEBHOOK_ADMIN_API_KEY",
        "stand-in-admin-key-0123456789abcdefghijklmnop",
    ),
    (
        "WEBHOOK_MASTER_KEY",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ),
];

/// Herald's settings under `env`, as its binary reads and validates them at startup.
fn parse_settings(env: &BTreeMap<&str, &str>) -> Result<ServeArgs, String> {
    let command = settings();
    let mut flags = vec!["herald".to_owned()];
    for (name, value) in env {
        let setting = command
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == *name))
            .ok_or_else(|| format!("{name} is not a setting of Herald"))?;
        let long = setting.get_long().expect("every setting has a flag");
        match setting.get_action() {
            clap::ArgAction::SetTrue if *value == "true" => flags.push(format!("--{long}")),
            clap::ArgAction::SetTrue => {}
            _ => flags.push(format!("--{long}={value}")),
        }
    }
    let matches = command
        .mut_args(|a| a.env(None::<&str>))
        .try_get_matches_from(&flags)
        .map_err(|e| e.to_string())?;
    let args = <ServeArgs as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
    args.clone().into_config().map_err(|e| e.to_string())?;
    Ok(args)
}

/// Whether a setting's variable holds a secret (its value hidden from `--help`).
fn is_secret(name: &str) -> bool {
    settings()
        .get_arguments()
        .any(|a| a.get_env().is_some_and(|e| e == name) && a.is_hide_env_values_set())
}

/// The settings Herald runs with under an environment (later entries win; `None`: a
/// value that comes at run time from elsewhere), checked as Herald checks them: every
/// name is a setting's variable; a secret setting is never written in a file, but for a
/// URL without a password; and the values are a configuration Herald accepts.
fn herald_settings(file: &str, env: &[(String, Option<String>)]) -> ServeArgs {
    let mut values = BTreeMap::new();
    for (name, value) in env {
        let value = match value {
            Some(value) => {
                assert!(
                    !is_secret(name)
                        || url::Url::parse(value).is_ok_and(|url| url.password().is_none()),
                    "{file}: {name} is a secret, written in the file"
                );
                value.as_str()
            }
            None => SUPPLIED_AT_RUN_TIME
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, stand_in)| *stand_in)
                .unwrap_or_else(|| panic!("{file}: {name} from elsewhere, of what form?")),
        };
        values.insert(name.as_str(), value);
    }
    parse_settings(&values).unwrap_or_else(|e| panic!("{file}: Herald refuses: {e}"))
}

/// A secret's value in a committed file is a placeholder Herald refuses to start with,
/// or a URL without a password.
fn assert_placeholder(file: &str, name: &str, value: &str) {
    let url = url::Url::parse(value).is_ok_and(|u| u.password().is_none());
    assert!(
        url || parse_settings(&BTreeMap::from([(name, value)])).is_err(),
        "{file}: Herald would start with {name}={value:?}"
    );
}

/// Gives `duration` as Herald's settings accept it: seconds, or with a unit.
fn duration(value: &str) -> Duration {
    value
        .parse()
        .map(Duration::from_secs)
        .or_else(|_| humantime::parse_duration(value))
        .unwrap_or_else(|e| panic!("{value:?} is not a duration: {e}"))
}

/// The `herald` binary accepts `args` (a subcommand and its flags).
fn assert_herald_accepts(args: &[String], file: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .arg("--help")
        .output()
        .expect("herald runs");
    assert!(
        output.status.success(),
        "{file}: herald {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The Dockerfile's instructions as (keyword, arguments), continuation lines joined and
/// comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in read(&deploy("Dockerfile")).lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(part) = line.strip_suffix('\\') {
            current.push_str(part);
            continue;
        }
        current.push_str(line);
        let (keyword, args) = current
            .split_once(' ')
            .expect("an instruction with arguments");
        instructions.push((keyword.to_uppercase(), args.trim().to_owned()));
        current.clear();
    }
    instructions
}

/// The arguments of every `keyword` instruction.
fn all<'a>(instructions: &'a [(String, String)], keyword: &str) -> Vec<&'a str> {
    instructions
        .iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, args)| args.as_str())
        .collect()
}

/// The arguments of the one `keyword` instruction.
fn one<'a>(instructions: &'a [(String, String)], keyword: &str) -> &'a str {
    match all(instructions, keyword)[..] {
        [args] => args,
        ref found => panic!("Dockerfile: {} {keyword} instructions", found.len()),
    }
}

/// The environment the image sets.
fn image_env() -> Vec<(String, Option<String>)> {
    all(&dockerfile(), "ENV")
        .iter()
        .flat_map(|args| args.split_whitespace())
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect("ENV NAME=value");
            (name.to_owned(), Some(value.to_owned()))
        })
        .collect()
}

/// The image's numeric user and group.
fn image_user() -> (i64, i64) {
    let instructions = dockerfile();
    let user = one(&instructions, "USER");
    let (uid, gid) = user.split_once(':').expect("USER uid:gid");
    let id = |n: &str| {
        n.parse()
            .unwrap_or_else(|_| panic!("USER {user} is not numeric"))
    };
    (id(uid), id(gid))
}

/// The exec form of an instruction's command (`["herald", "serve"]`).
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("{args} is not an exec form: {e}"))
}

#[test]
fn dockerfile_builds_herald_and_runs_it_as_its_settings_say() {
    let instructions = dockerfile();
    let stages = all(&instructions, "FROM");
    let images: Vec<&str> = stages
        .iter()
        .map(|s| s.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(images.len(), 2, "a build stage and a runtime stage");
    assert!(
        images[0].starts_with("rust:") && images[0].ends_with("-bookworm"),
        "{}",
        images[0]
    );
    assert_eq!(images[1], "debian:bookworm-slim");
    for image in &images {
        assert_pinned(image, "Dockerfile");
    }
    let runtime_from = instructions.iter().rposition(|(k, _)| k == "FROM").unwrap();
    let (build, runtime) = instructions.split_at(runtime_from);
    assert!(
        all(build, "RUN")
            .iter()
            .any(|r| r.contains("cargo build --release --locked --bin herald")),
        "the build stage builds the locked release binary"
    );
    assert!(
        all(runtime, "RUN")
            .iter()
            .any(|r| r.contains("install") && r.contains("ca-certificates")),
        "the runtime has CA certificates for https endpoints"
    );

    let args = herald_settings("Dockerfile", &image_env());
    let defaults = ServeArgs::defaults();
    for (addr, default) in [
        (args.grpc_addr, defaults.grpc_addr),
        (args.admin_addr, defaults.admin_addr),
    ] {
        assert!(
            addr.ip().is_unspecified(),
            "{addr}: not reachable from outside"
        );
        assert_eq!(
            addr.port(),
            default.port(),
            "the port Herald uses by default"
        );
    }
    let exposed: BTreeSet<u16> = all(runtime, "EXPOSE")
        .iter()
        .flat_map(|a| a.split_whitespace())
        .map(|p| p.parse().expect("a port"))
        .collect();
    assert_eq!(
        exposed,
        BTreeSet::from([args.grpc_addr.port(), args.admin_addr.port()])
    );
    let data_dir = args.data_dir.to_str().unwrap();
    assert_eq!(
        one(runtime, "VOLUME"),
        data_dir,
        "the data directory is a volume"
    );
    assert_eq!(one(runtime, "WORKDIR"), data_dir);
    let (uid, gid) = image_user();
    assert!(uid > 0 && gid > 0, "not root");

    // The health check is a command of this binary; it reads the admin address the image
    // sets, and gives up by itself before Docker does.
    let healthcheck = one(runtime, "HEALTHCHECK");
    let (options, command) = healthcheck.split_once("CMD ").expect("HEALTHCHECK CMD");
    let command = exec_form(command);
    assert_eq!(command[0], "herald");
    let help = assert_herald_accepts(&command[1..], "Dockerfile HEALTHCHECK");
    assert!(help.contains("[env: WEBHOOK_ADMIN_ADDR="), "{help}");
    let docker_timeout = options
        .split_whitespace()
        .find_map(|o| o.strip_prefix("--timeout="))
        .map(duration)
        .expect("HEALTHCHECK --timeout");
    let probe = HealthArgs::augment_args(clap::Command::new("health"));
    let probe_timeout = probe
        .get_arguments()
        .find(|a| a.get_id() == "timeout")
        .and_then(|a| a.get_default_values().first()?.to_str().map(duration))
        .expect("herald health has a default timeout");
    assert!(probe_timeout < docker_timeout);

    let mut run = exec_form(one(runtime, "ENTRYPOINT"));
    run.extend(exec_form(one(runtime, "CMD")));
    assert_eq!(run, ["herald", "serve"]);
    assert_herald_accepts(&run[1..], "Dockerfile ENTRYPOINT");
    assert_eq!(one(runtime, "STOPSIGNAL"), "SIGTERM", "SIGTERM drains");

    // The build context is the repository: only what the build reads goes in.
    let ignore = read(&deploy("Dockerfile.dockerignore"));
    let rules: Vec<&str> = ignore
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(rules[0], "*", "everything out but what is named");
    let kept: BTreeSet<&str> = rules[1..]
        .iter()
        .map(|r| r.strip_prefix('!').expect("an exception"))
        .collect();
    assert_eq!(
        kept,
        BTreeSet::from([
            "Cargo.toml",
            "Cargo.lock",
            "build.rs",
            "proto",
            "src",
            "dashboard/dist"
        ])
    );
    // Every file the binary embeds is in the context.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for embedded in embedded_files(&root.join("src")) {
        let relative = embedded
            .strip_prefix(root)
            .unwrap_or_else(|_| panic!("{} is outside the repository", embedded.display()));
        assert!(
            kept.iter().any(|k| relative.starts_with(k)),
            "the image build needs {}, which Dockerfile.dockerignore leaves out",
            relative.display()
        );
    }
}

/// The files that `include_bytes!`/`include_str!` with a literal path embed, from the
/// code under `dir` that the binary is built from (test modules, at the end of their
/// files, left out).
fn embedded_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(embedded_files(&path));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let code = read(&path);
        let code = code.split("#[cfg(test)]").next().unwrap_or_default();
        for opening in ["include_bytes!(\"", "include_str!(\""] {
            for (at, _) in code.match_indices(opening) {
                let rest = &code[at + opening.len()..];
                let literal = &rest[..rest.find('"').expect("a closing quote")];
                let file = path.parent().unwrap().join(literal);
                found.push(
                    file.canonicalize()
                        .unwrap_or_else(|e| panic!("{} embeds {literal}: {e}", path.display())),
                );
            }
        }
    }
    found
}

/// A compose service.
fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let service = &compose["services"][name];
    assert!(!service.is_badvalue(), "compose.yaml: no service {name}");
    service
}

/// The file under `deploy/` that a compose service sees at `container_path`.
fn mounted(service: &Yaml, container_path: &str) -> PathBuf {
    service["volumes"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let mut parts = text(v).split(':');
            let (source, target) = (parts.next()?, parts.next()?);
            let rest = Path::new(container_path).strip_prefix(target).ok()?;
            let source = deploy(source);
            Some(match rest.as_os_str().is_empty() {
                true => source,
                false => source.join(rest),
            })
            .filter(|_| text(v).starts_with('.'))
        })
        .next()
        .unwrap_or_else(|| panic!("compose.yaml: nothing from deploy/ at {container_path}"))
}

/// The container ports a compose service publishes.
fn published(service: &Yaml) -> BTreeSet<u16> {
    service["ports"]
        .as_vec()
        .into_iter()
        .flatten()
        .map(|p| {
            let port = scalar(p).unwrap();
            port.rsplit(':').next().unwrap().parse().expect("a port")
        })
        .collect()
}

/// The host and port of a URL.
fn host_port(url: &str) -> (String, u16) {
    let url = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    (
        url.host_str().unwrap().to_owned(),
        url.port_or_known_default().expect("a port"),
    )
}

#[test]
fn compose_runs_herald_on_durable_redis_with_prometheus_grafana_and_a_collector() {
    let compose = yaml(&deploy("compose.yaml")).remove(0);
    let services = compose["services"].as_hash().expect("services");
    for (name, service) in services {
        assert_pinned(text(&service["image"]), &format!("compose.yaml {name:?}"));
        for volume in service["volumes"].as_vec().into_iter().flatten() {
            let source = text(volume).split(':').next().unwrap();
            assert!(
                !source.starts_with('.') || deploy(source).exists(),
                "compose.yaml: {source} does not exist"
            );
        }
    }

    // Herald, from the image this kit builds, with the environment the file sets.
    let herald = service(&compose, "herald");
    let built =
        deploy(text(&herald["build"]["context"])).join(text(&herald["build"]["dockerfile"]));
    assert_eq!(
        built.canonicalize().unwrap(),
        deploy("Dockerfile").canonicalize().unwrap()
    );
    let examples = read(&deploy(".env.example"));
    let mut env = image_env();
    for (name, value) in herald["environment"].as_hash().expect("a map") {
        let value = scalar(value).unwrap();
        // `${NAME:?…}`: from the shell or deploy/.env, which .env.example shows.
        let from_outside = value.strip_prefix("${").map(|v| {
            let (variable, _) = v.split_once(":?").expect("${NAME:?message}: required");
            assert!(
                examples
                    .lines()
                    .any(|l| l.starts_with(&format!("{variable}="))),
                ".env.example shows no {variable}"
            );
        });
        env.push((
            text(name).to_owned(),
            from_outside.is_none().then_some(value),
        ));
    }
    let gitignore =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.gitignore")).unwrap();
    assert!(
        gitignore.lines().any(|l| l == "/deploy/.env"),
        "deploy/.env is never committed"
    );
    let args = herald_settings("compose.yaml", &env);
    assert_eq!(
        published(herald),
        BTreeSet::from([args.grpc_addr.port(), args.admin_addr.port()])
    );
    let stop = duration(text(&herald["stop_grace_period"]));
    assert!(
        stop > args.shutdown_grace,
        "compose stops Herald within its grace"
    );
    assert_eq!(herald["read_only"].as_bool(), Some(true));
    assert!(
        herald["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .any(|v| text(v).split(':').nth(1) == args.data_dir.to_str()),
        "the data directory is a volume"
    );

    // Redis: every acknowledged write on disk, no key ever evicted.
    assert!(matches!(
        args.storage_type,
        herald::config::StorageType::Redis
    ));
    let (host, port) = host_port(args.redis_url.as_deref().expect("REDIS_URL"));
    assert_eq!(port, 6379);
    let redis = words(&service(&compose, &host)["command"]);
    for setting in [
        ["--appendonly", "yes"],
        ["--appendfsync", "always"],
        ["--maxmemory-policy", "noeviction"],
    ] {
        assert!(redis.windows(2).any(|w| w == setting), "redis {setting:?}");
    }

    // Traces go to the collector, on the port it receives OTLP/gRPC on.
    let tracing = args.tracing().expect("ENABLE_TRACING");
    let (host, port) = host_port(&tracing.endpoint);
    let collector = service(&compose, &host);
    let config = words(&collector["command"])
        .iter()
        .find_map(|w| w.strip_prefix("--config=").map(str::to_owned))
        .expect("the collector's --config");
    let config = yaml(&mounted(collector, &config)).remove(0);
    let receiver = text(&config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]);
    assert_eq!(receiver.rsplit(':').next(), Some(port.to_string().as_str()));
    assert!(words(&config["service"]["pipelines"]["traces"]["receivers"]).contains(&"otlp".into()));

    // Prometheus scrapes Herald's admin port, with the alert rules loaded.
    let prometheus = service(&compose, "prometheus");
    let config_file = words(&prometheus["command"])
        .iter()
        .find_map(|w| w.strip_prefix("--config.file=").map(str::to_owned))
        .expect("--config.file");
    let config_file = mounted(prometheus, &config_file);
    assert_eq!(
        config_file.canonicalize().unwrap(),
        deploy("prometheus/prometheus.yml").canonicalize().unwrap()
    );
    let config = yaml(&config_file).remove(0);
    let rules: Vec<String> = words(&config["rule_files"]);
    assert_eq!(rules, ["alerts.yml"], "the alerts of deploy/prometheus");
    let targets: Vec<String> = config["scrape_configs"]
        .as_vec()
        .unwrap()
        .iter()
        .flat_map(|job| job["static_configs"].as_vec().unwrap())
        .flat_map(|c| words(&c["targets"]))
        .collect();
    assert_eq!(targets, [format!("herald:{}", args.admin_addr.port())]);

    // Grafana: the Prometheus above as its datasource, the Herald dashboard provisioned.
    let grafana = service(&compose, "grafana");
    let provisioning = mounted(grafana, "/etc/grafana/provisioning");
    let datasources = yaml(&provisioning.join("datasources/prometheus.yml")).remove(0);
    let datasource = &datasources["datasources"][0];
    assert_eq!(text(&datasource["type"]), "prometheus");
    let (host, port) = host_port(text(&datasource["url"]));
    assert_eq!(host, "prometheus");
    assert!(published(prometheus).contains(&port));
    let dashboards = yaml(&provisioning.join("dashboards/herald.yml")).remove(0);
    let folder = text(&dashboards["providers"][0]["options"]["path"]);
    assert_eq!(
        mounted(grafana, &format!("{folder}/herald.json"))
            .canonicalize()
            .unwrap(),
        deploy("grafana/herald.json").canonicalize().unwrap()
    );
}

/// Herald's peak RSS under full load, and beside 100,000 registered endpoints, as
/// BENCHMARKS.md reports them (herald-bench W1–W6b and W9): what a pod's memory request
/// and limit must cover.
const PEAK_RSS: u64 = 49 << 20;
const PEAK_RSS_100K_ENDPOINTS: u64 = 161 << 20;

/// Bytes in a Kubernetes quantity (`64Mi`, `1G`).
fn bytes(quantity: &str) -> u64 {
    let units = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    let (number, factor) = units
        .iter()
        .find_map(|(unit, factor)| Some((quantity.strip_suffix(unit)?, *factor)))
        .unwrap_or((quantity, 1));
    number.parse::<u64>().expect("a quantity") * factor
}

/// Every document of a kustomization, its resources' directories expanded, with its file.
fn kustomize(dir: &Path) -> Vec<(PathBuf, Yaml)> {
    let kustomization = yaml(&dir.join("kustomization.yaml")).remove(0);
    kustomization["resources"]
        .as_vec()
        .expect("resources")
        .iter()
        .flat_map(|resource| {
            let path = dir.join(text(resource));
            if path.is_dir() {
                kustomize(&path)
            } else {
                yaml(&path).into_iter().map(|d| (path.clone(), d)).collect()
            }
        })
        .collect()
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .flat_map(|p| if p.is_dir() { files(&p) } else { vec![p] })
        .collect()
}

/// A mapping of strings (labels, selectors).
fn labels(value: &Yaml) -> BTreeMap<String, String> {
    value
        .as_hash()
        .expect("a map")
        .iter()
        .map(|(k, v)| (text(k).to_owned(), scalar(v).unwrap()))
        .collect()
}

fn selects(selector: &Yaml, pod_labels: &BTreeMap<String, String>) -> bool {
    labels(selector)
        .iter()
        .all(|(k, v)| pod_labels.get(k) == Some(v))
}

/// Every Kubernetes manifest is listed by a kustomization; each kustomization that holds a
/// workload is one way to run Herald, checked whole.
#[test]
fn kubernetes_manifests_run_herald_as_its_settings_say() {
    let root = deploy("kubernetes");
    let kustomizations: Vec<PathBuf> = files(&root)
        .into_iter()
        .filter(|f| f.file_name().unwrap() == "kustomization.yaml")
        .map(|f| f.parent().unwrap().to_owned())
        .collect();
    let builds: Vec<Vec<(PathBuf, Yaml)>> = kustomizations.iter().map(|k| kustomize(k)).collect();
    let listed: BTreeSet<&PathBuf> = builds.iter().flatten().map(|(f, _)| f).collect();
    for file in files(&root) {
        if file.file_name().unwrap() != "kustomization.yaml" {
            assert!(
                listed.contains(&file),
                "{} is in no kustomization",
                file.display()
            );
        }
    }
    let mut kinds = BTreeSet::new();
    for build in &builds {
        for (file, doc) in build {
            assert!(
                doc["apiVersion"].as_str().is_some() && doc["metadata"]["name"].as_str().is_some(),
                "{}: a manifest",
                file.display()
            );
        }
        if let Some(kind) = check_variant(build) {
            kinds.insert(kind);
        }
    }
    assert_eq!(kinds, BTreeSet::from(["Deployment", "StatefulSet"]));
}

/// Checks one way to run Herald (a kustomization's documents) and names its workload's
/// kind; `None` when it holds no workload.
fn check_variant(docs: &[(PathBuf, Yaml)]) -> Option<&'static str> {
    let of_kind = |kind: &str| -> Vec<&Yaml> {
        docs.iter()
            .filter(|(_, d)| d["kind"].as_str() == Some(kind))
            .map(|(_, d)| d)
            .collect()
    };
    let (kind, workload) = match (&of_kind("Deployment")[..], &of_kind("StatefulSet")[..]) {
        ([], []) => return None,
        ([deployment], []) => ("Deployment", *deployment),
        ([], [set]) => ("StatefulSet", *set),
        _ => panic!("one workload per kustomization"),
    };
    let file = docs
        .iter()
        .find(|(_, d)| std::ptr::eq(d, workload))
        .map(|(f, _)| f.display().to_string())
        .unwrap();
    let file = file.as_str();
    let pod = &workload["spec"]["template"];
    let pod_labels = labels(&pod["metadata"]["labels"]);
    assert!(selects(
        &workload["spec"]["selector"]["matchLabels"],
        &pod_labels
    ));
    let spec = &pod["spec"];
    let containers = spec["containers"].as_vec().expect("containers");
    assert_eq!(containers.len(), 1, "{file}: Herald alone in its pod");
    let container = &containers[0];
    assert_pinned(text(&container["image"]), file);
    assert_eq!(words(&container["args"]), ["serve"]);

    // The environment: settings of Herald's; secrets from Secrets that hold them.
    let secrets: HashMap<&str, &Yaml> = of_kind("Secret")
        .iter()
        .map(|s| (text(&s["metadata"]["name"]), &s["stringData"]))
        .collect();
    let mut env = image_env();
    for var in container["env"].as_vec().expect("env") {
        let name = text(&var["name"]).to_owned();
        let value = scalar(&var["value"]);
        let from = &var["valueFrom"];
        let secret = &from["secretKeyRef"];
        if secret.as_hash().is_some() {
            let (secret, key) = (text(&secret["name"]), text(&secret["key"]));
            let held = secrets.get(secret).and_then(|data| data[key].as_str());
            let held = held.unwrap_or_else(|| {
                panic!("{file}: {name} from {secret}/{key}, which no Secret here holds")
            });
            assert_placeholder(file, &name, held);
        } else {
            assert!(
                value.is_some() || from["fieldRef"].as_hash().is_some(),
                "{file}: {name}"
            );
        }
        env.push((name, value));
    }
    assert!(
        env.iter().any(|(name, _)| name == "WEBHOOK_SHUTDOWN_GRACE"),
        "{file}: the shutdown grace is set, so the pod's grace can be set above it"
    );
    let args = herald_settings(file, &env);

    // Ports: named, where Herald listens.
    let ports: HashMap<String, u16> = container["ports"]
        .as_vec()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                text(&p["name"]).to_owned(),
                p["containerPort"].as_i64().unwrap() as u16,
            )
        })
        .collect();
    assert!(args.grpc_addr.ip().is_unspecified() && args.admin_addr.ip().is_unspecified());
    assert_eq!(
        ports.get("grpc"),
        Some(&args.grpc_addr.port()),
        "{file}: the port named grpc"
    );
    let admin = ports
        .iter()
        .find(|(_, port)| **port == args.admin_addr.port())
        .map(|(name, _)| name.as_str())
        .expect("the admin port is a container port");
    assert_eq!(ports.len(), 2);
    let port_of = |port: &Yaml| match port {
        Yaml::Integer(n) => *n as u16,
        name => ports[text(name)],
    };

    // Probes: gRPC health on the gRPC port, HTTP on the admin port.
    let mut grpc_probes = 0;
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let probe = &container[probe];
        assert!(probe.as_hash().is_some(), "{file}: no {probe:?}");
        if probe["grpc"].as_hash().is_some() {
            assert_eq!(port_of(&probe["grpc"]["port"]), args.grpc_addr.port());
            grpc_probes += 1;
        } else {
            assert_eq!(port_of(&probe["httpGet"]["port"]), args.admin_addr.port());
        }
    }
    assert!(grpc_probes > 0, "{file}: a native gRPC probe");

    // Stopping: endpoints drain during the preStop sleep, then Herald has its grace.
    let pre_stop = words(&container["lifecycle"]["preStop"]["exec"]["command"]);
    let [sleep, seconds] = &pre_stop[..] else {
        panic!("{file}: preStop is `sleep N`, not {pre_stop:?}")
    };
    assert_eq!(sleep, "sleep");
    let drain = duration(seconds);
    assert!(drain >= Duration::from_secs(1));
    let grace = spec["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("a grace period");
    assert!(
        Duration::from_secs(grace as u64) > drain + args.shutdown_grace,
        "{file}: {grace} s is not longer than {drain:?} + {:?}",
        args.shutdown_grace
    );

    // Security: the image's user, nothing written outside volumes, no privilege.
    let (uid, gid) = image_user();
    let pod_security = &spec["securityContext"];
    assert_eq!(pod_security["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(pod_security["runAsUser"].as_i64(), Some(uid));
    assert_eq!(pod_security["runAsGroup"].as_i64(), Some(gid));
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(words(&security["capabilities"]["drop"]), ["ALL"]);

    // Memory from the benchmark's measures.
    let resources = &container["resources"];
    let request = bytes(text(&resources["requests"]["memory"]));
    let limit = bytes(text(&resources["limits"]["memory"]));
    assert!(
        PEAK_RSS <= request && request <= limit,
        "{file}: memory request"
    );
    assert!(PEAK_RSS_100K_ENDPOINTS <= limit, "{file}: memory limit");

    // Services select the pods and target their named ports; a port named grpc is gRPC.
    let services = of_kind("Service");
    assert!(!services.is_empty(), "{file}: a Service");
    for service in &services {
        assert!(selects(&service["spec"]["selector"], &pod_labels));
        for port in service["spec"]["ports"].as_vec().unwrap() {
            let target = text(&port["targetPort"]);
            assert!(
                ports.contains_key(target),
                "{file}: no container port {target}"
            );
            assert_eq!(text(&port["name"]) == "grpc", target == "grpc");
        }
    }
    // The ServiceMonitor scrapes /metrics on a Service port that is the admin port.
    for monitor in of_kind("ServiceMonitor") {
        let service = services
            .iter()
            .find(|s| {
                selects(
                    &monitor["spec"]["selector"]["matchLabels"],
                    &labels(&s["metadata"]["labels"]),
                )
            })
            .expect("the ServiceMonitor selects the Service");
        for endpoint in monitor["spec"]["endpoints"].as_vec().unwrap() {
            let port = service["spec"]["ports"]
                .as_vec()
                .unwrap()
                .iter()
                .find(|p| p["name"] == endpoint["port"])
                .expect("a Service port");
            assert_eq!(text(&port["targetPort"]), admin);
            assert_eq!(text(&endpoint["path"]), "/metrics");
        }
    }
    assert_eq!(
        of_kind("ServiceMonitor").len(),
        1,
        "{file}: a ServiceMonitor"
    );

    let replicas = workload["spec"]["replicas"].as_i64().expect("replicas");
    match kind {
        "Deployment" => {
            assert!(matches!(
                args.storage_type,
                herald::config::StorageType::Redis
            ));
            assert!(replicas >= 2, "{file}: several replicas share Redis");
            let budgets = of_kind("PodDisruptionBudget");
            let [budget] = &budgets[..] else {
                panic!("{file}: one PodDisruptionBudget")
            };
            assert!(selects(
                &budget["spec"]["selector"]["matchLabels"],
                &pod_labels
            ));
            let available = budget["spec"]["minAvailable"]
                .as_i64()
                .expect("minAvailable");
            assert!(0 < available && available < replicas, "drains can proceed");
        }
        _ => {
            assert!(matches!(
                args.storage_type,
                herald::config::StorageType::Embedded
            ));
            assert_eq!(replicas, 1, "{file}: the store is one pod's volume");
            let claims: Vec<&str> = workload["spec"]["volumeClaimTemplates"]
                .as_vec()
                .expect("volumeClaimTemplates")
                .iter()
                .map(|c| text(&c["metadata"]["name"]))
                .collect();
            let data = container["volumeMounts"]
                .as_vec()
                .expect("volumeMounts")
                .iter()
                .find(|m| m["mountPath"].as_str() == args.data_dir.to_str())
                .expect("a volume at the data directory");
            assert!(claims.contains(&text(&data["name"])), "a claim per pod");
            let headless = services
                .iter()
                .find(|s| s["metadata"]["name"] == workload["spec"]["serviceName"])
                .expect("the StatefulSet's Service");
            assert_eq!(text(&headless["spec"]["clusterIP"]), "None");
        }
    }
    Some(kind)
}

/// Every value under `key`, at any depth of `value`.
fn find_all<'a>(value: &'a Yaml, key: &str, found: &mut Vec<&'a Yaml>) {
    match value {
        Yaml::Hash(map) => {
            for (k, v) in map {
                if k.as_str() == Some(key) {
                    found.push(v);
                }
                find_all(v, key, found);
            }
        }
        Yaml::Array(list) => list.iter().for_each(|v| find_all(v, key, found)),
        _ => {}
    }
}

/// The admin port's paths that the manifests probe or scrape, and the gRPC health
/// services their probes ask for ("" for the overall status), answer on a running Herald.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probed_and_scraped_paths_answer_on_a_running_herald() {
    let mut documents: Vec<Yaml> = files(&deploy("kubernetes"))
        .iter()
        .flat_map(|f| yaml(f))
        .collect();
    documents.extend(yaml(&deploy("prometheus/prometheus.yml")));
    let mut paths = BTreeSet::new();
    let mut grpc_services = BTreeSet::new();
    for doc in &documents {
        let mut found = Vec::new();
        find_all(doc, "httpGet", &mut found);
        paths.extend(found.iter().map(|g| text(&g["path"]).to_owned()));
        let mut found = Vec::new();
        find_all(doc, "endpoints", &mut found);
        find_all(doc, "scrape_configs", &mut found);
        paths.extend(
            found
                .iter()
                .flat_map(|list| list.as_vec().into_iter().flatten())
                .filter_map(|e| {
                    e["path"]
                        .as_str()
                        .or(e["metrics_path"].as_str())
                        .map(str::to_owned)
                }),
        );
        let mut found = Vec::new();
        find_all(doc, "grpc", &mut found);
        grpc_services.extend(
            found
                .iter()
                .filter(|g| g["port"].as_i64().is_some())
                .map(|g| g["service"].as_str().unwrap_or_default().to_owned()),
        );
    }
    assert!(paths.contains("/metrics"), "{paths:?}");
    assert!(!grpc_services.is_empty(), "gRPC probes");

    let app = spawn_app(Backend::Memory).await;
    for path in &paths {
        let answer = reqwest::get(format!("http://{}{path}", app.admin))
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
    }
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for service in grpc_services {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest { service })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
    app.stop().await;
}
