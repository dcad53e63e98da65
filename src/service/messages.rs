//! Sending and reading messages: the send use case (checked, then handed to the chat's
//! partition and confirmed), history, replies, pins and sync, as Message v2.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult, blocks, require_member, uploads};
use crate::{
    cache::{membership::LookupError, ratelimit::SendCheck},
    db,
    domain::message::{
        CONTENT_RULE, ForwardedFrom, Message, ReplyTo, SendCommand, excerpt, normalize_content,
    },
};

/// A message to send, as the client gave it.
#[derive(Debug, Clone, Default)]
pub struct SendInput {
    /// Required unless forwarding (then the source's content is used when absent) or
    /// attaching (then it may be absent or blank).
    pub content: Option<String>,
    pub client_message_id: Uuid,
    pub reply_to_id: Option<Uuid>,
    pub forward_of: Option<ForwardOf>,
    /// Upload ids (`POST /uploads`), at most 10.
    pub attachments: Vec<Uuid>,
}

/// The message to forward.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForwardOf {
    pub chat_id: Uuid,
    pub message_id: Uuid,
}

/// A command accepted by the broker.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SendAccepted)]
pub struct Accepted {
    pub broker_message_id: Uuid,
    pub client_message_id: Uuid,
}

/// The per-user send limit and the sender's membership of `chat`, in one Redis round
/// trip, then, in a direct chat, the blocks between its two users (403 `blocked`) from
/// the process's near cache. PostgreSQL is asked (404 vs 403, and the caches filled)
/// only when the cached state does not answer, and alone while Redis is unreachable
/// (sends go on).
pub async fn admit_send(ctx: &Ctx, chat: Uuid, me: Uuid) -> ServiceResult<()> {
    let name = format!("send:{me}");
    let check = match ctx
        .cache
        .check_send(&name, ctx.limits.sends, chat, me)
        .await
    {
        Ok(check) => check,
        Err(e) => {
            tracing::warn!(error = %e, %chat, "send check unreachable in Redis; asking PostgreSQL");
            SendCheck {
                retry_after_secs: None,
                cached_member: None,
            }
        }
    };
    if let Some(retry_after_secs) = check.retry_after_secs {
        metrics::counter!("courier_rate_limited_total").increment(1);
        return Err(ServiceError::RateLimited { retry_after_secs });
    }
    if check.cached_member != Some(true) {
        match ctx.cache.members(&ctx.pool, &[chat]).await {
            Ok(members) if members.get(&chat).is_some_and(|m| m.contains(&me)) => {}
            Ok(_) => {
                require_member(&ctx.pool, chat, me).await?;
            }
            Err(LookupError::Redis(e)) => {
                tracing::warn!(error = %e, %chat, "membership cache unreachable; asking PostgreSQL");
                require_member(&ctx.pool, chat, me).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    blocks::check_send(ctx, chat, me).await
}

/// Sends a message: `Accepted` once RabbitMQ confirmed the publish.
pub async fn send(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    input: SendInput,
    request_id: &str,
) -> ServiceResult<Accepted> {
    if input.reply_to_id.is_some() && input.forward_of.is_some() {
        return Err(ServiceError::Invalid(
            "use either replyToId or forwardOf, not both".into(),
        ));
    }
    super::uploads::check_count(&input.attachments)?;
    let attaching = !input.attachments.is_empty();
    let content = match (input.content.as_deref(), input.forward_of.is_some()) {
        (Some(c), _) if attaching && c.trim().is_empty() => Some(String::new()),
        (Some(c), _) => Some(normalize_content(c).map_err(|m| ServiceError::Invalid(m.into()))?),
        (None, true) => None,
        (None, false) if attaching => Some(String::new()),
        (None, false) => return Err(ServiceError::Invalid(CONTENT_RULE.into())),
    };
    admit_send(ctx, chat, me).await?;
    let attachments = super::uploads::resolve(ctx, me, &input.attachments).await?;
    let reply_to = match input.reply_to_id {
        None => None,
        Some(id) => Some(reply_target(ctx, chat, id).await?),
    };
    let (forwarded_from, content) = match input.forward_of {
        None => (None, content.unwrap_or_default()),
        Some(f) => {
            let (from, source) = forward_source(ctx, me, f).await?;
            (Some(from), content.unwrap_or(source))
        }
    };
    let cmd = SendCommand {
        broker_message_id: Uuid::now_v7(),
        chat_id: chat,
        sender_id: me,
        client_message_id: input.client_message_id,
        content,
        accepted_at: chrono::Utc::now(),
        reply_to,
        forwarded_from,
        bot: None,
        attachments,
    };
    ctx.commands
        .send(chat, cmd.broker_message_id, &cmd, request_id)
        .await?;
    Ok(Accepted {
        broker_message_id: cmd.broker_message_id,
        client_message_id: cmd.client_message_id,
    })
}

/// The message replied to: one of the same chat, not deleted (else 400).
async fn reply_target(ctx: &Ctx, chat: Uuid, id: Uuid) -> ServiceResult<ReplyTo> {
    match db::history::find(&ctx.pool, chat, id).await? {
        Some(m) if m.deleted_at.is_none() => Ok(ReplyTo {
            id,
            sender_id: m.sender_id,
            excerpt: excerpt(&m.content),
        }),
        Some(_) => Err(ServiceError::Invalid(
            "replyToId names a deleted message".into(),
        )),
        None => Err(ServiceError::Invalid(
            "replyToId must be a message of this chat".into(),
        )),
    }
}

/// The forwarded message and its content: the caller must take part in its chat (403).
async fn forward_source(
    ctx: &Ctx,
    me: Uuid,
    f: ForwardOf,
) -> ServiceResult<(ForwardedFrom, String)> {
    require_member(&ctx.pool, f.chat_id, me).await?;
    match db::history::find(&ctx.pool, f.chat_id, f.message_id).await? {
        Some(m) if m.deleted_at.is_none() => Ok((
            ForwardedFrom {
                chat_id: f.chat_id,
                message_id: f.message_id,
                sender_id: m.sender_id,
            },
            m.content,
        )),
        Some(_) => Err(ServiceError::Invalid(
            "forwardOf names a deleted message".into(),
        )),
        None => Err(ServiceError::Invalid(
            "forwardOf.messageId must be a message of forwardOf.chatId".into(),
        )),
    }
}

/// Which page of a chat's history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The newest messages.
    Newest,
    /// Those below this sequence.
    Before(i64),
    /// Those above this sequence.
    After(i64),
}

impl Cursor {
    /// The cursor of `before` / `after` (at most one, neither negative).
    pub fn new(before: Option<i64>, after: Option<i64>) -> ServiceResult<Self> {
        match (before, after) {
            (Some(_), Some(_)) => Err(ServiceError::Invalid(
                "use either before or after, not both".into(),
            )),
            (Some(b), None) if b >= 0 => Ok(Self::Before(b)),
            (None, Some(a)) if a >= 0 => Ok(Self::After(a)),
            (None, None) => Ok(Self::Newest),
            _ => Err(ServiceError::Invalid(
                "before and after must be non-negative".into(),
            )),
        }
    }

    fn to_db(self) -> db::history::Cursor {
        match self {
            Self::Newest => db::history::Cursor::Newest,
            Self::Before(s) => db::history::Cursor::Before(s),
            Self::After(s) => db::history::Cursor::After(s),
        }
    }
}

/// Messages per page unless asked: 50; at most 100.
pub fn page_limit(limit: Option<i64>) -> ServiceResult<i64> {
    let limit = limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ServiceError::Invalid("limit must be 1 to 100".into()));
    }
    Ok(limit)
}

