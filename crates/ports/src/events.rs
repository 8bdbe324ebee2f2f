//! The `EventPublisher` port and the `Clock` port.

use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use marketpipe_domain::{DomainEvent, Timestamp};

use crate::error::PublishError;

/// Publishes domain events to whatever handlers the app wired (logs, metrics).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventPublisher: Send + Sync + fmt::Debug {
    /// Delivers one event.
    async fn publish(&self, event: &DomainEvent) -> Result<(), PublishError>;
}

/// A publisher that keeps every event in memory: for tests and for summaries at the end of
/// a command.
#[derive(Debug, Default)]
pub struct CollectingPublisher {
    events: Mutex<Vec<DomainEvent>>,
}

impl CollectingPublisher {
    /// A copy of the events published so far.
    pub fn events(&self) -> Vec<DomainEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl EventPublisher for CollectingPublisher {
    async fn publish(&self, event: &DomainEvent) -> Result<(), PublishError> {
        self.events
            .lock()
            .map_err(|_| PublishError {
                event: event.name(),
                message: "collector poisoned".into(),
            })?
            .push(event.clone());
        Ok(())
    }
}

/// The current time. The domain never reads the clock; contexts ask this port.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in UTC.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Timestamp::from_nanos(nanos)
    }
}

/// A clock stuck at one instant, for tests and reproducible runs.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketpipe_domain::JobId;

    #[tokio::test]
    async fn collecting_publisher_keeps_order() {
        let p = CollectingPublisher::default();
        let id = JobId::new("j").unwrap();
        let e1 = DomainEvent::IngestionJobCancelled {
            job_id: id.clone(),
            at: Timestamp::EPOCH,
        };
        let e2 = DomainEvent::IngestionJobCompleted {
            job_id: id,
            bars: 3,
            at: Timestamp::EPOCH,
        };
        let dynp: &dyn EventPublisher = &p;
        dynp.publish(&e1).await.unwrap();
        dynp.publish(&e2).await.unwrap();
        assert_eq!(p.events(), [e1, e2]);
    }

    #[test]
    fn clocks() {
        assert!(SystemClock.now().nanos() > 1_700_000_000_000_000_000);
        assert_eq!(FixedClock(Timestamp::from_nanos(7)).now().nanos(), 7);
        let mut mock = MockClock::new();
        mock.expect_now().return_const(Timestamp::from_nanos(9));
        let clock: &dyn Clock = &mock;
        assert_eq!(clock.now().nanos(), 9);
    }
}
