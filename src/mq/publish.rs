//! Confirmed, persistent, mandatory publishing.
//!
//! Many requests publish on one channel at once; each awaits only its own confirm,
//! so confirms are pipelined across requests.
//!
//! Confirms are matched to publishes by number: the broker numbers a channel's
//! publishes in the order their frames arrive, lapin numbers them when
//! `basic_publish` is first polled, just before it queues their frames, in two steps
//! under two locks. Two tasks on two threads could take numbers 7 and 8 and queue their
//! frames 8 first: every confirm is then the other one's, so a nack (a quorum queue
//! electing a leader) reads as an ack and the message refused gets its 202. That first
//! poll therefore runs under [`ORDER`], so numbers follow the frames' order
//! (`tests/publish_order.rs`).

use std::{future::Future, pin::pin, sync::Mutex, task::Poll, time::Duration};

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

/// Held while a publish takes its confirm number and queues its frames (microseconds).
static ORDER: Mutex<()> = Mutex::new(());

/// Awaits `publish` after polling it once under [`ORDER`]: that first poll numbers the
/// publish and queues its frames (lapin's `basic_publish` awaits nothing before), so no
/// other publish comes between the two.
async fn in_order<T>(publish: impl Future<Output = T>) -> T {
    let mut publish = pin!(publish);
    let first = std::future::poll_fn(|cx| {
        let _order = ORDER.lock().unwrap_or_else(|e| e.into_inner());
        Poll::Ready(publish.as_mut().poll(cx))
    })
    .await;
    match first {
        Poll::Ready(out) => out,
        Poll::Pending => publish.await,
    }
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
        let publish = ch.basic_publish(exchange.into(), routing_key.into(), opts, body, props);
        let pending = in_order(publish).await?;
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
