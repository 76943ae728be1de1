//! Delivery analytics: per-minute rollups of attempts (counts and a latency sketch),
//! written by the store in the transaction that records each attempt, and merged over any
//! window into a [`Report`]. A query over 30 days reads 30 × 1,440 rollups per endpoint
//! and event type at most, never the attempts themselves.

pub mod sketch;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use self::sketch::LatencySketch;
use crate::domain::{AttemptRecord, EndpointId, TransportError};

/// Why an attempt failed, as analytics groups failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    Timeout,
    Connection,
    Dns,
    Tls,
    Transport,
    /// 3xx: redirects are failures.
    Redirect,
    ClientError,
    ServerError,
    /// Refused by the egress policy: nothing was sent.
    Blocked,
}

impl FailureKind {
    pub const ALL: [Self; 9] = [
        Self::Timeout,
        Self::Connection,
        Self::Dns,
        Self::Tls,
        Self::Transport,
        Self::Redirect,
        Self::ClientError,
        Self::ServerError,
        Self::Blocked,
    ];

    /// The kind's name, as the API and the stores spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Transport => "transport",
            Self::Redirect => "redirect",
            Self::ClientError => "client_error",
            Self::ServerError => "server_error",
            Self::Blocked => "blocked",
        }
    }

    pub fn of(record: &AttemptRecord) -> Option<Self> {
        if let Some(e) = record.transport_error {
            return Some(match e {
                TransportError::Timeout => Self::Timeout,
                TransportError::Connection => Self::Connection,
                TransportError::Dns => Self::Dns,
                TransportError::Tls => Self::Tls,
                TransportError::Other => Self::Transport,
                TransportError::Blocked => Self::Blocked,
            });
        }
        match record.status_code? {
            200..=299 => None,
            300..=399 => Some(Self::Redirect),
            400..=499 => Some(Self::ClientError),
            _ => Some(Self::ServerError),
        }
    }
}

/// What happened in one minute, for one endpoint and one event type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// Deliveries whose first attempt was made.
    pub deliveries: u64,
    pub attempts: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Deliveries that ended failed (retries exhausted or 410 Gone).
    pub exhausted: u64,
    pub latency_sum_us: u64,
    pub latency_max_us: u64,
    /// The fastest attempt; `None` without attempts, or when some were counted before
    /// minimums were kept (then no lower bound is known).
    #[serde(default)]
    pub latency_min_us: Option<u64>,
    pub status_codes: BTreeMap<u16, u64>,
    pub failure_kinds: BTreeMap<FailureKind, u64>,
    pub latency: LatencySketch,
}

impl Rollup {
    /// Counts one attempt.
    pub fn record(
        &mut self,
        attempt_number: u32,
        record: &AttemptRecord,
        succeeded: bool,
        exhausted: bool,
    ) {
        let micros = u64::try_from(record.latency.as_micros()).unwrap_or(u64::MAX);
        self.deliveries += u64::from(attempt_number == 1);
        self.attempts += 1;
        self.succeeded += u64::from(succeeded);
        self.failed += u64::from(!succeeded);
        self.exhausted += u64::from(exhausted);
        self.latency_sum_us = self.latency_sum_us.saturating_add(micros);
        self.latency_max_us = self.latency_max_us.max(micros);
        self.latency_min_us = match self.attempts {
            1 => Some(micros),
            _ => self.latency_min_us.map(|min| min.min(micros)),
        };
        if let Some(code) = record.status_code {
            *self.status_codes.entry(code).or_default() += 1;
        }
        if let Some(kind) = FailureKind::of(record).filter(|_| !succeeded) {
            *self.failure_kinds.entry(kind).or_default() += 1;
        }
        self.latency.add(micros);
    }

    pub fn merge(&mut self, other: &Self) {
        self.latency_min_us = match (self.attempts, other.attempts) {
            (0, _) => other.latency_min_us,
            (_, 0) => self.latency_min_us,
            _ => self
                .latency_min_us
                .zip(other.latency_min_us)
                .map(|(a, b)| a.min(b)),
        };
        self.deliveries += other.deliveries;
        self.attempts += other.attempts;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.exhausted += other.exhausted;
        self.latency_sum_us = self.latency_sum_us.saturating_add(other.latency_sum_us);
        self.latency_max_us = self.latency_max_us.max(other.latency_max_us);
        for (code, n) in &other.status_codes {
            *self.status_codes.entry(*code).or_default() += n;
        }
        for (kind, n) in &other.failure_kinds {
            *self.failure_kinds.entry(*kind).or_default() += n;
        }
        self.latency.merge(&other.latency);
    }

