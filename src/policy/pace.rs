//! Pacing: how much of this process's workers endpoints that do not answer in time may
//! hold, so that workers always remain for the endpoints that do.
//!
//! An endpoint is *timely* while the last attempt this process saw end took less than
//! `slow_after` (and was not cut off by the request timeout) and none of its attempts in
//! flight has run that long; every other endpoint is *slow*, and so is one this process
//! has not seen end an attempt within [`MEMORY`] (a new one among them). Slow endpoints
//! together may hold at most their share of the workers, from the first second on: a
//! crowd of new endpoints that never answer fills that share, never more, before any of
//! their attempts has timed out. Once an endpoint's last attempt timed out, it has
//! [`PROBES`] attempt in flight at a time until it answers, so that endpoints that do not
//! answer at all hold one worker each and leave the rest of the share to the others.
//! Timely endpoints are not held back: a fast endpoint keeps its whole in-flight cap, and
//! a new one earns it with its first timely answer.
//!
//! The workers are this process's, so is their pacing, on every store: the scheduler
//! reports the start and end of each attempt and hands the [`PaceRoom`] to the store's
//! claim, which applies it beside the endpoints' own protection. Receivers are shielded
//! by `protection`, not here. No I/O; time is passed in.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::EndpointId;

/// How long what an endpoint's last attempt showed is remembered; after that, it is slow
/// until it answers in time again (and this process forgets it when idle).
pub const MEMORY: Duration = Duration::from_secs(60);

/// Attempts in flight at once of an endpoint whose last attempt timed out.
pub const PROBES: usize = 1;

/// The pacing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceConfig {
    /// An attempt that takes longer makes its endpoint slow.
    pub slow_after: Duration,
    /// Percent of the workers slow endpoints may hold together (1 to 100); at least one.
    pub slow_share: u8,
}

/// How an endpoint stands for the next claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// It answers in time: pacing does not hold it back.
    Timely,
    /// It does not: it may start `room` more, within the slow endpoints' shared room.
    Slow { room: usize },
}

/// Pacing's part of the next claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceRoom {
    /// Each endpoint this process paces.
    pub endpoints: HashMap<EndpointId, Pace>,
    /// An endpoint not listed.
    pub unknown: Pace,
    /// Deliveries the slow endpoints together may start now.
    pub slow_room: usize,
}

impl PaceRoom {
    pub fn of(&self, endpoint: &EndpointId) -> Pace {
        self.endpoints
            .get(endpoint)
            .copied()
            .unwrap_or(self.unknown)
    }
}

/// How this process's workers are used, for the health report and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerUse {
    /// The size of the pool.
    pub workers: usize,
    /// Attempts in flight.
    pub busy: usize,
    /// Of those, attempts to slow endpoints.
    pub slow: usize,
    /// The most workers slow endpoints may hold together.
    pub slow_share: usize,
}

impl WorkerUse {
    /// All or nearly all (past 95 %) workers are busy: due deliveries wait for one.
    pub fn saturated(&self) -> bool {
        let free = self.workers.saturating_sub(self.busy);
        free < (self.workers / 20).max(1)
    }

    /// Slow endpoints hold their whole share: their due deliveries wait.
    pub fn slow_share_full(&self) -> bool {
        self.slow >= self.slow_share
    }
}

/// How an attempt ended, as pacing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// An answer (or a failure) before the request timeout.
    Finished,
    /// The request timeout cut it off.
    TimedOut,
    /// It never reached an outcome: the process is stopping.
    Abandoned,
}

/// What an ended attempt showed of its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Showed {
    InTime,
    Late,
    NoAnswer,
}

/// One endpoint's attempts, as this process saw them.
#[derive(Debug, Default)]
struct Timing {
    /// When each attempt in flight started.
    started: Vec<Instant>,
    /// The last ended attempt: when it ended, and what it showed.
    last: Option<(Instant, Showed)>,
}

impl Timing {
    fn remembered(&self, now: Instant) -> Option<Showed> {
        self.last
            .filter(|(at, _)| now.saturating_duration_since(*at) < MEMORY)
            .map(|(_, showed)| showed)
    }

