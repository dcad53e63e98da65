//! Courier's own sign-in: register, log in with username and password, rotate a
//! refresh token, and the access tokens both API profiles hand out. Each login opens a
//! session (its id is the tokens' `sid` and the refresh tokens' family). Input is
//! checked here, once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult, account_deletion, accounts, no_nul, revocation};
use crate::{
    auth::password,
    db::{self, tokens::Rotation},
    domain::user::{User, validate_username},
};

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 64;

/// Where a login comes from, recorded on its session.
#[derive(Debug, Clone)]
pub struct Device {
    /// From the `deviceName` field or the `User-Agent` (`domain::session::device_name`).
    pub name: String,
    /// The client's address as seen through `TRUSTED_PROXIES`.
    pub ip: Option<String>,
}

/// The caller of an authenticated request: the user, and the session of the token
/// (`None` for a token issued before sessions existed).
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user: Uuid,
    pub sid: Option<Uuid>,
}

/// A signed-in user with a fresh token pair.
#[derive(Debug)]
pub struct Session {
    pub user: User,
    pub access: AccessToken,
    /// Opaque, single use: `refresh` rotates it.
    pub refresh_token: String,
}

/// A JWT for `Authorization: Bearer`, and its lifetime.
#[derive(Debug)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: Duration,
}

/// What registering needs; checked by `register`.
pub struct Registration {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
}

impl Registration {
    /// The first rule broken, fields in alphabetical order (as the contract reports
    /// them): display name, password, username. Returns the display name to store.
    fn check(&self) -> ServiceResult<Option<&str>> {
        if let Some(d) = &self.display_name
            && d.chars().count() > MAX_DISPLAY_NAME
        {
            return Err(ServiceError::Invalid(format!(
                "displayName must be at most {MAX_DISPLAY_NAME} characters"
            )));
        }
        if !password::valid_password(&self.password) {
            return Err(ServiceError::Invalid(password::PASSWORD_RULE.into()));
        }
        validate_username(&self.username).map_err(|e| {
            ServiceError::Invalid(e.message.map(|m| m.to_string()).unwrap_or_default())
        })?;
        if let Some(d) = &self.display_name {
            no_nul(d)?;
        }
        Ok(self
            .display_name
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty()))
    }
}

/// An access token for `user` in session `sid`.
pub fn access_token(ctx: &Ctx, user: Uuid, sid: Option<Uuid>) -> ServiceResult<AccessToken> {
    let token = ctx.jwt.issue(user, sid).map_err(ServiceError::internal)?;
    Ok(AccessToken {
        token,
        expires_in: ctx.jwt.lifetime(),
    })
}

/// The caller of a valid access token: `Unauthenticated` for an invalid one,
/// `SessionRevoked` when its session was revoked, `Banned` when a ban revoked it.
pub async fn authenticate(ctx: &Ctx, token: &str) -> ServiceResult<Caller> {
    let claims = ctx
        .jwt
        .verify_claims(token)
        .map_err(|_| ServiceError::Unauthenticated)?;
    if let Some(sid) = claims.sid
        && let Some(reason) = revocation::revoked_reason(&ctx.pool, &ctx.cache, sid).await?
    {
        return Err(if reason == revocation::BANNED {
            ServiceError::Banned { until: None }
        } else {
            ServiceError::SessionRevoked
        });
    }
    Ok(Caller {
        user: claims.sub,
        sid: claims.sid,
    })
}

/// Opens a session of `user` on `device`; returns its id (the chat-be profile's login,
/// which hands out access tokens only, uses it directly).
pub async fn start(ctx: &Ctx, user: Uuid, device: &Device) -> ServiceResult<Uuid> {
    // Every login (native or chat-be) opens a session here; a banned user's is refused.
    super::moderation::refuse_banned(&ctx.pool, user).await?;
    let sid = Uuid::now_v7();
    db::sessions::insert(&ctx.pool, sid, user, &device.name, device.ip.as_deref()).await?;
    Ok(sid)
}

async fn open(ctx: &Ctx, user: User, device: &Device) -> ServiceResult<Session> {
    let sid = start(ctx, user.id, device).await?;
    let refresh_token = db::tokens::issue(&ctx.pool, user.id, sid, ctx.refresh_ttl).await?;
    let access = access_token(ctx, user.id, Some(sid))?;
    Ok(Session {
        user: super::profiles::sign(&ctx.storage, user).await,
        access,
        refresh_token,
    })
}

/// Registers a user and signs them in; `Conflict` if the username is taken (by a
/// deleted account within `ACCOUNT_USERNAME_HOLD` too, and `deleted-*` always).
pub async fn register(ctx: &Ctx, r: Registration, device: &Device) -> ServiceResult<Session> {
    let display = r.check()?;
    let taken = || ServiceError::Conflict("username is already taken".into());
    if r.username.starts_with(account_deletion::RESERVED_PREFIX) {
        return Err(taken());
    }
    let hash = password::hash(r.password.clone()).await?;
    let mut user = db::users::insert(&ctx.pool, &r.username, display, &hash).await?;
    if user.is_none() && account_deletion::release_held(ctx, &r.username).await? {
        user = db::users::insert(&ctx.pool, &r.username, display, &hash).await?;
    }
    open(ctx, user.ok_or_else(taken)?, device).await
}

