//! The soak: whether Herald's memory and disk stay bounded under steady load (DESIGN.md
//! §5), which no workload of a few seconds can tell.
//!
//! Herald runs with a short `WEBHOOK_RETENTION`, so settled messages expire many times
//! over within the run. One endpoint receives an open-loop rate of 1 KiB messages for the
//! whole duration (the W6 publisher, run by `workload` as one long phase with its ledger
//! and figures). Beside it a sampler reads, at a fixed interval, the publishes answered
//! and the messages delivered so far (distinct `webhook-id`s at the sink), Herald's RSS,
//! and its store's footprint: the data directory and its WAL on the embedded store,
//! Redis's `used_memory` on Redis. Each sample is printed as it is taken; at the end each
//! footprint series is judged flat or growing by [`judge`].
//!
//! A growing series is reported, not a failure; a missing delivery or a failed publish is.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::ProgressBar;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::time::MissedTickBehavior;

use crate::payload::Clock;
use crate::procfs;
use crate::report::{self, Row, RunInfo, Table};
use crate::servers::{self, Launcher};
use crate::sink::Sink;
use crate::workload::{Bench, Load, Setup, Target, Workload};

/// The embedded store's write-ahead log: its database file, `herald.sqlite3`, with
/// SQLite's suffix.
const WAL_FILE: &str = "herald.sqlite3-wal";
/// Growth of the last part's mean over the middle part's that still counts as flat.
const TOLERANCE: f64 = 0.15;
/// Growth that counts as flat whatever its ratio: a WAL going from 0.1 to 0.3 MB is no leak.
const SLACK_MB: f64 = 1.0;
/// Fewest samples in each judged part for a verdict.
const MIN_SAMPLES: usize = 2;
/// Retention periods the warm-up lasts at least: by then expiry has had its first rounds.
const WARMUP_RETENTIONS: f64 = 3.0;
/// The rule of [`judge`], in words, for the report and the JSON file.
const RULE: &str = "the warm-up is the first third of the run or 3 × the retention, whichever \
    is longer; the samples after it are split in two halves of time, the middle and the last \
    part (for a long run: the middle and the last third); a series is flat when the mean of \
    its last part is at most 15 % or 1 MB above the mean of its middle part, and too short to \
    judge with fewer than 2 samples in either part";

/// One series' value in a sample, in MB; `None` where the store has no such thing.
type Reading = fn(&Sample) -> Option<f64>;

/// The footprint series judged.
const SERIES: [(&str, Reading); 4] = [
    ("Herald RSS", |s| Some(s.herald_rss_mb)),
    ("data directory", |s| s.data_dir_mb),
    ("WAL", |s| s.wal_mb),
    ("Redis used_memory", |s| s.redis_used_memory_mb),
];

/// The sample table's columns; every cell is padded to its header's width.
const COLUMNS: [&str; 7] = [
    "elapsed",
    "published",
    "delivered",
    "Herald RSS MB",
    "data dir MB",
    "WAL MB",
    "Redis used_memory MB",
];

/// What a soak was asked to do.
#[derive(Debug, Clone, Serialize)]
pub struct SoakSettings {
    pub seconds: f64,
    pub rate_per_s: f64,
    /// `WEBHOOK_RETENTION` given to Herald.
    pub retention_seconds: f64,
    pub sample_every_seconds: f64,
    pub channels: usize,
    pub stall_seconds: u64,
}

impl SoakSettings {
    /// The part of the run the verdicts leave out: the first third, or three retention
    /// periods if that is longer.
    pub fn warmup_seconds(&self) -> f64 {
        (self.seconds / 3.0).max(WARMUP_RETENTIONS * self.retention_seconds)
    }
}

/// One reading, taken every `sample_every_seconds`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    /// Since the soak's endpoint was registered, just before the first publish.
    pub elapsed_seconds: f64,
    /// Publishes answered (errors included).
    pub published: u64,
    /// Distinct messages received by the sink.
    pub delivered: u64,
    pub herald_rss_mb: f64,
    /// Space the data directory takes on disk (allocated blocks); embedded store only.
    pub data_dir_mb: Option<f64>,
    /// Length of the WAL file; embedded store only.
    pub wal_mb: Option<f64>,
    /// `used_memory` of `INFO memory`; Redis store only.
    pub redis_used_memory_mb: Option<f64>,
}