    /// The rollup as named counters, for stores that add counters up one by one
    /// (`latency_max_us` is a maximum and `latency_min_us` a minimum, not sums).
    /// [`Rollup::add_counter`] reads them.
    pub fn counters(&self) -> Vec<(String, u64)> {
        let mut counters: Vec<(String, u64)> = [
            ("deliveries", self.deliveries),
            ("attempts", self.attempts),
            ("succeeded", self.succeeded),
            ("failed", self.failed),
            ("exhausted", self.exhausted),
            ("latency_sum_us", self.latency_sum_us),
            ("latency_max_us", self.latency_max_us),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| (name.to_owned(), n))
        .collect();
        counters.extend(
            self.latency_min_us
                .map(|min| ("latency_min_us".to_owned(), min)),
        );
        counters.extend(
            self.status_codes
                .iter()
                .map(|(c, n)| (format!("status:{c}"), *n)),
        );
        counters.extend(
            self.failure_kinds
                .iter()
                .map(|(k, n)| (format!("failure:{}", k.name()), *n)),
        );
        counters.extend(
            self.latency
                .buckets()
                .map(|(i, n)| (format!("latency:{i}"), n)),
        );
        counters
    }

    /// Adds one counter of [`Rollup::counters`]; unknown names are ignored.
    pub fn add_counter(&mut self, name: &str, n: u64) {
        match name {
            "deliveries" => self.deliveries += n,
            "attempts" => self.attempts += n,
            "succeeded" => self.succeeded += n,
            "failed" => self.failed += n,
            "exhausted" => self.exhausted += n,
            "latency_sum_us" => self.latency_sum_us = self.latency_sum_us.saturating_add(n),
            "latency_max_us" => self.latency_max_us = self.latency_max_us.max(n),
            "latency_min_us" => {
                self.latency_min_us = Some(self.latency_min_us.map_or(n, |min| min.min(n)));
            }
            _ => match name.split_once(':') {
                Some(("status", code)) => {
                    if let Ok(code) = code.parse() {
                        *self.status_codes.entry(code).or_default() += n;
                    }
                }
                Some(("failure", kind)) => {
                    if let Some(kind) = FailureKind::ALL.into_iter().find(|k| k.name() == kind) {
                        *self.failure_kinds.entry(kind).or_default() += n;
                    }
                }
                Some(("latency", index)) => {
                    if let Ok(index) = index.parse() {
                        self.latency.add_to_bucket(index, n);
                    }
                }
                _ => {}
            },
        }
    }

    /// Succeeded attempts over all attempts; `None` without attempts.
    pub fn success_rate(&self) -> Option<f64> {
        (self.attempts > 0).then(|| self.succeeded as f64 / self.attempts as f64)
    }

    /// Mean attempt latency in milliseconds; 0 without attempts.
    pub fn latency_avg_ms(&self) -> f64 {
        if self.attempts == 0 {
            0.0
        } else {
            self.latency_sum_us as f64 / self.attempts as f64 / 1000.0
        }
    }

    /// The `q`-quantile of attempt latency in milliseconds, by nearest rank (see
    /// [`sketch::nearest_rank`]), never below the fastest attempt nor above the slowest.
    pub fn latency_ms(&self, q: f64) -> Option<f64> {
        let estimate = self.latency.quantile(q)?;
        let max = self.latency_max_us as f64;
        let min = self.latency_min_us.map_or(0.0, |min| min as f64).min(max);
        Some(estimate.clamp(min, max) / 1000.0)
    }

    /// The fastest attempt in milliseconds, when known.
    pub fn latency_min_ms(&self) -> Option<f64> {
        self.latency_min_us.map(|us| us as f64 / 1000.0)
    }
}

/// Minutes since the Unix epoch: the rollup key of a time.
pub fn minute_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs() / 60).unwrap_or(i64::MAX))
}

