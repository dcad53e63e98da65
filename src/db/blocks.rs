//! Blocks between users (`user_blocks`): the source of truth behind the Redis cache.

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::users::UserRow;
use crate::domain::user::User;

/// Records that `blocker` blocked `blocked` (nothing if it already did), in `tx`.
pub async fn add(
    tx: &mut Transaction<'_, Postgres>,
    blocker: Uuid,
    blocked: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO user_blocks (blocker_id, blocked_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
        blocker,
        blocked,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Lifts `blocker`'s block of `blocked` (nothing if there was none), in `tx`.
pub async fn remove(
    tx: &mut Transaction<'_, Postgres>,
    blocker: Uuid,
    blocked: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM user_blocks WHERE blocker_id = $1 AND blocked_id = $2",
        blocker,
        blocked,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The users `blocker` blocked, most recent block first.
pub async fn list(pool: &PgPool, blocker: Uuid) -> Result<Vec<User>, sqlx::Error> {
    let rows = sqlx::query_as!(
        UserRow,
        "SELECT u.id, u.username, u.display_name, u.created_at, u.bio, u.avatar_upload_id
         FROM user_blocks b JOIN users u ON u.id = b.blocked_id
         WHERE b.blocker_id = $1
         ORDER BY b.created_at DESC, u.id",
        blocker,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Whom `user` blocked, and who blocked `user`.
pub async fn relations(pool: &PgPool, user: Uuid) -> Result<(Vec<Uuid>, Vec<Uuid>), sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT blocked_id AS "other!", true AS "blocking!" FROM user_blocks WHERE blocker_id = $1
         UNION ALL
         SELECT blocker_id, false FROM user_blocks WHERE blocked_id = $1"#,
        user,
    )
    .fetch_all(pool)
    .await?;
    let (blocking, blockers): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.blocking);
    Ok((
        blocking.into_iter().map(|r| r.other).collect(),
        blockers.into_iter().map(|r| r.other).collect(),
    ))
}

/// A chat's type (`direct` or `group`) and, for a direct chat, its members; `None` if
/// there is no such chat.
pub async fn chat_shape(
    pool: &PgPool,
    chat: Uuid,
) -> Result<Option<(String, Vec<Uuid>)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT c.type,
                  coalesce(array_agg(p.user_id) FILTER (WHERE c.type = 'direct'
                                                        AND p.user_id IS NOT NULL), '{}')
                    AS "members!: Vec<Uuid>"
           FROM chats c LEFT JOIN chat_participants p ON p.chat_id = c.id
           WHERE c.id = $1 GROUP BY c.id, c.type"#,
        chat,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.r#type, r.members)))
}
