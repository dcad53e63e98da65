//! Notifications: a user's list (newest first, keyset-paged), marking them read, and
//! the ones an edit just created.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::mention::Notification;

const COLUMNS: &str = "id, type, chat_id, message_id, sender_id, excerpt, created_at, read_at";

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
    let mut rows: Vec<Notification> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications n
         WHERE user_id = $1 AND (NOT $2 OR read_at IS NULL)
           AND ($3::uuid IS NULL OR seq < (
                SELECT seq FROM notifications WHERE id = $3 AND user_id = $1))
           AND ($4::timestamptz IS NULL OR created_at < $4)
         ORDER BY seq DESC LIMIT $5"
    )))
    .bind(user)
    .bind(unread_only)
    .bind(id)
    .bind(time)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, has_more))
}

/// Whether `id` is one of `user`'s notifications.
pub async fn owns(pool: &PgPool, user: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM notifications WHERE id = $1 AND user_id = $2)")
        .bind(id)
        .bind(user)
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
    Ok(sqlx::query(
        "UPDATE notifications SET read_at = now()
         WHERE user_id = $1 AND read_at IS NULL AND ($2::uuid[] IS NULL OR id = ANY($2))",
    )
    .bind(user)
    .bind(ids)
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
    #[derive(sqlx::FromRow)]
    struct Row {
        user_id: Uuid,
        #[sqlx(flatten)]
        n: Notification,
    }
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT user_id, {COLUMNS} FROM notifications WHERE message_id = $1 AND user_id = ANY($2)"
    )))
    .bind(message)
    .bind(users)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.user_id, r.n)).collect())
}
