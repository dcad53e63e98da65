//! The reference backend's paged reads (`page`, `take`, `order`) over Courier's use
//! cases, for the chat-be compatibility profile.
//!
//! History pages are computed from sequences: a chat's sequences run 1..=lastSequence
//! without gaps (deleted messages stay as tombstones), so page `p` of `take` is a
//! sequence range and the read is the same keyset read as Courier's own history.

use std::collections::HashSet;

use serde_json::Value;
use uuid::Uuid;

use super::{
    Ctx, ServiceError, ServiceResult,
    accounts::Account,
    blocks,
    messages::{self, Cursor},
};
use crate::{
    db::compat as db,
    domain::{compat::PageOptions, message::Message},
};

/// A page of a chat's messages (ascending by sequence, or descending with `DESC`)
/// and the chat's message count.
pub async fn history(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    opts: PageOptions,
) -> ServiceResult<(Vec<Message>, i64)> {
    let last = db::last_sequence(&ctx.pool, chat)
        .await?
        .ok_or_else(|| ServiceError::NotFound("chat not found".into()))?;
    let skip = opts.skip();
    let cursor = if opts.descending {
        Cursor::Before((last - skip + 1).max(0))
    } else {
        Cursor::After(skip.min(last))
    };
    let (mut page, _) = messages::history(ctx, me, chat, cursor, opts.take).await?;
    if opts.descending {
        page.reverse();
    }
    Ok((page, last))
}

/// A page of the caller's chats (reference shape) and how many they have; a
/// `lastMessage` whose sender the caller blocked carries `blockedSender: true`.
pub async fn chats(ctx: &Ctx, me: Uuid, opts: PageOptions) -> ServiceResult<(Vec<Value>, i64)> {
    let (mut chats, total) =
        db::chat_page(&ctx.pool, me, opts.skip(), opts.take, opts.descending).await?;
    let has_last = chats.iter().any(|c| c.get("lastMessage").is_some());
    if has_last {
        let relations = blocks::relations(&ctx.cache, &ctx.pool, me).await?;
        for c in &mut chats {
            flag_preview(c, &relations.blocking);
        }
    }
    Ok((chats, total))
}

/// `blockedSender: true` on a chat's `lastMessage` preview from a sender in `blocking`.
fn flag_preview(chat: &mut Value, blocking: &HashSet<Uuid>) {
    let Some(last) = chat.get_mut("lastMessage").and_then(Value::as_object_mut) else {
        return;
    };
    let sender = last.get("senderId").and_then(Value::as_str);
    if sender
        .and_then(|s| s.parse().ok())
        .is_some_and(|s| blocking.contains(&s))
    {
        last.insert("blockedSender".into(), Value::Bool(true));
    }
}

/// A page of all users and how many there are.
pub async fn users(ctx: &Ctx, opts: PageOptions) -> ServiceResult<(Vec<Account>, i64)> {
    let (rows, total) = db::users_page(&ctx.pool, opts.skip(), opts.take, opts.descending).await?;
    Ok((rows.into_iter().map(Into::into).collect(), total))
}

/// One chat in the reference shape.
pub async fn chat(ctx: &Ctx, id: Uuid) -> ServiceResult<Value> {
    db::chats(&ctx.pool, &[id])
        .await?
        .pop()
        .ok_or_else(|| ServiceError::NotFound("chat not found".into()))
}

/// The ids of the caller's chats.
pub async fn room_ids(ctx: &Ctx, me: Uuid) -> ServiceResult<Vec<Uuid>> {
    Ok(db::room_ids(&ctx.pool, me).await?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_a_preview_from_a_blocked_sender_is_flagged() {
        let (blocked, other) = (Uuid::new_v4(), Uuid::new_v4());
        let blocking = HashSet::from([blocked]);
        let mut from_blocked = json!({"id": "c", "lastMessage": {"senderId": blocked}});
        let mut from_other = json!({"id": "c", "lastMessage": {"senderId": other}});
        let mut empty = json!({"id": "c"});
        for c in [&mut from_blocked, &mut from_other, &mut empty] {
            flag_preview(c, &blocking);
        }
        assert_eq!(from_blocked["lastMessage"]["blockedSender"], true);
        assert!(from_other["lastMessage"].get("blockedSender").is_none());
        assert_eq!(empty, json!({"id": "c"}));
    }
}
