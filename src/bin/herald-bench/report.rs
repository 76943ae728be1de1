//! Judging and showing the figures: each against its budget from DESIGN.md §10, tables
//! for the terminal (in Markdown, so they paste into BENCHMARKS.md) and the JSON file.
//!
//! Budgets are judged where DESIGN.md sets them: the throughput budgets on the store they
//! name (embedded, or Redis for its own), the latency, CPU and memory budgets everywhere.
//! On the memory store nothing is durable, so its figures are shown beside the budgets
//! for scale but never judged. A missed budget does not fail the run; a missing delivery
//! or a failed publish does.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::procfs::Machine;
use crate::servers::StoreKind;
use crate::workload::Measured;

/// What, where and with what any run measured: the head of every JSON file and report.
#[derive(Debug, Serialize)]
pub struct RunInfo {
    pub tool: &'static str,
    /// The exact command line.
    pub command: String,
    pub started_at: String,
    pub store: StoreKind,
    pub durable: bool,
    pub machine: Machine,
    /// `git rev-parse --short HEAD` of the source tree the tool was built from.
    pub commit: Option<String>,
    /// Whether that tree had uncommitted changes.
    pub dirty: Option<bool>,
    pub herald_binary: String,
    /// Whether the Herald binary is older than the library's sources: a stale build.
    pub herald_binary_stale: bool,
}

impl RunInfo {
    /// The report's first lines: store, commit, machine, and a stale binary's warning.
    pub fn headline(&self) -> String {
        let mut out = String::new();
        let durability = if self.durable {
            "durable"
        } else {
            "NON-DURABLE: figures for scale only, budgets not judged"
        };
        let commit = match (&self.commit, self.dirty) {
            (Some(commit), Some(true)) => format!("{commit} + uncommitted changes"),
            (Some(commit), _) => commit.clone(),
            (None, _) => "unknown".to_owned(),
        };
        let _ = writeln!(
            out,
            "herald-bench: store {} ({durability}); commit {commit}; {}",
            self.store.name(),
            self.machine.summary()
        );
        if self.herald_binary_stale {
            let _ = writeln!(
                out,
                "WARNING: {} is older than Herald's sources (run `cargo build --release --bins`)",
                self.herald_binary
            );
        }
        out
    }
}

/// Every figure of a run of the workloads, as written to the JSON file.
#[derive(Debug, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub run: RunInfo,
    pub smoke: bool,
    pub settings: Settings,
    pub rows: Vec<Row>,
    pub footprint: Footprint,
    /// W5 (one failing endpoint among ten) against W2 (ten healthy ones).
    pub isolation: Option<Isolation>,
    /// Why the run failed: missing deliveries, failed publishes.
    pub problems: Vec<String>,
    pub ok: bool,
}

/// What the run was asked to do.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub messages: u64,
    pub warmup_messages: u64,
    pub publishers: usize,
    pub channels: usize,
    pub open_loop_seconds: f64,
    pub starts: usize,
    pub stall_seconds: u64,
    /// Settled messages in W8's store.
    pub big_store: u64,
    /// W9's idle endpoints.
    pub idle_endpoints: usize,
    /// How long Herald idles after its start before its idle RSS is read.
    pub idle_settle_seconds: f64,
}

/// One workload's figures and their judgement.
#[derive(Debug, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub measured: Measured,
    pub durable: bool,
    pub checks: Vec<Check>,
}

/// W7: resident memory and start time.
#[derive(Debug, Serialize)]
pub struct Footprint {
    /// RSS after start, before any load.
    pub idle_rss_mb: f64,
    /// Herald's CPU while idle after its start (no budget: it shows the fixed cost that
    /// a low rate spreads over few deliveries).
    pub idle_cpu_percent: f64,
    /// The highest VmHWM of the run.
    pub peak_rss_mb: f64,
    /// Spawn to a SERVING health check, over fresh starts.
    pub start_ms: Vec<f64>,
    pub start_ms_median: f64,
    pub checks: Vec<Check>,
}

#[derive(Debug, Serialize)]
pub struct Isolation {
    pub healthy_deliveries_per_s: f64,
    pub baseline_deliveries_per_s: f64,
    /// W5's healthy throughput as a share of W2's.
    pub throughput_ratio: f64,
    pub delivery_p99_ms: f64,
    pub baseline_delivery_p99_ms: f64,
    /// Attempts the failing endpoint was sent (and refused) during W5.
    pub failing_attempts: u64,
}

