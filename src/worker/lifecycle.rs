//! Lifecycle commands and chat changes in the worker: applied once under the chat's
//! lock, then announced as chat events stamped with the chat's version.

use std::collections::BTreeMap;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    audience::{Everyone, membership_events},
    batch::{Fate, Outage},
    integration::{
        self, CHAT_UPDATED, Integration, MESSAGE_DELETED, MESSAGE_UPDATED, REACTION_UPDATED,
    },
};
use crate::storage::{Storage, StorageError};
use crate::{
    cache::{Cache, membership::LookupError},
    db::{self, lifecycle::LifeOutcome},
    domain::{
        events::{
            EVENT_DELETED, EVENT_NOTIFICATION, EVENT_PINS, EVENT_REACTION, EVENT_UPDATED,
            MessageEvent, Outgoing,
        },
        lifecycle::{Applied, Effect, LifecycleCommand},
        lifecycle::{ChatUpdated, Deleted, PinsUpdated, ReactionUpdated},
        mention::NotificationEvent,
        message::{Message, Reaction},
    },
};

/// What an applied command announces: to clients, and to other systems.
#[derive(Debug, Default)]
pub struct Announced {
    pub events: Vec<Outgoing>,
    pub integrations: Vec<Integration>,
}

/// Where an applied command's events are built from: the database, storage (for
/// attachment URLs) and the cache (who blocked a message's sender).
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub pool: &'a PgPool,
    pub storage: &'a Storage,
    pub cache: &'a Cache,
}

