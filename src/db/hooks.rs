//! Incoming webhooks of a chat: created with a hashed token, listed, soft-deleted.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// A hook as its chat's participants see it (never its token).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Hook {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub name: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// A hook with what a post is checked against.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub name: String,
    pub token_hash: Vec<u8>,
}

pub async fn create(
    pool: &PgPool,
    chat: Uuid,
    name: &str,
    token_hash: &[u8],
    by: Uuid,
) -> Result<Hook, sqlx::Error> {
    sqlx::query_as!(
        Hook,
        "INSERT INTO chat_hooks (id, chat_id, name, token_hash, created_by) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, chat_id, name, created_by, created_at",
        Uuid::now_v7(),
        chat,
        name,
        token_hash,
        by,
    )
    .fetch_one(pool)
    .await
}

/// The chat's live hooks, oldest first.
pub async fn list(pool: &PgPool, chat: Uuid) -> Result<Vec<Hook>, sqlx::Error> {
    sqlx::query_as!(
        Hook,
        "SELECT id, chat_id, name, created_by, created_at FROM chat_hooks
         WHERE chat_id = $1 AND deleted_at IS NULL ORDER BY created_at, id",
        chat,
    )
    .fetch_all(pool)
    .await
}

/// Deletes a live hook of `chat`; false when there is none.
pub async fn delete(pool: &PgPool, chat: Uuid, hook: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query!(
        "UPDATE chat_hooks SET deleted_at = now()
         WHERE id = $1 AND chat_id = $2 AND deleted_at IS NULL",
        hook,
        chat,
    )
    .execute(pool)
    .await?
    .rows_affected()
        > 0)
}

/// A live hook's credentials.
pub async fn credentials(pool: &PgPool, hook: Uuid) -> Result<Option<Credentials>, sqlx::Error> {
    sqlx::query_as!(
        Credentials,
        "SELECT id, chat_id, name, token_hash FROM chat_hooks WHERE id = $1 AND deleted_at IS NULL",
        hook,
    )
    .fetch_optional(pool)
    .await
}
