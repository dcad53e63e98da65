//! Queries of the chat-be compatibility profile: e-mail accounts and the reference
//! backend's paged views of users and chats (rendered as JSON by PostgreSQL, in the
//! reference shape, one statement per page).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// A user as the reference backend shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Account {
    pub id: Uuid,
    pub username: String,
    pub email: Option<String>,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ACCOUNT: &str = "id, username, email, COALESCE(legacy_role, 'VISITOR') AS role, created_at,
     COALESCE(updated_at, created_at) AS updated_at";

/// What inserting an e-mail account came to.
#[derive(Debug)]
pub enum Inserted {
    Created(Account),
    EmailTaken,
    UsernameTaken,
}

pub async fn insert(
    pool: &PgPool,
    username: &str,
    email: &str,
    display_name: Option<&str>,
    password_hash: &str,
) -> Result<Inserted, sqlx::Error> {
    let row: Option<Account> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (id, username, email, display_name, password_hash, updated_at)
         VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT DO NOTHING RETURNING {ACCOUNT}"
    )))
    .bind(Uuid::now_v7())
    .bind(username)
    .bind(email)
    .bind(display_name)
    .bind(password_hash)
    .fetch_optional(pool)
    .await?;
    if let Some(a) = row {
        return Ok(Inserted::Created(a));
    }
    let taken: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)")
        .bind(email)
        .fetch_one(pool)
        .await?;
    Ok(if taken {
        Inserted::EmailTaken
    } else {
        Inserted::UsernameTaken
    })
}

/// An account and its password hash, by (normalized) e-mail.
pub async fn credentials(
    pool: &PgPool,
    email: &str,
) -> Result<Option<(Account, String)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        account: Account,
        password_hash: String,
    }
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT}, password_hash FROM users WHERE email = $1"
    )))
    .bind(email)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.account, r.password_hash)))
}

pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT} FROM users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Replaces a password hash (a bcrypt hash upgraded to Argon2id after a sign-in).
pub async fn set_password_hash(pool: &PgPool, id: Uuid, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// A page of users by creation time, and how many there are.
pub async fn users_page(
    pool: &PgPool,
    skip: i64,
    take: i64,
    descending: bool,
) -> Result<(Vec<Account>, i64), sqlx::Error> {
    let dir = if descending { "DESC" } else { "ASC" };
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT} FROM users ORDER BY created_at {dir}, id {dir} OFFSET $1 LIMIT $2"
    )))
    .bind(skip)
    .bind(take)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}

/// The ids of the chats `user` takes part in.
pub async fn room_ids(pool: &PgPool, user: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT chat_id FROM chat_participants WHERE user_id = $1 ORDER BY chat_id")
        .bind(user)
        .fetch_all(pool)
        .await
}

/// A page of `user`'s chats by activity (newest message, else creation), and how many
/// there are.
pub async fn chat_page(
    pool: &PgPool,
    user: Uuid,
    skip: i64,
    take: i64,
    descending: bool,
) -> Result<(Vec<Value>, i64), sqlx::Error> {
    let dir = if descending { "DESC" } else { "ASC" };
    let ids: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT c.id FROM chat_participants p JOIN chats c ON c.id = p.chat_id
         WHERE p.user_id = $1
         ORDER BY COALESCE(c.last_message_at, c.created_at) {dir}, c.id {dir}
         OFFSET $2 LIMIT $3"
    )))
    .bind(user)
    .bind(skip)
    .bind(take)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar("SELECT count(*) FROM chat_participants WHERE user_id = $1")
        .bind(user)
        .fetch_one(pool)
        .await?;
    Ok((chats(pool, &ids).await?, total))
}

/// ISO 8601 in UTC with milliseconds, as JavaScript's `toISOString()`.
const ISO: &str = r#"'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'"#;

/// The chats `ids` in the reference shape (`id`, `createdAt`, `updatedAt`, `name`,
/// `isGroup`, `participants` `[{id, name, updatedAt}]`, `lastMessage` when there is
/// one), in the order given.
pub async fn chats(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Value>, sqlx::Error> {
    let t = |col: &str| format!("to_char({col} AT TIME ZONE 'UTC', {ISO})");
    let sql = format!(
        "SELECT (jsonb_strip_nulls(jsonb_build_object(
             'id', c.id,
             'createdAt', {created},
             'updatedAt', {updated},
             'isGroup', c.type = 'group',
             'participants', (
                 SELECT COALESCE(jsonb_agg(jsonb_build_object(
                     'id', u.id, 'name', COALESCE(u.email, u.username),
                     'updatedAt', {joined}) ORDER BY p.joined_at, u.id), '[]'::jsonb)
                 FROM chat_participants p JOIN users u ON u.id = p.user_id
                 WHERE p.chat_id = c.id),
             'lastMessage', (
                 SELECT jsonb_build_object(
                     'messageType', CASE
                         WHEN NOT EXISTS (SELECT 1 FROM message_attachments a WHERE a.message_id = m.id)
                             THEN 'TEXT'
                         WHEN m.content = '' THEN 'ATTACHMENT' ELSE 'MIXED' END,
                     'content', m.content,
                     'sentAt', {sent},
                     'senderEmail', s.email)
                 FROM messages m LEFT JOIN users s ON s.id = m.sender_id
                 WHERE m.chat_id = c.id AND m.deleted_at IS NULL
                 ORDER BY m.sequence DESC LIMIT 1)
           )) || jsonb_build_object('name', c.title))::text
         FROM UNNEST($1::uuid[]) WITH ORDINALITY AS i(id, n)
         JOIN chats c ON c.id = i.id
         ORDER BY i.n",
        created = t("c.created_at"),
        updated = t("COALESCE(c.last_message_at, c.created_at)"),
        joined = t("p.joined_at"),
        sent = t("m.sent_at"),
    );
    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| serde_json::from_str(r).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .collect()
}

/// The chat's newest sequence (`None`: no such chat).
pub async fn last_sequence(pool: &PgPool, chat: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT last_sequence FROM chats WHERE id = $1")
        .bind(chat)
        .fetch_optional(pool)
        .await
}
