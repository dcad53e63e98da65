//! Telling clients of a batch's outcome: each event to its recipients, in partition
//! order, before the batch is acked. A send in a direct chat goes to each member's own
//! stream; a send in a group goes once to the group's timeline (no member list is read),
//! with the sender's `chat.message.saved` and the folded copies of members who blocked
//! the sender through their own streams.

use std::{borrow::Cow, collections::HashSet};

use uuid::Uuid;

use super::{
    Ctx,
    batch::{Note, Outage},
};
use crate::{
    cache::blocks::Relations,
    domain::{
        events::{EVENT_CHAT_SETTINGS, EVENT_NEW, EVENT_NOTIFICATION, GroupTarget, Outgoing},
        mention::{self, NotificationEvent},
        message::Message,
    },
    service::chat_list::SettingsEvent,
};

fn encoding(e: serde_json::Error) -> Outage {
    Outage(format!("encoding events: {e}"))
}

/// Publishes the events of a batch's notes (sends, applied commands, unarchived chats)
/// and records the delivery latency of its sends.
pub(super) async fn notify(ctx: &Ctx, notes: &[Note]) -> Result<(), Outage> {
    let chats: Vec<Uuid> = notes
        .iter()
        .filter_map(|n| match n {
            Note::Sent(m, _) => Some(m.chat_id),
            Note::Events(_) | Note::Unarchived(..) => None,
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let groups = ctx
        .cache
        .groups_among(&ctx.pool, &chats)
        .await
        .map_err(|e| Outage(format!("postgresql: {e}")))?;
    let direct: Vec<Uuid> = chats.into_iter().filter(|c| !groups.contains(c)).collect();
    let members = if direct.is_empty() {
        Default::default()
    } else {
        ctx.cache.members(&ctx.pool, &direct).await?
    };
    // Who blocked each sender: their copies carry `blockedSender` (from the near cache;
    // one Redis round trip per batch for the senders it lacks, PostgreSQL on a miss).
    let senders: Vec<Uuid> = notes
        .iter()
        .filter_map(|n| match n {
            Note::Sent(m, _) if m.bot.is_none() => Some(m.sender_id),
            _ => None,
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let blocks = ctx.cache.blocks_near(&ctx.pool, &senders).await?;
    let mut events = Vec::with_capacity(notes.len());
    for note in notes {
        match note {
            Note::Sent(m, _) => {
                let m = signed(ctx, m).await?;
                let relations = blocks.get(&m.sender_id).map(|r| &**r);
                if groups.contains(&m.chat_id) {
                    events.extend(group_send(ctx, &m, relations).await?);
                } else {
                    let audience = members.get(&m.chat_id).map(Vec::as_slice).unwrap_or(&[]);
                    events.extend(direct_send(ctx, &m, audience, relations)?);
                }
                for (user, n) in mention::notifications(&m) {
                    let p = NotificationEvent { notification: &n };
                    events.push(
                        Outgoing::to_users(EVENT_NOTIFICATION, &p, [user]).map_err(encoding)?,
                    );
                }
            }
            Note::Events(a) => events.extend(a.events.iter().cloned()),
            Note::Unarchived(chat, users) => {
                for (user, settings) in users {
                    let p = SettingsEvent {
                        chat_id: *chat,
                        settings: *settings,
                    };
                    events.push(
                        Outgoing::to_users(EVENT_CHAT_SETTINGS, &p, [*user]).map_err(encoding)?,
                    );
                }
            }
        }
    }
    ctx.cache.publish_events(&events).await?;
    let now = chrono::Utc::now().timestamp_millis();
    for note in notes {
        if let Note::Sent(_, accepted) = note {
            metrics::histogram!("courier_delivery_latency_seconds")
                .record((now - accepted).max(0) as f64 / 1000.0);
        }
    }
    Ok(())
}

/// A send in a direct chat: `chat.message.saved` to the sender, `chat.message.new` to
/// the others (with `blockedSender` for those who blocked the sender).
fn direct_send(
    ctx: &Ctx,
    m: &Message,
    audience: &[Uuid],
    relations: Option<&Relations>,
) -> Result<Vec<Outgoing>, Outage> {
    let blockers = relations.map(|r| &r.blockers);
    let (flagged, audience): (Vec<Uuid>, Vec<Uuid>) = audience
        .iter()
        .partition(|u| **u != m.sender_id && blockers.is_some_and(|b| b.contains(u)));
    let mut out = vec![Outgoing::message_in(m, &audience, ctx.compat).map_err(encoding)?];
    out.extend(folded(ctx, m, &flagged)?);
    Ok(out)
}

/// A send in a group: once to the group's timeline for every member but the sender and
/// those who blocked the sender; `chat.message.saved` to the sender's own stream.
async fn group_send(
    ctx: &Ctx,
    m: &Message,
    relations: Option<&Relations>,
) -> Result<Vec<Outgoing>, Outage> {
    let blockers: Vec<Uuid> = relations
        .map(|r| {
            r.blockers
                .iter()
                .copied()
                .filter(|u| *u != m.sender_id)
                .collect()
        })
        .unwrap_or_default();
    let flagged = ctx
        .cache
        .members_among(&ctx.pool, m.chat_id, &blockers)
        .await?;
    let mut event = Outgoing::message_in(m, &[], ctx.compat).map_err(encoding)?;
    let mut except = Vec::with_capacity(flagged.len() + 1);
    except.push(m.sender_id);
    except.extend(flagged.iter().copied());
    event.group = Some(GroupTarget {
        name: EVENT_NEW,
        except,
    });
    let mut out = vec![event];
    out.extend(folded(ctx, m, &flagged)?);
    Ok(out)
}

/// The copy of `m` with `blockedSender` for the `flagged` members who blocked its sender.
fn folded(ctx: &Ctx, m: &Message, flagged: &[Uuid]) -> Result<Option<Outgoing>, Outage> {
    if flagged.is_empty() {
        return Ok(None);
    }
    let mut folded = m.clone();
    folded.blocked_sender = true;
    let mut event = Outgoing::message_in(&folded, flagged, ctx.compat).map_err(encoding)?;
    event.targets.retain(|(u, _)| *u != m.sender_id);
    Ok(Some(event))
}

/// The message with its attachments' URLs minted (what `chat.message.new` and
/// `chat.message.saved` carry).
async fn signed<'a>(ctx: &Ctx, m: &'a Message) -> Result<Cow<'a, Message>, Outage> {
    if m.attachments.is_empty() {
        return Ok(Cow::Borrowed(m));
    }
    let mut m = [m.clone()];
    ctx.storage
        .sign(&mut m)
        .await
        .map_err(|e| Outage(format!("attachment urls: {e}")))?;
    let [m] = m;
    Ok(Cow::Owned(m))
}
