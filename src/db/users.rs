//! Users.

use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::domain::user::User;

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    username: String,
    display_name: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            username: r.username,
            display_name: r.display_name,
            created_at: r.created_at,
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
    let row: Option<UserRow> = sqlx::query_as(
        "INSERT INTO users (id, username, display_name, password_hash) VALUES ($1, $2, $3, $4)
         ON CONFLICT (username) DO NOTHING
         RETURNING id, username, display_name, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(username)
    .bind(display_name)
    .bind(password_hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Into::into))
}

/// A user and its password hash, by username.
pub async fn find_credentials(
    pool: &PgPool,
    username: &str,
) -> Result<Option<(User, String)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, username, display_name, created_at, password_hash FROM users WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        let hash: String = r.try_get("password_hash")?;
        let user = User {
            id: r.try_get("id")?,
            username: r.try_get("username")?,
            display_name: r.try_get("display_name")?,
            created_at: r.try_get("created_at")?,
        };
        Ok((user, hash))
    })
    .transpose()
}

pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    let row: Option<UserRow> =
        sqlx::query_as("SELECT id, username, display_name, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(Into::into))
}

/// The ids among `ids` that are not users.
pub async fn missing(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT i FROM UNNEST($1::uuid[]) AS i WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = i)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}
