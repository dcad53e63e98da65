//! Handing commands to a chat's partition: persistent, confirmed, or nothing was sent.

use std::{sync::Arc, time::Duration};

use lapin::types::FieldTable;
use uuid::Uuid;

use super::{ServiceError, ServiceResult};
use crate::mq::{self, Link, Topology, publish};

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
    pub async fn publish(
        &self,
        chat: Uuid,
        id: Uuid,
        payload: &[u8],
        request_id: &str,
    ) -> ServiceResult<()> {
        let session = self
            .link
            .current()
            .ok_or(ServiceError::Unavailable("rabbitmq"))?;
        let mut headers = FieldTable::default();
        headers.insert(mq::HEADER_REQUEST_ID.into(), mq::long_string(request_id));
        let props = publish::json_properties(&id.to_string(), headers);
        let route = self.topology.route(chat);
        publish::publish_confirmed(
            &session.publish,
            &self.topology.exchange,
            &route,
            payload,
            props,
            self.confirm_timeout,
        )
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, %chat, "command not confirmed");
            ServiceError::Unavailable("rabbitmq")
        })
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
