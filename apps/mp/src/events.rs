//! The app's event handler: domain events become log lines (debug level, with the event as
//! JSON), so `-v` or `RUST_LOG=debug` shows every fact the contexts publish.

use async_trait::async_trait;
use marketpipe_domain::DomainEvent;
use marketpipe_ports::{EventPublisher, PublishError};

/// Logs every event it is given.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogPublisher;

#[async_trait]
impl EventPublisher for LogPublisher {
    async fn publish(&self, event: &DomainEvent) -> Result<(), PublishError> {
        let payload = serde_json::to_string(event).map_err(|e| PublishError {
            event: event.name(),
            message: e.to_string(),
        })?;
        tracing::debug!(event = event.name(), %payload, "domain event");
        Ok(())
    }
}