    fn pace(&self, slow_after: Duration, now: Instant) -> Pace {
        let running_long = self
            .started
            .iter()
            .any(|s| now.saturating_duration_since(*s) >= slow_after);
        match self.remembered(now) {
            Some(Showed::InTime) if !running_long => Pace::Timely,
            Some(Showed::NoAnswer) => Pace::Slow {
                room: PROBES.saturating_sub(self.started.len()),
            },
            None | Some(Showed::InTime | Showed::Late) => Pace::Slow { room: usize::MAX },
        }
    }
}

/// The timing of every endpoint this process has attempts in flight to, or remembers.
#[derive(Debug)]
pub struct Pacing {
    /// An attempt that takes this long makes its endpoint slow.
    slow_after: Duration,
    /// The workers of the pool, for the health report.
    workers: usize,
    /// The most workers slow endpoints may hold together.
    slow_share: usize,
    /// The endpoints with attempts in flight or a remembered last attempt; any other
    /// stands as unknown.
    endpoints: HashMap<EndpointId, Timing>,
}

impl Pacing {
    /// Pacing for a pool of `workers`.
    pub fn new(config: PaceConfig, workers: usize) -> Self {
        Self {
            slow_after: config.slow_after,
            workers,
            slow_share: (workers * usize::from(config.slow_share.min(100)) / 100).max(1),
            endpoints: HashMap::new(),
        }
    }

    /// An attempt to `endpoint` starts.
    pub fn start(&mut self, endpoint: &EndpointId, now: Instant) {
        self.endpoints
            .entry(endpoint.clone())
            .or_default()
            .started
            .push(now);
    }

    /// The attempt to `endpoint` that started at `started` ended.
    pub fn end(&mut self, endpoint: &EndpointId, started: Instant, end: End, now: Instant) {
        let Some(timing) = self.endpoints.get_mut(endpoint) else {
            return;
        };
        if let Some(i) = timing.started.iter().position(|s| *s == started) {
            timing.started.swap_remove(i);
        }
        let showed = match end {
            End::Abandoned => return,
            End::TimedOut => Showed::NoAnswer,
            End::Finished if now.saturating_duration_since(started) < self.slow_after => {
                Showed::InTime
            }
            End::Finished => Showed::Late,
        };
        timing.last = Some((now, showed));
    }

    /// How every endpoint stands for a claim at `now`. Forgets the endpoints with nothing
    /// in flight and nothing remembered: they stand as unknown ones do.
    pub fn room(&mut self, now: Instant) -> PaceRoom {
        self.endpoints
            .retain(|_, t| !t.started.is_empty() || t.remembered(now).is_some());
        let mut slow_held = 0;
        let endpoints = self
            .endpoints
            .iter()
            .map(|(id, timing)| {
                let pace = timing.pace(self.slow_after, now);
                if pace != Pace::Timely {
                    slow_held += timing.started.len();
                }
                (id.clone(), pace)
            })
            .collect();
        PaceRoom {
            endpoints,
            unknown: Pace::Slow { room: usize::MAX },
            slow_room: self.slow_share.saturating_sub(slow_held),
        }
    }

