//! A run of sends within a batch: persisted together, or one by one when the batch
//! fails for a reason of its own; a send of a held chat is parked behind the chat's
//! head (see `holds`), and so is every later send of a chat whose send just failed.

use std::collections::HashSet;

use lapin::message::Delivery;
use uuid::Uuid;

use super::{
    ConsumeError, Ctx,
    batch::{Fate, Note, Outage, until_up},
    dispose,
    holds::Holds,
};
use crate::{
    db::{self, messages::Outcome},
    domain::{
        lifecycle::Command,
        message::{Rejection, SendCommand},
    },
    mq,
};

/// What became of one send of the run: `None` when it was parked.
type Persisted = Option<Result<Outcome, String>>;

/// Persists a run of sends (and dead-letters what did not parse), in order.
pub async fn run(
    ctx: &Ctx,
    holds: &Holds,
    parsed: &[Result<Command, Rejection>],
    deliveries: &[Delivery],
    fates: &mut Vec<Fate>,
    notes: &mut Vec<Note>,
) -> Result<(), ConsumeError> {
    // A send of a held chat waits behind the chat's head, unless the head comes
    // earlier in this run (it is then persisted first, in the same order).
    let mut heads_seen = HashSet::new();
    let mut take = Vec::new();
    let mut cmds = Vec::new();
    for (p, d) in parsed.iter().zip(deliveries) {
        if let Ok(Command::Send(c)) = p {
            let parked = holds
                .blocking(c.chat_id, c.broker_message_id)
                .is_some_and(|h| !heads_seen.contains(&h.head));
            heads_seen.insert(c.broker_message_id);
            take.push(!parked);
            if !parked {
                cmds.push((c.clone(), dispose::attempts(d) <= ctx.topology.max_retries));
            }
        }
    }
    let started = std::time::Instant::now();
    let mut outcomes = persist_isolating(ctx, &cmds).await?.into_iter();
    metrics::histogram!("courier_worker_persist_seconds").record(started.elapsed().as_secs_f64());
    let mut take = take.into_iter();
    for (p, d) in parsed.iter().zip(deliveries) {
        let fate = match p {
            Err(rejection) => Fate::DeadLetter(rejection.clone()),
            Ok(Command::Lifecycle(_)) => Fate::Retry("not a send".into()),
            Ok(Command::Send(cmd)) if take.next() == Some(false) => Fate::Park(cmd.chat_id),
            Ok(Command::Send(cmd)) => match outcomes.next() {
                Some(None) => Fate::Park(cmd.chat_id),
                Some(Some(Ok(Outcome::Persisted {
                    message,
                    notify,
                    unarchived,
                }))) => {
                    let request_id =
                        mq::header_str(d.properties.headers().as_ref(), mq::HEADER_REQUEST_ID);
                    tracing::debug!(
                        request_id = request_id.as_deref().unwrap_or(""),
                        chat = %message.chat_id,
                        sequence = message.sequence,
                        message_id = %cmd.broker_message_id,
                        client_message_id = %cmd.client_message_id,
                        notify,
                        "message persisted"
                    );
                    let outcome = if notify { "persisted" } else { "duplicate" };
                    metrics::counter!("courier_worker_messages_total", "outcome" => outcome)
                        .increment(1);
                    let chat = message.chat_id;
                    if notify {
                        notes.push(Note::Sent(message, cmd.accepted_at.timestamp_millis()));
                    }
                    if !unarchived.is_empty() {
                        notes.push(Note::Unarchived(chat, unarchived));
                    }
                    Fate::Done
                }
                Some(Some(Ok(Outcome::Rejected(r)))) => {
                    if let Some(ban) = r.ban_reason() {
                        tracing::info!(
                            sender = %cmd.sender_id,
                            chat = %cmd.chat_id,
                            client_message_id = %cmd.client_message_id,
                            ban_reason = ban,
                            "send of a banned user dropped; dead-lettering it"
                        );
                    }
                    Fate::DeadLetter(r)
                }
                Some(Some(Err(e))) => Fate::Retry(e),
                None => Fate::Retry("no outcome".into()),
            },
        };
        fates.push(fate);
    }
    Ok(())
}

/// Persists the sends; on a non-outage error, persists each alone so one bad message
/// cannot hold back the others, except the later sends of its own chat when it will
/// be retried: those are parked (`None`), so the chat keeps its order.
/// `Some(Err(String))` marks a message-specific failure.
async fn persist_isolating(
    ctx: &Ctx,
    cmds: &[(SendCommand, bool)],
) -> Result<Vec<Persisted>, ConsumeError> {
    if cmds.is_empty() {
        return Ok(Vec::new());
    }
    let all: Vec<SendCommand> = cmds.iter().map(|(c, _)| c.clone()).collect();
    match until_up(ctx, "persist", || persist(ctx, &all)).await? {
        Ok(outcomes) => Ok(outcomes.into_iter().map(|o| Some(Ok(o))).collect()),
        Err(e) if cmds.len() == 1 => Ok(vec![Some(Err(e))]),
        Err(e) => {
            tracing::warn!(error = %e, size = cmds.len(), "batch failed; persisting one by one");
            let mut failed: HashSet<Uuid> = HashSet::new();
            let mut out = Vec::with_capacity(cmds.len());
            for (cmd, will_retry) in cmds {
                if failed.contains(&cmd.chat_id) {
                    out.push(None);
                    continue;
                }
                let one = std::slice::from_ref(cmd);
                let result = match until_up(ctx, "persist", || persist(ctx, one)).await? {
                    Ok(mut o) => o.pop().ok_or_else(|| "no outcome".to_string()),
                    Err(e) => Err(e),
                };
                if result.is_err() && *will_retry {
                    failed.insert(cmd.chat_id);
                }
                out.push(Some(result));
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