/// One series' verdict.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Flatness {
    pub series: &'static str,
    pub middle_mean_mb: Option<f64>,
    pub middle_samples: usize,
    pub last_mean_mb: Option<f64>,
    pub last_samples: usize,
    pub trend: Trend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Flat,
    Growing,
    /// Fewer than [`MIN_SAMPLES`] samples after the warm-up in a part.
    TooShort,
}

/// Every figure of a soak, as written to the JSON file.
#[derive(Debug, Serialize)]
pub struct SoakReport {
    #[serde(flatten)]
    pub run: RunInfo,
    pub soak: SoakSettings,
    pub warmup_seconds: f64,
    pub flatness_rule: &'static str,
    pub samples: Vec<Sample>,
    pub verdicts: Vec<Flatness>,
    /// The whole soak as one workload: rates, latencies, CPU, peak RSS and the ledger.
    pub row: Row,
    /// Why the run failed: missing deliveries, failed publishes.
    pub problems: Vec<String>,
    pub ok: bool,
}

/// Runs the soak on a Herald started by `launcher` with the soak's retention, printing
/// the headline and each sample as it goes.
///
/// # Errors
///
/// When Herald does not start, refuses the endpoint, or cannot be sampled.
pub async fn run(
    settings: SoakSettings,
    info: RunInfo,
    launcher: Launcher,
    clock: Clock,
    sink: Sink,
    bar: ProgressBar,
) -> anyhow::Result<SoakReport> {
    let retention = Duration::from_secs_f64(settings.retention_seconds);
    let duration = Duration::from_secs_f64(settings.seconds);
    let mut launcher = launcher.with_retention(retention);
    bar.set_message("starting herald");
    let (mut herald, _) = launcher.start().await?;
    let mut clients = Vec::new();
    for _ in 0..settings.channels {
        clients.push(herald.client().await?);
    }
    let setup = Setup {
        herald_pid: herald.pid(),
        redis_pid: launcher.redis_pid(),
        warmup: None,
        stall: Duration::from_secs(settings.stall_seconds),
    };
    let mut bench = Bench::new(clock, sink.clone(), clients, setup, bar.clone());
    let workload = Workload {
        key: "soak",
        title: format!(
            "open loop {} msg/s for {}, 1 endpoint",
            report::number(settings.rate_per_s),
            humantime::format_duration(duration)
        ),
        targets: vec![Target::Healthy],
        idle_endpoints: 0,
        load: Load::Open {
            rate: settings.rate_per_s,
            duration,
        },
    };

    bar.suspend(|| {
        print!("{}", info.headline());
        println!(
            "Soak: {}, WEBHOOK_RETENTION={}, a sample every {}\n",
            workload.title,
            humantime::format_duration(retention),
            humantime::format_duration(Duration::from_secs_f64(settings.sample_every_seconds))
        );
        print!("{}", sample_header());
    });
    let sampler = Sampler {
        started: Instant::now(),
        herald_pid: herald.pid(),
        data_dir: herald.data_dir().map(Path::to_path_buf),
        redis_url: launcher.redis_url(),
        sink,
        sent: bench.sent(),
        delivered: HashSet::new(),
        read: 0,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let sampling = tokio::spawn(sampler.run(
        Duration::from_secs_f64(settings.sample_every_seconds),
        stopped,
        bar.clone(),
    ));
    let measured = bench.run(&workload).await;
    drop(stop);
    let samples = sampling.await.context("the sampler")??;
    let measured = measured.with_context(|| {
        format!(
            "the soak; herald's last log lines:\n{}",
            herald.stderr_tail()
        )
    })?;
    bar.finish_and_clear();

    let warmup_seconds = settings.warmup_seconds();
    let verdicts = verdicts(&samples, warmup_seconds, settings.seconds);
    let mut problems = Vec::new();
    if !herald.is_running() {
        problems.push(format!(
            "herald exited during the soak; its last log lines:\n{}",
            herald.stderr_tail()
        ));
    }
    problems.extend(report::problems([&measured]));
    let row = Row {
        checks: report::row_checks(&measured, info.store, &HashMap::new()),
        durable: info.durable,
        measured,
    };
    Ok(SoakReport {
        run: info,
        soak: settings,
        warmup_seconds,
        flatness_rule: RULE,
        samples,
        verdicts,
        row,
        ok: problems.is_empty(),
        problems,
    })
}

impl SoakReport {
    /// What follows the samples printed during the run: the verdicts, the soak's figures
    /// and whether every delivery arrived.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nFlatness after a warm-up of {:.0} s: {RULE}.\n",
            self.warmup_seconds
        );
        out.push_str(&verdict_table(&self.verdicts));
        out.push('\n');
        out.push_str(&report::figures_table(std::slice::from_ref(&self.row)));
        if self.problems.is_empty() {
            out.push_str("\nThe ledger balanced: nothing missing.\n");
        } else {
            out.push_str("\nFAILED:\n");
            for problem in &self.problems {
                let _ = writeln!(out, "- {problem}");
            }
        }
        out
    }
}