/// One figure against one budget.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub figure: &'static str,
    pub value: f64,
    pub bound: Bound,
    pub limit: f64,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    AtLeast,
    AtMost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Met,
    Missed,
    /// Shown for scale only (non-durable store).
    Reference,
}

impl Check {
    fn new(figure: &'static str, value: f64, bound: Bound, limit: f64, judged: bool) -> Self {
        let met = match bound {
            Bound::AtLeast => value >= limit,
            Bound::AtMost => value <= limit,
        };
        let verdict = match (judged, met) {
            (false, _) => Verdict::Reference,
            (true, true) => Verdict::Met,
            (true, false) => Verdict::Missed,
        };
        Self {
            figure,
            value,
            bound,
            limit,
            verdict,
        }
    }

    /// `✓ ≤ 5`, `✗ ≥ 15,000`, `(≥ 15,000)` for a reference.
    fn mark(&self) -> String {
        let bound = match self.bound {
            Bound::AtLeast => "≥",
            Bound::AtMost => "≤",
        };
        // Budgets are whole numbers but for CPU's 0.1 s.
        let limit = if self.limit.fract() == 0.0 {
            number(self.limit)
        } else {
            self.limit.to_string()
        };
        match self.verdict {
            Verdict::Met => format!("✓ {bound} {limit}"),
            Verdict::Missed => format!("✗ {bound} {limit}"),
            Verdict::Reference => format!("({bound} {limit})"),
        }
    }
}

// Figure names, shared by the checks and the table cells that show them.
const PUBLISH_RATE: &str = "publish_calls_per_s";
const DELIVERY_RATE: &str = "deliveries_per_s";
const DELIVERY_P99: &str = "delivery_p99_ms";
const CPU: &str = "cpu_seconds_per_1000_deliveries";
const PEAK_RSS: &str = "peak_rss_mb";
const IDLE_RSS: &str = "idle_rss_mb";
const START: &str = "start_ms_median";

/// The budgets of DESIGN.md §10 that apply to `row` on `store`. W8a, W8b and W9 are
/// judged against 80 % of the deliveries/s of the row they repeat (W1, W3, W3), when it
/// ran: `rates` holds each row's.
pub fn row_checks(
    row: &Measured,
    store: StoreKind,
    rates: &HashMap<&'static str, f64>,
) -> Vec<Check> {
    let judged = store.durable();
    let mut checks = Vec::new();
    let on_sqlite = store != StoreKind::Redis;
    match (row.key, on_sqlite) {
        ("W1", true) => {
            checks.push(Check::new(
                PUBLISH_RATE,
                row.publish_calls_per_s,
                Bound::AtLeast,
                20_000.0,
                judged,
            ));
            checks.push(Check::new(
                DELIVERY_RATE,
                row.deliveries_per_s,
                Bound::AtLeast,
                15_000.0,
                judged,
            ));
        }
        ("W1", false) => checks.push(Check::new(
            DELIVERY_RATE,
            row.deliveries_per_s,
            Bound::AtLeast,
            10_000.0,
            judged,
        )),
        ("W3", true) => checks.push(Check::new(
            DELIVERY_RATE,
            row.deliveries_per_s,
            Bound::AtLeast,
            35_000.0,
            judged,
        )),
        ("W6a", _) => checks.push(Check::new(
            DELIVERY_P99,
            row.delivery_p99_ms,
            Bound::AtMost,
            5.0,
            judged,
        )),
        ("W8a" | "W8b" | "W9", _) => {
            let base = if row.key == "W8a" { "W1" } else { "W3" };
            checks.extend(rates.get(base).map(|rate| {
                Check::new(
                    DELIVERY_RATE,
                    row.deliveries_per_s,
                    Bound::AtLeast,
                    (rate * 0.8).round(),
                    judged,
                )
            }));
        }
        _ => {}
    }
    checks.push(Check::new(
        CPU,
        row.cpu.seconds_per_1000_deliveries,
        Bound::AtMost,
        0.1,
        judged,
    ));
    checks.push(Check::new(
        PEAK_RSS,
        row.peak_rss_mb,
        Bound::AtMost,
        100.0,
        judged,
    ));
    checks
}

