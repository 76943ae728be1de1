//! Delivery analytics: per-minute rollups of attempts (counts and a latency sketch),
//! written with each attempt, merged over any window.

pub mod sketch;
