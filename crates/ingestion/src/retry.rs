//! Retry with exponential backoff and full jitter for retryable provider errors.

use std::time::Duration;

/// How transient provider failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first one.
    pub max_retries: u32,
    /// Backoff before the first retry (doubled each time, before jitter).
    pub base_delay: Duration,
    /// Longest single wait (also caps a provider's `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_mins(1),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based): the provider's `retry_after` when it
    /// sent one, else a uniformly random duration in `[0, base * 2^attempt]` ("full jitter"),
    /// both capped at `max_delay`. `entropy` is any varying number (it only spreads retries).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, entropy: u64) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_delay);
        }
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max_delay);
        let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(mix(entropy) % ceiling_nanos.saturating_add(1))
    }
}

/// `SplitMix64`'s finaliser: spreads nearby inputs over the whole range.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_jittered_capped_and_honour_retry_after() {
        let p = RetryPolicy::default();
        for attempt in 0..8 {
            for e in 0..50 {
                let d = p.delay(attempt, None, e);
                assert!(d <= p.base_delay * (1 << attempt), "{attempt}: {d:?}");
            }
        }
        assert!(p.delay(30, None, 7) <= p.max_delay);
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3)), 1),
            Duration::from_secs(3)
        );
        assert_eq!(p.delay(0, Some(Duration::from_hours(1)), 1), p.max_delay);
        let spread: std::collections::HashSet<Duration> =
            (0..20).map(|e| p.delay(3, None, e)).collect();
        assert!(spread.len() > 10, "jitter spreads retries");
    }
}
