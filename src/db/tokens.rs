//! Refresh tokens: issue, rotate, and revoke a family on reuse.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::refresh;

/// What presenting a refresh token led to.
pub enum Rotation {
    /// Valid: `token` is the new refresh token of `user`, in the same family (the
    /// session).
    Rotated {
        user: Uuid,
        family: Uuid,
        token: String,
    },
    /// Unknown or expired.
    Invalid,
    /// Already used or revoked: the whole family has been revoked.
    Reused {
        /// The token's user (a banned user's revoked tokens are refused as banned).
        user: Uuid,
    },
}

/// Stores a new refresh token; returns the opaque token for the client.
pub async fn issue(
    pool: &PgPool,
    user: Uuid,
    family: Uuid,
    ttl: Duration,
) -> Result<String, sqlx::Error> {
    insert(pool, user, family, ttl).await
}

async fn insert<'e, E: sqlx::PgExecutor<'e>>(
    db: E,
    user: Uuid,
    family: Uuid,
    ttl: Duration,
) -> Result<String, sqlx::Error> {
    let token = refresh::generate();
    sqlx::query!(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
        Uuid::now_v7(),
        user,
        family,
        refresh::digest(&token),
        ttl.as_secs_f64(),
    )
    .execute(db)
    .await?;
    Ok(token)
}

/// Marks the presented token used and issues its successor, in one transaction under
/// a lock on the presented row: of concurrent uses one wins, and the others, waiting
/// on the lock, find it used and revoke the family, the successor included.
pub async fn rotate(pool: &PgPool, token: &str, ttl: Duration) -> Result<Rotation, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query!(
        r#"SELECT user_id, family_id,
                  (used_at IS NOT NULL OR revoked_at IS NOT NULL) AS "spent!",
                  expires_at < now() AS "expired!"
           FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE"#,
        refresh::digest(token),
    )
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| (r.user_id, r.family_id, r.spent, r.expired));
    let outcome = match row {
        None => Rotation::Invalid,
        Some((user, family, true, _)) => {
            sqlx::query!(
                "UPDATE refresh_tokens SET revoked_at = now()
                 WHERE family_id = $1 AND revoked_at IS NULL",
                family,
            )
            .execute(&mut *tx)
            .await?;
            tracing::warn!(%family, "refresh token reused: family revoked");
            Rotation::Reused { user }
        }
        Some((_, _, false, true)) => Rotation::Invalid,
        Some((user, family, false, false)) => {
            sqlx::query!(
                "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1",
                refresh::digest(token),
            )
            .execute(&mut *tx)
            .await?;
            let token = insert(&mut *tx, user, family, ttl).await?;
            Rotation::Rotated {
                user,
                family,
                token,
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Deletes refresh tokens that expired (they can only answer 401 anyway); returns how many.
pub async fn purge_expired(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("DELETE FROM refresh_tokens WHERE expires_at < now()")
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