    /// How the workers are used at `now`.
    pub fn usage(&self, now: Instant) -> WorkerUse {
        let (mut busy, mut slow) = (0, 0);
        for timing in self.endpoints.values() {
            busy += timing.started.len();
            if timing.pace(self.slow_after, now) != Pace::Timely {
                slow += timing.started.len();
            }
        }
        WorkerUse {
            workers: self.workers,
            busy,
            slow,
            slow_share: self.slow_share,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOW_AFTER: Duration = Duration::from_secs(1);

    fn pacing(workers: usize) -> Pacing {
        Pacing::new(
            PaceConfig {
                slow_after: SLOW_AFTER,
                slow_share: 50,
            },
            workers,
        )
    }

    fn id(name: &str) -> EndpointId {
        EndpointId::parse(name).unwrap()
    }

    /// Ends an attempt to `e` started at `started`, `took` later.
    fn finish(p: &mut Pacing, e: &EndpointId, started: Instant, end: End, took: Duration) {
        p.end(e, started, end, started + took);
    }

    #[tokio::test(start_paused = true)]
    async fn new_endpoints_share_the_slow_room_and_one_that_timed_out_probes() {
        let mut p = pacing(10);
        let now = Instant::now();
        let room = p.room(now);
        assert_eq!(room.unknown, Pace::Slow { room: usize::MAX });
        assert_eq!(room.slow_room, 5, "half of 10 workers");
        let hanging = id("hanging");
        for _ in 0..4 {
            p.start(&hanging, now);
        }
        let room = p.room(now);
        assert_eq!(room.of(&hanging), Pace::Slow { room: usize::MAX });
        assert_eq!(room.slow_room, 1);
        p.start(&id("other"), now);
        let usage = p.usage(now);
        assert_eq!((usage.busy, usage.slow, usage.slow_share), (5, 5, 5));
        assert!(usage.slow_share_full() && !usage.saturated());
        assert_eq!(p.room(now).slow_room, 0, "the share is held");
        // Timeouts show no answer: one attempt at a time until it answers, and the slots
        // are back for the others.
        let later = now + Duration::from_secs(15);
        for _ in 0..4 {
            p.end(&hanging, now, End::TimedOut, later);
        }
        let room = p.room(later);
        assert_eq!(room.of(&hanging), Pace::Slow { room: 1 });
        assert_eq!(room.slow_room, 4);
        p.start(&hanging, later);
        assert_eq!(p.room(later).of(&hanging), Pace::Slow { room: 0 });
    }

    #[tokio::test(start_paused = true)]
    async fn a_timely_answer_frees_an_endpoint_and_a_long_attempt_makes_it_slow_again() {
        let mut p = pacing(4);
        let fast = id("fast");
        let t0 = Instant::now();
        p.start(&fast, t0);
        finish(&mut p, &fast, t0, End::Finished, Duration::from_millis(5));
        let t1 = t0 + Duration::from_millis(5);
        assert_eq!(p.room(t1).of(&fast), Pace::Timely);
        for _ in 0..4 {
            p.start(&fast, t1);
        }
        let usage = p.usage(t1);
        assert_eq!(
            (usage.busy, usage.slow),
            (4, 0),
            "a timely endpoint is not held"
        );
        assert!(usage.saturated());
        assert_eq!(p.room(t1).slow_room, 2);
        // Its attempts hang: past `slow_after` it is slow, and they count in the share.
        let t2 = t1 + SLOW_AFTER;
        assert_eq!(p.room(t2).of(&fast), Pace::Slow { room: usize::MAX });
        assert_eq!(p.room(t2).slow_room, 0);
        assert_eq!(p.usage(t2).slow, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn late_answers_keep_an_endpoint_slow_without_probing() {
        let mut p = pacing(100);
        let slow = id("slow");
        let t0 = Instant::now();
        p.start(&slow, t0);
        finish(&mut p, &slow, t0, End::Finished, Duration::from_secs(3));
        let room = p.room(t0 + Duration::from_secs(3));
        assert_eq!(room.of(&slow), Pace::Slow { room: usize::MAX });
        assert_eq!(room.slow_room, 50);
    }

    #[tokio::test(start_paused = true)]
    async fn endpoints_are_forgotten_when_idle_and_abandoned_attempts_count_for_nothing() {
        let mut p = pacing(4);
        let e = id("e");
        let t0 = Instant::now();
        p.start(&e, t0);
        p.start(&e, t0);
        p.end(&e, t0, End::Abandoned, t0 + Duration::from_millis(1));
        assert_eq!(p.usage(t0).busy, 1);
        finish(&mut p, &e, t0, End::Finished, Duration::from_millis(1));
        assert_eq!(p.room(t0).of(&e), Pace::Timely);
        let later = t0 + MEMORY + Duration::from_millis(1);
        assert_eq!(p.room(later).of(&e), Pace::Slow { room: usize::MAX });
        assert!(p.endpoints.is_empty(), "nothing left to remember");
    }

    #[test]
    fn the_share_is_at_least_one_worker() {
        let p = Pacing::new(
            PaceConfig {
                slow_after: SLOW_AFTER,
                slow_share: 1,
            },
            10,
        );
        assert_eq!(p.slow_share, 1);
        let usage = p.usage(Instant::now());
        assert!(!usage.saturated() && !usage.slow_share_full());
    }
}
