//! Moderation in PostgreSQL: the global role, bans (each change with its audit entry in
//! one transaction), and the moderator's delete as the worker applies it.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    audit::{self, AuditEntry},
    lifecycle::{Tx, delete},
};
use crate::domain::{
    lifecycle::{Effect, LifecycleCommand},
    message::Rejection,
    moderation::{AuditAction, DeletedBy, GlobalRole},
};

/// The global role of `user`; `None` if there is no such user.
pub async fn role(pool: &PgPool, user: Uuid) -> Result<Option<GlobalRole>, sqlx::Error> {
    let role = sqlx::query_scalar!("SELECT role FROM users WHERE id = $1", user)
        .fetch_optional(pool)
        .await?;
    Ok(role.map(|r| match r.as_str() {
        "admin" => GlobalRole::Admin,
        _ => GlobalRole::User,
    }))
}

/// What setting a role did.
#[derive(Debug)]
pub enum RoleChange {
    NoSuchUser,
    /// The user already had it; nothing recorded.
    Unchanged(Uuid),
    Changed(AuditEntry),
}

/// Gives the user named `username` the global role `role`, recorded as done by an
/// operator (the command line).
pub async fn set_role(
    pool: &PgPool,
    username: &str,
    role: GlobalRole,
) -> Result<RoleChange, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(user) = sqlx::query!(
        "SELECT id, role FROM users WHERE username = $1 FOR UPDATE",
        username
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(RoleChange::NoSuchUser);
    };
    if user.role == role.as_str() {
        return Ok(RoleChange::Unchanged(user.id));
    }
    sqlx::query!(
        "UPDATE users SET role = $2 WHERE id = $1",
        user.id,
        role.as_str()
    )
    .execute(&mut *tx)
    .await?;
    let action = match role {
        GlobalRole::Admin => AuditAction::GrantAdmin,
        GlobalRole::User => AuditAction::RevokeAdmin,
    };
    let details = json!({ "username": username, "role": role.as_str() });
    let entry = audit::record(&mut tx, None, action, user.id, details).await?;
    tx.commit().await?;
    Ok(RoleChange::Changed(entry))
}

/// A ban in force: until when (`None`: forever).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActiveBan {
    pub until: Option<DateTime<Utc>>,
}

/// The ban in force on `user`, if any.
pub async fn active_ban(pool: &PgPool, user: Uuid) -> Result<Option<ActiveBan>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT banned_until FROM users
         WHERE id = $1 AND banned_at IS NOT NULL
           AND (banned_until IS NULL OR banned_until > now())",
        user,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| ActiveBan {
        until: r.banned_until,
    }))
}

/// Bans `user` (replacing a ban in force) by `admin`; `None` if there is no such user.
pub async fn ban(
    pool: &PgPool,
    admin: Uuid,
    user: Uuid,
    reason: &str,
    until: Option<DateTime<Utc>>,
) -> Result<Option<AuditEntry>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(username) = sqlx::query_scalar!(
        "UPDATE users SET banned_at = now(), banned_until = $2, ban_reason = $3 WHERE id = $1
         RETURNING username",
        user,
        until,
        reason,
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let details = json!({
        "username": username,
        "reason": reason,
        "until": until.map(|t| crate::domain::time::format(&t)),
    });
    let entry = audit::record(&mut tx, Some(admin), AuditAction::BanUser, user, details).await?;
    tx.commit().await?;
    Ok(Some(entry))
}

/// What lifting a ban did.
#[derive(Debug)]
pub enum Unban {
    NoSuchUser,
    /// There was no ban in force; nothing recorded.
    NotBanned,
    Lifted(AuditEntry),
}

/// Lifts the ban of `user` by `admin` (an expired one is cleared silently).
pub async fn unban(pool: &PgPool, admin: Uuid, user: Uuid) -> Result<Unban, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(before) = sqlx::query!(
        r#"SELECT username, ban_reason, banned_at IS NOT NULL
                  AND (banned_until IS NULL OR banned_until > now()) AS "in_force!"
           FROM users WHERE id = $1 FOR UPDATE"#,
        user,
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(Unban::NoSuchUser);
    };
    sqlx::query!(
        "UPDATE users SET banned_at = NULL, banned_until = NULL, ban_reason = NULL WHERE id = $1",
        user,
    )
    .execute(&mut *tx)
    .await?;
    if !before.in_force {
        tx.commit().await?;
        return Ok(Unban::NotBanned);
    }
    let details = json!({ "username": before.username, "reason": before.ban_reason });
    let entry = audit::record(&mut tx, Some(admin), AuditAction::UnbanUser, user, details).await?;
    tx.commit().await?;
    Ok(Unban::Lifted(entry))
}

/// A message as a moderator's delete or a report needs it.
#[derive(Debug, Clone)]
pub struct MessageRef {
    pub chat_id: Uuid,
    pub sender_id: Uuid,
    pub content: String,
    pub deleted: bool,
}

/// The message `id` in whichever chat it is.
pub async fn message(pool: &PgPool, id: Uuid) -> Result<Option<MessageRef>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT chat_id, sender_id, content, deleted_at IS NOT NULL AS "deleted!"
           FROM messages WHERE id = $1"#,
        id,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| MessageRef {
        chat_id: r.chat_id,
        sender_id: r.sender_id,
        content: r.content,
        deleted: r.deleted,
    }))
}

/// A moderator's delete: the actor must still be a global admin (checked again here,
/// like every right); they need not be a participant.
pub(super) async fn moderate(
    tx: &mut Tx<'_>,
    cmd: &LifecycleCommand,
    message_id: Uuid,
) -> Result<Result<Vec<Effect>, Rejection>, sqlx::Error> {
    let admin = sqlx::query_scalar!(
        r#"SELECT role = 'admin' AS "admin!" FROM users WHERE id = $1"#,
        cmd.actor_id,
    )
    .fetch_optional(&mut **tx)
    .await?;
    if admin != Some(true) {
        return Ok(Err(Rejection::Forbidden));
    }
    let target = sqlx::query!(
        "SELECT sequence, deleted_at FROM messages WHERE id = $1 AND chat_id = $2 FOR UPDATE",
        message_id,
        cmd.chat_id,
    )
    .fetch_optional(&mut **tx)
    .await?;
    let Some(target) = target else {
        return Ok(Err(Rejection::MessageGone));
    };
    if target.deleted_at.is_some() {
        return Ok(Ok(Vec::new()));
    }
    let by = Some(DeletedBy::Moderator);
    let effects = delete(
        tx,
        cmd.chat_id,
        message_id,
        target.sequence,
        cmd.actor_id,
        by,
    )
    .await?;
    Ok(Ok(effects))
}
