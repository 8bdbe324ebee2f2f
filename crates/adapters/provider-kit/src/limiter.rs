//! The client-side rate limiter: a sliding-window log.
//!
//! "At most N requests in any window W": the limiter remembers the send times of the last N
//! reservations; a new request may go at the later of now and the oldest of those N plus
//! W. Unlike a GCRA/token bucket that spreads requests evenly (one every W/N), a burst of N
//! goes at once and the next N when the window has passed, which matches providers that
//! count requests in a window starting at the first request (Alpaca: 200 per minute; a job
//! needing 300 requests sends 200 at once and the other 100 a minute later).
//!
//! Reservations are taken under a short, synchronous lock in arrival order, so waiting is
//! fair (first come, first served) and one limiter can be shared by every task of a run; the
//! wait itself is an async `sleep_until` outside the lock. A cancelled waiter leaves its slot
//! unused, which only errs on the safe side. Time is tokio's, so tests run it virtually.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use marketpipe_ports::RateLimit;
use tokio::time::Instant;

/// The most the window is widened by, so that a request sent exactly one window after the
/// first of a burst is not counted in the provider's previous window (clock skew, network
/// latency, a reset rounded to whole seconds).
pub const MAX_SAFETY_MARGIN: Duration = Duration::from_millis(100);

/// A sliding-window-log limiter; see the module documentation.
#[derive(Debug)]
pub struct RateLimiter {
    /// `(N, W + margin)`; `None` when there is no client-side limit.
    limit: Option<(usize, Duration)>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Send times of the last N reservations, oldest first (non-decreasing).
    log: VecDeque<Instant>,
    /// No request goes before this instant (set after a provider's 429).
    not_before: Option<Instant>,
}

impl RateLimiter {
    /// A limiter for `limit`; `None`, or a limit of 0 requests, means no client-side limit
    /// (the limiter then only honours [`RateLimiter::pause_until`]).
    pub fn new(limit: Option<RateLimit>) -> Self {
        let limit = limit
            .filter(|l| l.requests > 0 && !l.per.is_zero())
            .map(|l| {
                let margin = (l.per / 20).min(MAX_SAFETY_MARGIN);
                (l.requests as usize, l.per + margin)
            });
        Self {
            limit,
            state: Mutex::new(State::default()),
        }
    }

    /// The effective window (the configured one plus the safety margin), when limited.
    pub fn window(&self) -> Option<Duration> {
        self.limit.map(|(_, w)| w)
    }

    /// Reserves the next send slot and returns it; the caller must not send before it.
    pub fn reserve(&self) -> Instant {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut slot = state.not_before.map_or(now, |nb| nb.max(now));
        if let Some((n, window)) = self.limit {
            // Keep only the last N reservations: the oldest of them bounds the new one.
            while state.log.len() >= n {
                if let Some(oldest) = state.log.pop_front() {
                    slot = slot.max(oldest + window);
                }
            }
            state.log.push_back(slot);
        }
        slot
    }

    /// Waits for the next send slot; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let slot = self.reserve();
        let wait = slot.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep_until(slot).await;
        }
        wait
    }

    /// Holds every request back until `until` (after the provider answered 429 with a
    /// reset time, so that the other tasks stop hammering it too).
    pub fn pause_until(&self, until: Instant) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.not_before = Some(state.not_before.map_or(until, |nb| nb.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The largest number of instants inside any half-open window of length `w`.
    fn max_in_any_window(times: &mut [Instant], w: Duration) -> usize {
        times.sort();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..times.len() {
            while times[hi] >= times[lo] + w {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_next_window_in_virtual_time() {
        let limiter = Arc::new(RateLimiter::new(Some(RateLimit::per_minute(200))));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..300 {
            let limiter = Arc::clone(&limiter);
            tasks.spawn(async move {
                limiter.acquire().await;
                Instant::now()
            });
        }
        let mut times = Vec::new();
        while let Some(t) = tasks.join_next().await {
            times.push(t.unwrap());
        }
        assert_eq!(times.len(), 300);
        let last = times.iter().max().copied().unwrap();
        let elapsed = last - start;
        // The minimum is one window (60 s): 200 at once, 100 when it has passed.
        assert!(elapsed >= Duration::from_mins(1), "{elapsed:?}");
        assert!(elapsed <= Duration::from_secs(66), "{elapsed:?}");
        assert_eq!(times.iter().filter(|t| **t == start).count(), 200);
        assert!(max_in_any_window(&mut times, Duration::from_mins(1)) <= 200);
    }

    #[tokio::test(start_paused = true)]
    async fn sequential_callers_keep_the_window_and_report_waits() {
        let limiter = RateLimiter::new(Some(RateLimit {
            requests: 5,
            per: Duration::from_secs(1),
        }));
        assert_eq!(limiter.window(), Some(Duration::from_millis(1050)));
        let mut times = Vec::new();
        let mut waited = Duration::ZERO;
        for _ in 0..23 {
            waited += limiter.acquire().await;
            times.push(Instant::now());
        }
        assert!(max_in_any_window(&mut times, Duration::from_secs(1)) <= 5);
        // 23 requests = 5 windows: four full waits of 1.05 s.
        assert_eq!(waited, Duration::from_millis(4 * 1050));
    }

    #[tokio::test(start_paused = true)]
    async fn pause_until_holds_everyone_back() {
        let limiter = RateLimiter::new(None);
        let start = Instant::now();
        assert_eq!(limiter.acquire().await, Duration::ZERO);
        limiter.pause_until(start + Duration::from_secs(3));
        limiter.pause_until(start + Duration::from_secs(1)); // never shortens
        assert_eq!(limiter.acquire().await, Duration::from_secs(3));
        assert_eq!(limiter.acquire().await, Duration::ZERO);
        assert!(
            RateLimiter::new(Some(RateLimit::per_minute(0)))
                .window()
                .is_none()
        );
    }
}
