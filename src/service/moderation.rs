//! Moderation by admins (the global role `admin`): bans, the moderator's delete, the
//! role itself (granted at the command line), and the ban check of every login and
//! refresh. Each admin action commits with its audit entry and is then published as an
//! `admin.*` integration event (`audit`).

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    Ctx, ServiceError, ServiceResult, audit,
    lifecycle::CommandAccepted,
    revocation::{self, Which},
};
use crate::{
    db::{
        self,
        moderation::{RoleChange, Unban},
    },
    domain::{
        lifecycle::{LifecycleCommand, Op},
        moderation::{self as rules, GlobalRole, REVOKED_BANNED},
    },
};

/// `Forbidden` unless `user` has the global role `admin` (checked in PostgreSQL on
/// every admin request: a revoked role takes effect at once).
pub async fn require_admin(ctx: &Ctx, user: Uuid) -> ServiceResult<()> {
    match db::moderation::role(&ctx.pool, user).await? {
        Some(GlobalRole::Admin) => Ok(()),
        _ => Err(ServiceError::Forbidden("this needs the admin role".into())),
    }
}

/// `Banned` while a ban is in force on `user` (logins and refreshes ask).
pub async fn refuse_banned(pool: &PgPool, user: Uuid) -> ServiceResult<()> {
    match db::moderation::active_ban(pool, user).await? {
        Some(ban) => Err(ServiceError::Banned { until: ban.until }),
        None => Ok(()),
    }
}

/// What `courier admin grant|revoke` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleOutcome {
    Changed(Uuid),
    Unchanged(Uuid),
}

/// Gives the user named `username` the role `role` (the operator's command line): its
/// audit entry is published by an API process's relay.
pub async fn set_role(
    pool: &PgPool,
    username: &str,
    role: GlobalRole,
) -> ServiceResult<RoleOutcome> {
    match db::moderation::set_role(pool, username, role).await? {
        RoleChange::NoSuchUser => Err(ServiceError::NotFound(format!(
            "no user is named {username:?}"
        ))),
        RoleChange::Unchanged(id) => Ok(RoleOutcome::Unchanged(id)),
        RoleChange::Changed(entry) => Ok(RoleOutcome::Changed(entry.target_id)),
    }
}

/// A ban to impose.
pub struct Ban {
    pub reason: String,
    /// When it ends; `None`: never.
    pub until: Option<DateTime<Utc>>,
}

/// `admin` bans `user`: refuses their logins and refreshes (403 `banned`) until
/// `until`, and revokes every session at once (their sockets get `auth.revoked`
/// `{"reason": "banned"}`). An admin cannot ban themselves (400).
pub async fn ban(ctx: &Ctx, admin: Uuid, user: Uuid, ban: Ban) -> ServiceResult<()> {
    require_admin(ctx, admin).await?;
    let reason = rules::normalize_reason("reason", &ban.reason).map_err(ServiceError::Invalid)?;
    let until =
        rules::check_ban_end(ban.until, Utc::now()).map_err(|m| ServiceError::Invalid(m.into()))?;
    if user == admin {
        return Err(ServiceError::Invalid("you cannot ban yourself".into()));
    }
    let entry = db::moderation::ban(&ctx.pool, admin, user, &reason, until)
        .await?
        .ok_or_else(|| ServiceError::NotFound("user not found".into()))?;
    metrics::counter!("courier_bans_total").increment(1);
    // The ban is committed: logins and refreshes are refused from here on; now the
    // sessions it leaves open.
    let revoked = revocation::revoke(ctx, user, Which::AllBut(None), REVOKED_BANNED).await;
    audit::announce(&ctx.pool, &ctx.commands, &entry).await;
    revoked
}

/// `admin` lifts the ban of `user` (nothing to lift is fine: 204 as well).
pub async fn unban(ctx: &Ctx, admin: Uuid, user: Uuid) -> ServiceResult<()> {
    require_admin(ctx, admin).await?;
    match db::moderation::unban(&ctx.pool, admin, user).await? {
        Unban::NoSuchUser => Err(ServiceError::NotFound("user not found".into())),
        Unban::NotBanned => Ok(()),
        Unban::Lifted(entry) => {
            audit::announce(&ctx.pool, &ctx.commands, &entry).await;
            Ok(())
        }
    }
}

/// `admin` deletes message `id` in whichever chat it is, as a moderator: through the
/// chat's partition like every delete (the worker tombstones it, marks it
/// `deletedBy: "moderator"` and announces `chat.message.deleted`). The audit entry
/// commits only once the broker confirmed the command.
pub async fn delete_message(
    ctx: &Ctx,
    admin: Uuid,
    id: Uuid,
    request_id: &str,
) -> ServiceResult<CommandAccepted> {
    require_admin(ctx, admin).await?;
    let m = db::moderation::message(&ctx.pool, id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("message not found".into()))?;
    if m.deleted {
        return Err(ServiceError::NotFound("message was deleted".into()));
    }
    let cmd = LifecycleCommand {
        command_id: Uuid::now_v7(),
        chat_id: m.chat_id,
        actor_id: admin,
        op: Op::ModeratorDelete { message_id: id },
    };
    let details = json!({
        "chatId": m.chat_id,
        "senderId": m.sender_id,
        "brokerMessageId": cmd.command_id,
    });
    let mut tx = ctx.pool.begin().await?;
    let action = rules::AuditAction::DeleteMessage;
    let entry = db::audit::record(&mut tx, Some(admin), action, id, details).await?;
    ctx.commands
        .send(m.chat_id, cmd.command_id, &cmd, request_id)
        .await?;
    tx.commit().await?;
    audit::announce(&ctx.pool, &ctx.commands, &entry).await;
    Ok(CommandAccepted {
        broker_message_id: cmd.command_id,
    })
}
