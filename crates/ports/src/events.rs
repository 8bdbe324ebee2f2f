//! The `EventPublisher` port and the `Clock` port.

use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use marketpipe_domain::{DomainEvent, JobOwner, JobState, JobStatus, Timestamp};

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

/// Who a job's owner is and whether it still lives: this host's name and its processes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait OwnerProbe: Send + Sync + fmt::Debug {
    /// This host's name, as a job's owner records it.
    fn host_name(&self) -> String;
    /// Whether process `pid` of this host is alive (`None`: this host cannot tell).
    fn pid_alive(&self, pid: u32) -> Option<bool>;
}

/// Whether `owner`'s process is alive: checked when it runs on this host, `None` for another
/// host (only its heartbeat tells).
pub fn owner_alive(probe: &dyn OwnerProbe, owner: &JobOwner) -> Option<bool> {
    if owner.host == probe.host_name() {
        probe.pid_alive(owner.pid)
    } else {
        None
    }
}

/// How a job stored as `state` with `owner` and its last heartbeat is shown at `now`, with
/// the heartbeat lease `lease_nanos` (see [`JobStatus::of`]); `probe` tells whether the owner
/// lives.
pub fn owner_status(
    probe: &dyn OwnerProbe,
    state: JobState,
    owner: Option<&JobOwner>,
    heartbeat_at: Option<Timestamp>,
    now: Timestamp,
    lease_nanos: i64,
) -> JobStatus {
    let alive = owner.and_then(|o| owner_alive(probe, o));
    JobStatus::of(state, heartbeat_at, alive, now, lease_nanos)
}

/// A clock that starts at a chosen instant and then runs at the system clock's pace (the
/// app's `MP_NOW`: a run that behaves as on another day, with real durations).
#[derive(Debug, Clone, Copy)]
pub struct ShiftedClock {
    offset_nanos: i64,
}

impl ShiftedClock {
    /// A clock whose `now()` is `start` at this moment.
    pub fn starting_at(start: Timestamp) -> Self {
        Self {
            offset_nanos: start.nanos().saturating_sub(SystemClock.now().nanos()),
        }
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanos(SystemClock.now().nanos().saturating_add(self.offset_nanos))
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
        let start = Timestamp::from_nanos(1_709_900_000_000_000_000);
        let shifted = ShiftedClock::starting_at(start).now();
        assert!(shifted >= start && shifted.nanos() - start.nanos() < 60_000_000_000);
        let mut mock = MockClock::new();
        mock.expect_now().return_const(Timestamp::from_nanos(9));
        let clock: &dyn Clock = &mock;
        assert_eq!(clock.now().nanos(), 9);
    }
}
