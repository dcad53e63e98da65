//! Blocking: `PUT`/`DELETE /users/:id/block`, `GET /users/me/blocks`, and the checks the
//! send path, direct chats, history, typing and presence make, through the process's
//! near cache, then the Redis cache of blocks, then PostgreSQL. A send asks neither
//! Redis nor PostgreSQL anything for it once the near cache holds the chat's shape and
//! the sender's blocks.
//!
//! Direct chats are closed both ways: once either user blocked the other, neither can
//! send into their direct chat nor open one (403 `blocked`), so a blocker cannot keep
//! messaging someone who can no longer answer. In groups both still send; the blocker's
//! copies of the blocked user's messages carry `blockedSender: true`.

use std::sync::Arc;

use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult};
use crate::{
    cache::{
        Cache,
        blocks::Relations,
        membership::LookupError,
        near::{Change, Shape},
    },
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
    invalidate_before(ctx, &[me, other]).await?;
    tx.commit().await?;
    invalidate_after(ctx, &[me, other]).await;
    Ok(())
}

/// Before a change of `users`' blocks commits: drops the Redis copies and announces the
/// change to every process (a Redis failure aborts the change).
pub(super) async fn invalidate_before(ctx: &Ctx, users: &[Uuid]) -> ServiceResult<()> {
    ctx.cache.invalidate_blocks(users).await?;
    ctx.cache
        .announce(&Change::Blocks {
            users: users.to_vec(),
        })
        .await?;
    Ok(())
}

/// After it committed: drops this process's copies at once, then Redis's and every
/// process's again, so a fill that read PostgreSQL in between does not survive. A
/// failure is logged: the copies then expire within their TTLs (Redis 1 h, memory 60 s).
pub(super) async fn invalidate_after(ctx: &Ctx, users: &[Uuid]) {
    ctx.cache.near.forget_blocks(users);
    if let Err(e) = ctx.cache.invalidate_blocks(users).await {
        tracing::error!(error = %e, "cannot drop the cached blocks after their change");
    }
    let change = Change::Blocks {
        users: users.to_vec(),
    };
    if let Err(e) = ctx.cache.announce(&change).await {
        tracing::error!(error = %e, "cannot announce a block change after its commit");
    }
}

/// The users `me` blocked, most recent first.
pub async fn list(ctx: &Ctx, me: Uuid) -> ServiceResult<Vec<User>> {
    let mut users = db::blocks::list(&ctx.pool, me).await?;
    super::profiles::sign_users(&ctx.storage, &mut users).await;
    Ok(users)
}

/// `user`'s blocks both ways: from the near cache, else the Redis cache (then kept
/// near), from PostgreSQL alone while Redis is unreachable.
pub async fn relations(
    cache: &Cache,
    pool: &sqlx::PgPool,
    user: Uuid,
) -> ServiceResult<Arc<Relations>> {
    match cache.blocks_near(pool, &[user]).await {
        Ok(mut r) => Ok(r.remove(&user).unwrap_or_default()),
        Err(LookupError::Redis(e)) => {
            tracing::warn!(error = %e, "blocks cache unreachable; asking PostgreSQL");
            let (blocking, blockers) = db::blocks::relations(pool, user).await?;
            Ok(Arc::new(Relations {
                blocking: blocking.into_iter().collect(),
                blockers: blockers.into_iter().collect(),
            }))
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

/// The send check's block part, once the sender is known to be a member: nothing for
/// a group; for a direct chat, 403 `blocked` if a block stands between its two users.
/// The chat's shape is read from PostgreSQL once per process (it never changes).
pub async fn check_send(ctx: &Ctx, chat: Uuid, me: Uuid) -> ServiceResult<()> {
    let Some(shape) = ctx.cache.chat_shape(&ctx.pool, chat).await? else {
        return Ok(());
    };
    match shape {
        Shape::Group => Ok(()),
        Shape::Direct(pair) => match pair.into_iter().find(|u| *u != me) {
            Some(other) => refuse_if_blocked(ctx, me, other).await,
            None => Ok(()),
        },
    }
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
    let blocking = &relations(cache, pool, me).await?.blocking;
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
        .iter()
        .copied()
        .collect())
}
