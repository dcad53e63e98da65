//! Users.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::user::User;

/// A user as stored (`avatar_url` is minted from `avatar_upload_id` per read).
pub(super) struct UserRow {
    pub(super) id: Uuid,
    pub(super) username: String,
    pub(super) display_name: Option<String>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) bio: Option<String>,
    pub(super) avatar_upload_id: Option<Uuid>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            username: r.username,
            display_name: r.display_name,
            created_at: r.created_at,
            avatar_url: None,
            bio: r.bio,
            avatar: r.avatar_upload_id,
        }
    }
}

/// Inserts a user; `None` if the username is taken.
pub async fn insert(
    pool: &PgPool,
    username: &str,
    display_name: Option<&str>,
    password_hash: &str,
) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query_as!(
        UserRow,
        "INSERT INTO users (id, username, display_name, password_hash) VALUES ($1, $2, $3, $4)
         ON CONFLICT (username) DO NOTHING
         RETURNING id, username, display_name, created_at, bio, avatar_upload_id",
        Uuid::now_v7(),
        username,
        display_name,
        password_hash,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Into::into))
}

/// A user and its password hash, by username (a deleted account is no one).
pub async fn find_credentials(
    pool: &PgPool,
    username: &str,
) -> Result<Option<(User, String)>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT id, username, display_name, created_at, bio, avatar_upload_id, password_hash
         FROM users WHERE username = $1 AND deleted_at IS NULL",
        username,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| {
        let user = UserRow {
            id: r.id,
            username: r.username,
            display_name: r.display_name,
            created_at: r.created_at,
            bio: r.bio,
            avatar_upload_id: r.avatar_upload_id,
        };
        (user.into(), r.password_hash)
    }))
}

pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query_as!(
        UserRow,
        "SELECT id, username, display_name, created_at, bio, avatar_upload_id FROM users WHERE id = $1",
        id,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Into::into))
}

/// The ids among `ids` that are not users (or deleted accounts: nobody adds them).
pub async fn missing(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT i AS "i!" FROM UNNEST($1::uuid[]) AS i
           WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = i AND u.deleted_at IS NULL)"#,
        ids,
    )
    .fetch_all(pool)
    .await
}

/// Users who share at least one chat with `user` (not `user`).
pub async fn contacts(pool: &PgPool, user: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT DISTINCT p2.user_id FROM chat_participants p1
         JOIN chat_participants p2 ON p2.chat_id = p1.chat_id
         WHERE p1.user_id = $1 AND p2.user_id <> $1",
        user,
    )
    .fetch_all(pool)
    .await
}

/// Which of `ids` share at least one chat with `user`.
pub async fn sharing_a_chat(
    pool: &PgPool,
    user: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT DISTINCT p2.user_id FROM chat_participants p1
         JOIN chat_participants p2 ON p2.chat_id = p1.chat_id
         WHERE p1.user_id = $1 AND p2.user_id = ANY($2)",
        user,
        ids,
    )
    .fetch_all(pool)
    .await
}

/// When each of `ids` was last seen (users never seen are absent).
pub async fn last_seen(
    pool: &PgPool,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, DateTime<Utc>>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT id, last_seen_at AS "last_seen_at!" FROM users
           WHERE id = ANY($1) AND last_seen_at IS NOT NULL"#,
        ids,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.last_seen_at)).collect())
}

/// Records when users were last seen (never moves backwards).
pub async fn set_last_seen(
    pool: &PgPool,
    seen: &[(Uuid, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = seen.iter().map(|s| s.0).collect();
    let at: Vec<DateTime<Utc>> = seen.iter().map(|s| s.1).collect();
    sqlx::query!(
        "UPDATE users u SET last_seen_at = v.at
         FROM UNNEST($1::uuid[], $2::timestamptz[]) AS v(id, at)
         WHERE u.id = v.id AND (u.last_seen_at IS NULL OR u.last_seen_at < v.at)",
        &ids,
        &at,
    )
    .execute(pool)
    .await?;
    Ok(())
}
