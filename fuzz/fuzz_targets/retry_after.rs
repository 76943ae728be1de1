//! The `Retry-After` parser, on any text the header could carry.
//!
//! The first eight bytes choose the present (between 1970 and 9999, where HTTP dates
//! live), the rest is the value: no panic, a number of seconds is read exactly, and the
//! delay a date gives never exceeds the time from now to that date. Then the same clock
//! round-trips: an HTTP date written a whole number of seconds ahead parses back to
//! exactly that delay.
#![no_main]

use std::time::{Duration, SystemTime};

use herald::policy::retry::parse_retry_after;
use libfuzzer_sys::fuzz_target;

/// 9999-12-31T23:59:59Z, the last second an HTTP date can name.
const LAST: u64 = 253_402_300_799;

fuzz_target!(|input: &[u8]| {
    let Some((clock, value)) = input.split_first_chunk::<8>() else {
        return;
    };
    let clock = u64::from_le_bytes(*clock);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(clock % (LAST + 1));
    let value = String::from_utf8_lossy(value);
    let parsed = parse_retry_after(&value, now);
    if let Ok(secs) = value.trim().parse::<u64>() {
        assert_eq!(parsed, Some(Duration::from_secs(secs)));
    } else if let (Some(delay), Ok(at)) = (parsed, httpdate::parse_http_date(value.trim())) {
        assert_eq!(delay, at.duration_since(now).unwrap_or(Duration::ZERO));
    }
    let ahead = (clock >> 32) % (LAST - (clock % (LAST + 1)) + 1);
    let at = now + Duration::from_secs(ahead);
    let written = httpdate::fmt_http_date(at);
    assert_eq!(
        parse_retry_after(&written, now),
        Some(Duration::from_secs(ahead)),
        "{written}"
    );
});
