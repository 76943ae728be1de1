//! A token bucket for one endpoint: `limit` requests per `window`, with up to `burst`
//! saved up. In any window the endpoint sees at most `burst + limit` requests.
//!
//! A pure structure over `tokio::time::Instant`, tested on tokio's paused clock. It also
//! counts the requests of the last window, for `GetEndpoint`'s usage figure.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// An endpoint's rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    limit: u32,
    window: Duration,
    burst: u32,
}

/// Why a rate limit was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    #[error("limit must be between 1 and 1000000, got {0}")]
    Limit(u32),
    #[error("window must be between 1ms and 1 day, got {0:?}")]
    Window(Duration),
    #[error("burst must be between 1 and 1000000, got {0}")]
    Burst(u32),
}

impl RateLimit {
    const MAX: u32 = 1_000_000;

    /// # Errors
    /// When `limit` or `burst` is 0 or above 1,000,000, or `window` is not within
    /// 1 ms ..= 1 day.
    pub fn try_new(limit: u32, window: Duration, burst: u32) -> Result<Self, RateLimitError> {
        if !(1..=Self::MAX).contains(&limit) {
            return Err(RateLimitError::Limit(limit));
        }
        if window < Duration::from_millis(1) || window > Duration::from_secs(24 * 3600) {
            return Err(RateLimitError::Window(window));
        }
        if !(1..=Self::MAX).contains(&burst) {
            return Err(RateLimitError::Burst(burst));
        }
        Ok(Self {
            limit,
            window,
            burst,
        })
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Time for one token to come back.
    fn token_interval(&self) -> Duration {
        self.window / self.limit
    }
}

/// The bucket of one endpoint; starts full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    policy: RateLimit,
    /// Whole tokens available at `updated`.
    tokens: u32,
    /// When `tokens` was last brought up to date; refills count from here.
    updated: Instant,
    /// Start times of the requests of the last window (at most `burst + limit`).
    recent: VecDeque<Instant>,
}

impl TokenBucket {
    pub fn new(policy: RateLimit, now: Instant) -> Self {
        Self {
            policy,
            tokens: policy.burst,
            updated: now,
            recent: VecDeque::new(),
        }
    }

    pub fn policy(&self) -> RateLimit {
        self.policy
    }

    /// Applies a new limit, keeping the tokens (capped to the new burst).
    pub fn set_policy(&mut self, policy: RateLimit, now: Instant) {
        self.refill(now);
        self.policy = policy;
        self.tokens = self.tokens.min(policy.burst);
    }

    fn refill(&mut self, now: Instant) {
        if self.tokens >= self.policy.burst {
            self.updated = now;
            return;
        }
        let interval = self.policy.token_interval().max(Duration::from_nanos(1));
        let elapsed = now.saturating_duration_since(self.updated);
        let earned = u32::try_from(elapsed.as_nanos() / interval.as_nanos()).unwrap_or(u32::MAX);
        if earned == 0 {
            return;
        }
        let room = self.policy.burst - self.tokens;
        if earned >= room {
            self.tokens = self.policy.burst;
            self.updated = now;
        } else {
            self.tokens += earned;
            // Keep the fraction of the next token already earned.
            self.updated += interval * earned;
        }
    }

    /// Tokens that can be taken at `now`.
    pub fn available(&mut self, now: Instant) -> u32 {
        self.refill(now);
        self.tokens
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        self.recent.push_back(now);
        self.forget_before(now);
        true
    }

    /// When `n` tokens will be there (`now` if they are). More than the burst never
    /// are: for those, when the bucket is full.
    pub fn tokens_at(&mut self, n: u32, now: Instant) -> Instant {
        self.refill(now);
        if self.tokens >= n {
            return now;
        }
        let missing = n.min(self.policy.burst) - self.tokens;
        self.updated + self.policy.token_interval() * missing
    }

