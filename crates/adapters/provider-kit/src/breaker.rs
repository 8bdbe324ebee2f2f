//! The circuit breaker: after K consecutive failed attempts it opens for a cool-down, during
//! which calls fail fast; then one trial request goes through (half-open), and its success
//! closes the breaker while its failure opens it again.
//!
//! A failure is a transport error or a 5xx; any other answer (2xx, 4xx, 429) proves the
//! provider is up and counts as a success. A trial whose caller vanished (cancelled future)
//! is forgotten after one cool-down, so the breaker can never stay half-open forever.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failed attempts that open the breaker (0 disables it).
    pub failure_threshold: u32,
    /// How long it stays open before a trial request.
    pub cool_down: Duration,
}

impl Default for BreakerPolicy {
    /// 10 failures, 30 s.
    fn default() -> Self {
        Self {
            failure_threshold: 10,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests fail fast.
    Open,
    /// The cool-down has passed: the next request is a trial.
    HalfOpen,
}

/// A refused call: the breaker is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitOpen {
    /// Consecutive failures seen.
    pub failures: u32,
    /// Until the next trial may go (zero when a trial is in flight).
    pub retry_in: Duration,
}

/// A circuit breaker shared by every task of one provider.
#[derive(Debug)]
pub struct CircuitBreaker {
    policy: BreakerPolicy,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    trial_started: Option<Instant>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a request may go now. In the half-open state the first caller becomes the
    /// trial and the others are refused until it reports.
    pub fn check(&self) -> Result<(), CircuitOpen> {
        let now = Instant::now();
        let mut s = self.lock();
        let Some(open_until) = s.open_until else {
            return Ok(());
        };
        if now < open_until {
            return Err(CircuitOpen {
                failures: s.failures,
                retry_in: open_until - now,
            });
        }
        match s.trial_started {
            Some(started) if now < started + self.policy.cool_down => Err(CircuitOpen {
                failures: s.failures,
                retry_in: Duration::ZERO,
            }),
            _ => {
                s.trial_started = Some(now);
                Ok(())
            }
        }
    }

    /// The provider answered: close.
    pub fn record_success(&self) {
        let mut s = self.lock();
        *s = State::default();
    }

    /// An attempt failed (transport error, 5xx): count it; open at the threshold, or again
    /// when the failure ends a trial.
    pub fn record_failure(&self) {
        if self.policy.failure_threshold == 0 {
            return;
        }
        let now = Instant::now();
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        let reopen = s.open_until.is_some();
        if reopen || s.failures >= self.policy.failure_threshold {
            if !reopen {
                tracing::warn!(
                    failures = s.failures,
                    cool_down_ms = self.policy.cool_down.as_millis(),
                    "circuit breaker open"
                );
            }
            s.open_until = Some(now + self.policy.cool_down);
            s.trial_started = None;
        }
    }

    /// An attempt ended without telling anything about the provider (a local failure):
    /// release the trial slot so that another caller may try.
    pub fn record_neutral(&self) {
        self.lock().trial_started = None;
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        let s = self.lock();
        match s.open_until {
            None => BreakerState::Closed,
            Some(until) if Instant::now() < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_half_opens_and_closes() {
        let b = CircuitBreaker::new(BreakerPolicy {
            failure_threshold: 3,
            cool_down: Duration::from_secs(30),
        });
        for _ in 0..2 {
            b.check().unwrap();
            b.record_failure();
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Open);
        let refused = b.check().unwrap_err();
        assert_eq!(refused.failures, 3);
        assert_eq!(refused.retry_in, Duration::from_secs(30));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.check().unwrap(); // the trial
        assert_eq!(b.check().unwrap_err().retry_in, Duration::ZERO);
        b.record_failure(); // trial failed: open again
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(30)).await;
        b.check().unwrap();
        b.record_success();
        assert_eq!(b.state(), BreakerState::Closed);
        b.check().unwrap();
        b.check().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_vanished_trial_is_forgotten() {
        let b = CircuitBreaker::new(BreakerPolicy {
            failure_threshold: 1,
            cool_down: Duration::from_secs(5),
        });
        b.record_failure();
        tokio::time::advance(Duration::from_secs(5)).await;
        b.check().unwrap(); // trial whose caller never reports
        assert!(b.check().is_err());
        tokio::time::advance(Duration::from_secs(5)).await;
        b.check().unwrap();
        b.record_neutral();
        b.check().unwrap();
        let disabled = CircuitBreaker::new(BreakerPolicy {
            failure_threshold: 0,
            cool_down: Duration::from_secs(5),
        });
        for _ in 0..100 {
            disabled.record_failure();
        }
        assert_eq!(disabled.state(), BreakerState::Closed);
    }
}
