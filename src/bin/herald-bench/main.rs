//! herald-bench: measures a real Herald against the performance budget of DESIGN.md §10.
//!
//! It starts its own sink, its own Herald (the `herald` binary beside this one, or
//! `--herald`), and on the Redis store its own `redis-server`; it runs the workloads
//! W1–W7 one after the other, prints the figures next to their budgets and writes every
//! figure to a JSON file. With `--soak` it runs one long steady load instead and judges
//! whether Herald's memory and disk stay flat. Traffic goes to loopback only, and every
//! loop is bounded. It exits non-zero when a delivery is missing or a publish failed; a
//! missed budget or a growing series is reported, not a failure.
//!
//! Layout:
//! - `payload`: the 1 KiB JSON body with its publish time at a fixed offset; the run's clock.
//! - `sink`: the HTTP/1.1 receiver Herald delivers to; records each request cheaply.
//! - `servers`: Herald and Redis as child processes; start to SERVING.
//! - `procfs`: CPU time and resident memory of a process, and the machine, from /proc.
//! - `workload`: the workloads, closed- and open-loop publishers, the ledger.
//! - `soak`: the soak, its samples of memory and disk, and whether they stay flat.
//! - `report`: budgets, the terminal tables, the JSON file.

mod bigstore;
mod payload;
mod procfs;
mod report;
mod servers;
mod sink;
mod soak;
mod workload;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use serde::Serialize;

use crate::payload::Clock;
use crate::report::{Footprint, Isolation, Report, Row, RunInfo, Settings};
use crate::servers::{Launcher, RedisServer, StoreKind};
use crate::sink::Sink;
use crate::soak::{SoakReport, SoakSettings};
use crate::workload::{Bench, Load, Measured, Setup, Target, Workload};

/// The slow endpoint's added latency (W4).
const SLOW: Duration = Duration::from_millis(50);
/// The fixed open-loop rate (W6a).
const OPEN_LOOP_RATE: f64 = 300.0;
/// The longest soak: long enough for any leak to show, short enough to stay bounded.
const SOAK_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// Measures Herald against its performance budget (DESIGN.md §10).
///
/// Build both binaries first: `cargo build --release --bins`.
#[derive(Debug, Parser)]
#[command(name = "herald-bench", version)]
struct Args {
    /// Herald's store: embedded (SQLite in a temporary directory), memory (non-durable),
    /// or redis (a redis-server started by the bench, AOF with appendfsync always).
    #[arg(long, value_enum, default_value_t = StoreKind::Embedded)]
    store: StoreKind,
    /// Measured messages per closed-loop workload (W3 publishes a tenth: it fans out
    /// 100×) [default: 20000, 200 with --smoke].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    messages: Option<u64>,
    /// Warm-up messages before each workload, results discarded [default: 300, 20 with
    /// --smoke].
    #[arg(long)]
    warmup: Option<u64>,
    /// Concurrent closed-loop publishers.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    publishers: u32,
    /// gRPC channels (HTTP/2 connections) the publishers share.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    channels: u32,
    /// Seconds of each open-loop row (W6) [default: 10, 0.5 with --smoke].
    #[arg(long)]
    open_loop_secs: Option<f64>,
    /// Fresh starts timed for start → SERVING; the median is reported [default: 5, 1
    /// with --smoke].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    starts: Option<u32>,
    /// Seconds without any new delivery after which the missing ones are declared missing.
    #[arg(long, default_value_t = 30)]
    stall_secs: u64,
    /// The herald binary [default: `herald` beside this executable].
    #[arg(long)]
    herald: Option<PathBuf>,
    /// Idle endpoints registered beside W9's 100 (one per customer) [default: 100000,
    /// 1000 with --smoke].
    #[arg(long)]
    idle_endpoints: Option<usize>,
    /// Settled messages in W8's store (embedded only) [default: 10000000, 2000 with
    /// --smoke].
    #[arg(long)]
    big_store: Option<u64>,
    /// Only these rows, comma-separated (`W1,W3`) [default: every row]. W6b runs only
    /// with W1, whose rate it halves.
    #[arg(long, value_delimiter = ',', value_parser = ["W1", "W2", "W3", "W4", "W5", "W6a", "W6b", "W8", "W9"], conflicts_with = "soak")]
    rows: Vec<String>,
    /// Where to write every figure as JSON.
    #[arg(long, default_value = "bench-results.json")]
    json: PathBuf,
    /// A few hundred messages per workload, short open-loop rows, one timed start: runs
    /// in seconds, checks that everything works (CI).
    #[arg(long)]
    smoke: bool,
    /// Instead of the workloads, a soak this long (`30m`): one endpoint, a steady --rate,
    /// Herald with a short --retention, its memory and disk sampled every --sample-every
    /// and judged flat or growing.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with_all = ["smoke", "messages", "warmup", "publishers", "open_loop_secs", "starts"])]
    soak: Option<Duration>,
    /// Messages per second of the soak.
    #[arg(long, default_value_t = 300.0, requires = "soak")]
    rate: f64,
    /// `WEBHOOK_RETENTION` of the soak's Herald.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, requires = "soak")]
    retention: Duration,
    /// Interval between the soak's samples.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, requires = "soak")]
    sample_every: Duration,
}

