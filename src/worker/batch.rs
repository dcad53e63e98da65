//! One batch of deliveries from a partition: parse, persist, notify, dispose.
//!
//! An outage of PostgreSQL or Redis is not a message failure: the batch waits,
//! unacked, and is tried again until the dependency is back (or the worker stops,
//! leaving the deliveries to be redelivered).

use std::{collections::HashSet, future::Future, time::Duration};

use lapin::message::Delivery;
use uuid::Uuid;

use super::{ConsumeError, Ctx, dispose};
use crate::{
    cache::membership::LookupError,
    db::{self, messages::Outcome},
    domain::{
        events::Outgoing,
        message::{Message, Rejection, SendCommand},
    },
    mq::{self, Session},
};

/// The fate of one delivery once the batch is handled.
pub enum Fate {
    Done,
    /// Can never succeed: to the DLQ at once.
    DeadLetter(Rejection),
    /// Failed for this message alone: retry later, then DLQ.
    Retry(String),
}

pub async fn handle(
    ctx: &Ctx,
    session: &Session,
    deliveries: Vec<Delivery>,
) -> Result<(), ConsumeError> {
    let parsed: Vec<Result<SendCommand, Rejection>> = deliveries
        .iter()
        .map(|d| SendCommand::parse(&d.data))
        .collect();
    let cmds: Vec<SendCommand> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    metrics::histogram!("courier_worker_batch_size").record(deliveries.len() as f64);
    let started = std::time::Instant::now();
    let mut outcomes = persist_isolating(ctx, &cmds).await?.into_iter();
    metrics::histogram!("courier_worker_persist_seconds").record(started.elapsed().as_secs_f64());

    let mut fates = Vec::with_capacity(deliveries.len());
    let mut persisted: Vec<(Message, i64)> = Vec::new();
    for (p, d) in parsed.into_iter().zip(&deliveries) {
        let fate = match p {
            Err(rejection) => Fate::DeadLetter(rejection),
            Ok(cmd) => match outcomes.next() {
                Some(Ok(Outcome::Persisted { message, notify })) => {
                    let request_id =
                        mq::header_str(d.properties.headers().as_ref(), mq::HEADER_REQUEST_ID);
                    tracing::debug!(
                        request_id = request_id.as_deref().unwrap_or(""),
                        chat = %message.chat_id,
                        sequence = message.sequence,
                        notify,
                        "message persisted"
                    );
                    let outcome = if notify { "persisted" } else { "duplicate" };
                    metrics::counter!("courier_worker_messages_total", "outcome" => outcome)
                        .increment(1);
                    if notify {
                        persisted.push((message, cmd.accepted_at.timestamp_millis()));
                    }
                    Fate::Done
                }
                Some(Ok(Outcome::Rejected(r))) => Fate::DeadLetter(r),
                Some(Err(e)) => Fate::Retry(e),
                None => Fate::Retry("no outcome".into()),
            },
        };
        fates.push(fate);
    }

    if !persisted.is_empty() {
        until_up(ctx, "notify", || notify(ctx, &persisted)).await?;
    }
    dispose::settle(ctx, session, &deliveries, fates).await
}

/// Persists the batch; on a non-outage error, persists each command alone so one bad
/// message cannot hold back the others. `Err(String)` marks a message-specific failure.
async fn persist_isolating(
    ctx: &Ctx,
    cmds: &[SendCommand],
) -> Result<Vec<Result<Outcome, String>>, ConsumeError> {
    if cmds.is_empty() {
        return Ok(Vec::new());
    }
    match until_up(ctx, "persist", || persist(ctx, cmds)).await? {
        Ok(outcomes) => Ok(outcomes.into_iter().map(Ok).collect()),
        Err(e) if cmds.len() == 1 => Ok(vec![Err(e)]),
        Err(e) => {
            tracing::warn!(error = %e, size = cmds.len(), "batch failed; persisting one by one");
            let mut out = Vec::with_capacity(cmds.len());
            for cmd in cmds {
                out.push(
                    match until_up(ctx, "persist", || persist(ctx, std::slice::from_ref(cmd)))
                        .await?
                    {
                        Ok(mut o) => o.pop().ok_or_else(|| "no outcome".to_string()),
                        Err(e) => Err(e),
                    },
                );
            }
            Ok(out)
        }
    }
}

/// Outer `Err` = outage (retried by `until_up`); inner `Err` = this batch's own failure.
async fn persist(ctx: &Ctx, cmds: &[SendCommand]) -> Result<Result<Vec<Outcome>, String>, Outage> {
    match ctx.persister.persist(cmds.to_vec()).await {
        Ok(o) => Ok(Ok(o)),
        Err(e) if db::is_outage(&e) => Err(Outage(format!("postgresql: {e}"))),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// A dependency is unreachable.
pub struct Outage(pub String);

impl From<LookupError> for Outage {
    fn from(e: LookupError) -> Self {
        Outage(e.to_string())
    }
}

impl From<redis::RedisError> for Outage {
    fn from(e: redis::RedisError) -> Self {
        Outage(format!("redis: {e}"))
    }
}

/// Runs `op` until it does not report an outage, backing off; gives up on shutdown.
async fn until_up<T, F, Fut>(ctx: &Ctx, what: &str, mut op: F) -> Result<T, ConsumeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Outage>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(Outage(e)) => {
                tracing::warn!(step = what, error = %e, retry_in_ms = delay.as_millis() as u64, "dependency down; holding deliveries");
                tokio::select! {
                    _ = ctx.stop.cancelled() => return Err(ConsumeError::Stopping),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Appends each message to every participant's event stream (`chat.message.saved`
/// for the sender, `chat.message.new` for the others) and pushes it to the gateways
/// holding their connections. Not fire-and-forget: the batch is acked only after this.
async fn notify(ctx: &Ctx, messages: &[(Message, i64)]) -> Result<(), Outage> {
    let chats: Vec<Uuid> = messages
        .iter()
        .map(|(m, _)| m.chat_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let members = ctx.cache.members(&ctx.pool, &chats).await?;
    let events = messages
        .iter()
        .map(|(m, _)| {
            let audience = members.get(&m.chat_id).map(Vec::as_slice).unwrap_or(&[]);
            Outgoing::message(m, audience)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Outage(format!("encoding events: {e}")))?;
    ctx.cache.publish_events(&events).await?;
    let now = chrono::Utc::now().timestamp_millis();
    for (_, accepted) in messages {
        metrics::histogram!("courier_delivery_latency_seconds")
            .record((now - accepted).max(0) as f64 / 1000.0);
    }
    Ok(())
}