/// The start of a minute: of one holding a time up to year 9999, which is all a request
/// can name (minutes before the epoch are the epoch's).
pub fn time_of_minute(minute: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(minute).unwrap_or(0).saturating_mul(60))
}

/// One stored rollup row.
#[derive(Debug, Clone)]
pub struct RollupRow {
    pub minute: i64,
    pub endpoint: EndpointId,
    pub rollup: Rollup,
}

/// An endpoint's figures in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointFigures {
    pub endpoint: EndpointId,
    pub rollup: Rollup,
}

/// Counts over a slice of the window (an hour or a day).
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub start: SystemTime,
    pub rollup: Rollup,
}

/// How healthy deliveries were, 0–100, and the word for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    pub score: u32,
    pub status: HealthStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    Excellent,
    Good,
    Fair,
    Poor,
    Critical,
}

impl Health {
    /// `score = round(100 × success_rate × latency_factor)`, where `latency_factor` is 1
    /// up to a p95 of 1 s, falls linearly to 0.5 at a p95 of 10 s and stays there; a
    /// window without attempts scores 100.
    pub fn of(rollup: &Rollup) -> Self {
        let Some(success) = rollup.success_rate() else {
            return Self::from_score(100);
        };
        let p95 = rollup.latency_ms(0.95).unwrap_or(0.0);
        let latency_factor = 1.0 - 0.5 * ((p95 - 1_000.0) / 9_000.0).clamp(0.0, 1.0);
        Self::from_score((100.0 * success * latency_factor).round() as u32)
    }

    fn from_score(score: u32) -> Self {
        let status = match score {
            90.. => HealthStatus::Excellent,
            75..=89 => HealthStatus::Good,
            50..=74 => HealthStatus::Fair,
            25..=49 => HealthStatus::Poor,
            _ => HealthStatus::Critical,
        };
        Self { score, status }
    }
}

/// Everything `GetAnalytics` answers for a window.
#[derive(Debug, Clone)]
pub struct Report {
    pub from: SystemTime,
    pub to: SystemTime,
    pub total: Rollup,
    /// The window of the same length just before, for the trend.
    pub previous: Rollup,
    pub top_by_volume: Vec<EndpointFigures>,
    pub top_by_failure_rate: Vec<EndpointFigures>,
    pub hourly: Vec<Bucket>,
    /// Only for windows over 48 hours.
    pub daily: Vec<Bucket>,
    pub health: Health,
}

/// How a window compares with the one before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Relative change of the attempt count (0.5: half as many again); 0 without a
    /// previous window.
    pub attempts_change: f64,
    /// Success rate now minus before; 0 without a previous window.
    pub success_rate_change: f64,
}

impl Report {
    pub fn trend(&self) -> Trend {
        let (now, before) = (&self.total, &self.previous);
        if before.attempts == 0 {
            return Trend {
                attempts_change: 0.0,
                success_rate_change: 0.0,
            };
        }
        Trend {
            attempts_change: (now.attempts as f64 - before.attempts as f64)
                / before.attempts as f64,
            success_rate_change: now.success_rate().unwrap_or_default()
                - before.success_rate().unwrap_or_default(),
        }
    }
}

/// How many endpoints the top lists name.
const TOP: usize = 10;

