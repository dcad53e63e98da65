//! Notifications: a user's list (newest first, keyset-paged), marking them read, and
//! the ones an edit just created.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::mention::Notification;

/// Where a page of notifications starts.
#[derive(Debug, Clone, Copy)]
pub enum Before {
    Newest,
    /// Older than this notification of the user's.
    Id(Uuid),
    /// Created before this time.
    Time(DateTime<Utc>),
}

/// A page of `user`'s notifications, newest first, and whether more are older.
pub async fn list(
    pool: &PgPool,
    user: Uuid,
    unread_only: bool,
    before: Before,
    limit: i64,
) -> Result<(Vec<Notification>, bool), sqlx::Error> {
    let (id, time) = match before {
        Before::Newest => (None, None),
        Before::Id(id) => (Some(id), None),
        Before::Time(t) => (None, Some(t)),
    };
    let mut rows = sqlx::query_as!(
        Notification,
        r#"SELECT id, type AS kind, chat_id, message_id, sender_id, excerpt, created_at, read_at
           FROM notifications n
           WHERE user_id = $1 AND (NOT $2 OR read_at IS NULL)
             AND ($3::uuid IS NULL OR seq < (
                  SELECT seq FROM notifications WHERE id = $3 AND user_id = $1))
             AND ($4::timestamptz IS NULL OR created_at < $4)
           ORDER BY seq DESC LIMIT $5"#,
        user,
        unread_only,
        id,
        time,
        limit + 1,
    )
    .fetch_all(pool)
    .await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, has_more))
}

/// Whether `id` is one of `user`'s notifications.
pub async fn owns(pool: &PgPool, user: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM notifications WHERE id = $1 AND user_id = $2) AS "owns!""#,
        id,
        user,
    )
    .fetch_one(pool)
    .await
}

/// Marks `user`'s notifications read: the given ones, or all (`None`). Others'
/// notifications among the ids are left alone.
pub async fn mark_read(
    pool: &PgPool,
    user: Uuid,
    ids: Option<&[Uuid]>,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        "UPDATE notifications SET read_at = now()
         WHERE user_id = $1 AND read_at IS NULL AND ($2::uuid[] IS NULL OR id = ANY($2))",
        user,
        ids,
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// The notifications `message` gave `users`, with whom each is for.
pub async fn of_message(
    pool: &PgPool,
    message: Uuid,
    users: &[Uuid],
) -> Result<Vec<(Uuid, Notification)>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT user_id, id, type AS kind, chat_id, message_id, sender_id, excerpt, created_at, read_at
         FROM notifications WHERE message_id = $1 AND user_id = ANY($2)",
        message,
        users,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let n = Notification {
                id: r.id,
                kind: r.kind,
                chat_id: r.chat_id,
                message_id: r.message_id,
                sender_id: r.sender_id,
                excerpt: r.excerpt,
                created_at: r.created_at,
                read_at: r.read_at,
            };
            (r.user_id, n)
        })
        .collect())
}