/// A page of the chat's history as a client asks for it (`limit`, then the cursor
/// of `before` / `after`, are checked first).
pub async fn history_page(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<i64>,
) -> ServiceResult<(Vec<Message>, bool)> {
    let limit = page_limit(limit)?;
    let cursor = Cursor::new(before, after)?;
    history(ctx, me, chat, cursor, limit).await
}

/// A page of the chat's history.
pub async fn history(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    cursor: Cursor,
    limit: i64,
) -> ServiceResult<(Vec<Message>, bool)> {
    require_member(&ctx.pool, chat, me).await?;
    let (mut messages, more) =
        db::history::history(&ctx.pool, me, chat, cursor.to_db(), limit).await?;
    uploads::sign(&ctx.storage, &mut messages).await?;
    blocks::flag(&ctx.cache, &ctx.pool, me, &mut messages).await?;
    Ok((messages, more))
}

/// The replies to a message of the chat, ascending, above sequence `after` (0 unless
/// asked; `limit` as `page_limit`).
pub async fn replies(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    message: Uuid,
    after: Option<i64>,
    limit: Option<i64>,
) -> ServiceResult<(Vec<Message>, bool)> {
    let limit = page_limit(limit)?;
    let after = after.unwrap_or(0);
    if after < 0 {
        return Err(ServiceError::Invalid("after must be non-negative".into()));
    }
    require_member(&ctx.pool, chat, me).await?;
    if db::history::find(&ctx.pool, chat, message).await?.is_none() {
        return Err(ServiceError::NotFound("message not found".into()));
    }
    let (mut messages, more) =
        db::history::replies(&ctx.pool, me, chat, message, after, limit).await?;
    uploads::sign(&ctx.storage, &mut messages).await?;
    blocks::flag(&ctx.cache, &ctx.pool, me, &mut messages).await?;
    Ok((messages, more))
}

