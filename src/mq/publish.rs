//! Confirmed, persistent, mandatory publishing.
//!
//! Many requests publish on one channel at once; each awaits only its own confirm,
//! so confirms are pipelined across requests.

use std::time::Duration;

use lapin::{
    BasicProperties, Channel, Confirmation, options::BasicPublishOptions, types::FieldTable,
};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("broker unavailable: {0}")]
    Broker(#[from] lapin::Error),
    #[error("broker did not confirm in time")]
    Timeout,
    #[error("broker refused the message")]
    Nacked,
    #[error("message was unroutable")]
    Returned,
}

/// Properties of a persistent JSON message.
pub fn json_properties(message_id: &str, headers: FieldTable) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(message_id.into())
        .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64)
        .with_headers(headers)
}

/// Publishes and waits for the broker's confirm; `Ok` only if it acked and routed it.
pub async fn publish_confirmed(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
    timeout: Duration,
) -> Result<(), PublishError> {
    publish(ch, (exchange, routing_key), body, props, timeout, true).await
}

/// Publishes to whoever listens (no queue bound is fine) and waits for the confirm:
/// for broadcasts such as integration events.
pub async fn publish_broadcast(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
    timeout: Duration,
) -> Result<(), PublishError> {
    publish(ch, (exchange, routing_key), body, props, timeout, false).await
}

async fn publish(
    ch: &Channel,
    (exchange, routing_key): (&str, &str),
    body: &[u8],
    props: BasicProperties,
    timeout: Duration,
    mandatory: bool,
) -> Result<(), PublishError> {
    let opts = BasicPublishOptions {
        mandatory,
        ..Default::default()
    };
    let confirm = async {
        let pending = ch
            .basic_publish(exchange.into(), routing_key.into(), opts, body, props)
            .await?;
        pending.await
    };
    let start = std::time::Instant::now();
    let result = match tokio::time::timeout(timeout, confirm).await {
        Err(_) => Err(PublishError::Timeout),
        Ok(Err(e)) => Err(PublishError::Broker(e)),
        Ok(Ok(Confirmation::Ack(None))) => Ok(()),
        Ok(Ok(Confirmation::Ack(Some(_)))) => Err(PublishError::Returned),
        Ok(Ok(Confirmation::Nack(_))) => Err(PublishError::Nacked),
        Ok(Ok(Confirmation::NotRequested)) => Err(PublishError::Nacked),
    };
    let outcome = if result.is_ok() {
        "confirmed"
    } else {
        "failed"
    };
    metrics::counter!("courier_publish_total", "exchange" => exchange.to_string(), "result" => outcome).increment(1);
    metrics::histogram!("courier_publish_confirm_seconds").record(start.elapsed().as_secs_f64());
    result
}
