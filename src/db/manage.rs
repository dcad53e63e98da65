//! Chat management writes, each inside the caller's transaction that holds the chat's
//! row lock, and the outbox of chat changes still to be announced.

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::chats::insert_participants;
use crate::domain::{
    chat::{ChatType, Role},
    lifecycle::LifecycleCommand,
};

pub type Tx<'a> = Transaction<'a, Postgres>;

/// Locks the chat's row; its type and the actor's role (`None`: not a participant),
/// or `None` if there is no such chat.
pub async fn lock(
    tx: &mut Tx<'_>,
    chat: Uuid,
    actor: Uuid,
) -> Result<Option<(ChatType, Option<Role>)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT c.type AS "kind: ChatType",
                  (SELECT role FROM chat_participants p WHERE p.chat_id = c.id AND p.user_id = $2)
                      AS "role: Role"
           FROM chats c WHERE c.id = $1 FOR UPDATE"#,
        chat,
        actor,
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| (r.kind, r.role)))
}

/// A participant's role, if they are one.
pub async fn role_of(tx: &mut Tx<'_>, chat: Uuid, user: Uuid) -> Result<Option<Role>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT role AS "role: Role" FROM chat_participants WHERE chat_id = $1 AND user_id = $2"#,
        chat,
        user,
    )
    .fetch_optional(&mut **tx)
    .await
}

pub async fn rename(tx: &mut Tx<'_>, chat: Uuid, title: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("UPDATE chats SET title = $2 WHERE id = $1", chat, title)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn set_role(
    tx: &mut Tx<'_>,
    chat: Uuid,
    user: Uuid,
    role: Role,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE chat_participants SET role = $3 WHERE chat_id = $1 AND user_id = $2",
        chat,
        user,
        role as _,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds users as members; returns those who were not participants yet.
pub async fn add(tx: &mut Tx<'_>, chat: Uuid, users: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    insert_participants(tx, chat, users, &vec![Role::Member; users.len()]).await
}

/// How many members the chat has (as this transaction sees it).
pub async fn member_count(tx: &mut Tx<'_>, chat: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM chat_participants WHERE chat_id = $1"#,
        chat
    )
    .fetch_one(&mut **tx)
    .await
}

/// Removes a participant; `false` if they were not one.
pub async fn remove(tx: &mut Tx<'_>, chat: Uuid, user: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM chat_participants WHERE chat_id = $1 AND user_id = $2",
        chat,
        user,
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a chat change to announce, in the changing transaction.
pub async fn record_change(tx: &mut Tx<'_>, cmd: &LifecycleCommand) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO chat_outbox (id, chat_id, command) VALUES ($1, $2, $3)",
        cmd.command_id,
        cmd.chat_id,
        sqlx::types::Json(cmd) as _,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The change was handed to the broker.
pub async fn forget_change(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM chat_outbox WHERE id = $1", id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Changes recorded more than `older_than_secs` ago and still not handed over (their
/// API process failed to publish or died), oldest first.
pub async fn stale_changes(
    pool: &PgPool,
    older_than_secs: i32,
    limit: i64,
) -> Result<Vec<LifecycleCommand>, sqlx::Error> {
    let rows = sqlx::query_scalar!(
        r#"SELECT command AS "command: sqlx::types::Json<LifecycleCommand>" FROM chat_outbox
           WHERE created_at < now() - make_interval(secs => $1)
           ORDER BY created_at LIMIT $2"#,
        f64::from(older_than_secs),
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|j| j.0).collect())
}