/// The chat's pinned messages.
pub async fn pins(ctx: &Ctx, me: Uuid, chat: Uuid) -> ServiceResult<Vec<Message>> {
    require_member(&ctx.pool, chat, me).await?;
    let mut messages = db::history::pinned(&ctx.pool, me, chat).await?;
    uploads::sign(&ctx.storage, &mut messages).await?;
    blocks::flag(&ctx.cache, &ctx.pool, me, &mut messages).await?;
    Ok(messages)
}

/// Most messages one `chat.sync` returns.
pub const SYNC_CAP: i64 = 500;

/// What was persisted after the given sequences in the user's chats, oldest first.
pub async fn sync(
    pool: &sqlx::PgPool,
    cache: &crate::cache::Cache,
    storage: &crate::storage::Storage,
    me: Uuid,
    seen: &[(Uuid, i64)],
) -> ServiceResult<(Vec<Message>, bool)> {
    let (mut messages, more) = db::history::since(pool, me, seen, SYNC_CAP).await?;
    uploads::sign(storage, &mut messages).await?;
    blocks::flag(cache, pool, me, &mut messages).await?;
    Ok((messages, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_and_limits_are_checked() {
        assert_eq!(Cursor::new(None, None).unwrap(), Cursor::Newest);
        assert_eq!(Cursor::new(Some(5), None).unwrap(), Cursor::Before(5));
        assert_eq!(Cursor::new(None, Some(0)).unwrap(), Cursor::After(0));
        let both = Cursor::new(Some(1), Some(2)).unwrap_err();
        assert_eq!(
            both.public_message(),
            "use either before or after, not both"
        );
        let negative = Cursor::new(Some(-1), None).unwrap_err();
        assert_eq!(
            negative.public_message(),
            "before and after must be non-negative"
        );
        assert_eq!(page_limit(None).unwrap(), 50);
        assert_eq!(page_limit(Some(100)).unwrap(), 100);
        for bad in [0, 101, -1] {
            assert_eq!(
                page_limit(Some(bad)).unwrap_err().code(),
                "validation_failed"
            );
        }
    }
}