/// The memory and start budgets.
pub fn footprint_checks(
    idle_rss_mb: f64,
    peak_rss_mb: f64,
    start_ms_median: f64,
    store: StoreKind,
) -> Vec<Check> {
    let judged = store.durable();
    vec![
        Check::new(IDLE_RSS, idle_rss_mb, Bound::AtMost, 20.0, judged),
        Check::new(PEAK_RSS, peak_rss_mb, Bound::AtMost, 100.0, judged),
        Check::new(START, start_ms_median, Bound::AtMost, 100.0, judged),
    ]
}

/// Why the run failed, if it did.
pub fn problems<'a>(rows: impl IntoIterator<Item = &'a Measured>) -> Vec<String> {
    let mut problems = Vec::new();
    for m in rows {
        if !m.ledger.balanced() {
            problems.push(format!(
                "{}: {} of {} deliveries missing",
                m.key,
                number(m.ledger.missing as f64),
                number(m.ledger.expected as f64)
            ));
        }
        if m.publish_errors > 0 {
            problems.push(format!(
                "{}: {} publishes failed (first: {})",
                m.key,
                number(m.publish_errors as f64),
                m.first_publish_error.as_deref().unwrap_or("?")
            ));
        }
    }
    problems
}

impl Report {
    /// The report for the terminal: Markdown tables and a few lines.
    pub fn render(&self) -> String {
        let mut out = self.run.headline();
        out.push('\n');
        out.push_str(&figures_table(&self.rows));
        out.push('\n');
        out.push_str(&self.cpu_table());
        out.push('\n');
        out.push_str(&self.footprint_table());
        if let Some(i) = &self.isolation {
            let _ = writeln!(
                out,
                "\nIsolation (W5 vs W2): healthy endpoints got {} deliveries/s ({:.0} % of W2's {}), \
                 publish→delivery p99 {} ms (W2: {} ms); the failing endpoint was sent {} attempts.",
                number(i.healthy_deliveries_per_s),
                i.throughput_ratio * 100.0,
                number(i.baseline_deliveries_per_s),
                millis(i.delivery_p99_ms),
                millis(i.baseline_delivery_p99_ms),
                number(i.failing_attempts as f64)
            );
        }
        if self.problems.is_empty() {
            out.push_str("\nEvery ledger balanced: nothing missing.\n");
        } else {
            out.push_str("\nFAILED:\n");
            for problem in &self.problems {
                let _ = writeln!(out, "- {problem}");
            }
        }
        out
    }

    fn cpu_table(&self) -> String {
        let mut table = Table::new(&[
            "row",
            "wall s",
            "Herald %CPU",
            "redis %CPU",
            "publishers %CPU",
            "sink %CPU",
            "other %CPU (kernel, other processes)",
            "Herald + store CPU s",
        ]);
        for row in &self.rows {
            let cpu = &row.measured.cpu;
            table.row(vec![
                row.measured.key.to_owned(),
                format!("{:.1}", cpu.wall_seconds),
                format!("{:.0}", cpu.herald_percent),
                percent(cpu.redis_percent),
                percent(cpu.publishers_percent.or(Some(cpu.bench_percent))),
                percent(cpu.sink_percent),
                format!("{:.0}", cpu.other_percent),
                format!(
                    "{:.2}",
                    cpu.herald_seconds + cpu.redis_seconds.unwrap_or(0.0)
                ),
            ]);
        }
        format!(
            "CPU over each measured part, top-style ({} cores: {} % is the whole machine):\n\n{}",
            self.run.machine.cores,
            self.run.machine.cores * 100,
            table.render()
        )
    }

    fn footprint_table(&self) -> String {
        let f = &self.footprint;
        let mark = |figure: &str| {
            f.checks
                .iter()
                .find(|c| c.figure == figure)
                .map(Check::mark)
                .unwrap_or_default()
        };
        let mut table = Table::new(&["W7", "measured", "budget"]);
        table.row(vec![
            "idle RSS (after start, before load)".to_owned(),
            format!("{:.1} MB", f.idle_rss_mb),
            mark(IDLE_RSS),
        ]);
        table.row(vec![
            "idle CPU (after start, before load)".to_owned(),
            format!("{:.1} %", f.idle_cpu_percent),
            "-".to_owned(),
        ]);
        table.row(vec![
            "peak RSS (VmHWM, whole run)".to_owned(),
            format!("{:.1} MB", f.peak_rss_mb),
            mark(PEAK_RSS),
        ]);
        table.row(vec![
            format!("start → SERVING (median of {})", f.start_ms.len()),
            format!("{} ms", millis(f.start_ms_median)),
            mark(START),
        ]);
        table.render()
    }
}

