//! Retries: the one [`RetryPolicy`] of the domain (exponential backoff with full jitter),
//! its random source, and the provider's own wait hints (`Retry-After`,
//! `X-Ratelimit-Reset`).

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

pub use marketpipe_domain::RetryPolicy;

/// The wait before retry number `attempt + 1` under `policy`: the provider's `hint` when it
/// sent one, else full-jitter backoff with a fresh random number; both capped at the
/// policy's `max_delay`.
pub fn retry_delay(policy: &RetryPolicy, attempt: u32, hint: Option<Duration>) -> Duration {
    policy.delay(attempt, hint, random_u64())
}

/// A random number from std's randomly keyed hasher (no extra dependency; jitter needs no
/// cryptographic quality).
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// How long the provider asked us to wait, from the response headers: `Retry-After`
/// (delay-seconds or an HTTP date), else `X-Ratelimit-Reset` (Unix epoch seconds, as Alpaca
/// and Finnhub send it; epoch milliseconds and small delta-seconds values are recognised
/// too). `None` when neither header is present and readable.
pub fn wait_hint(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(d) = text("retry-after").and_then(|v| parse_retry_after(v, now)) {
        return Some(d);
    }
    text("x-ratelimit-reset").and_then(|v| parse_reset(v, now))
}

/// `Retry-After`: delay-seconds (`"2"`, tolerated `"1.5"`) or an HTTP date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`); a date in the past means no wait.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs.max(0.0)).ok();
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(date.timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `X-Ratelimit-Reset`: when the provider's window resets.
fn parse_reset(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)?;
    let now_secs = now.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    let delta = if v > 1e12 {
        v / 1000.0 - now_secs
    } else if v > 1e9 {
        v - now_secs
    } else {
        v
    };
    Duration::try_from_secs_f64(delta.max(0.0)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn retry_delays_follow_the_domain_policy() {
        let p = RetryPolicy::default();
        for attempt in 0..10 {
            assert!(retry_delay(&p, attempt, None) <= p.ceiling(attempt));
        }
        assert_eq!(
            retry_delay(&p, 0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            retry_delay(&p, 0, Some(Duration::from_hours(1))),
            p.max_delay
        );
    }

    #[test]
    fn wait_hints() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(wait_hint(&h, now), None);
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1700000007"));
        assert_eq!(wait_hint(&h, now), Some(Duration::from_secs(7)));
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_static("1700000002500"),
        );
        assert_eq!(wait_hint(&h, now), Some(Duration::from_millis(2500)));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1600000000"));
        assert_eq!(wait_hint(&h, now), Some(Duration::ZERO));
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(wait_hint(&h, now), Some(Duration::from_secs(3)));
        // 2023-11-14T22:13:20Z is the epoch second 1_700_000_000.
        h.insert(
            "retry-after",
            HeaderValue::from_static("Tue, 14 Nov 2023 22:13:25 GMT"),
        );
        assert_eq!(wait_hint(&h, now), Some(Duration::from_secs(5)));
        h.insert("retry-after", HeaderValue::from_static("garbage"));
        assert_eq!(wait_hint(&h, now), Some(Duration::ZERO)); // falls back to the reset
    }
}
