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
    let row = sqlx::query_as!(
        Account,
        r#"INSERT INTO users (id, username, email, display_name, password_hash, updated_at)
           VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT DO NOTHING
           RETURNING id, username, email, COALESCE(legacy_role, 'VISITOR') AS "role!",
                     created_at, COALESCE(updated_at, created_at) AS "updated_at!""#,
        Uuid::now_v7(),
        username,
        email,
        display_name,
        password_hash,
    )
    .fetch_optional(pool)
    .await?;
    if let Some(a) = row {
        return Ok(Inserted::Created(a));
    }
    let taken = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM users WHERE email = $1) AS "taken!""#,
        email,
    )
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
    let row = sqlx::query!(
        r#"SELECT id, username, email, COALESCE(legacy_role, 'VISITOR') AS "role!", created_at,
                  COALESCE(updated_at, created_at) AS "updated_at!", password_hash
           FROM users WHERE email = $1"#,
        email,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| {
        let account = Account {
            id: r.id,
            username: r.username,
            email: r.email,
            role: r.role,
            created_at: r.created_at,
            updated_at: r.updated_at,
        };
        (account, r.password_hash)
    }))
}

pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query_as!(
        Account,
        r#"SELECT id, username, email, COALESCE(legacy_role, 'VISITOR') AS "role!", created_at,
                  COALESCE(updated_at, created_at) AS "updated_at!"
           FROM users WHERE id = $1"#,
        id,
    )
    .fetch_optional(pool)
    .await
}

/// Replaces a password hash (a bcrypt hash upgraded to Argon2id after a sign-in).
pub async fn set_password_hash(pool: &PgPool, id: Uuid, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
        id,
        hash,
    )
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
    // One static statement per direction.
    let rows = if descending {
        sqlx::query_as!(
            Account,
            r#"SELECT id, username, email, COALESCE(legacy_role, 'VISITOR') AS "role!", created_at,
                      COALESCE(updated_at, created_at) AS "updated_at!"
               FROM users ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT $2"#,
            skip,
            take,
        )
        .fetch_all(pool)
        .await?
    } else {
        sqlx::query_as!(
            Account,
            r#"SELECT id, username, email, COALESCE(legacy_role, 'VISITOR') AS "role!", created_at,
                      COALESCE(updated_at, created_at) AS "updated_at!"
               FROM users ORDER BY created_at ASC, id ASC OFFSET $1 LIMIT $2"#,
            skip,
            take,
        )
        .fetch_all(pool)
        .await?
    };
    let total = sqlx::query_scalar!(r#"SELECT count(*) AS "total!" FROM users"#)
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}

/// The ids of the chats `user` takes part in.
pub async fn room_ids(pool: &PgPool, user: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT chat_id FROM chat_participants WHERE user_id = $1 ORDER BY chat_id",
        user,
    )
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
    // One static statement per direction.
    let ids = if descending {
        sqlx::query_scalar!(
            "SELECT c.id FROM chat_participants p JOIN chats c ON c.id = p.chat_id
             WHERE p.user_id = $1
             ORDER BY COALESCE(c.last_message_at, c.created_at) DESC, c.id DESC
             OFFSET $2 LIMIT $3",
            user,
            skip,
            take,
        )
        .fetch_all(pool)
        .await?
    } else {
        sqlx::query_scalar!(
            "SELECT c.id FROM chat_participants p JOIN chats c ON c.id = p.chat_id
             WHERE p.user_id = $1
             ORDER BY COALESCE(c.last_message_at, c.created_at) ASC, c.id ASC
             OFFSET $2 LIMIT $3",
            user,
            skip,
            take,
        )
        .fetch_all(pool)
        .await?
    };
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "total!" FROM chat_participants WHERE user_id = $1"#,
        user,
    )
    .fetch_one(pool)
    .await?;
    Ok((chats(pool, &ids).await?, total))
}

/// The chats `ids` in the reference shape (`id`, `createdAt`, `updatedAt`, `name`,
/// `isGroup`, `participants` `[{id, name, updatedAt}]`, `lastMessage` when there is
/// one, with Courier's `senderId` as an extra), in the order given. Times are ISO 8601 in UTC with milliseconds, as
/// JavaScript's `toISOString()`.
pub async fn chats(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Value>, sqlx::Error> {
    let rows = sqlx::query_scalar!(
        r#"SELECT (jsonb_strip_nulls(jsonb_build_object(
             'id', c.id,
             'createdAt', to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
             'updatedAt', to_char(COALESCE(c.last_message_at, c.created_at) AT TIME ZONE 'UTC',
                                  'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
             'isGroup', c.type = 'group',
             'participants', (
                 SELECT COALESCE(jsonb_agg(jsonb_build_object(
                     'id', u.id, 'name', COALESCE(u.email, u.username),
                     'updatedAt', to_char(p.joined_at AT TIME ZONE 'UTC',
                                          'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                     ORDER BY p.joined_at, u.id), '[]'::jsonb)
                 FROM chat_participants p JOIN users u ON u.id = p.user_id
                 WHERE p.chat_id = c.id),
             'lastMessage', (
                 SELECT jsonb_build_object(
                     'messageType', CASE
                         WHEN NOT EXISTS (SELECT 1 FROM message_attachments a WHERE a.message_id = m.id)
                             THEN 'TEXT'
                         WHEN m.content = '' THEN 'ATTACHMENT' ELSE 'MIXED' END,
                     'content', m.content,
                     'sentAt', to_char(m.sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                     'senderEmail', s.email,
                     'senderId', m.sender_id)
                 FROM messages m LEFT JOIN users s ON s.id = m.sender_id
                 WHERE m.chat_id = c.id AND m.deleted_at IS NULL
                 ORDER BY m.sequence DESC LIMIT 1)
           )) || jsonb_build_object('name', c.title))::text AS "chat!"
         FROM UNNEST($1::uuid[]) WITH ORDINALITY AS i(id, n)
         JOIN chats c ON c.id = i.id
         ORDER BY i.n"#,
        ids,
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| serde_json::from_str(r).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .collect()
}

/// The chat's newest sequence (`None`: no such chat).
pub async fn last_sequence(pool: &PgPool, chat: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!("SELECT last_sequence FROM chats WHERE id = $1", chat)
        .fetch_optional(pool)
        .await
}
