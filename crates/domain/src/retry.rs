//! The one retry policy: exponential backoff with full jitter, capped, honouring a provider's
//! own wait hint. Pure: the caller passes the random number (the domain reads no clock and
//! owns no random source), so the coordinator and the HTTP client share one algorithm.

use std::time::Duration;

/// How often and how long transient provider failures are retried.
///
/// Used by the ingestion coordinator (for providers that do not retry themselves) and by
/// provider-kit's HTTP client (for the HTTP adapters); the configuration's
/// `ingest.max_retries`, `ingest.retry_base_delay_ms` and `ingest.retry_max_delay_ms` fill
/// it for both.
///
/// ```
/// use std::time::Duration;
/// use marketpipe_domain::RetryPolicy;
///
/// let policy = RetryPolicy {
///     max_retries: 3,
///     base_delay: Duration::from_millis(100),
///     max_delay: Duration::from_secs(1),
/// };
/// assert_eq!(policy.ceiling(0), Duration::from_millis(100));
/// assert_eq!(policy.ceiling(2), Duration::from_millis(400));
/// assert_eq!(policy.ceiling(9), Duration::from_secs(1));
/// assert!(policy.delay(1, None, 42) <= Duration::from_millis(200));
/// // A provider's Retry-After wins, capped at max_delay.
/// assert_eq!(policy.delay(0, Some(Duration::from_secs(30)), 42), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so at most `max_retries + 1` requests).
    pub max_retries: u32,
    /// The first backoff ceiling; it doubles per retry.
    pub base_delay: Duration,
    /// The longest single wait, for backoff and for a provider's `Retry-After` alike.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 retries, 250 ms base, 60 s cap.
    fn default() -> Self {
        Self {
            max_retries: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_mins(1),
        }
    }
}

impl RetryPolicy {
    /// The ceiling before retry number `attempt + 1` (0-based):
    /// `min(max_delay, base_delay * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Full jitter: a wait in `[0, ceiling(attempt)]` chosen by `random` (any varying
    /// number; it is mixed first, so nearby inputs spread over the whole range).
    pub fn backoff(&self, attempt: u32, random: u64) -> Duration {
        let ceiling = u64::try_from(self.ceiling(attempt).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(mix(random) % ceiling.saturating_add(1))
    }

    /// The wait before retry number `attempt + 1`: the provider's `retry_after` when it sent
    /// one, else [`RetryPolicy::backoff`]; both capped at `max_delay`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, random: u64) -> Duration {
        retry_after
            .unwrap_or_else(|| self.backoff(attempt, random))
            .min(self.max_delay)
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
    fn ceilings_double_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(0), Duration::from_millis(250));
        assert_eq!(p.ceiling(1), Duration::from_millis(500));
        assert_eq!(p.ceiling(4), Duration::from_secs(4));
        assert_eq!(p.ceiling(8), Duration::from_mins(1));
        assert_eq!(p.ceiling(200), Duration::from_mins(1));
    }

    #[test]
    fn delays_are_jittered_capped_and_honour_retry_after() {
        let p = RetryPolicy::default();
        for attempt in 0..10 {
            for r in [0, 1, 12_345, u64::MAX] {
                assert!(p.backoff(attempt, r) <= p.ceiling(attempt));
                assert!(p.delay(attempt, None, r) <= p.ceiling(attempt));
            }
        }
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3)), 1),
            Duration::from_secs(3)
        );
        assert_eq!(p.delay(0, Some(Duration::from_hours(1)), 1), p.max_delay);
        let spread: std::collections::HashSet<Duration> =
            (0..20).map(|e| p.backoff(3, e)).collect();
        assert!(spread.len() > 10, "jitter spreads retries");
    }

    #[test]
    fn a_zero_base_never_waits_and_a_zero_cap_caps_everything() {
        let zero_base = RetryPolicy {
            base_delay: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert!((0..10).all(|a| zero_base.delay(a, None, 99) == Duration::ZERO));
        let zero_cap = RetryPolicy {
            max_delay: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert_eq!(
            zero_cap.delay(0, Some(Duration::from_secs(5)), 1),
            Duration::ZERO
        );
    }
}
