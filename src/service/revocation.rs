//! Revoking sessions: PostgreSQL first (the session, its reason and its refresh
//! tokens), then every process's near cache (the denylist by `sid` checked on every
//! authenticated request and handshake, in memory), then `auth.revoked` to the user's
//! gateways, which close that session's sockets and SSE streams.
//!
//! An access token of a revoked session is refused for as long as it could verify:
//! `JWT_EXPIRATION` plus `MARGIN`. A process whose near cache is not synced (its Redis
//! subscription is down or starting) asks PostgreSQL instead.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult};
use crate::{
    cache::{Cache, near::Change},
    db,
    domain::{
        events::{EVENT_REVOKED, Outgoing},
        session::Revoked,
    },
};

/// Kept beyond the access tokens' lifetime (their validation leeway, clock skew).
pub const MARGIN: Duration = Duration::from_secs(60);

/// The reason of a ban's revocations: their tokens get 403 `banned`.
pub use crate::domain::session::reason::BANNED;

/// How long a revoked session's access tokens may still verify.
pub fn window(lifetime: Duration) -> Duration {
    lifetime + MARGIN
}

/// Why session `sid` was revoked, if it was: the near cache (no I/O), else PostgreSQL.
pub async fn revoked_reason(
    pool: &PgPool,
    cache: &Cache,
    sid: Uuid,
) -> ServiceResult<Option<String>> {
    match cache.near.revoked(sid) {
        Some(known) => Ok(known),
        None => Ok(db::sessions::revoked_reason(pool, sid).await?),
    }
}

/// Whether session `sid` is revoked (see [`revoked_reason`]).
pub async fn is_revoked(pool: &PgPool, cache: &Cache, sid: Uuid) -> ServiceResult<bool> {
    Ok(revoked_reason(pool, cache, sid).await?.is_some())
}

/// Which sessions of a user to revoke.
#[derive(Debug, Clone, Copy)]
pub enum Which {
    /// This one (`NotFound` unless it is the user's).
    One(Uuid),
    /// Every one but this (all when `None`).
    AllBut(Option<Uuid>),
}

/// Revokes sessions of `user` for `reason` and closes their connections. `Unavailable`
/// when Redis could not carry the announcement (the revocation stands in PostgreSQL
/// and in this process; the others reload it within `near::RESYNC`; a retry announces
/// it again).
pub async fn revoke(ctx: &Ctx, user: Uuid, which: Which, reason: &str) -> ServiceResult<()> {
    let window = window(ctx.jwt.lifetime());
    let (only, keep) = match which {
        Which::One(id) => (Some(id), None),
        Which::AllBut(keep) => (None, keep),
    };
    let revoked = db::sessions::revoke(&ctx.pool, user, (only, keep), reason, window).await?;
    if revoked.is_empty() {
        return match which {
            Which::One(_) => Err(ServiceError::NotFound("session not found".into())),
            Which::AllBut(_) => Ok(()),
        };
    }
    ctx.cache.near.note_revoked(&revoked, window);
    let sids: Vec<Uuid> = revoked.iter().map(|(sid, _)| *sid).collect();
    let change = Change::Revoked {
        sids: revoked,
        ttl_secs: window.as_secs(),
    };
    if let Err(e) = ctx.cache.announce(&change).await {
        tracing::error!(error = %e, %user, "cannot announce revoked sessions to the other processes");
        return Err(ServiceError::Unavailable("redis"));
    }
    metrics::counter!("courier_sessions_revoked_total").increment(sids.len() as u64);
    let push = Revoked {
        reason: reason.to_string(),
        sids,
    };
    let event = Outgoing {
        data: serde_json::to_string(&push).map_err(ServiceError::internal)?,
        targets: vec![(user, EVENT_REVOKED)],
        ..Outgoing::default()
    };
    if let Err(e) = ctx.cache.publish_ephemeral(&[event]).await {
        // Denied already: the tokens are refused; open sockets stay until their tokens expire.
        tracing::error!(error = %e, %user, "cannot announce revoked sessions to the gateways");
        return Err(ServiceError::Unavailable("redis"));
    }
    Ok(())
}
