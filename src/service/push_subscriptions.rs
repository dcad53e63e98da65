//! Push subscriptions: the devices of a user that get push notifications while the
//! user has no live connection (`/push/subscriptions`), and the VAPID public key a
//! browser subscribes with (`/push/vapid-public-key`).
//!
//! A subscription belongs to the user and is registered under the caller's session:
//! revoking that session deletes it (`db::sessions::revoke`). The same endpoint (or
//! FCM token) registered again updates its row — keys, expiration, session and owner —
//! so a browser endpoint belongs to whoever registered it last. A user keeps at most
//! `MAX_PER_USER`: registering one more deletes the least recently registered.

pub mod validate;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult, sessions::Caller};
use crate::db::{self, push::Refused};
use validate::Checked;
pub use validate::Kind;

/// Most subscriptions a user keeps; one more replaces the least recently registered
/// (browsers rotate endpoints and rarely unsubscribe the old one: refusing would lock
/// a user's new device out of push).
pub const MAX_PER_USER: i64 = 20;

/// What the registry needs of the push configuration.
#[derive(Debug, Clone, Default)]
pub struct PushSettings {
    /// `PUSH_VAPID_PUBLIC_KEY` (base64url), when Web Push is configured.
    pub vapid_public_key: Option<String>,
    /// `PUSH_ALLOW_HTTP_ENDPOINTS`: accept `http:` Web Push endpoints (tests' local
    /// receivers); otherwise only `https:`.
    pub allow_http_endpoints: bool,
}

impl PushSettings {
    /// The VAPID public key; `PushNotConfigured` without Web Push.
    pub fn public_key(&self) -> ServiceResult<&str> {
        self.vapid_public_key
            .as_deref()
            .filter(|k| !k.is_empty())
            .ok_or(ServiceError::PushNotConfigured)
    }
}

/// The application server key browsers subscribe with; `PushNotConfigured` without
/// Web Push.
pub fn vapid_public_key(ctx: &Ctx) -> ServiceResult<String> {
    ctx.push.public_key().map(str::to_string)
}

/// A registration's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    pub id: Uuid,
    pub kind: Kind,
    pub created_at: DateTime<Utc>,
    /// `false`: the endpoint (or token) was registered before; its row was updated.
    pub created: bool,
}

/// Registers a device of the caller from a registration body (a browser's
/// `PushSubscription.toJSON()`, or `{"type": "fcm", "token"}`): `Unprocessable` with
/// the first rule it breaks; `RateLimited` past `RATE_LIMIT_PUSH_SUBSCRIPTION_*`;
/// `SessionRevoked` when the caller's session was revoked meanwhile.
pub async fn register(
    ctx: &Ctx,
    caller: Caller,
    body: &serde_json::Value,
) -> ServiceResult<Registration> {
    let checked = validate::check(body, ctx.push.allow_http_endpoints)
        .map_err(ServiceError::Unprocessable)?;
    let name = format!("push_subscription:{}", caller.user);
    match ctx.cache.hit(&name, ctx.limits.push_subscriptions).await {
        Ok(None) => {}
        Ok(Some(retry_after_secs)) => {
            metrics::counter!("courier_rate_limited_total").increment(1);
            return Err(ServiceError::RateLimited { retry_after_secs });
        }
        // The limit is protection, not a dependency.
        Err(e) => tracing::warn!(error = %e, "push subscription rate limit check failed; allowing"),
    }
    let kind = checked.kind();
    let new = match &checked {
        Checked::WebPush {
            endpoint,
            p256dh,
            auth,
            expiration_time,
        } => db::push::NewSubscription {
            kind: kind.as_str(),
            endpoint,
            p256dh: Some(p256dh),
            auth: Some(auth),
            expiration_time: *expiration_time,
        },
        Checked::Fcm { token } => db::push::NewSubscription {
            kind: kind.as_str(),
            endpoint: token,
            p256dh: None,
            auth: None,
            expiration_time: None,
        },
    };
    let registered = db::push::register(
        &ctx.pool,
        Uuid::now_v7(),
        caller.user,
        caller.sid,
        &new,
        MAX_PER_USER,
    )
    .await?
    .map_err(|refused| match refused {
        Refused::NoUser => ServiceError::Unauthenticated,
        Refused::SessionRevoked => ServiceError::SessionRevoked,
    })?;
    if registered.evicted > 0 {
        tracing::info!(
            user = %caller.user,
            evicted = registered.evicted,
            "push subscriptions over the limit replaced"
        );
    }
    Ok(Registration {
        id: registered.id,
        kind,
        created_at: registered.created_at,
        created: registered.created,
    })
}

/// A subscription as `GET /push/subscriptions` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    pub id: Uuid,
    pub kind: Kind,
    /// The Web Push endpoint, or the FCM token.
    pub endpoint: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Registered under the caller's session.
    pub current: bool,
}

/// The caller's own subscriptions, newest first.
pub async fn list(ctx: &Ctx, caller: Caller) -> ServiceResult<Vec<SubscriptionInfo>> {
    let rows = db::push::list(&ctx.pool, caller.user).await?;
    rows.into_iter()
        .map(|r| {
            let kind = Kind::parse(&r.kind).ok_or_else(|| {
                ServiceError::internal(anyhow::anyhow!("push subscription kind {:?}", r.kind))
            })?;
            Ok(SubscriptionInfo {
                id: r.id,
                kind,
                current: r.session_id.is_some() && r.session_id == caller.sid,
                endpoint: r.endpoint,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
        })
        .collect()
}

/// Deletes one of the caller's subscriptions (`NotFound` for another user's).
pub async fn delete(ctx: &Ctx, caller: Caller, id: Uuid) -> ServiceResult<()> {
    if db::push::delete(&ctx.pool, id, caller.user).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound("push subscription not found".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_key_is_served_only_when_configured() {
        let none = PushSettings::default();
        assert_eq!(none.public_key().unwrap_err().code(), "push_not_configured");
        let empty = PushSettings {
            vapid_public_key: Some(String::new()),
            ..Default::default()
        };
        assert!(matches!(
            empty.public_key(),
            Err(ServiceError::PushNotConfigured)
        ));
        let set = PushSettings {
            vapid_public_key: Some("BPub".into()),
            allow_http_endpoints: false,
        };
        assert_eq!(set.public_key().unwrap(), "BPub");
    }
}
