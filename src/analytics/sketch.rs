//! A mergeable latency sketch with bounded relative error (the DDSketch idea): values
//! fall into logarithmic buckets `(γ^(i-1), γ^i]`, and a quantile is answered with the
//! bucket's midpoint `2γ^i / (γ + 1)`, which is within `α` of every value in the bucket.
//! Sketches of different minutes merge by adding counts, so any window costs the same.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Relative accuracy: every quantile is within 0.8 % of a value of the data set.
const ALPHA: f64 = 0.008;

fn gamma() -> f64 {
    (1.0 + ALPHA) / (1.0 - ALPHA)
}

/// Counts of latencies (in microseconds) per logarithmic bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySketch {
    /// Bucket index → count. Index 0 holds zero latencies.
    buckets: BTreeMap<i32, u64>,
    count: u64,
}

impl LatencySketch {
    fn index(micros: u64) -> i32 {
        if micros == 0 {
            0
        } else {
            ((micros as f64).ln() / gamma().ln()).ceil() as i32 + 1
        }
    }

    fn value(index: i32) -> f64 {
        if index == 0 {
            0.0
        } else {
            2.0 * gamma().powi(index - 1) / (gamma() + 1.0)
        }
    }

    pub fn add(&mut self, micros: u64) {
        *self.buckets.entry(Self::index(micros)).or_default() += 1;
        self.count += 1;
    }

    pub fn merge(&mut self, other: &Self) {
        for (index, count) in &other.buckets {
            *self.buckets.entry(*index).or_default() += count;
        }
        self.count += other.count;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Bucket index and count of every non-empty bucket.
    pub fn buckets(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.buckets.iter().map(|(i, n)| (*i, *n))
    }

    /// Adds `count` values to bucket `index`, as [`Self::buckets`] reported them.
    pub fn add_to_bucket(&mut self, index: i32, count: u64) {
        *self.buckets.entry(index).or_default() += count;
        self.count += count;
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) in microseconds by nearest rank: the value at 1-based
    /// rank ⌈q·n⌉ (at least 1) of the sorted values, within α; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = nearest_rank(q, self.count);
        let mut seen = 0;
        for (index, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return Some(Self::value(*index));
            }
        }
        self.buckets.keys().next_back().map(|i| Self::value(*i))
    }
}

/// The 1-based nearest rank of the `q`-quantile among `n` sorted values: ⌈q·n⌉, at least 1.
pub fn nearest_rank(q: f64, n: u64) -> u64 {
    ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).clamp(1, n.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(sorted: &[u64], q: f64) -> f64 {
        sorted[nearest_rank(q, sorted.len() as u64) as usize - 1] as f64
    }

    #[test]
    fn nearest_rank_of_small_sets() {
        assert_eq!(nearest_rank(0.5, 2), 1);
        assert_eq!(nearest_rank(0.95, 2), 2);
        assert_eq!(nearest_rank(0.0, 5), 1);
        assert_eq!(nearest_rank(0.5, 5), 3);
        assert_eq!(nearest_rank(1.0, 5), 5);
        assert_eq!(nearest_rank(0.99, 100), 99);
        assert_eq!(nearest_rank(0.999, 100), 100);
    }

    #[test]
    fn quantiles_are_within_one_percent_of_the_exact_value() {
        // A known, skewed distribution: 1 ms to ~2 s, heavy at the low end.
        let mut values: Vec<u64> = (0..20_000u64).map(|i| 1_000 + (i * i) / 200).collect();
        let mut sketch = LatencySketch::default();
        for v in &values {
            sketch.add(*v);
        }
        values.sort();
        for q in [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let (estimate, truth) = (sketch.quantile(q).unwrap(), exact(&values, q));
            assert!(
                (estimate - truth).abs() / truth <= 0.01,
                "q{q}: {estimate} vs {truth}"
            );
        }
    }

    #[test]
    fn merged_sketches_answer_like_one() {
        let (mut a, mut b, mut all) = (
            LatencySketch::default(),
            LatencySketch::default(),
            LatencySketch::default(),
        );
        for v in 1..5_000u64 {
            if v % 3 == 0 {
                a.add(v * 7)
            } else {
                b.add(v * 7)
            }
            all.add(v * 7);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(a.count(), 4_999);
    }

    #[test]
    fn buckets_rebuild_the_sketch() {
        let mut a = LatencySketch::default();
        for v in [0, 5, 900, 900, 70_000] {
            a.add(v);
        }
        let mut b = LatencySketch::default();
        for (index, count) in a.buckets() {
            b.add_to_bucket(index, count);
        }
        assert_eq!(a, b);
    }

    #[test]
    fn empty_and_zero() {
        assert_eq!(LatencySketch::default().quantile(0.5), None);
        let mut s = LatencySketch::default();
        s.add(0);
        assert_eq!(s.quantile(0.99), Some(0.0));
    }
}
