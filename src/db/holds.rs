//! The chat holds of the worker's partitions (`worker::holds`): a chat whose head
//! command waits in a retry queue, and which queue.

use sqlx::PgPool;
use uuid::Uuid;

/// A stored hold.
#[derive(Debug, Clone, Copy)]
pub struct StoredHold {
    pub chat_id: Uuid,
    pub head: Uuid,
    pub delay_ms: i64,
    /// Seconds since the hold was taken (by the database's clock).
    pub age_secs: f64,
}

/// The holds of `partition`.
pub async fn of_partition(pool: &PgPool, partition: i32) -> Result<Vec<StoredHold>, sqlx::Error> {
    sqlx::query_as!(
        StoredHold,
        r#"SELECT chat_id, head, delay_ms, EXTRACT(EPOCH FROM now() - since)::float8 AS "age_secs!"
           FROM chat_holds WHERE partition = $1"#,
        partition,
    )
    .fetch_all(pool)
    .await
}

/// `chat` is held by `head` (of `partition`), waiting in the retry queue of `delay_ms`.
pub async fn put(
    pool: &PgPool,
    chat: Uuid,
    partition: i32,
    head: Uuid,
    delay_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO chat_holds (chat_id, partition, head, delay_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (chat_id) DO UPDATE
             SET partition = $2, head = $3, delay_ms = $4, since = now()",
        chat,
        partition,
        head,
        delay_ms,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Releases `chat` if `head` still holds it.
pub async fn release(pool: &PgPool, chat: Uuid, head: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM chat_holds WHERE chat_id = $1 AND head = $2",
        chat,
        head,
    )
    .execute(pool)
    .await?;
    Ok(())
}
