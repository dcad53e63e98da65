//! A user's sessions (devices): listing them, logging one or all out, and changing the
//! password (which logs out every other session).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    Ctx, ServiceError, ServiceResult, accounts,
    revocation::{self, Which},
    sessions::Caller,
};
use crate::{auth::password, db, domain::session::reason};

/// A session as `GET /auth/sessions` shows it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: Uuid,
    pub device_name: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub ip: Option<String>,
    /// The session of the caller's token.
    pub current: bool,
}

/// The caller's live sessions, newest first.
pub async fn list(ctx: &Ctx, caller: Caller) -> ServiceResult<Vec<SessionInfo>> {
    let rows = db::sessions::list(&ctx.pool, caller.user, ctx.refresh_ttl).await?;
    Ok(rows
        .into_iter()
        .map(|r| SessionInfo {
            current: Some(r.id) == caller.sid,
            id: r.id,
            device_name: r.device_name,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            ip: r.ip,
        })
        .collect())
}

/// Revokes one of the caller's sessions (`NotFound` for another user's).
pub async fn revoke(ctx: &Ctx, caller: Caller, id: Uuid) -> ServiceResult<()> {
    revocation::revoke(ctx, caller.user, Which::One(id), reason::REVOKED).await
}

/// Revokes the caller's session (nothing for a token issued before sessions existed).
pub async fn logout(ctx: &Ctx, caller: Caller) -> ServiceResult<()> {
    match caller.sid {
        Some(sid) => revocation::revoke(ctx, caller.user, Which::One(sid), reason::LOGOUT).await,
        None => Ok(()),
    }
}

/// Revokes every session of the caller.
pub async fn logout_all(ctx: &Ctx, caller: Caller) -> ServiceResult<()> {
    revocation::revoke(ctx, caller.user, Which::AllBut(None), reason::LOGOUT_ALL).await
}

/// Changes the caller's password: the current one must match (`BadCredentials`), the
/// new one follows the register rule; every other session is revoked.
pub async fn change_password(
    ctx: &Ctx,
    caller: Caller,
    current: String,
    new: String,
) -> ServiceResult<()> {
    if !password::valid_password(&new) {
        return Err(ServiceError::Invalid(password::PASSWORD_RULE.into()));
    }
    let stored = db::sessions::password_hash(&ctx.pool, caller.user)
        .await?
        .ok_or(ServiceError::Unauthenticated)?;
    if !accounts::check(ctx, caller.user, current, stored).await? {
        return Err(ServiceError::BadCredentials("current password is wrong"));
    }
    let hash = password::hash(new).await?;
    db::compat::set_password_hash(&ctx.pool, caller.user, &hash).await?;
    revocation::revoke(
        ctx,
        caller.user,
        Which::AllBut(caller.sid),
        reason::PASSWORD_CHANGED,
    )
    .await
}