/// Merges the rows of `[from, to)` (and of the window before it, for the trend).
pub fn report(rows: &[RollupRow], from: SystemTime, to: SystemTime) -> Report {
    let (first, end) = (minute_of(from), minute_of(to));
    let length = end - first;
    let mut total = Rollup::default();
    let mut previous = Rollup::default();
    let mut per_endpoint: BTreeMap<&EndpointId, Rollup> = BTreeMap::new();
    let mut hourly: BTreeMap<i64, Rollup> = BTreeMap::new();
    let mut daily: BTreeMap<i64, Rollup> = BTreeMap::new();
    for row in rows {
        if (first - length..first).contains(&row.minute) {
            previous.merge(&row.rollup);
        }
        if !(first..end).contains(&row.minute) {
            continue;
        }
        total.merge(&row.rollup);
        per_endpoint
            .entry(&row.endpoint)
            .or_default()
            .merge(&row.rollup);
        hourly
            .entry(row.minute.div_euclid(60))
            .or_default()
            .merge(&row.rollup);
        daily
            .entry(row.minute.div_euclid(1440))
            .or_default()
            .merge(&row.rollup);
    }
    let figures: Vec<EndpointFigures> = per_endpoint
        .into_iter()
        .map(|(endpoint, rollup)| EndpointFigures {
            endpoint: endpoint.clone(),
            rollup,
        })
        .collect();
    let mut top_by_volume = figures.clone();
    top_by_volume.sort_by(|a, b| {
        b.rollup
            .attempts
            .cmp(&a.rollup.attempts)
            .then_with(|| a.endpoint.cmp(&b.endpoint))
    });
    top_by_volume.truncate(TOP);
    let failure_rate = |f: &EndpointFigures| 1.0 - f.rollup.success_rate().unwrap_or(1.0);
    let mut top_by_failure_rate: Vec<EndpointFigures> = figures
        .into_iter()
        .filter(|f| f.rollup.failed > 0)
        .collect();
    top_by_failure_rate.sort_by(|a, b| {
        failure_rate(b)
            .total_cmp(&failure_rate(a))
            .then_with(|| a.endpoint.cmp(&b.endpoint))
    });
    top_by_failure_rate.truncate(TOP);
    let buckets = |map: BTreeMap<i64, Rollup>, minutes: i64| {
        map.into_iter()
            .map(|(k, rollup)| Bucket {
                start: time_of_minute(k * minutes),
                rollup,
            })
            .collect::<Vec<_>>()
    };
    let health = Health::of(&total);
    Report {
        from,
        to,
        previous,
        top_by_volume,
        top_by_failure_rate,
        hourly: buckets(hourly, 60),
        daily: if length > 48 * 60 {
            buckets(daily, 1440)
        } else {
            Vec::new()
        },
        health,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(
        status: Option<u16>,
        error: Option<TransportError>,
        latency_ms: u64,
    ) -> AttemptRecord {
        AttemptRecord {
            started_at: SystemTime::now(),
            latency: Duration::from_millis(latency_ms),
            status_code: status,
            transport_error: error,
            error: String::new(),
            response_excerpt: String::new(),
        }
    }

    fn micros(latency_us: u64) -> AttemptRecord {
        AttemptRecord {
            latency: Duration::from_micros(latency_us),
            ..attempt(Some(200), None, 0)
        }
    }

    /// The same attempts counted in one rollup, merged from rollups of one attempt each,
    /// and rebuilt from counters as the Redis store adds them up.
    fn counted_three_ways(latencies_us: &[u64]) -> [Rollup; 3] {
        let (mut one, mut merged, mut counted) =
            (Rollup::default(), Rollup::default(), Rollup::default());
        for (i, us) in latencies_us.iter().enumerate() {
            let mut single = Rollup::default();
            single.record(i as u32 + 1, &micros(*us), true, false);
            one.record(i as u32 + 1, &micros(*us), true, false);
            merged.merge(&single);
            for (name, n) in single.counters() {
                counted.add_counter(&name, n);
            }
        }
        [one, merged, counted]
    }

    #[test]
    fn percentiles_stay_within_the_observed_latencies() {
        // Two attempts of 1.49 and 4.20 ms: the sketch's bucket of 4.20 ms answers 4.21.
        for rollup in counted_three_ways(&[1_490, 4_200]) {
            let p50 = rollup.latency_ms(0.5).unwrap();
            assert!((1.49..=1.49 * 1.008).contains(&p50), "p50 {p50}");
            assert_eq!(rollup.latency_ms(0.95), Some(4.2));
            assert_eq!(rollup.latency_ms(0.99), Some(4.2));
            assert_eq!(rollup.latency_min_ms(), Some(1.49));
        }
        // One attempt: every percentile is that attempt, exactly.
        for rollup in counted_three_ways(&[777]) {
            for q in [0.0, 0.5, 0.99, 1.0] {
                assert_eq!(rollup.latency_ms(q), Some(0.777));
            }
        }
        // A zero latency is a minimum like any other.
        let [.., counted] = counted_three_ways(&[0, 900]);
        assert_eq!(counted.latency_min_ms(), Some(0.0));
        assert_eq!(counted.latency_ms(0.5), Some(0.0));
    }

    #[test]
    fn a_minute_counted_before_minimums_were_kept_leaves_no_lower_bound() {
        let mut old: Rollup = serde_json::from_str(
            r#"{"deliveries":1,"attempts":1,"succeeded":1,"failed":0,"exhausted":0,"latency_sum_us":5000,"latency_max_us":5000,"status_codes":{},"failure_kinds":{},"latency":{"buckets":{},"count":0}}"#,
        )
        .unwrap();
        assert_eq!(old.latency_min_us, None);
        let [new, ..] = counted_three_ways(&[2_000]);
        old.merge(&new);
        assert_eq!(old.latency_min_us, None);
        let mut empty = Rollup::default();
        empty.merge(&new);
        assert_eq!(empty.latency_min_us, Some(2_000));
    }

    fn row(
        minute: i64,
        endpoint: &str,
        attempts: &[(Option<u16>, Option<TransportError>)],
    ) -> RollupRow {
        let mut rollup = Rollup::default();
        for (i, (status, error)) in attempts.iter().enumerate() {
            let succeeded = matches!(status, Some(200..=299));
            rollup.record(
                i as u32 + 1,
                &attempt(*status, *error, 10),
                succeeded,
                false,
            );
        }
        RollupRow {
            minute,
            endpoint: EndpointId::parse(endpoint).unwrap(),
            rollup,
        }
    }

    #[test]
    fn failures_are_grouped_by_kind() {
        let mut r = Rollup::default();
        r.record(1, &attempt(Some(503), None, 5), false, false);
        r.record(
            2,
            &attempt(None, Some(TransportError::Timeout), 5),
            false,
            false,
        );
        r.record(3, &attempt(Some(404), None, 5), false, true);
        r.record(4, &attempt(Some(200), None, 5), true, false);
        assert_eq!(
            (r.deliveries, r.attempts, r.succeeded, r.failed, r.exhausted),
            (1, 4, 1, 3, 1)
        );
        assert_eq!(
            r.failure_kinds,
            BTreeMap::from([
                (FailureKind::Timeout, 1),
                (FailureKind::ClientError, 1),
                (FailureKind::ServerError, 1)
            ])
        );
        assert_eq!(
            r.status_codes,
            BTreeMap::from([(200, 1), (404, 1), (503, 1)])
        );
    }

    #[test]
    fn hourly_buckets_split_at_the_hour_and_the_window_is_half_open() {
        // 10:59 and 11:00 fall in different hours; 12:00 is the end, outside.
        let hour = |h: i64, m: i64| h * 60 + m;
        let ok = [(Some(200), None)];
        let rows = vec![
            row(hour(10, 59), "a", &ok),
            row(hour(11, 0), "a", &ok),
            row(hour(11, 30), "b", &ok),
            row(hour(12, 0), "a", &ok),
            row(hour(9, 30), "a", &[(Some(500), None)]),
        ];
        let report = report(
            &rows,
            time_of_minute(hour(10, 0)),
            time_of_minute(hour(12, 0)),
        );
        let hourly: Vec<(SystemTime, u64)> = report
            .hourly
            .iter()
            .map(|b| (b.start, b.rollup.attempts))
            .collect();
        assert_eq!(
            hourly,
            vec![
                (time_of_minute(hour(10, 0)), 1),
                (time_of_minute(hour(11, 0)), 2)
            ]
        );
        assert_eq!(report.total.attempts, 3);
        assert_eq!(
            report.previous.attempts, 1,
            "09:30 is in the previous window of the same length"
        );
        assert!(report.daily.is_empty());
        assert_eq!(report.top_by_volume[0].endpoint.as_str(), "a");
    }

    #[test]
    fn health_follows_success_and_latency() {
        let mut r = Rollup::default();
        assert_eq!(Health::of(&r).score, 100);
        for i in 0..100 {
            r.record(
                1,
                &attempt(Some(if i < 80 { 200 } else { 500 }), None, 20),
                i < 80,
                false,
            );
        }
        assert_eq!(
            Health::of(&r),
            Health {
                score: 80,
                status: HealthStatus::Good
            }
        );
        let mut slow = Rollup::default();
        slow.record(1, &attempt(Some(200), None, 20_000), true, false);
        assert_eq!(
            Health::of(&slow),
            Health {
                score: 50,
                status: HealthStatus::Fair
            }
        );
    }
}
