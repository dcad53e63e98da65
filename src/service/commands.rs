//! Handing commands to a chat's partition: persistent, confirmed, or nothing was sent.

use std::{sync::Arc, time::Duration};

use lapin::types::FieldTable;
use uuid::Uuid;

use super::{ServiceError, ServiceResult};
use crate::mq::{self, Link, Topology, publish};

/// How long a command waits for the link when it is down (a reconnect to another node
/// takes a few hundred ms) before it is refused (503).
const LINK_PATIENCE: Duration = Duration::from_secs(1);

/// The pause before a nacked command is published again.
const NACK_PAUSE: Duration = Duration::from_millis(200);

/// Publishes commands to the partition queue of their chat.
#[derive(Clone)]
pub struct Commands {
    pub link: Link,
    pub topology: Arc<Topology>,
    /// `RABBITMQ_CONFIRM_TIMEOUT_MS`.
    pub confirm_timeout: Duration,
}

impl Commands {
    /// Publishes `payload` (with broker message id `id`) to `chat`'s partition and
    /// waits for RabbitMQ's confirm; `Unavailable("rabbitmq")` when it did not confirm.
    ///
    /// When the connection is lost before the confirm (its node died: with
    /// `RABBITMQ_URIS` the link moves to another), the command is published again on
    /// the next connection, within the same confirm timeout; so is a nacked one (its
    /// quorum queue had no leader for a moment). The worker keeps a
    /// repeated command to one effect (the message id, `clientMessageId`), as it does
    /// for a client's retry after a 503.
    pub async fn publish(
        &self,
        chat: Uuid,
        id: Uuid,
        payload: &[u8],
        request_id: &str,
    ) -> ServiceResult<()> {
        let mut session = match self.link.current() {
            Some(s) => s,
            // Moving to another node takes a moment: wait for it rather than refuse.
            None => self
                .link
                .clone()
                .session_within(self.confirm_timeout.min(LINK_PATIENCE))
                .await
                .ok_or(ServiceError::Unavailable("rabbitmq"))?,
        };
        let deadline = tokio::time::Instant::now() + self.confirm_timeout;
        let mut headers = FieldTable::default();
        headers.insert(mq::HEADER_REQUEST_ID.into(), mq::long_string(request_id));
        let props = publish::json_properties(&id.to_string(), headers);
        let route = self.topology.route(chat);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let outcome = publish::publish_confirmed(
                &session.publish,
                &self.topology.exchange,
                &route,
                payload,
                props.clone(),
                left,
            )
            .await;
            tracing::debug!(message_id = %id, %chat, channel = session.publish.id(), outcome = ?outcome, "command publish outcome");
            let e = match outcome {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            // A lost connection, or a nack (the queue was electing a new leader after
            // a node loss), is worth another try within the deadline; a confirm that did
            // not come in time is the client's to retry (503).
            let lost = matches!(e, publish::PublishError::Broker(_)) && !session.is_up();
            let nacked = matches!(e, publish::PublishError::Nacked);
            if lost || nacked {
                if nacked {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    tokio::time::sleep(left.min(NACK_PAUSE)).await;
                }
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if let Some(next) = self.link.clone().session_within(left).await
                    && !left.is_zero()
                {
                    let why = if lost { "connection lost" } else { "nacked" };
                    tracing::info!(%chat, why, "not confirmed; publishing again");
                    metrics::counter!("courier_publish_republished_total").increment(1);
                    session = next;
                    continue;
                }
            }
            tracing::warn!(error = %e, %chat, "command not confirmed");
            return Err(ServiceError::Unavailable("rabbitmq"));
        }
    }

    /// Serializes and publishes a command.
    pub async fn send<T: serde::Serialize>(
        &self,
        chat: Uuid,
        id: Uuid,
        command: &T,
        request_id: &str,
    ) -> ServiceResult<()> {
        let payload = serde_json::to_vec(command).map_err(ServiceError::internal)?;
        self.publish(chat, id, &payload, request_id).await
    }
}
