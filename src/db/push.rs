//! Push subscriptions (`push_subscriptions`): a device's Web Push subscription or FCM
//! registration token, owned by a user and registered under a session. One row per
//! (kind, endpoint): registering the same endpoint again updates it.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// A stored subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: Uuid,
    pub user_id: Uuid,
    /// The session it was registered under (`None` once that session was purged, or
    /// for a token issued before sessions existed).
    pub session_id: Option<Uuid>,
    /// `webpush` or `fcm`.
    pub kind: String,
    /// The Web Push endpoint URL, or the FCM registration token.
    pub endpoint: String,
    /// Web Push only: base64url (no padding) of the 65-byte uncompressed P-256 point.
    pub p256dh: Option<String>,
    /// Web Push only: base64url (no padding) of the 16-byte auth secret.
    pub auth: Option<String>,
    pub expiration_time: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a registration stores (checked by the use case).
#[derive(Debug, Clone, Copy)]
pub struct NewSubscription<'a> {
    pub kind: &'a str,
    pub endpoint: &'a str,
    pub p256dh: Option<&'a str>,
    pub auth: Option<&'a str>,
    pub expiration_time: Option<DateTime<Utc>>,
}

/// A registration's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    /// `false`: the endpoint was registered before and its row was updated.
    pub created: bool,
    /// Subscriptions of the user deleted to stay within the limit.
    pub evicted: u64,
}

/// Why a registration stored nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The user no longer exists, or deleted the account.
    NoUser,
    /// The session was revoked (before this registration could commit).
    SessionRevoked,
}

/// Registers `sub` for `user` under session `sid` (with the fresh id `id`), or updates
/// the row of its (kind, endpoint) — keys, expiration, session and owner — keeping the
/// user's newest `max_per_user` subscriptions (by last registration; the oldest go).
///
/// Serialised per user (a lock of the user's row) so the limit holds, and against a
/// revocation of the session (a share lock of its row): a revocation either commits
/// first (this refuses) or deletes this row when it commits.
pub async fn register(
    pool: &PgPool,
    id: Uuid,
    user: Uuid,
    sid: Option<Uuid>,
    sub: &NewSubscription<'_>,
    max_per_user: i64,
) -> Result<Result<Registered, Refused>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let live = sqlx::query_scalar!(
        r#"SELECT deleted_at IS NULL AS "live!" FROM users WHERE id = $1 FOR NO KEY UPDATE"#,
        user,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if live != Some(true) {
        return Ok(Err(Refused::NoUser));
    }
    let session = match sid {
        None => None,
        Some(sid) => {
            let revoked = sqlx::query_scalar!(
                r#"SELECT revoked_at IS NOT NULL AS "revoked!" FROM sessions
                   WHERE id = $1 AND user_id = $2 FOR SHARE"#,
                sid,
                user,
            )
            .fetch_optional(&mut *tx)
            .await?;
            match revoked {
                Some(true) => return Ok(Err(Refused::SessionRevoked)),
                Some(false) => Some(sid),
                // Purged, or never stored: the subscription has no session.
                None => None,
            }
        }
    };
    let row = sqlx::query!(
        r#"INSERT INTO push_subscriptions
             (id, user_id, session_id, kind, endpoint, p256dh, auth, expiration_time)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (kind, endpoint) DO UPDATE SET
             user_id = EXCLUDED.user_id, session_id = EXCLUDED.session_id,
             p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
             expiration_time = EXCLUDED.expiration_time, updated_at = now()
           RETURNING id, created_at, (xmax = 0) AS "created!""#,
        id,
        user,
        session,
        sub.kind,
        sub.endpoint,
        sub.p256dh,
        sub.auth,
        sub.expiration_time,
    )
    .fetch_one(&mut *tx)
    .await?;
    let evicted = sqlx::query!(
        "DELETE FROM push_subscriptions WHERE id IN (
           SELECT id FROM push_subscriptions WHERE user_id = $1
           ORDER BY updated_at DESC, id DESC OFFSET $2)",
        user,
        max_per_user,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Ok(Registered {
        id: row.id,
        created_at: row.created_at,
        created: row.created,
        evicted,
    }))
}

/// The subscriptions of `user`, newest first.
pub async fn list(pool: &PgPool, user: Uuid) -> Result<Vec<Stored>, sqlx::Error> {
    sqlx::query_as!(
        Stored,
        "SELECT id, user_id, session_id, kind, endpoint, p256dh, auth, expiration_time,
                created_at, updated_at
         FROM push_subscriptions WHERE user_id = $1
         ORDER BY created_at DESC, id DESC",
        user,
    )
    .fetch_all(pool)
    .await
}

/// The subscriptions of every participant of `chat` except `sender` (a message's
/// recipients, for the pusher).
pub async fn of_chat(pool: &PgPool, chat: Uuid, sender: Uuid) -> Result<Vec<Stored>, sqlx::Error> {
    sqlx::query_as!(
        Stored,
        "SELECT s.id, s.user_id, s.session_id, s.kind, s.endpoint, s.p256dh, s.auth,
                s.expiration_time, s.created_at, s.updated_at
         FROM chat_participants p JOIN push_subscriptions s ON s.user_id = p.user_id
         WHERE p.chat_id = $1 AND p.user_id <> $2",
        chat,
        sender,
    )
    .fetch_all(pool)
    .await
}

/// One subscription, if it is still registered to `user`.
pub async fn of_user(pool: &PgPool, id: Uuid, user: Uuid) -> Result<Option<Stored>, sqlx::Error> {
    sqlx::query_as!(
        Stored,
        "SELECT id, user_id, session_id, kind, endpoint, p256dh, auth, expiration_time,
                created_at, updated_at
         FROM push_subscriptions WHERE id = $1 AND user_id = $2",
        id,
        user,
    )
    .fetch_optional(pool)
    .await
}

/// Deletes subscription `id` of `user`; `false` if `user` has no such subscription.
pub async fn delete(pool: &PgPool, id: Uuid, user: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2",
        id,
        user,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes subscription `id` whoever owns it (the pusher, when the push service says
/// the endpoint is gone); `false` if it was already deleted.
pub async fn prune(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!("DELETE FROM push_subscriptions WHERE id = $1", id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes the subscriptions registered under any of `sessions` (their revocation,
/// in its transaction); returns how many.
pub async fn delete_by_sessions<'e, E: sqlx::PgExecutor<'e>>(
    ex: E,
    sessions: &[Uuid],
) -> Result<u64, sqlx::Error> {
    if sessions.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query!(
        "DELETE FROM push_subscriptions WHERE session_id = ANY($1)",
        sessions,
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes every subscription of `user` (the deletion of the account, in its
/// transaction: the row stays, anonymized, so the foreign key does not cascade).
pub async fn delete_of_user<'e, E: sqlx::PgExecutor<'e>>(
    ex: E,
    user: Uuid,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("DELETE FROM push_subscriptions WHERE user_id = $1", user)
        .execute(ex)
        .await?;
    Ok(done.rows_affected())
}
