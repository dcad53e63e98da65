//! Lifecycle commands and chat changes in the worker: applied once under the chat's
//! lock, then announced as chat events stamped with the chat's version.

use std::collections::BTreeMap;

use sqlx::PgPool;
use uuid::Uuid;

use super::batch::{Fate, Outage};
use crate::{
    db::{self, lifecycle::LifeOutcome},
    domain::{
        events::{
            EVENT_CHAT_REMOVED, EVENT_CHAT_UPDATED, EVENT_DELETED, EVENT_PINS, EVENT_REACTION,
            EVENT_UPDATED, MessageEvent, Outgoing,
        },
        lifecycle::{Applied, Effect, LifecycleCommand},
        lifecycle::{ChatRemoved, ChatUpdated, Deleted, PinsUpdated, ReactionUpdated},
        message::Reaction,
    },
};

/// Applies `cmd` (or finds it applied) and builds its events. Outer `Err`: an outage.
pub async fn apply(pool: &PgPool, cmd: &LifecycleCommand) -> Result<(Fate, Vec<Outgoing>), Outage> {
    let outcome = match db::lifecycle::apply(pool, cmd).await {
        Ok(o) => o,
        Err(e) if db::is_outage(&e) => return Err(Outage(format!("postgresql: {e}"))),
        Err(e) => return Ok((Fate::Retry(e.to_string()), Vec::new())),
    };
    match outcome {
        LifeOutcome::Rejected(r) => Ok((Fate::DeadLetter(r), Vec::new())),
        LifeOutcome::Applied { applied, audience } => {
            match announce(pool, cmd.chat_id, &applied, &audience).await {
                Ok(events) => Ok((Fate::Done, events)),
                Err(AnnounceError::Db(e)) if db::is_outage(&e) => {
                    Err(Outage(format!("postgresql: {e}")))
                }
                Err(e) => Ok((Fate::Retry(e.to_string()), Vec::new())),
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum AnnounceError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
}

/// The events of an applied command, each at its version of the chat.
async fn announce(
    pool: &PgPool,
    chat: Uuid,
    applied: &Applied,
    audience: &[Uuid],
) -> Result<Vec<Outgoing>, AnnounceError> {
    let all = || audience.iter().copied();
    let mut out = Vec::new();
    for (v, effect) in &applied.effects {
        let v = *v;
        match effect {
            Effect::Updated { message_id } => {
                out.extend(updated(pool, chat, v, *message_id, audience).await?);
            }
            Effect::Deleted {
                message_id,
                sequence,
            } => {
                let p = Deleted {
                    chat_id: chat,
                    message_id: *message_id,
                    sequence: *sequence,
                };
                out.push(Outgoing::chat_event(EVENT_DELETED, chat, v, &p, all())?);
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
                out.push(Outgoing::chat_event(EVENT_REACTION, chat, v, &p, all())?);
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
                out.push(Outgoing::chat_event(EVENT_PINS, chat, v, &p, all())?);
            }
            Effect::Chat { removed } => {
                if let Some(c) = db::chats::load(pool, chat).await? {
                    let members: Vec<Uuid> = c.participants.iter().map(|p| p.user_id).collect();

                    let p = ChatUpdated { chat: c };
                    out.push(Outgoing::chat_event(
                        EVENT_CHAT_UPDATED,
                        chat,
                        v,
                        &p,
                        members.iter().copied(),
                    )?);
                    let gone = removed.iter().copied().filter(|u| !members.contains(u));
                    let p = ChatRemoved { chat_id: chat };
                    out.push(Outgoing::chat_event(EVENT_CHAT_REMOVED, chat, v, &p, gone)?);
                }
            }
        }
    }
    Ok(out)
}

/// `chat.message.updated` with the message as it is now; `me` in its reactions is per
/// recipient, so recipients who reacted alike share one payload.
async fn updated(
    pool: &PgPool,
    chat: Uuid,
    version: i64,
    message_id: Uuid,
    audience: &[Uuid],
) -> Result<Vec<Outgoing>, AnnounceError> {
    let Some(mut message) = db::history::one(pool, chat, message_id).await? else {
        return Ok(Vec::new());
    };
    let by_emoji = db::history::reaction_users(pool, message_id).await?;
    // Recipients grouped by which emojis they used.
    let mut groups: BTreeMap<Vec<bool>, Vec<Uuid>> = BTreeMap::new();
    for u in audience {
        let mine: Vec<bool> = by_emoji.iter().map(|(_, us)| us.contains(u)).collect();
        groups.entry(mine).or_default().push(*u);
    }
    let mut out = Vec::with_capacity(groups.len());
    for (mine, users) in groups {
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
        out.push(Outgoing::chat_event(
            EVENT_UPDATED,
            chat,
            version,
            &p,
            users,
        )?);
    }
    Ok(out)
}