/// Reads Herald, its store and the deliveries so far, one sample at a time.
struct Sampler {
    started: Instant,
    herald_pid: u32,
    data_dir: Option<PathBuf>,
    redis_url: Option<String>,
    sink: Sink,
    /// The bench's count of publishes answered in the phase that runs.
    sent: Arc<AtomicU64>,
    /// Message ids received so far: the sink records every request, duplicates too.
    delivered: HashSet<Box<str>>,
    /// Records of the sink already read: each sample reads only the new ones, so the
    /// sink's lock is held briefly however long the soak.
    read: usize,
}

impl Sampler {
    /// Samples now and every `every` after, printing each, until `stop` is sent or dropped.
    async fn run(
        mut self,
        every: Duration,
        mut stop: oneshot::Receiver<()>,
        bar: ProgressBar,
    ) -> anyhow::Result<Vec<Sample>> {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut samples = Vec::new();
        loop {
            tokio::select! {
                _ = &mut stop => return Ok(samples),
                _ = ticks.tick() => {
                    let sample = self.sample().await?;
                    bar.suspend(|| println!("{}", sample_row(&sample)));
                    samples.push(sample);
                }
            }
        }
    }

    async fn sample(&mut self) -> anyhow::Result<Sample> {
        let elapsed_seconds = self.started.elapsed().as_secs_f64();
        let (delivered, read) = (&mut self.delivered, &mut self.read);
        self.sink.with_receipts(|receipts| {
            for receipt in receipts.get(*read..).unwrap_or_default() {
                delivered.insert(receipt.id.clone());
            }
            *read = receipts.len();
        });
        let published = self.sent.load(Ordering::Relaxed);
        let (data_dir_mb, wal_mb) = match &self.data_dir {
            Some(dir) => (
                Some(disk_usage_bytes(dir)? as f64 / 1e6),
                Some(file_len(&dir.join(WAL_FILE))? as f64 / 1e6),
            ),
            None => (None, None),
        };
        let redis_used_memory_mb = match &self.redis_url {
            Some(url) => Some(servers::redis_used_memory_mb(url).await?),
            None => None,
        };
        Ok(Sample {
            elapsed_seconds,
            published,
            delivered: self.delivered.len() as u64,
            herald_rss_mb: procfs::rss_mb(self.herald_pid)?,
            data_dir_mb,
            wal_mb,
            redis_used_memory_mb,
        })
    }
}

/// Bytes the files under `dir` take on disk (allocated blocks, as `du` counts them).
fn disk_usage_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            // A file may be removed between listing and reading (SQLite's journals).
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                total += metadata.blocks() * 512;
            }
        }
    }
    Ok(total)
}