impl Args {
    fn settings(&self) -> anyhow::Result<Settings> {
        let open_loop_seconds = self
            .open_loop_secs
            .unwrap_or(if self.smoke { 0.5 } else { 10.0 });
        if !(open_loop_seconds > 0.0 && open_loop_seconds <= 600.0) {
            bail!("--open-loop-secs must be in (0, 600], got {open_loop_seconds}");
        }
        Ok(Settings {
            messages: self
                .messages
                .unwrap_or(if self.smoke { 200 } else { 20_000 }),
            warmup_messages: self.warmup.unwrap_or(if self.smoke { 20 } else { 300 }),
            publishers: self.publishers as usize,
            channels: self.channels as usize,
            open_loop_seconds,
            starts: self.starts.unwrap_or(if self.smoke { 1 } else { 5 }) as usize,
            stall_seconds: self.stall_secs,
            big_store: self
                .big_store
                .unwrap_or(if self.smoke { 2_000 } else { 10_000_000 }),
            idle_endpoints: self
                .idle_endpoints
                .unwrap_or(if self.smoke { 1_000 } else { 100_000 }),
            // Long enough for start-up work to finish; a smoke run does not judge memory.
            idle_settle_seconds: if self.smoke { 0.1 } else { 1.0 },
        })
    }

    fn soak_settings(&self, duration: Duration) -> anyhow::Result<SoakSettings> {
        if duration.is_zero() || duration > SOAK_LIMIT {
            bail!(
                "--soak must be in (0, {}], got {}",
                humantime::format_duration(SOAK_LIMIT),
                humantime::format_duration(duration)
            );
        }
        if !(self.rate > 0.0 && self.rate <= 100_000.0) {
            bail!("--rate must be in (0, 100000], got {}", self.rate);
        }
        if self.retention < Duration::from_secs(1) {
            bail!("--retention must be at least 1s");
        }
        if self.sample_every.is_zero() || self.sample_every > duration {
            bail!("--sample-every must be more than zero and at most --soak");
        }
        Ok(SoakSettings {
            seconds: duration.as_secs_f64(),
            rate_per_s: self.rate,
            retention_seconds: self.retention.as_secs_f64(),
            sample_every_seconds: self.sample_every.as_secs_f64(),
            channels: self.channels as usize,
            stall_seconds: self.stall_secs,
        })
    }
}

/// What a run produced: the workloads' report or a soak's (boxed: large, and of unequal
/// sizes).
#[derive(Serialize)]
#[serde(untagged)]
enum Finished {
    Budget(Box<Report>),
    Soak(Box<SoakReport>),
}

impl Finished {
    /// The report for the terminal (a soak's samples were printed as it ran).
    fn render(&self) -> String {
        match self {
            Self::Budget(report) => report.render(),
            Self::Soak(report) => report.render(),
        }
    }

