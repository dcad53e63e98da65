//! Settling a handled batch: failed messages are republished to a retry queue or the
//! DLQ (confirmed), then the whole batch is acked with one `multiple` ack.

use lapin::{
    BasicProperties,
    message::Delivery,
    options::BasicAckOptions,
    types::{AMQPValue, FieldTable},
};

use super::{ConsumeError, Ctx, batch::Fate, holds::Holds};
use crate::{
    mq::CONFIRM_TIMEOUT,
    mq::{self, Session, Topology, publish::publish_confirmed},
};

/// The longest error text kept in a header.
const MAX_ERROR_LEN: usize = 500;

/// Which attempt at this delivery this is (1 for the first).
pub fn attempts(d: &Delivery) -> u32 {
    mq::header_u32(d.properties.headers().as_ref(), mq::HEADER_ATTEMPTS).unwrap_or(0) + 1
}

pub async fn settle(
    ctx: &Ctx,
    session: &Session,
    holds: &Holds,
    deliveries: &[Delivery],
    fates: Vec<Fate>,
) -> Result<(), ConsumeError> {
    for (d, fate) in deliveries.iter().zip(fates) {
        let attempts = attempts(d);
        match fate {
            Fate::Done => {}
            Fate::Park(chat) => {
                // Into the retry queue of the head it waits behind, after it (FIFO);
                // its own attempts are not spent.
                let delay = holds.park_delay(chat);
                metrics::counter!("courier_worker_parked_total").increment(1);
                tracing::info!(%chat, delay_ms = delay.as_millis() as u64, "parked behind its chat's retried command");
                to_retry_queue(ctx, session, d, headers_of(d), delay).await?;
            }
            Fate::DeadLetter(r) => {
                tracing::warn!(reason = r.reason(), error = %r, "dead-lettering message");
                let mut h = headers_of(d);
                if let Some(ban) = r.ban_reason() {
                    h.insert(mq::HEADER_BAN_REASON.into(), mq::long_string(truncate(ban)));
                }
                dead_letter(ctx, session, d, h, r.reason(), &r.to_string(), attempts).await?;
            }
            Fate::Retry(err) if attempts > ctx.topology.max_retries => {
                tracing::warn!(attempts, error = %err, "retries exhausted; dead-lettering");
                let h = headers_of(d);
                dead_letter(ctx, session, d, h, "retries_exhausted", &err, attempts).await?;
            }
            Fate::Retry(err) => {
                let delay = Topology::retry_delay(attempts);
                metrics::counter!("courier_worker_retries_total").increment(1);
                tracing::warn!(attempts, delay_ms = delay.as_millis() as u64, error = %err, "retrying message later");
                let mut h = headers_of(d);
                h.insert(mq::HEADER_ATTEMPTS.into(), AMQPValue::LongUInt(attempts));
                h.insert(
                    mq::HEADER_LAST_ERROR.into(),
                    mq::long_string(truncate(&err)),
                );
                to_retry_queue(ctx, session, d, h, delay).await?;
            }
        }
    }
    if let Some(last) = deliveries.last() {
        tracing::debug!(
            tag = last.delivery_tag,
            count = deliveries.len(),
            queue = last.routing_key.as_str(),
            "acking batch (multiple)"
        );
        last.acker.ack(BasicAckOptions { multiple: true }).await?;
    }
    Ok(())
}

/// Republishes `d` (with `headers`) to the retry queue of `delay`, which expires it
/// back into its partition.
async fn to_retry_queue(
    ctx: &Ctx,
    session: &Session,
    d: &Delivery,
    mut headers: FieldTable,
    delay: std::time::Duration,
) -> Result<(), ConsumeError> {
    headers.insert(
        mq::HEADER_RETRY_DELAY.into(),
        mq::long_string(&delay.as_millis().to_string()),
    );
    republish(session, &ctx.topology.retry_exchange, d, headers).await
}

/// Publishes `d`'s body and properties, with `headers`, to `exchange` under its own
/// routing key, and waits for the confirm.
async fn republish(
    session: &Session,
    exchange: &str,
    d: &Delivery,
    headers: FieldTable,
) -> Result<(), ConsumeError> {
    let props: BasicProperties = d.properties.clone().with_headers(headers);
    publish_confirmed(
        &session.publish,
        exchange,
        d.routing_key.as_str(),
        &d.data,
        props,
        CONFIRM_TIMEOUT,
    )
    .await?;
    Ok(())
}

fn headers_of(d: &Delivery) -> FieldTable {
    d.properties.headers().clone().unwrap_or_default()
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(MAX_ERROR_LEN) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Publishes `d` to the DLX with `h` and the failure's bookkeeping, and waits for the
/// confirm (the batch is acked only after).
async fn dead_letter(
    ctx: &Ctx,
    session: &Session,
    d: &Delivery,
    mut h: FieldTable,
    reason: &str,
    error: &str,
    attempts: u32,
) -> Result<(), ConsumeError> {
    metrics::counter!("courier_worker_dead_letters_total", "reason" => reason.to_string())
        .increment(1);
    h.insert(mq::HEADER_REASON.into(), mq::long_string(reason));
    h.insert(
        mq::HEADER_LAST_ERROR.into(),
        mq::long_string(truncate(error)),
    );
    h.insert(mq::HEADER_ATTEMPTS.into(), AMQPValue::LongUInt(attempts));
    h.insert(
        mq::HEADER_SOURCE_QUEUE.into(),
        mq::long_string(d.routing_key.as_str()),
    );
    republish(session, &ctx.topology.dlx, d, h).await
}
