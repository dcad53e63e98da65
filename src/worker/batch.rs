//! One batch of deliveries from a partition: parse, persist, notify, dispose.
//!
//! An outage of PostgreSQL or Redis is not a message failure: the batch waits,
//! unacked, and is tried again until the dependency is back (or the worker stops,
//! leaving the deliveries to be redelivered).

use std::future::Future;

use lapin::message::Delivery;
use uuid::Uuid;

use super::{
    ConsumeError, Ctx, OUTAGE_BACKOFF, dispose, holds::Holds, integration, lifecycle, notify, sends,
};
use crate::{
    backoff::pause,
    cache::membership::LookupError,
    domain::{
        chat::ChatSettings,
        lifecycle::Command,
        message::{Message, Rejection},
    },
    mq::{self, Session, Topology},
};

/// The fate of one delivery once the batch is handled.
#[derive(Debug)]
pub enum Fate {
    Done,
    /// Can never succeed: to the DLQ at once.
    DeadLetter(Rejection),
    /// Failed for this message alone: retry later, then DLQ.
    Retry(String),
    /// Waits behind the failed command that holds its chat (see `holds`).
    Park(Uuid),
}

impl Fate {
    fn name(&self) -> &'static str {
        match self {
            Fate::Done => "applied",
            Fate::DeadLetter(_) => "dead_lettered",
            Fate::Retry(_) => "retried",
            Fate::Park(_) => "parked",
        }
    }
}

/// What a batch announces, in partition order.
#[allow(clippy::large_enum_variant)] // sends are the common case
pub(super) enum Note {
    /// A persisted send (with when the API accepted it), fanned out to the chat's members.
    Sent(Message, i64),
    /// Events of a lifecycle command or chat change, audience resolved, and what
    /// it tells other systems.
    Events(lifecycle::Announced),
    /// A send un-archived the chat for these members: `chat.settings` to each, as
    /// `PUT /chats/:id/settings` announces it.
    Unarchived(Uuid, Vec<(Uuid, ChatSettings)>),
}

pub async fn handle(
    ctx: &Ctx,
    session: &Session,
    holds: &mut Holds,
    deliveries: Vec<Delivery>,
) -> Result<(), ConsumeError> {
    metrics::histogram!("courier_worker_batch_size").record(deliveries.len() as f64);
    let parsed: Vec<Result<Command, Rejection>> =
        deliveries.iter().map(|d| Command::parse(&d.data)).collect();
    let mut fates = Vec::with_capacity(deliveries.len());
    let mut notes = Vec::new();
    // Runs of sends are persisted together; each lifecycle command on its own, in order.
    let mut start = 0;
    while start < parsed.len() {
        if let Ok(Command::Lifecycle(cmd)) = &parsed[start] {
            let fate = if holds.blocking(cmd.chat_id, cmd.command_id).is_some() {
                Fate::Park(cmd.chat_id)
            } else {
                let (fate, events) = until_up(ctx, "apply", || {
                    let src = lifecycle::Sources {
                        pool: &ctx.pool,
                        storage: &ctx.storage,
                        cache: &ctx.cache,
                    };
                    lifecycle::apply(src, cmd)
                })
                .await?;
                notes.push(Note::Events(events));
                fate
            };
            metrics::counter!("courier_worker_commands_total", "outcome" => fate.name())
                .increment(1);
            track(
                ctx,
                holds,
                &deliveries[start],
                (cmd.chat_id, cmd.command_id),
                &fate,
            )
            .await?;
            fates.push(fate);
            start += 1;
            continue;
        }
        let end = (start..parsed.len())
            .find(|&i| matches!(parsed[i], Ok(Command::Lifecycle(_))))
            .unwrap_or(parsed.len());
        let before = fates.len();
        sends::run(
            ctx,
            holds,
            &parsed[start..end],
            &deliveries[start..end],
            &mut fates,
            &mut notes,
        )
        .await?;
        for (i, fate) in (start..end).zip(&fates[before..]) {
            if let Ok(Command::Send(c)) = &parsed[i] {
                track(
                    ctx,
                    holds,
                    &deliveries[i],
                    (c.chat_id, c.broker_message_id),
                    fate,
                )
                .await?;
            }
        }
        start = end;
    }
    if !notes.is_empty() {
        until_up(ctx, "notify", || notify::notify(ctx, &notes)).await?;
        integrate(ctx, session, &notes).await?;
    }
    dispose::settle(ctx, session, holds, &deliveries, fates).await
}

/// Keeps the chat's hold in step with a command's fate: a command that will be
/// retried holds its chat; one applied or dead-lettered releases the chat it held.
async fn track(
    ctx: &Ctx,
    holds: &mut Holds,
    d: &Delivery,
    (chat, id): (Uuid, Uuid),
    fate: &Fate,
) -> Result<(), ConsumeError> {
    let attempts = dispose::attempts(d);
    let mut backoff = OUTAGE_BACKOFF;
    loop {
        let done = match fate {
            Fate::Park(_) => return Ok(()),
            Fate::Retry(_) if attempts <= ctx.topology.max_retries => {
                let wait = Topology::retry_delay(attempts);
                holds.hold(&ctx.pool, chat, id, wait).await
            }
            _ if holds.is_empty() => return Ok(()),
            _ => holds.release(&ctx.pool, chat, id).await,
        };
        match done {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, %chat, "recording a chat hold failed; trying again");
                if !backoff.wait(&ctx.stop).await {
                    return Err(ConsumeError::Stopping);
                }
            }
        }
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
pub(super) async fn until_up<T, F, Fut>(ctx: &Ctx, what: &str, mut op: F) -> Result<T, ConsumeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Outage>>,
{
    let mut backoff = OUTAGE_BACKOFF;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(Outage(e)) => {
                let delay = backoff.next_delay();
                tracing::warn!(step = what, error = %e, retry_in_ms = delay.as_millis() as u64, "dependency down; holding deliveries");
                if !pause(delay, &ctx.stop).await {
                    return Err(ConsumeError::Stopping);
                }
            }
        }
    }
}

/// Publishes the batch's integration events (confirmed) before its deliveries are acked:
/// each committed change reaches the integration exchange at least once.
async fn integrate(ctx: &Ctx, session: &Session, notes: &[Note]) -> Result<(), ConsumeError> {
    let mut out = Vec::new();
    for note in notes {
        match note {
            Note::Sent(m, _) => match integration::created(m) {
                Ok(e) => out.push(e),
                Err(e) => tracing::error!(error = %e, "integration event not encodable"),
            },
            Note::Events(a) => out.extend(a.integrations.iter().cloned()),
            Note::Unarchived(..) => {}
        }
    }
    let exchange = &ctx.topology.integrations;
    futures::future::try_join_all(out.iter().map(|e| {
        let props = mq::publish::json_properties(&e.id, Default::default()).with_type(e.key.into());
        mq::publish::publish_broadcast(
            &session.publish,
            exchange,
            e.key,
            &e.body,
            props,
            mq::CONFIRM_TIMEOUT,
        )
    }))
    .await?;
    metrics::counter!("courier_integration_events_total").increment(out.len() as u64);
    Ok(())
}