/// The length of the file at `path`; 0 when there is none.
fn file_len(path: &Path) -> anyhow::Result<u64> {
    match std::fs::metadata(path) {
        Ok(metadata) => Ok(metadata.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// A verdict for every series the samples have, judged from `warmup` to `end` seconds.
pub fn verdicts(samples: &[Sample], warmup: f64, end: f64) -> Vec<Flatness> {
    SERIES
        .iter()
        .filter_map(|&(series, value)| {
            let points: Vec<(f64, f64)> = samples
                .iter()
                .filter_map(|s| value(s).map(|v| (s.elapsed_seconds, v)))
                .collect();
            (!points.is_empty()).then(|| judge(series, &points, warmup, end))
        })
        .collect()
}

/// Judges one series of `(elapsed seconds, MB)`: the points from `warmup` on are split at
/// the middle of `warmup..end` into the middle and the last part, and the series is flat
/// when the last part's mean is at most [`TOLERANCE`] or [`SLACK_MB`] above the middle
/// part's. A falling series is flat: only growth is judged.
pub fn judge(series: &'static str, points: &[(f64, f64)], warmup: f64, end: f64) -> Flatness {
    let split = (warmup + end) / 2.0;
    let middle: Vec<f64> = points
        .iter()
        .filter(|(t, _)| *t >= warmup && *t < split)
        .map(|&(_, v)| v)
        .collect();
    let last: Vec<f64> = points
        .iter()
        .filter(|(t, _)| *t >= split)
        .map(|&(_, v)| v)
        .collect();
    let mean = |values: &[f64]| {
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let (middle_mean_mb, last_mean_mb) = (mean(&middle), mean(&last));
    let trend = match (middle_mean_mb, last_mean_mb) {
        (Some(middle_mean), Some(last_mean))
            if middle.len() >= MIN_SAMPLES && last.len() >= MIN_SAMPLES =>
        {
            let allowed = (middle_mean * (1.0 + TOLERANCE)).max(middle_mean + SLACK_MB);
            if last_mean <= allowed {
                Trend::Flat
            } else {
                Trend::Growing
            }
        }
        _ => Trend::TooShort,
    };
    Flatness {
        series,
        middle_mean_mb,
        middle_samples: middle.len(),
        last_mean_mb,
        last_samples: last.len(),
        trend,
    }
}

fn verdict_table(verdicts: &[Flatness]) -> String {
    let mut table = Table::new(&[
        "series",
        "middle mean MB (samples)",
        "last mean MB (samples)",
        "change",
        "verdict",
    ]);
    let mean = |mean: Option<f64>, samples: usize| {
        mean.map_or_else(|| "-".to_owned(), |m| format!("{m:.1} ({samples})"))
    };
    for v in verdicts {
        let change = match (v.middle_mean_mb, v.last_mean_mb) {
            (Some(middle), Some(last)) if middle > 0.0 => {
                format!("{:+.1} %", (last / middle - 1.0) * 100.0)
            }
            (Some(middle), Some(last)) => format!("{:+.1} MB", last - middle),
            _ => "-".to_owned(),
        };
        let verdict = match v.trend {
            Trend::Flat => "flat ✓",
            Trend::Growing => "growing ✗",
            Trend::TooShort => "too short to judge",
        };
        table.row(vec![
            v.series.to_owned(),
            mean(v.middle_mean_mb, v.middle_samples),
            mean(v.last_mean_mb, v.last_samples),
            change,
            verdict.to_owned(),
        ]);
    }
    table.render()
}

/// The sample table's header and rule, in Markdown like the other tables.
fn sample_header() -> String {
    let rule: Vec<String> = COLUMNS
        .iter()
        .map(|c| "-".repeat(c.chars().count()))
        .collect();
    format!(
        "{}\n|-{}-|\n",
        line(COLUMNS.map(str::to_owned)),
        rule.join("-|-")
    )
}

/// One sample as a row of the table, without its line end.
fn sample_row(sample: &Sample) -> String {
    let mb = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |mb| format!("{mb:.1}"));
    line([
        elapsed(sample.elapsed_seconds),
        report::number(sample.published as f64),
        report::number(sample.delivered as f64),
        mb(Some(sample.herald_rss_mb)),
        mb(sample.data_dir_mb),
        mb(sample.wal_mb),
        mb(sample.redis_used_memory_mb),
    ])
}

/// Cells padded to their column's header, between bars.
fn line(cells: [String; COLUMNS.len()]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(COLUMNS)
        .map(|(cell, header)| format!("{cell:<width$}", width = header.chars().count()))
        .collect();
    format!("| {} |", padded.join(" | "))
}

/// `m:ss`, or `h:mm:ss` from an hour on.
fn elapsed(seconds: f64) -> String {
    let total = seconds.round() as u64;
    let (hours, minutes, secs) = (total / 3600, total / 60 % 60, total % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{secs:02}")
    } else {
        format!("{minutes}:{secs:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_up_is_a_third_or_three_retentions() {
        let settings = |seconds: f64, retention_seconds: f64| SoakSettings {
            seconds,
            rate_per_s: 300.0,
            retention_seconds,
            sample_every_seconds: 30.0,
            channels: 4,
            stall_seconds: 30,
        };
        assert_eq!(settings(1800.0, 60.0).warmup_seconds(), 600.0);
        assert_eq!(settings(120.0, 20.0).warmup_seconds(), 60.0);
    }

    #[test]
    fn a_series_within_15_percent_is_flat() {
        // Warm-up to 60 s, then middle 60–90 s and last 90–120 s; the warm-up's values
        // (start-up growth) are left out.
        let series = [
            (0.0, 10.0),
            (30.0, 30.0),
            (60.0, 40.0),
            (70.0, 40.0),
            (80.0, 40.0),
            (90.0, 44.0),
            (100.0, 46.0),
            (120.0, 45.0),
        ];
        let flatness = judge("RSS", &series, 60.0, 120.0);
        assert_eq!(flatness.middle_mean_mb, Some(40.0));
        assert_eq!(flatness.last_mean_mb, Some(45.0));
        assert_eq!((flatness.middle_samples, flatness.last_samples), (3, 3));
        assert_eq!(flatness.trend, Trend::Flat);
    }

    #[test]
    fn a_series_growing_past_15_percent_and_1_mb_is_growing() {
        let series = [(60.0, 40.0), (80.0, 40.0), (90.0, 47.0), (120.0, 47.0)];
        assert_eq!(judge("RSS", &series, 60.0, 120.0).trend, Trend::Growing);
    }

    #[test]
    fn tiny_values_may_grow_by_the_slack() {
        // Tripled, but by 0.6 MB: within the slack of 1 MB.
        let wal = [(60.0, 0.3), (80.0, 0.3), (90.0, 0.9), (120.0, 0.9)];
        assert_eq!(judge("WAL", &wal, 60.0, 120.0).trend, Trend::Flat);
        let wal = [(60.0, 0.3), (80.0, 0.3), (90.0, 1.4), (120.0, 1.4)];
        assert_eq!(judge("WAL", &wal, 60.0, 120.0).trend, Trend::Growing);
    }

    #[test]
    fn a_falling_series_is_flat() {
        let series = [(60.0, 50.0), (80.0, 50.0), (90.0, 20.0), (120.0, 20.0)];
        assert_eq!(judge("RSS", &series, 60.0, 120.0).trend, Trend::Flat);
    }

    #[test]
    fn too_few_samples_after_the_warm_up_are_not_judged() {
        let series = [(0.0, 1.0), (60.0, 1.0), (90.0, 1.0), (120.0, 1.0)];
        let flatness = judge("RSS", &series, 60.0, 120.0);
        assert_eq!((flatness.middle_samples, flatness.last_samples), (1, 2));
        assert_eq!(flatness.trend, Trend::TooShort);
        // A warm-up as long as the run leaves nothing to judge.
        let flatness = judge("RSS", &series, 180.0, 120.0);
        assert_eq!(flatness.middle_mean_mb, None);
        assert_eq!(flatness.trend, Trend::TooShort);
    }

    #[test]
    fn only_the_stores_own_series_are_judged() {
        let sample = |t: f64| Sample {
            elapsed_seconds: t,
            published: 0,
            delivered: 0,
            herald_rss_mb: 30.0,
            data_dir_mb: None,
            wal_mb: None,
            redis_used_memory_mb: Some(2.0),
        };
        let samples: Vec<Sample> = [60.0, 80.0, 90.0, 120.0].map(sample).to_vec();
        let series: Vec<_> = verdicts(&samples, 60.0, 120.0)
            .iter()
            .map(|v| (v.series, v.trend))
            .collect();
        assert_eq!(
            series,
            [
                ("Herald RSS", Trend::Flat),
                ("Redis used_memory", Trend::Flat)
            ]
        );
    }

    #[test]
    fn samples_line_up_under_their_header() {
        let sample = Sample {
            elapsed_seconds: 90.4,
            published: 27_000,
            delivered: 26_998,
            herald_rss_mb: 41.26,
            data_dir_mb: Some(12.0),
            wal_mb: Some(4.04),
            redis_used_memory_mb: None,
        };
        assert_eq!(
            sample_header(),
            "| elapsed | published | delivered | Herald RSS MB | data dir MB | WAL MB | Redis used_memory MB |\n\
             |---------|-----------|-----------|---------------|-------------|--------|----------------------|\n"
        );
        assert_eq!(
            sample_row(&sample),
            "| 1:30    | 27,000    | 26,998    | 41.3          | 12.0        | 4.0    | -                    |"
        );
    }

    #[test]
    fn elapsed_time_reads_as_a_clock() {
        assert_eq!(elapsed(0.0), "0:00");
        assert_eq!(elapsed(59.6), "1:00");
        assert_eq!(elapsed(1_800.0), "30:00");
        assert_eq!(elapsed(3_725.0), "1:02:05");
    }
}
