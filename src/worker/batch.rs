//! One batch of deliveries from a partition: parse, persist, notify, dispose.
//!
//! An outage of PostgreSQL or Redis is not a message failure: the batch waits,
//! unacked, and is tried again until the dependency is back (or the worker stops,
//! leaving the deliveries to be redelivered).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    future::Future,
    time::Duration,
};

use lapin::message::Delivery;
use uuid::Uuid;

use super::{ConsumeError, Ctx, dispose};
use crate::{
    cache::membership::LookupError,
    db::{self, messages::Outcome},
    domain::{
        message::{Rejection, SendCommand},
        notification::{Delivery as Routed, GatewayNotification},
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
    let mut persisted: Vec<Routed> = Vec::new();
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
                        persisted.push(Routed {
                            message,
                            users: Vec::new(),
                            accepted_at_ms: Some(cmd.accepted_at.timestamp_millis()),
                            request_id,
                        });
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
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Resolves recipients and their gateways, and publishes one notification per gateway.
async fn notify(ctx: &Ctx, messages: &[Routed]) -> Result<(), Outage> {
    let chats: Vec<Uuid> = messages
        .iter()
        .map(|m| m.message.chat_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let members = ctx.cache.members(&ctx.pool, &chats).await?;
    let mut users: HashSet<Uuid> = members.values().flatten().copied().collect();
    users.extend(messages.iter().map(|m| m.message.sender_id));
    let users: Vec<Uuid> = users.into_iter().collect();
    let gateways = ctx.cache.gateways_of(&users).await?;
    let notes = route(messages, &members, &gateways);
    Ok(ctx.cache.notify_gateways(&notes).await?)
}

/// Groups messages by gateway: for each message, the users (participants and the
/// sender) that have sockets on that gateway.
pub fn route(
    messages: &[Routed],
    members: &HashMap<Uuid, Vec<Uuid>>,
    gateways: &HashMap<Uuid, Vec<String>>,
) -> Vec<(String, GatewayNotification)> {
    let mut per_gateway: BTreeMap<String, GatewayNotification> = BTreeMap::new();
    for routed in messages {
        let m = &routed.message;
        let mut audience: Vec<Uuid> = members.get(&m.chat_id).cloned().unwrap_or_default();
        if !audience.contains(&m.sender_id) {
            audience.push(m.sender_id);
        }
        let mut by_gateway: BTreeMap<&str, Vec<Uuid>> = BTreeMap::new();
        for u in audience {
            for g in gateways.get(&u).into_iter().flatten() {
                by_gateway.entry(g).or_default().push(u);
            }
        }
        for (g, users) in by_gateway {
            per_gateway
                .entry(g.to_string())
                .or_default()
                .deliveries
                .push(Routed {
                    users,
                    ..routed.clone()
                });
        }
    }
    per_gateway.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::message::Message;

    fn msg(chat: Uuid, sender: Uuid, seq: i64) -> Routed {
        let message = Message {
            id: Uuid::new_v4(),
            chat_id: chat,
            sender_id: sender,
            client_message_id: Uuid::new_v4(),
            content: "x".into(),
            message_type: "text".into(),
            status: "sent".into(),
            sequence: seq,
            sent_at: chrono::Utc::now(),
        };
        Routed {
            message,
            users: Vec::new(),
            accepted_at_ms: None,
            request_id: None,
        }
    }

    #[test]
    fn routes_each_user_to_the_gateways_holding_their_sockets() {
        let (chat, a, b, c) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let members = HashMap::from([(chat, vec![a, b, c])]);
        let gateways = HashMap::from([
            (a, vec!["g1".to_string()]),
            (b, vec!["g1".into(), "g2".into()]),
        ]);
        let notes = route(&[msg(chat, a, 1), msg(chat, a, 2)], &members, &gateways);
        assert_eq!(notes.len(), 2);
        let g1 = &notes.iter().find(|(g, _)| g == "g1").unwrap().1;
        assert_eq!(g1.deliveries.len(), 2);
        assert_eq!(g1.deliveries[0].users, vec![a, b]);
        assert_eq!(g1.deliveries[1].message.sequence, 2);
        let g2 = &notes.iter().find(|(g, _)| g == "g2").unwrap().1;
        assert_eq!(
            g2.deliveries[0].users,
            vec![b],
            "c has no socket, a none on g2"
        );
    }

    #[test]
    fn nobody_online_means_no_notification() {
        let chat = Uuid::new_v4();
        let members = HashMap::from([(chat, vec![Uuid::new_v4()])]);
        assert!(route(&[msg(chat, Uuid::new_v4(), 1)], &members, &HashMap::new()).is_empty());
    }
}
