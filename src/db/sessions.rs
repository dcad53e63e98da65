//! Sessions (one per login) and their revocation; a session's refresh tokens are the
//! family with its id.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// A session row as `GET /auth/sessions` shows it.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: Uuid,
    pub device_name: String,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// Records a new session of `user`.
pub async fn insert(
    pool: &PgPool,
    id: Uuid,
    user: Uuid,
    device_name: &str,
    ip: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO sessions (id, user_id, device_name, ip) VALUES ($1, $2, $3, $4)",
        id,
        user,
        device_name,
        ip,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks a refresh of session `id` (a refresh family from before sessions existed
/// becomes a session here). Returns `false` when the session is revoked.
pub async fn touch(pool: &PgPool, id: Uuid, user: Uuid) -> Result<bool, sqlx::Error> {
    let row = sqlx::query!(
        r#"INSERT INTO sessions (id, user_id, device_name) VALUES ($1, $2, 'unknown')
           ON CONFLICT (id) DO UPDATE SET last_seen_at = now()
           RETURNING revoked_at IS NULL AS "live!""#,
        id,
        user,
    )
    .fetch_one(pool)
    .await?;
    Ok(row.live)
}

/// The live sessions of `user` (not revoked, seen within `ttl`), newest first.
pub async fn list(
    pool: &PgPool,
    user: Uuid,
    ttl: std::time::Duration,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as!(
        SessionRow,
        "SELECT id, device_name, ip, created_at, last_seen_at FROM sessions
         WHERE user_id = $1 AND revoked_at IS NULL
           AND last_seen_at > now() - make_interval(secs => $2)
         ORDER BY created_at DESC, id DESC",
        user,
        ttl.as_secs_f64(),
    )
    .fetch_all(pool)
    .await
}

/// Revokes sessions of `user` for `reason`: `only` the one given, or every one except
/// `keep` (`None`: all). Their refresh tokens are revoked, and the push subscriptions
/// registered under them deleted, in the same transaction.
/// Returns the ids revoked now, and those revoked within `window` before (so a retry
/// after a failed announcement announces them again), each with its reason (a ban
/// overrides an earlier reason; any other keeps the first).
pub async fn revoke(
    pool: &PgPool,
    user: Uuid,
    (only, keep): (Option<Uuid>, Option<Uuid>),
    reason: &str,
    window: std::time::Duration,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query!(
        r#"UPDATE sessions SET revoked_at = coalesce(revoked_at, now()),
             revoke_reason = CASE WHEN revoked_at IS NULL OR revoke_reason IS NULL
                                    OR $5 = 'banned' THEN $5 ELSE revoke_reason END
         WHERE user_id = $1 AND ($2::uuid IS NULL OR id = $2)
           AND ($3::uuid IS NULL OR id <> $3)
           AND (revoked_at IS NULL OR revoked_at > now() - make_interval(secs => $4))
         RETURNING id, revoke_reason AS "reason!""#,
        user,
        only,
        keep,
        window.as_secs_f64(),
        reason,
    )
    .fetch_all(&mut *tx)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = now()
         WHERE user_id = $1 AND family_id = ANY($2) AND revoked_at IS NULL",
        user,
        &ids,
    )
    .execute(&mut *tx)
    .await?;
    super::push::delete_by_sessions(&mut *tx, &ids).await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(|r| (r.id, r.reason)).collect())
}

/// Why session `id` was revoked (`None` while it is not, or for an unknown one).
pub async fn revoked_reason(pool: &PgPool, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query_scalar!(
        r#"SELECT coalesce(revoke_reason, 'revoked') AS "reason!" FROM sessions
           WHERE id = $1 AND revoked_at IS NOT NULL"#,
        id,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// Sessions revoked within `window` (their access tokens may still be unexpired), with
/// their reason and how many seconds of the window each has left.
pub async fn recently_revoked(
    pool: &PgPool,
    window: std::time::Duration,
) -> Result<Vec<(Uuid, String, i64)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT id, coalesce(revoke_reason, 'revoked') AS "reason!",
                  ceil(extract(epoch FROM revoked_at + make_interval(secs => $1) - now()))::bigint AS "left!"
           FROM sessions WHERE revoked_at > now() - make_interval(secs => $1)"#,
        window.as_secs_f64(),
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.id, r.reason, r.left.max(1)))
        .collect())
}

/// Deletes sessions unused for `ttl` whose revocation (if any) is older than `window`.
pub async fn purge(
    pool: &PgPool,
    ttl: std::time::Duration,
    window: std::time::Duration,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM sessions WHERE last_seen_at < now() - make_interval(secs => $1)
           AND (revoked_at IS NULL OR revoked_at < now() - make_interval(secs => $2))",
        ttl.as_secs_f64(),
        window.as_secs_f64(),
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The password hash of `user`.
pub async fn password_hash(pool: &PgPool, user: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!("SELECT password_hash FROM users WHERE id = $1", user)
        .fetch_optional(pool)
        .await
}
