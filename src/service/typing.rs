//! Typing indicators: ephemeral `chat.typing` to the other participants' connections,
//! never stored and never echoed to the typist.

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    cache::Cache,
    domain::events::{EVENT_TYPING, GroupTarget, Outgoing},
    service::{ServiceError, ServiceResult},
};

/// Seconds after the last `isTyping: true` before `isTyping: false` follows by itself.
pub const TYPING_EXPIRY: std::time::Duration = std::time::Duration::from_secs(6);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Typing {
    chat_id: Uuid,
    user_id: Uuid,
    is_typing: bool,
}

/// Tells the other participants of `chat` that `user` is (or stopped) typing.
/// 403 if `user` is not a participant, 404 if there is no such chat.
pub async fn set(
    pool: &PgPool,
    cache: &Cache,
    chat: Uuid,
    user: Uuid,
    is_typing: bool,
) -> ServiceResult<()> {
    let group = cache.is_group(pool, chat).await?;
    let members = if group {
        // A group's member list is not read: whether the typist is one is enough.
        cache.members_among(pool, chat, &[user]).await?
    } else {
        cache
            .members(pool, &[chat])
            .await?
            .remove(&chat)
            .unwrap_or_default()
    };
    if !members.contains(&user) {
        super::require_member(pool, chat, user).await?;
        return Err(ServiceError::Forbidden(
            "you are not a participant of this chat".into(),
        ));
    }
    let payload = Typing {
        chat_id: chat,
        user_id: user,
        is_typing,
    };
    // Users the typist blocked do not see it type.
    let hidden = super::blocks::hidden_from(cache, pool, user).await?;
    let event = if group {
        let mut except = hidden.clone();
        except.push(user);
        Outgoing {
            chat: Some(chat),
            group: Some(GroupTarget {
                name: EVENT_TYPING,
                except,
            }),
            ..Outgoing::to_users(EVENT_TYPING, &payload, [])
                .map_err(|e| ServiceError::Internal(e.into()))?
        }
    } else {
        let others = members
            .iter()
            .copied()
            .filter(|u| *u != user && !hidden.contains(u));
        Outgoing::to_users(EVENT_TYPING, &payload, others)
            .map_err(|e| ServiceError::Internal(e.into()))?
    };
    cache.publish_ephemeral(&[event]).await?;
    Ok(())
}
