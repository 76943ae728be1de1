//! The body of every benchmark message and the clock it is stamped with.
//!
//! A message is 1 KiB of JSON, `{"t":"<20 digits>","pad":"xxx…"}`, where the digits are
//! the publish time in nanoseconds on the run's [`Clock`]. The time sits at a fixed
//! offset with a fixed width, so the sink reads it by slicing the body instead of parsing
//! JSON: the sink shares the machine with Herald and must cost little. The publishers and
//! the sink live in this one process and read the same clock, so publish → delivery
//! latency needs no clock synchronisation.

use std::time::{Duration, Instant};

/// Bytes of every payload.
pub const SIZE: usize = 1024;
/// What precedes the timestamp.
const HEAD: &[u8] = br#"{"t":""#;
/// What follows the timestamp, up to the padding.
const PAD_HEAD: &[u8] = br#"","pad":""#;
const TAIL: &[u8] = br#""}"#;
/// Width of the timestamp: `u64::MAX` has 20 digits.
const DIGITS: usize = 20;

/// Nanoseconds since the start of the run, shared by the publishers and the sink.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }

    /// `at` on this clock (0 for instants before its start).
    pub fn ns_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The payload stamped with `sent_ns`.
pub fn payload(sent_ns: u64) -> Vec<u8> {
    let mut body = Vec::with_capacity(SIZE);
    body.extend_from_slice(HEAD);
    body.extend_from_slice(format!("{sent_ns:0DIGITS$}").as_bytes());
    body.extend_from_slice(PAD_HEAD);
    body.resize(SIZE - TAIL.len(), b'x');
    body.extend_from_slice(TAIL);
    body
}

/// The timestamp of a payload made by [`payload`]; `None` for any other body.
pub fn sent_ns(body: &[u8]) -> Option<u64> {
    let digits = body
        .strip_prefix(HEAD)?
        .get(..DIGITS)
        .filter(|digits| digits.iter().all(u8::is_ascii_digit))?;
    digits.iter().try_fold(0_u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Nanoseconds as milliseconds, for reports.
pub fn ms(ns: u64) -> f64 {
    Duration::from_nanos(ns).as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_1_kib_of_json_carrying_its_timestamp() {
        for t in [0, 123, 1_700_000_000_123_456_789, u64::MAX] {
            let body = payload(t);
            assert_eq!(body.len(), SIZE);
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["t"], format!("{t:020}"));
            assert_eq!(sent_ns(&body), Some(t));
        }
    }

    #[test]
    fn other_bodies_have_no_timestamp() {
        assert_eq!(sent_ns(b""), None);
        assert_eq!(sent_ns(br#"{"t":"12"}"#), None);
        assert_eq!(sent_ns(br#"{"t":"0000000000000000000x","pad":""}"#), None);
        // Twenty digits past u64::MAX.
        assert_eq!(sent_ns(br#"{"t":"99999999999999999999","pad":""}"#), None);
    }
}