    fn ok(&self) -> bool {
        match self {
            Self::Budget(report) => report.ok,
            Self::Soak(report) => report.ok,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let json = args.json.clone();
    // Dropping the run on Ctrl-C or SIGTERM kills the children and removes their
    // directories.
    let outcome = tokio::select! {
        outcome = run(args) => outcome,
        why = stop_signal() => Err(anyhow::anyhow!(why)),
    };
    let finished = match outcome {
        Ok(finished) => finished,
        Err(e) => {
            eprintln!("herald-bench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", finished.render());
    let written = serde_json::to_vec_pretty(&finished)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| std::fs::write(&json, bytes).map_err(anyhow::Error::from));
    match written {
        Ok(()) => println!("\nEvery figure: {}", json.display()),
        Err(e) => {
            eprintln!("herald-bench: write {}: {e:#}", json.display());
            return ExitCode::FAILURE;
        }
    }
    if finished.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Waits for Ctrl-C or SIGTERM (`kill`, `timeout`); says which ended the run.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "interrupted",
            _ = terminate.recv() => "terminated",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "interrupted"
        }
    }
}

/// Starts what every run needs (the sink, Redis on the Redis store) and runs the
/// workloads, or the soak.
async fn run(args: Args) -> anyhow::Result<Finished> {
    let soak = args.soak.map(|d| args.soak_settings(d)).transpose()?;
    let settings = args.settings()?;
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let binary = match &args.herald {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("find this executable")?
            .with_file_name("herald"),
    };
    if !binary.is_file() {
        bail!(
            "no herald binary at {} (build it with `cargo build --release --bins`, or pass --herald)",
            binary.display()
        );
    }
    // A binary named on the command line is the caller's choice; the default one may be
    // left over from an older build.
    let herald_binary_stale = args.herald.is_none() && is_stale(&binary);
    let bar = progress_bar();
    if herald_binary_stale {
        bar.suspend(|| {
            eprintln!(
                "warning: {} is older than Herald's sources; run `cargo build --release --bins`",
                binary.display()
            );
        });
    }

    let clock = Clock::start();
    let sink = Sink::start(clock).await?;
    let redis = match args.store {
        StoreKind::Redis => Some(RedisServer::start().await?),
        StoreKind::Embedded | StoreKind::Memory => None,
    };
    let launcher = Launcher::new(binary.clone(), args.store, redis);
    let (commit, dirty) = git_commit();
    let info = RunInfo {
        tool: "herald-bench",
        command: command_line(),
        started_at,
        store: args.store,
        durable: args.store.durable(),
        machine: procfs::Machine::describe(),
        commit,
        dirty,
        herald_binary: binary.display().to_string(),
        herald_binary_stale,
    };
    match soak {
        Some(soak) => soak::run(soak, info, launcher, clock, sink, bar)
            .await
            .map(|report| Finished::Soak(Box::new(report))),
        None => workloads(&args, settings, info, launcher, clock, sink, bar)
            .await
            .map(|report| Finished::Budget(Box::new(report))),
    }
}

/// W1–W7 against the budget.
async fn workloads(
    args: &Args,
    settings: Settings,
    info: RunInfo,
    mut launcher: Launcher,
    clock: Clock,
    sink: Sink,
    bar: ProgressBar,
) -> anyhow::Result<Report> {
    // W7: start → SERVING over fresh starts, each on an empty store.
    let mut start_ms = Vec::new();
    for i in 1..=settings.starts {
        bar.set_message(format!("W7 timing start {i}/{}", settings.starts));
        let (herald, took) = launcher.start().await?;
        drop(herald);
        start_ms.push(took.as_secs_f64() * 1e3);
    }

    bar.set_message("starting herald");
    let (mut herald, _) = launcher.start().await?;
    let idle_cpu = procfs::cpu_seconds(herald.pid())?;
    tokio::time::sleep(Duration::from_secs_f64(settings.idle_settle_seconds)).await;
    let idle_cpu_percent =
        (procfs::cpu_seconds(herald.pid())? - idle_cpu) / settings.idle_settle_seconds * 100.0;
    let idle_rss_mb = procfs::rss_mb(herald.pid())?;
    let mut clients = Vec::new();
    for _ in 0..settings.channels {
        clients.push(herald.client().await?);
    }
    let setup = Setup {
        herald_pid: herald.pid(),
        redis_pid: launcher.redis_pid(),
        warmup: Some(Load::Closed {
            messages: settings.warmup_messages,
            publishers: settings.publishers,
        }),
        stall: Duration::from_secs(settings.stall_seconds),
    };
    let mut bench = Bench::new(clock, sink.clone(), clients, setup, bar.clone());

    let mut measured: Vec<Measured> = Vec::new();
    let chosen = |key: &str| args.rows.is_empty() || args.rows.iter().any(|r| r == key);
    let mut workloads: VecDeque<Workload> = plan(&settings)
        .into_iter()
        .filter(|w| chosen(w.key))
        .collect();
    while let Some(workload) = workloads.pop_front() {
        let row = bench.run(&workload).await.with_context(|| {
            format!(
                "{} {}; herald's last log lines:\n{}",
                workload.key,
                workload.title,
                herald.stderr_tail()
            )
        })?;
        bar.suspend(|| eprintln!("{}", summary(&row)));
        if row.key == "W1" && chosen("W6b") {
            // Right after W6a, the other open-loop row.
            let at = workloads
                .iter()
                .position(|w| w.key == "W6a")
                .map_or(workloads.len(), |i| i + 1);
            workloads.insert(at, half_of_w1(&row, &settings));
        }
        measured.push(row);
    }

    let mut problems = Vec::new();
    if !herald.is_running() {
        problems.push(format!(
            "herald exited during the run; its last log lines:\n{}",
            herald.stderr_tail()
        ));
    }
    let peak_rss_mb = measured
        .iter()
        .map(|m| m.peak_rss_mb)
        .fold(procfs::peak_rss_mb(herald.pid()).unwrap_or(0.0), f64::max);
    drop(herald);
    if chosen("W8") {
        if args.store == StoreKind::Embedded {
            let rows = big_store(&settings, &mut launcher, clock, sink, &bar).await?;
            measured.extend(rows);
        } else {
            bar.suspend(|| eprintln!("W8 runs on the embedded store only"));
        }
    }
    bar.finish_and_clear();
    let start_ms_median = median(&start_ms);
    let footprint = Footprint {
        idle_rss_mb,
        idle_cpu_percent,
        peak_rss_mb,
        checks: report::footprint_checks(idle_rss_mb, peak_rss_mb, start_ms_median, args.store),
        start_ms,
        start_ms_median,
    };
    let isolation = isolation(&measured);
    let rates: HashMap<&'static str, f64> = measured
        .iter()
        .map(|m| (m.key, m.deliveries_per_s))
        .collect();
    let rows: Vec<Row> = measured
        .into_iter()
        .map(|m| Row {
            checks: report::row_checks(&m, args.store, &rates),
            durable: args.store.durable(),
            measured: m,
        })
        .collect();
    problems.extend(report::problems(rows.iter().map(|row| &row.measured)));
    Ok(Report {
        run: info,
        smoke: args.smoke,
        settings,
        rows,
        footprint,
        isolation,
        ok: problems.is_empty(),
        problems,
    })
}

/// W1–W6a in order; W6b is added once W1 has measured its rate.
fn plan(settings: &Settings) -> Vec<Workload> {
    let messages = settings.messages;
    let closed = |messages: u64| Load::Closed {
        messages,
        publishers: settings.publishers,
    };
    let healthy = |n: usize| vec![Target::Healthy; n];
    let mut nine_healthy_one_failing = healthy(9);
    nine_healthy_one_failing.push(Target::Failing);
    vec![
        Workload {
            key: "W1",
            title: format!("1 endpoint, {} publishers", settings.publishers),
            targets: healthy(1),
            idle_endpoints: 0,
            load: closed(messages),
        },
        Workload {
            key: "W2",
            title: "10 endpoints (fan-out)".to_owned(),
            targets: healthy(10),
            idle_endpoints: 0,
            load: closed(messages),
        },
        Workload {
            key: "W3",
            title: "100 endpoints (fan-out)".to_owned(),
            targets: healthy(100),
            idle_endpoints: 0,
            load: closed((messages / 10).max(1)),
        },
        Workload {
            key: "W4",
            title: format!("1 endpoint answering in {} ms", SLOW.as_millis()),
            targets: vec![Target::Slow(SLOW)],
            idle_endpoints: 0,
            load: closed(messages),
        },
        Workload {
            key: "W5",
            title: "10 endpoints, 1 always failing".to_owned(),
            targets: nine_healthy_one_failing,
            idle_endpoints: 0,
            load: closed(messages),
        },
        Workload {
            key: "W6a",
            title: format!("open loop {OPEN_LOOP_RATE:.0} msg/s, 1 endpoint"),
            targets: healthy(1),
            idle_endpoints: 0,
            load: Load::Open {
                rate: OPEN_LOOP_RATE,
                duration: Duration::from_secs_f64(settings.open_loop_seconds),
            },
        },
        Workload {
            key: "W9",
            title: format!(
                "W3 beside {} idle endpoints",
                report::number(settings.idle_endpoints as f64)
            ),
            targets: healthy(100),
            idle_endpoints: settings.idle_endpoints,
            load: closed((messages / 10).max(1)),
        },
    ]
}

/// W8: W1 and W3 again, on a fresh Herald whose store already holds `settings.big_store`
/// settled messages.
async fn big_store(
    settings: &Settings,
    launcher: &mut Launcher,
    clock: Clock,
    sink: Sink,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<Measured>> {
    bar.set_message("W8: making the store's schema");
    let (herald, _) = launcher.start().await?;
    let dir = herald
        .stop()
        .context("the embedded store has a data directory")?;
    let database = dir.path().join("herald.sqlite3");
    let (messages, filling) = (settings.big_store, bar.clone());
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(move || bigstore::fill(&database, messages, &filling)).await??;
    let filled = started.elapsed();
    bar.set_message("W8: starting herald on the big store");
    let (herald, serving) = launcher.start_on(Some(dir)).await?;
    bar.suspend(|| {
        eprintln!(
            "W8: {} settled messages written in {:.0} s; herald on them served in {:.0} ms",
            report::number(messages as f64),
            filled.as_secs_f64(),
            serving.as_secs_f64() * 1e3
        );
    });
    let mut clients = Vec::new();
    for _ in 0..settings.channels {
        clients.push(herald.client().await?);
    }
    let setup = Setup {
        herald_pid: herald.pid(),
        redis_pid: None,
        warmup: Some(Load::Closed {
            messages: settings.warmup_messages,
            publishers: settings.publishers,
        }),
        stall: Duration::from_secs(settings.stall_seconds),
    };
    let mut bench = Bench::new(clock, sink, clients, setup, bar.clone());
    let plan = plan(settings);
    let mut rows = Vec::new();
    for (key, base) in [("W8a", "W1"), ("W8b", "W3")] {
        let mut workload = plan
            .iter()
            .find(|w| w.key == base)
            .context("W1 and W3 are planned")?
            .clone();
        workload.key = key;
        workload.title = format!(
            "{base} on {} settled messages",
            report::number(messages as f64)
        );
        let row = bench.run(&workload).await?;
        bar.suspend(|| eprintln!("{}", summary(&row)));
        rows.push(row);
    }
    Ok(rows)
}

/// W6b: open loop at half the rate W1 sustained end to end.
fn half_of_w1(w1: &Measured, settings: &Settings) -> Workload {
    let rate = (w1.deliveries_per_s / 2.0).max(1.0).round();
    Workload {
        key: "W6b",
        title: format!(
            "open loop {} msg/s (50 % of W1), 1 endpoint",
            report::number(rate)
        ),
        targets: vec![Target::Healthy],
        idle_endpoints: 0,
        load: Load::Open {
            rate,
            duration: Duration::from_secs_f64(settings.open_loop_seconds),
        },
    }
}

fn isolation(rows: &[Measured]) -> Option<Isolation> {
    let w2 = rows.iter().find(|r| r.key == "W2")?;
    let w5 = rows.iter().find(|r| r.key == "W5")?;
    Some(Isolation {
        healthy_deliveries_per_s: w5.deliveries_per_s,
        baseline_deliveries_per_s: w2.deliveries_per_s,
        throughput_ratio: if w2.deliveries_per_s > 0.0 {
            w5.deliveries_per_s / w2.deliveries_per_s
        } else {
            0.0
        },
        delivery_p99_ms: w5.delivery_p99_ms,
        baseline_delivery_p99_ms: w2.delivery_p99_ms,
        failing_attempts: w5.refused_attempts,
    })
}

/// One line per finished workload on stderr, so a log without the bar shows progress.
fn summary(m: &Measured) -> String {
    format!(
        "{} {}: {} publish calls/s, {} deliveries/s, publish→delivery p99 {} ms, {}/{} delivered ({:.1} s)",
        m.key,
        m.title,
        report::number(m.publish_calls_per_s),
        report::number(m.deliveries_per_s),
        report::millis(m.delivery_p99_ms),
        report::number(m.ledger.delivered as f64),
        report::number(m.ledger.expected as f64),
        m.cpu.wall_seconds
    )
}

/// A bar on stderr, drawn only when stderr is a terminal.
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {msg:50} [{bar:30}] {human_pos}/{human_len} deliveries ({elapsed})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// This process's arguments, quoted for a POSIX shell where needed.
fn command_line() -> String {
    std::env::args()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c));
            if plain {
                arg
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The commit of the source tree this tool was built from, and whether it had changes.
fn git_commit() -> (Option<String>, Option<bool>) {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
    (commit, dirty)
}

/// Whether `binary` is older than a source it is built from (`cargo run --bin
/// herald-bench` does not rebuild `herald`). False when the sources are not there.
fn is_stale(binary: &Path) -> bool {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bench = root.join("src/bin");
    let mut pending = vec![
        root.join("src"),
        root.join("proto"),
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
        root.join("build.rs"),
    ];
    while let Some(path) = pending.pop() {
        if path.starts_with(&bench) {
            continue;
        }
        if let Ok(entries) = std::fs::read_dir(&path) {
            pending.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
        } else if path
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified > built)
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_has_every_workload_with_its_fan_out() {
        let settings = Args::parse_from(["herald-bench", "--smoke"])
            .settings()
            .unwrap();
        assert_eq!(settings.messages, 200);
        let plan = plan(&settings);
        let keys: Vec<_> = plan.iter().map(|w| w.key).collect();
        assert_eq!(keys, ["W1", "W2", "W3", "W4", "W5", "W6a", "W9"]);
        assert_eq!(plan[6].idle_endpoints, 1_000);
        assert_eq!(plan[2].targets.len(), 100);
        assert!(matches!(plan[2].load, Load::Closed { messages: 20, .. }));
        assert!(matches!(plan[4].targets[9], Target::Failing));
    }

    #[test]
    fn soak_flags_need_the_soak_and_sane_values() {
        assert!(Args::try_parse_from(["herald-bench", "--rate", "10"]).is_err());
        assert!(Args::try_parse_from(["herald-bench", "--soak", "1m", "--smoke"]).is_err());
        let args = Args::try_parse_from(["herald-bench", "--soak", "30m"]).unwrap();
        let soak = args.soak_settings(args.soak.unwrap()).unwrap();
        assert_eq!(
            (
                soak.seconds,
                soak.rate_per_s,
                soak.retention_seconds,
                soak.sample_every_seconds
            ),
            (1800.0, 300.0, 60.0, 30.0)
        );
        let args = Args::try_parse_from(["herald-bench", "--soak", "10s", "--sample-every", "1m"])
            .unwrap();
        assert!(args.soak_settings(args.soak.unwrap()).is_err());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
