//! The chat list and a user's own chat settings (mute, archive).
//!
//! Paging: the first page fixes the walk's snapshot time `asof`; every page of the walk
//! orders the caller's chats by their last activity as of `asof` (newest first, then by
//! id), and the cursor names the last chat of the page by that key. A chat that gets a
//! message while the client pages keeps its place in the walk (it is neither returned
//! twice nor skipped: its `lastMessage` and `unreadCount` are current, its position is
//! as of `asof`); chats created after `asof` are not part of the walk (the client
//! learns of them by `chat.updated`, or on its next first page).

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult};
use crate::{
    db::chat_list::{self as db, After, Listed},
    domain::{
        chat::ChatSettings,
        events::{EVENT_CHAT_SETTINGS, Outgoing},
        message::Message,
    },
};

/// `limit` when a cursor is given without one.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest `limit`.
pub const MAX_LIMIT: i64 = 200;

/// Cursor layout version (the first byte).
const CURSOR_V1: u8 = 1;
/// Version, archived flag, asof (µs), activity (µs), id.
const CURSOR_LEN: usize = 1 + 1 + 8 + 8 + 16;

/// A position in a walk of the chat list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub archived: bool,
    pub asof: DateTime<Utc>,
    pub after: After,
}

/// The opaque cursor: base64url of version, archived, snapshot time, activity and id.
pub fn encode_cursor(c: &Cursor) -> String {
    let mut bytes = Vec::with_capacity(CURSOR_LEN);
    bytes.push(CURSOR_V1);
    bytes.push(u8::from(c.archived));
    bytes.extend_from_slice(&c.asof.timestamp_micros().to_be_bytes());
    bytes.extend_from_slice(&c.after.activity.timestamp_micros().to_be_bytes());
    bytes.extend_from_slice(c.after.id.as_bytes());
    B64.encode(bytes)
}

/// The cursor, or `None` if it is not one this server made.
pub fn decode_cursor(cursor: &str) -> Option<Cursor> {
    if cursor.len() > 64 {
        return None;
    }
    let bytes = B64.decode(cursor).ok()?;
    if bytes.len() != CURSOR_LEN || bytes[0] != CURSOR_V1 || bytes[1] > 1 {
        return None;
    }
    let micros = |r: std::ops::Range<usize>| -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_micros(i64::from_be_bytes(bytes[r].try_into().ok()?))
    };
    Some(Cursor {
        archived: bytes[1] == 1,
        asof: micros(2..10)?,
        after: After {
            activity: micros(10..18)?,
            id: Uuid::from_slice(&bytes[18..]).ok()?,
        },
    })
}

/// What the caller asked for.
#[derive(Debug, Default)]
pub struct ListQuery<'a> {
    pub limit: Option<i64>,
    pub cursor: Option<&'a str>,
    pub archived: Option<bool>,
}

/// A page of the chat list and the cursor of the next (`None` at the end, and always
/// without `limit` and `cursor`: then the page is every chat, as in v1).
#[derive(Debug)]
pub struct Page {
    pub chats: Vec<Listed>,
    pub next_cursor: Option<String>,
}

/// A snapshot time after every activity: the v1 list orders by current activity.
fn far_future() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or_default()
}

/// The caller's chats (archived ones only with `archived`), a page at a time.
pub async fn list(ctx: &Ctx, me: Uuid, q: ListQuery<'_>) -> ServiceResult<Page> {
    let archived = q.archived.unwrap_or(false);
    if let Some(limit) = q.limit
        && !(1..=MAX_LIMIT).contains(&limit)
    {
        return Err(ServiceError::Invalid(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    let cursor = match q.cursor.filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => {
            let c = decode_cursor(raw)
                .ok_or_else(|| ServiceError::Invalid("cursor is not a chat list cursor".into()))?;
            if q.archived.is_some_and(|a| a != c.archived) {
                return Err(ServiceError::Invalid(
                    "cursor belongs to the other list (archived)".into(),
                ));
            }
            Some(c)
        }
    };
    let Some(limit) = q.limit.or(cursor.map(|_| DEFAULT_LIMIT)) else {
        // v1: every chat, ordered by its current activity.
        let mut chats = db::page(&ctx.pool, me, archived, far_future(), None, None).await?;
        flag_last_messages(ctx, me, &mut chats).await?;
        return Ok(Page {
            chats,
            next_cursor: None,
        });
    };
    let (archived, asof, after) = match cursor {
        Some(c) => (c.archived, c.asof, Some(c.after)),
        None => (archived, Utc::now(), None),
    };
    let mut chats = db::page(&ctx.pool, me, archived, asof, after, Some(limit + 1)).await?;
    let more = chats.len() as i64 > limit;
    chats.truncate(limit as usize);
    flag_last_messages(ctx, me, &mut chats).await?;
    let next_cursor = match chats.last() {
        Some(last) if more => Some(encode_cursor(&Cursor {
            archived,
            asof,
            after: After {
                activity: last.activity,
                id: last.chat.id,
            },
        })),
        _ => None,
    };
    Ok(Page { chats, next_cursor })
}

/// Sets `blockedSender` on the last messages whose sender the caller blocked, as
/// history does (one cache read; none when no chat has a message).
async fn flag_last_messages(ctx: &Ctx, me: Uuid, chats: &mut [Listed]) -> ServiceResult<()> {
    let mut last: Vec<Message> = chats
        .iter_mut()
        .filter_map(|c| c.last_message.take())
        .collect();
    super::blocks::flag(&ctx.cache, &ctx.pool, me, &mut last).await?;
    let mut by_chat: HashMap<Uuid, Message> = last.into_iter().map(|m| (m.chat_id, m)).collect();
    for c in chats {
        c.last_message = by_chat.remove(&c.chat.id);
    }
    Ok(())
}

/// A change of settings: a field left `None` stays as it is; `muted_until:
/// Some(None)` unmutes.
pub use crate::db::chat_list::SettingsUpdate as SettingsChange;

/// The payload of `chat.settings`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ChatSettingsEvent)]
pub struct SettingsEvent {
    pub chat_id: Uuid,
    pub settings: ChatSettings,
}

/// Changes the caller's settings of a chat and announces them (`chat.settings`) to
/// every socket and stream of the caller, on every gateway.
pub async fn update_settings(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    change: SettingsChange,
) -> ServiceResult<ChatSettings> {
    let updated = db::update_settings(&ctx.pool, chat, me, change).await?;
    let Some(settings) = updated else {
        // Not a participant: the usual 404 (no chat) or 403.
        super::require_member(&ctx.pool, chat, me).await?;
        return Err(ServiceError::not_participant());
    };
    let payload = SettingsEvent {
        chat_id: chat,
        settings,
    };
    let event =
        Outgoing::to_users(EVENT_CHAT_SETTINGS, &payload, [me]).map_err(ServiceError::internal)?;
    ctx.cache.publish_events(&[event]).await?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let c = Cursor {
            archived: true,
            asof: DateTime::from_timestamp_micros(1_764_512_345_678_901).unwrap(),
            after: After {
                activity: DateTime::from_timestamp_micros(1_764_512_000_000_001).unwrap(),
                id: Uuid::now_v7(),
            },
        };
        let s = encode_cursor(&c);
        assert_eq!(decode_cursor(&s), Some(c));
        assert_eq!(decode_cursor("nope"), None);
        assert_eq!(decode_cursor(&"A".repeat(65)), None);
        let mut bytes = B64.decode(&s).unwrap();
        bytes[1] = 2;
        assert_eq!(decode_cursor(&B64.encode(&bytes)), None);
    }
}
