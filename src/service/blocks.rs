//! Blocking: `PUT`/`DELETE /users/:id/block`, `GET /users/me/blocks`, and the checks the
//! send path, direct chats, history, typing and presence make, through the Redis cache
//! of blocks (PostgreSQL behind it on a miss).
//!
//! Direct chats are closed both ways: once either user blocked the other, neither can
//! send into their direct chat nor open one (403 `blocked`), so a blocker cannot keep
//! messaging someone who can no longer answer. In groups both still send; the blocker's
//! copies of the blocked user's messages carry `blockedSender: true`.

use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult};
use crate::{
    cache::{Cache, blocks::Relations, membership::LookupError},
    db,
    domain::{message::Message, user::User},
};

/// The message of a refused send or direct chat.
pub const BLOCKED: &str = "a block stands between you and this user";

/// `me` blocks `other` (idempotent): 400 for oneself, 404 for an unknown user.
pub async fn block(ctx: &Ctx, me: Uuid, other: Uuid) -> ServiceResult<()> {
    change(ctx, me, other, true).await
}

/// `me` lifts its block of `other` (idempotent).
pub async fn unblock(ctx: &Ctx, me: Uuid, other: Uuid) -> ServiceResult<()> {
    change(ctx, me, other, false).await
}

async fn change(ctx: &Ctx, me: Uuid, other: Uuid, blocking: bool) -> ServiceResult<()> {
    if me == other {
        return Err(ServiceError::Invalid("you cannot block yourself".into()));
    }
    if db::users::find(&ctx.pool, other).await?.is_none() {
        return Err(ServiceError::NotFound("user not found".into()));
    }
    let mut tx = ctx.pool.begin().await?;
    if blocking {
        db::blocks::add(&mut tx, me, other).await?;
    } else {
        db::blocks::remove(&mut tx, me, other).await?;
    }
    // Before the commit (a Redis failure aborts the change) and after it (a fill that
    // read PostgreSQL in between does not survive).
    ctx.cache.invalidate_blocks(&[me, other]).await?;
    tx.commit().await?;
    ctx.cache.invalidate_blocks(&[me, other]).await?;
    Ok(())
}

/// The users `me` blocked, most recent first.
pub async fn list(ctx: &Ctx, me: Uuid) -> ServiceResult<Vec<User>> {
    let mut users = db::blocks::list(&ctx.pool, me).await?;
    super::profiles::sign_users(&ctx.storage, &mut users).await;
    Ok(users)
}

/// `user`'s blocks both ways: from the cache, from PostgreSQL alone while Redis is
/// unreachable.
pub async fn relations(cache: &Cache, pool: &sqlx::PgPool, user: Uuid) -> ServiceResult<Relations> {
    match cache.blocks_of(pool, user).await {
        Ok(r) => Ok(r),
        Err(LookupError::Redis(e)) => {
            tracing::warn!(error = %e, "blocks cache unreachable; asking PostgreSQL");
            let (blocking, blockers) = db::blocks::relations(pool, user).await?;
            Ok(Relations {
                blocking: blocking.into_iter().collect(),
                blockers: blockers.into_iter().collect(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// 403 `blocked` when a block stands between `me` and `other` (either way).
pub async fn refuse_if_blocked(ctx: &Ctx, me: Uuid, other: Uuid) -> ServiceResult<()> {
    let r = relations(&ctx.cache, &ctx.pool, me).await?;
    if r.blocking.contains(&other) || r.blockers.contains(&other) {
        return Err(ServiceError::Blocked(BLOCKED));
    }
    Ok(())
}

/// The send check when the cached state did not answer: for a direct chat, 403
/// `blocked` if a block stands between its two members. Fills the caches it read.
pub async fn check_direct_send(ctx: &Ctx, chat: Uuid, me: Uuid) -> ServiceResult<()> {
    let Some(kind) = db::blocks::chat_kind(&ctx.pool, chat).await? else {
        return Ok(());
    };
    if let Err(e) = ctx.cache.set_chat_kind(chat, &kind).await {
        tracing::warn!(error = %e, %chat, "could not cache the chat's type");
    }
    if kind != "direct" {
        return Ok(());
    }
    let members = match ctx.cache.members(&ctx.pool, &[chat]).await {
        Ok(mut m) => m.remove(&chat).unwrap_or_default(),
        Err(LookupError::Redis(_)) => db::chats::member_ids_settled(&ctx.pool, &[chat])
            .await?
            .remove(&chat)
            .unwrap_or_default(),
        Err(e) => return Err(e.into()),
    };
    for other in members.into_iter().filter(|u| *u != me) {
        refuse_if_blocked(ctx, me, other).await?;
    }
    Ok(())
}

/// Sets `blockedSender` on the messages whose sender `me` blocked (one cache read).
pub async fn flag(
    cache: &Cache,
    pool: &sqlx::PgPool,
    me: Uuid,
    messages: &mut [Message],
) -> ServiceResult<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let Relations { blocking, .. } = relations(cache, pool, me).await?;
    for m in messages.iter_mut() {
        m.blocked_sender = blocking.contains(&m.sender_id);
    }
    Ok(())
}

/// Whom `user` blocked: those who must not see `user`'s presence or typing.
pub async fn hidden_from(
    cache: &Cache,
    pool: &sqlx::PgPool,
    user: Uuid,
) -> ServiceResult<Vec<Uuid>> {
    Ok(relations(cache, pool, user)
        .await?
        .blocking
        .into_iter()
        .collect())
}