/// Signs in with username and password.
pub async fn login(
    ctx: &Ctx,
    username: &str,
    pass: String,
    device: &Device,
) -> ServiceResult<Session> {
    const WRONG: ServiceError = ServiceError::BadCredentials("invalid username or password");
    no_nul(username)?;
    let Some((user, hash)) = db::users::find_credentials(&ctx.pool, username).await? else {
        // Same work as a wrong password, so timing does not reveal which usernames exist.
        password::verify(pass, password::dummy_hash().await?).await?;
        return Err(WRONG);
    };
    // A bcrypt hash imported from the reference backend is upgraded on the way.
    if !accounts::check(ctx, user.id, pass, hash).await? {
        return Err(WRONG);
    }
    open(ctx, user, device).await
}

/// Exchanges a refresh token for a new pair in the same session (the presented one is
/// spent; a reused one revokes its whole family; a revoked session's is refused). The
/// session's last-seen time moves here, not on every request.
pub async fn refresh(ctx: &Ctx, token: &str) -> ServiceResult<Session> {
    match db::tokens::rotate(&ctx.pool, token, ctx.refresh_ttl).await? {
        Rotation::Rotated {
            user,
            family,
            token,
        } => {
            super::moderation::refuse_banned(&ctx.pool, user).await?;
            // A family from before sessions existed becomes a session here.
            if !db::sessions::touch(&ctx.pool, family, user).await? {
                return Err(ServiceError::BadCredentials("the session was revoked"));
            }
            let user = db::users::find(&ctx.pool, user)
                .await?
                .ok_or(ServiceError::Unauthenticated)?;
            let access = access_token(ctx, user.id, Some(family))?;
            Ok(Session {
                user: super::profiles::sign(&ctx.storage, user).await,
                access,
                refresh_token: token,
            })
        }
        Rotation::Invalid => Err(ServiceError::BadCredentials(
            "refresh token is invalid or expired",
        )),
        Rotation::Reused { user } => {
            // A ban revoked every refresh token: say so rather than "reused".
            super::moderation::refuse_banned(&ctx.pool, user).await?;
            Err(ServiceError::BadCredentials(
                "refresh token was already used; session revoked",
            ))
        }
    }
}

/// How often expired refresh tokens are deleted.
pub const TOKEN_PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes expired refresh tokens, and sessions unused for `refresh_ttl` (revoked ones
/// once out of the denylist's `window`), every `TOKEN_PURGE_EVERY` until `stop` (every
/// API instance may run it; it is idempotent).
pub async fn purge_expired_tokens(
    pool: sqlx::PgPool,
    refresh_ttl: Duration,
    window: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(TOKEN_PURGE_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match db::tokens::purge_expired(&pool).await {
            Ok(n) => metrics::counter!("courier_refresh_tokens_purged_total").increment(n),
            Err(e) => tracing::warn!(error = %e, "purging expired refresh tokens failed"),
        }
        match db::sessions::purge(&pool, refresh_ttl, window).await {
            Ok(n) => metrics::counter!("courier_sessions_purged_total").increment(n),
            Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
        }
    }
}

/// The limit an auth attempt counts against.
#[derive(Debug, Clone, Copy)]
pub enum AttemptLimit {
    /// `RATE_LIMIT_AUTH_PER_IP`: every attempt of one client.
    PerClient,
    /// `RATE_LIMIT_AUTH_PER_USERNAME`: one client's attempts on one account.
    PerAccount,
}

/// Counts an auth attempt under `key`: `RateLimited` once over the limit. A Redis
/// failure lets the attempt through: the limit is protection, not a dependency.
pub async fn count_attempt(ctx: &Ctx, key: &str, limit: AttemptLimit) -> ServiceResult<()> {
    let limit = match limit {
        AttemptLimit::PerClient => ctx.limits.auth_per_ip,
        AttemptLimit::PerAccount => ctx.limits.auth_per_username,
    };
    match ctx.cache.hit(key, limit).await {
        Ok(None) => Ok(()),
        Ok(Some(retry_after_secs)) => {
            metrics::counter!("courier_rate_limited_total").increment(1);
            Err(ServiceError::RateLimited { retry_after_secs })
        }
        Err(e) => {
            tracing::warn!(error = %e, limit = key, "rate limit check failed; allowing");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(username: &str, password: &str, display_name: Option<&str>) -> Registration {
        Registration {
            username: username.into(),
            password: password.into(),
            display_name: display_name.map(Into::into),
        }
    }

    fn message(r: Registration) -> String {
        r.check().map(|_| ()).unwrap_err().public_message()
    }

    #[test]
    fn registration_reports_the_first_field_alphabetically() {
        let long = "x".repeat(65);
        assert_eq!(
            message(reg("A", "short", Some(&long))),
            "displayName must be at most 64 characters"
        );
        assert_eq!(message(reg("A", "short", None)), password::PASSWORD_RULE);
        assert_eq!(
            message(reg("A", "password-123", None)),
            crate::domain::user::USERNAME_RULE
        );
        assert_eq!(
            message(reg("alice", "password-123", Some("a\0b"))),
            "text must not contain NUL characters"
        );
    }

    #[test]
    fn a_blank_display_name_is_none() {
        let r = reg("alice", "password-123", Some("  "));
        assert_eq!(r.check().unwrap(), None);
        let r = reg("alice", "password-123", Some(" Alice "));
        assert_eq!(r.check().unwrap(), Some("Alice"));
    }
}