/// Applies `cmd` (or finds it applied) and builds its events. Outer `Err`: an outage.
pub async fn apply(src: Sources<'_>, cmd: &LifecycleCommand) -> Result<(Fate, Announced), Outage> {
    let pool = src.pool;
    let outcome = match db::lifecycle::apply(pool, cmd).await {
        Ok(o) => o,
        Err(e) if db::is_outage(&e) => return Err(Outage(format!("postgresql: {e}"))),
        Err(e) => return Ok((Fate::Retry(e.to_string()), Announced::default())),
    };
    match outcome {
        LifeOutcome::Rejected(r) => Ok((Fate::DeadLetter(r), Announced::default())),
        LifeOutcome::Applied { applied, audience } => {
            match announce(src, cmd.chat_id, &applied, &audience).await {
                Ok(announced) => Ok((Fate::Done, announced)),
                Err(AnnounceError::Db(e)) if db::is_outage(&e) => {
                    Err(Outage(format!("postgresql: {e}")))
                }
                Err(AnnounceError::Lookup(e)) => Err(e.into()),
                Err(e) => Ok((Fate::Retry(e.to_string()), Announced::default())),
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum AnnounceError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("attachment urls: {0}")]
    Storage(#[from] StorageError),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
    #[error("blocks: {0}")]
    Lookup(#[from] LookupError),
}

/// The events of an applied command, each at its version of the chat: one match over
/// the effects builds both what clients see and what other systems are told.
async fn announce(
    src: Sources<'_>,
    chat: Uuid,
    applied: &Applied,
    audience: &[Uuid],
) -> Result<Announced, AnnounceError> {
    let pool = src.pool;
    let group = src.cache.is_group(pool, chat).await?;
    let all = Everyone {
        chat,
        group,
        audience,
    };
    let mut out = Vec::new();
    let mut integrations = Vec::new();
    for (v, effect) in &applied.effects {
        let v = *v;
        let at = integration::AtVersion::new(chat, v);
        match effect {
            Effect::Updated {
                message_id,
                notified,
            } => {
                let (events, message) = updated(src, &all, v, *message_id).await?;
                out.extend(events);
                if let Some(m) = message {
                    integrations.push(at.one(MESSAGE_UPDATED, json!({ "message": m }))?);
                }
                out.extend(notifications(pool, *message_id, notified).await?);
            }
            Effect::Deleted {
                message_id,
                sequence,
                deleted_by,
            } => {
                let p = Deleted {
                    chat_id: chat,
                    message_id: *message_id,
                    sequence: *sequence,
                    deleted_by: *deleted_by,
                };
                out.push(all.event(EVENT_DELETED, v, &p)?);
                let mut data = json!({ "messageId": message_id, "sequence": sequence });
                if let Some(by) = deleted_by {
                    data["deletedBy"] = json!(by);
                }
                integrations.push(at.one(MESSAGE_DELETED, data)?);
            }
            Effect::Reaction {
                message_id,
                emoji,
                user_id,
                added,
                count,
            } => {
                let p = ReactionUpdated {
                    chat_id: chat,
                    message_id: *message_id,
                    emoji: emoji.clone(),
                    user_id: *user_id,
                    added: *added,
                    count: *count,
                };
                out.push(all.event(EVENT_REACTION, v, &p)?);
                let data = json!({ "messageId": message_id, "emoji": emoji, "userId": user_id,
                                   "added": added, "count": count });
                integrations.push(at.one(REACTION_UPDATED, data)?);
            }
            Effect::Pins {
                message_id,
                pinned,
                user_id,
            } => {
                let p = PinsUpdated {
                    chat_id: chat,
                    message_id: *message_id,
                    pinned: *pinned,
                    user_id: *user_id,
                };
                out.push(all.event(EVENT_PINS, v, &p)?);
                let change = if *pinned { "pinned" } else { "unpinned" };
                let data = json!({ "change": change, "messageId": message_id, "userId": user_id });
                integrations.push(at.one(CHAT_UPDATED, data)?);
            }
            Effect::Chat { removed, added } => {
                let mut details = None;
                if let Some(c) = db::chats::load(pool, chat).await? {
                    let members: Vec<Uuid> = c.participants.iter().map(|p| p.user_id).collect();
                    let gone: Vec<Uuid> = removed
                        .iter()
                        .copied()
                        .filter(|u| !members.contains(u))
                        .collect();
                    let p = ChatUpdated { chat: c };
                    out.extend(membership_events(&all, v, &p, (&members, added), &gone)?);
                    details = Some(p.chat);
                }
                integrations.extend(at.chat(details.as_ref(), added, removed)?);
            }
        }
    }
    Ok(Announced {
        events: out,
        integrations,
    })
}

/// `notification.new` for the users an edit mentioned for the first time.
async fn notifications(
    pool: &PgPool,
    message_id: Uuid,
    users: &[Uuid],
) -> Result<Vec<Outgoing>, AnnounceError> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(users.len());
    for (user, n) in db::notifications::of_message(pool, message_id, users).await? {
        let p = NotificationEvent { notification: &n };
        out.push(Outgoing::to_users(EVENT_NOTIFICATION, &p, [user])?);
    }
    Ok(out)
}

/// `chat.message.updated` with the message as it is now; `me` in its reactions and
/// `blockedSender` (for those who blocked the sender) are per recipient, so recipients
/// who see it alike share one payload. Also returns the message as nobody in
/// particular sees it (`me` false, no `blockedSender`), for integrations.
async fn updated(
    src: Sources<'_>,
    all: &Everyone<'_>,
    version: i64,
    message_id: Uuid,
) -> Result<(Vec<Outgoing>, Option<Message>), AnnounceError> {
    let (chat, audience) = (all.chat, all.audience);
    let Some(mut message) = db::history::one(src.pool, chat, message_id).await? else {
        return Ok((Vec::new(), None));
    };
    src.storage.sign(std::slice::from_mut(&mut message)).await?;
    let by_emoji = db::history::reaction_users(src.pool, message_id).await?;
    // Who blocked the sender (a hook has no blocks): the same cache read as a send's.
    let blockers = if message.bot.is_none() {
        src.cache
            .blocks_near(src.pool, &[message.sender_id])
            .await?
            .remove(&message.sender_id)
            .map(|r| r.blockers.clone())
            .unwrap_or_default()
    } else {
        Default::default()
    };
    // Recipients grouped by whether they blocked the sender and which emojis they used.
    let mut groups: BTreeMap<(bool, Vec<bool>), Vec<Uuid>> = BTreeMap::new();
    for u in audience {
        let folded = *u != message.sender_id && blockers.contains(u);
        let mine: Vec<bool> = by_emoji.iter().map(|(_, us)| us.contains(u)).collect();
        groups.entry((folded, mine)).or_default().push(*u);
    }
    // In a group, the copy most members see (no block, no reaction of their own) goes
    // once to the timeline; the others' copies to their own streams.
    let common = (false, vec![false; by_emoji.len()]);
    let except: Vec<Uuid> = groups
        .iter()
        .filter(|(k, _)| **k != common)
        .flat_map(|(_, us)| us.iter().copied())
        .collect();
    let mut out = Vec::with_capacity(groups.len());
    for ((folded, mine), users) in groups {
        message.blocked_sender = folded;
        message.reactions = by_emoji
            .iter()
            .zip(&mine)
            .map(|((emoji, us), me)| Reaction {
                emoji: emoji.clone(),
                count: us.len() as i64,
                me: *me,
            })
            .collect();
        let p = MessageEvent {
            chat_id: chat,
            message: &message,
        };
        out.push(if all.group && (folded, &mine) == (common.0, &common.1) {
            Outgoing::to_group(EVENT_UPDATED, chat, version, &p, except.clone())?
        } else {
            Outgoing::chat_event(EVENT_UPDATED, chat, version, &p, users)?
        });
    }
    for r in &mut message.reactions {
        r.me = false;
    }
    message.blocked_sender = false;
    Ok((out, Some(message)))
}