/// Each row's figures with their budgets and its ledger.
pub fn figures_table(rows: &[Row]) -> String {
    let mut table = Table::new(&[
        "row",
        "workload",
        "publish calls/s",
        "publish p50 / p99 ms",
        "deliveries/s",
        "publish→delivery p50 / p99 ms",
        "CPU s / 1k deliveries",
        "peak RSS MB",
        "ledger",
    ]);
    for row in rows {
        let m = &row.measured;
        let judged =
            |figure: &str, text: String| match row.checks.iter().find(|c| c.figure == figure) {
                Some(check) => format!("{text} {}", check.mark()),
                None => text,
            };
        let key = if row.durable {
            m.key.to_owned()
        } else {
            format!("{} (non-durable)", m.key)
        };
        table.row(vec![
            key,
            m.title.clone(),
            judged(PUBLISH_RATE, number(m.publish_calls_per_s)),
            format!(
                "{} / {}",
                millis(m.publish_p50_ms),
                millis(m.publish_p99_ms)
            ),
            judged(DELIVERY_RATE, number(m.deliveries_per_s)),
            judged(
                DELIVERY_P99,
                format!(
                    "{} / {}",
                    millis(m.delivery_p50_ms),
                    millis(m.delivery_p99_ms)
                ),
            ),
            judged(CPU, format!("{:.3}", m.cpu.seconds_per_1000_deliveries)),
            judged(PEAK_RSS, format!("{:.1}", m.peak_rss_mb)),
            ledger_cell(m),
        ]);
    }
    table.render()
}

/// A share of a core, `-` when not measured.
fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |p| format!("{p:.0}"))
}

/// `20,000 ✓`, or what is missing and extra.
fn ledger_cell(m: &Measured) -> String {
    let l = &m.ledger;
    let mut cell = format!(
        "{} / {}",
        number(l.delivered as f64),
        number(l.expected as f64)
    );
    if l.balanced() {
        cell.push_str(" ✓");
    } else {
        let _ = write!(cell, ": {} missing ✗", number(l.missing as f64));
    }
    for (count, what) in [
        (l.duplicates, "duplicates"),
        (l.unknown, "unknown"),
        (m.publish_errors, "publish errors"),
    ] {
        if count > 0 {
            let _ = write!(cell, ", {} {what}", number(count as f64));
        }
    }
    cell
}

/// A whole number with thousands separators: `12,345`.
pub fn number(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    if value < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// Milliseconds with about three significant digits.
pub fn millis(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        number(ms)
    }
}

/// A Markdown table padded to line up on a terminal.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let width = |i: usize| {
            std::iter::once(&self.header)
                .chain(&self.rows)
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.header.len()).map(width).collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                .collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = line(&self.header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_in_the_design() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(999.4), "999");
        assert_eq!(number(15_000.0), "15,000");
        assert_eq!(number(1_234_567.8), "1,234,568");
        assert_eq!(millis(0.456), "0.46");
        assert_eq!(millis(45.66), "45.7");
        assert_eq!(millis(1_234.0), "1,234");
    }

    #[test]
    fn checks_are_judged_only_on_durable_stores() {
        let met = Check::new(DELIVERY_RATE, 16_000.0, Bound::AtLeast, 15_000.0, true);
        assert_eq!(met.verdict, Verdict::Met);
        assert_eq!(met.mark(), "✓ ≥ 15,000");
        let missed = Check::new(DELIVERY_P99, 7.5, Bound::AtMost, 5.0, true);
        assert_eq!(missed.verdict, Verdict::Missed);
        assert_eq!(missed.mark(), "✗ ≤ 5");
        let reference = Check::new(DELIVERY_RATE, 1.0, Bound::AtLeast, 15_000.0, false);
        assert_eq!(reference.verdict, Verdict::Reference);
        assert_eq!(reference.mark(), "(≥ 15,000)");
        let cpu = Check::new(CPU, 0.05, Bound::AtMost, 0.1, true);
        assert_eq!(cpu.mark(), "✓ ≤ 0.1");
    }

    #[test]
    fn tables_line_up() {
        let mut table = Table::new(&["a", "figure"]);
        table.row(vec!["long cell".to_owned(), "1".to_owned()]);
        assert_eq!(
            table.render(),
            "| a         | figure |\n|-----------|--------|\n| long cell | 1      |\n"
        );
    }
}
