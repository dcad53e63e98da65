//! Revoking sessions: PostgreSQL first (the session and its refresh tokens), then the
//! Redis denylist by `sid` (checked on every authenticated request and handshake),
//! then `auth.revoked` to the user's gateways, which close that session's sockets and
//! SSE streams.
//!
//! A denylist entry lives as long as an access token could: `JWT_EXPIRATION` plus
//! `MARGIN`. When Redis lost the denylist (restart, flush) a check is answered from
//! PostgreSQL and re-seeds it; when Redis is unreachable, every check asks PostgreSQL.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult};
use crate::{
    cache::{Cache, revoked::Listed},
    db,
    domain::{
        events::{EVENT_REVOKED, Outgoing},
        session::Revoked,
    },
};

/// Kept beyond the access tokens' lifetime (their validation leeway, clock skew).
pub const MARGIN: Duration = Duration::from_secs(60);

/// How long a revoked session's access tokens may still verify.
pub fn window(lifetime: Duration) -> Duration {
    lifetime + MARGIN
}

/// Whether session `sid` is revoked: the denylist (one Redis round trip), else
/// PostgreSQL.
pub async fn is_revoked(
    pool: &PgPool,
    cache: &Cache,
    lifetime: Duration,
    sid: Uuid,
) -> ServiceResult<bool> {
    match cache.revoked(sid).await {
        Ok(Listed::Revoked) => Ok(true),
        Ok(Listed::NotRevoked) => Ok(false),
        Ok(Listed::Unknown) => {
            let revoked = db::sessions::is_revoked(pool, sid).await?;
            reseed(pool, cache, lifetime).await;
            Ok(revoked)
        }
        Err(e) => {
            tracing::warn!(error = %e, "denylist unreachable; checking the session in PostgreSQL");
            Ok(db::sessions::is_revoked(pool, sid).await?)
        }
    }
}

/// Writes every revocation of the window back to Redis and marks the denylist seeded.
async fn reseed(pool: &PgPool, cache: &Cache, lifetime: Duration) {
    let entries = match db::sessions::recently_revoked(pool, window(lifetime)).await {
        Ok(rows) => rows
            .into_iter()
            .map(|(id, left)| (id, Duration::from_secs(left.unsigned_abs())))
            .collect::<Vec<_>>(),
        Err(e) => return tracing::warn!(error = %e, "cannot read revoked sessions to re-seed"),
    };
    match cache.seed_revoked(&entries).await {
        Ok(()) => tracing::info!(sessions = entries.len(), "session denylist re-seeded"),
        Err(e) => tracing::warn!(error = %e, "cannot re-seed the session denylist"),
    }
}

/// Which sessions of a user to revoke.
#[derive(Debug, Clone, Copy)]
pub enum Which {
    /// This one (`NotFound` unless it is the user's).
    One(Uuid),
    /// Every one but this (all when `None`).
    AllBut(Option<Uuid>),
}

/// Revokes sessions of `user` and closes their connections. `Unavailable` when Redis
/// could not take the denylist entries (the revocation stands in PostgreSQL; a retry
/// lists them again).
pub async fn revoke(ctx: &Ctx, user: Uuid, which: Which, reason: &str) -> ServiceResult<()> {
    let window = window(ctx.jwt.lifetime());
    let (only, keep) = match which {
        Which::One(id) => (Some(id), None),
        Which::AllBut(keep) => (None, keep),
    };
    let sids = db::sessions::revoke(&ctx.pool, user, only, keep, window).await?;
    if sids.is_empty() {
        return match which {
            Which::One(_) => Err(ServiceError::NotFound("session not found".into())),
            Which::AllBut(_) => Ok(()),
        };
    }
    let entries: Vec<(Uuid, Duration)> = sids.iter().map(|s| (*s, window)).collect();
    if let Err(e) = ctx.cache.deny(&entries).await {
        tracing::error!(error = %e, %user, "cannot list revoked sessions in Redis");
        return Err(ServiceError::Unavailable("redis"));
    }
    metrics::counter!("courier_sessions_revoked_total").increment(sids.len() as u64);
    let push = Revoked {
        reason: reason.to_string(),
        sids,
    };
    let event = Outgoing {
        data: serde_json::to_string(&push).map_err(ServiceError::internal)?,
        chat: None,
        sequence: 0,
        targets: vec![(user, EVENT_REVOKED)],
    };
    if let Err(e) = ctx.cache.publish_ephemeral(&[event]).await {
        // Denied already: the tokens are refused; open sockets stay until their tokens expire.
        tracing::error!(error = %e, %user, "cannot announce revoked sessions to the gateways");
        return Err(ServiceError::Unavailable("redis"));
    }
    Ok(())
}
