//! Presence: online while a user holds a connection on any gateway, offline a grace
//! period after the last one closed (or at once when its gateway's lease ran out).
//! `presence.update` goes to the users who share a chat; lookups are limited to
//! oneself and those users.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    cache::Cache,
    db,
    domain::events::{EVENT_PRESENCE, Outgoing},
    service::{ServiceError, ServiceResult},
};

/// Most users one bulk lookup may name.
pub const MAX_LOOKUP: usize = 500;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    pub user_id: Uuid,
    /// `online` or `offline`.
    #[schema(example = "online")]
    pub status: &'static str,
    /// Now for an online user; when the last connection closed for an offline one
    /// (null if never seen).
    #[serde(with = "crate::domain::time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// Records a new connection; announces `online` if the user was offline.
pub async fn connected(
    pool: &PgPool,
    cache: &Cache,
    gateway: &str,
    user: Uuid,
    conn: &str,
) -> redis::RedisResult<()> {
    if cache.register_conn(gateway, user, conn).await? {
        let p = Presence {
            user_id: user,
            status: "online",
            last_seen_at: Some(Utc::now()),
        };
        if let Err(e) = announce(pool, cache, &p).await {
            tracing::warn!(error = %e, %user, "could not announce presence");
        }
    }
    Ok(())
}

/// Sends `presence.update` to everyone who shares a chat with the user.
async fn announce(pool: &PgPool, cache: &Cache, p: &Presence) -> anyhow::Result<()> {
    let mut contacts = db::users::contacts(pool, p.user_id).await?;
    // Users this user blocked do not see their presence.
    let relations = super::blocks::relations(cache, pool, p.user_id).await?;
    contacts.retain(|u| !relations.blocking.contains(u));
    cache
        .publish_ephemeral(&[Outgoing::to_users(EVENT_PRESENCE, p, contacts)?])
        .await?;
    Ok(())
}

/// Every second: users whose grace ran out go offline (`lastSeenAt` stored, announced).
/// Every gateway runs it; each user is taken by one of them.
pub async fn sweep(pool: PgPool, cache: Cache, grace: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let gone = match cache.sweep_offline(grace).await {
            Ok(g) => g,
            Err(e) => {
                tracing::debug!(error = %e, "presence sweep failed");
                continue;
            }
        };
        if gone.is_empty() {
            continue;
        }
        let seen: Vec<(Uuid, DateTime<Utc>)> = gone
            .iter()
            .map(|(u, ms)| {
                (
                    *u,
                    Utc.timestamp_millis_opt(*ms)
                        .single()
                        .unwrap_or_else(Utc::now),
                )
            })
            .collect();
        if let Err(e) = db::users::set_last_seen(&pool, &seen).await {
            tracing::warn!(error = %e, "could not store lastSeenAt");
        }
        for (user, at) in seen {
            let p = Presence {
                user_id: user,
                status: "offline",
                last_seen_at: Some(at),
            };
            if let Err(e) = announce(&pool, &cache, &p).await {
                tracing::warn!(error = %e, %user, "could not announce presence");
            }
        }
    }
}

/// The presence of `users`, for `caller`: 403 unless each is the caller or shares a
/// chat with them; 400 over `MAX_LOOKUP`.
pub async fn lookup(
    ctx: &super::Ctx,
    caller: Uuid,
    users: &[Uuid],
) -> ServiceResult<Vec<Presence>> {
    let (pool, cache) = (&ctx.pool, &ctx.cache);
    if users.len() > MAX_LOOKUP {
        return Err(ServiceError::Invalid(format!(
            "at most {MAX_LOOKUP} userIds per request"
        )));
    }
    let others: Vec<Uuid> = users.iter().copied().filter(|u| *u != caller).collect();
    if !others.is_empty() {
        let visible = db::users::sharing_a_chat(pool, caller, &others).await?;
        if let Some(hidden) = others.iter().find(|u| !visible.contains(u)) {
            return Err(ServiceError::Forbidden(format!(
                "you share no chat with user {hidden}"
            )));
        }
    }
    let online = cache.online(users).await?;
    let seen = db::users::last_seen(pool, users).await?;
    // Those who blocked the caller look offline and never seen to them.
    let relations = super::blocks::relations(cache, pool, caller).await?;
    let blockers = &relations.blockers;
    let now = Utc::now();
    Ok(users
        .iter()
        .zip(online)
        .map(|(u, on)| match (on, blockers.contains(u)) {
            (_, true) => Presence {
                user_id: *u,
                status: "offline",
                last_seen_at: None,
            },
            (true, false) => Presence {
                user_id: *u,
                status: "online",
                last_seen_at: Some(now),
            },
            (false, false) => Presence {
                user_id: *u,
                status: "offline",
                last_seen_at: seen.get(u).copied(),
            },
        })
        .collect())
}

/// The presence of one user, for `caller` (as `lookup`).
pub async fn of(ctx: &super::Ctx, caller: Uuid, user: Uuid) -> ServiceResult<Presence> {
    lookup(ctx, caller, &[user])
        .await?
        .pop()
        .ok_or_else(|| ServiceError::NotFound("user not found".into()))
}
