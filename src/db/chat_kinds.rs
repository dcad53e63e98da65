//! Which chats are groups (a chat's type never changes, so callers may keep the answer).

use sqlx::PgPool;
use uuid::Uuid;

/// Each existing chat among `chats`, with whether it is a group.
pub async fn kinds(pool: &PgPool, chats: &[Uuid]) -> Result<Vec<(Uuid, bool)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT id, type = 'group' AS "group!" FROM chats WHERE id = ANY($1)"#,
        chats
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.group)).collect())
}