    /// Requests started within the last window.
    pub fn used_in_window(&mut self, now: Instant) -> u32 {
        self.forget_before(now);
        u32::try_from(self.recent.len()).unwrap_or(u32::MAX)
    }

    fn forget_before(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.policy.window)
        {
            self.recent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(limit: u32, window_ms: u64, burst: u32) -> TokenBucket {
        TokenBucket::new(
            RateLimit::try_new(limit, Duration::from_millis(window_ms), burst).unwrap(),
            Instant::now(),
        )
    }

    #[test]
    fn policy_rejects_nonsense() {
        assert_eq!(
            RateLimit::try_new(0, Duration::from_secs(1), 1),
            Err(RateLimitError::Limit(0))
        );
        assert_eq!(
            RateLimit::try_new(1, Duration::ZERO, 1),
            Err(RateLimitError::Window(Duration::ZERO))
        );
        assert_eq!(
            RateLimit::try_new(1, Duration::from_secs(1), 0),
            Err(RateLimitError::Burst(0))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn starts_full_and_refills_one_token_per_interval() {
        let mut b = bucket(10, 1000, 3);
        let now = Instant::now();
        assert_eq!(b.available(now), 3);
        assert!(b.try_take(now) && b.try_take(now) && b.try_take(now));
        assert!(!b.try_take(now));
        assert_eq!(b.tokens_at(1, now), now + Duration::from_millis(100));
        tokio::time::advance(Duration::from_millis(99)).await;
        assert_eq!(b.available(Instant::now()), 0);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(b.available(Instant::now()), 1);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(b.available(Instant::now()), 3, "capped at the burst");
    }

    #[tokio::test(start_paused = true)]
    async fn partial_progress_toward_a_token_is_kept() {
        let mut b = bucket(10, 1000, 2);
        assert!(b.try_take(Instant::now()) && b.try_take(Instant::now()));
        tokio::time::advance(Duration::from_millis(150)).await;
        assert!(b.try_take(Instant::now()), "one token after 100 ms");
        assert_eq!(
            b.tokens_at(1, Instant::now()),
            Instant::now() + Duration::from_millis(50),
            "50 ms already earned"
        );
        tokio::time::advance(Duration::from_millis(1000)).await;
        assert!(b.try_take(Instant::now()) && b.try_take(Instant::now()));
        assert_eq!(
            b.tokens_at(1, Instant::now()),
            Instant::now() + Duration::from_millis(100),
            "a full bucket banks nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_sees_more_than_limit_plus_burst() {
        let (limit, burst) = (20u32, 5u32);
        let mut b = bucket(limit, 1000, burst);
        let mut starts = Vec::new();
        for _ in 0..5000 {
            if b.try_take(Instant::now()) {
                starts.push(Instant::now());
            }
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        for (i, first) in starts.iter().enumerate() {
            let in_window = starts[i..]
                .iter()
                .take_while(|t| t.duration_since(*first) < Duration::from_secs(1))
                .count();
            assert!(
                in_window <= (limit + burst) as usize,
                "{in_window} in one window"
            );
        }
        assert!(starts.len() >= 100, "sustains the limit: {}", starts.len());
    }

    #[tokio::test(start_paused = true)]
    async fn usage_counts_the_last_window() {
        let mut b = bucket(100, 1000, 100);
        for _ in 0..7 {
            b.try_take(Instant::now());
        }
        assert_eq!(b.used_in_window(Instant::now()), 7);
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(b.used_in_window(Instant::now()), 7);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(b.used_in_window(Instant::now()), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_policy_keeps_tokens_within_its_burst() {
        let mut b = bucket(10, 1000, 10);
        b.set_policy(
            RateLimit::try_new(1, Duration::from_secs(1), 2).unwrap(),
            Instant::now(),
        );
        assert_eq!(b.available(Instant::now()), 2);
        assert_eq!(b.policy().limit(), 1);
    }
}
