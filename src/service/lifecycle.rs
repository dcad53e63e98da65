//! Edit, delete, react, pin: checked here (for the caller's error), then handed to
//! the chat's partition like sends, so every participant sees a chat's changes in one
//! order; the worker applies each once and checks the rights again.

use serde::Serialize;
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult, require_member};
use crate::{
    db,
    domain::{
        lifecycle::{
            EditDenied, LifecycleCommand, MAX_REACTIONS, Op, may_delete, may_edit, may_pin,
            validate_emoji,
        },
        message::{Message, normalize_content},
    },
};

/// A lifecycle command the broker confirmed.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandAccepted {
    pub broker_message_id: Uuid,
}

async fn target(ctx: &Ctx, chat: Uuid, message: Uuid) -> ServiceResult<Message> {
    db::history::find(&ctx.pool, chat, message)
        .await?
        .ok_or_else(|| ServiceError::NotFound("message not found".into()))
}

fn gone() -> ServiceError {
    ServiceError::NotFound("message was deleted".into())
}

async fn submit(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    op: Op,
    request_id: &str,
) -> ServiceResult<CommandAccepted> {
    let cmd = LifecycleCommand {
        command_id: Uuid::now_v7(),
        chat_id: chat,
        actor_id: me,
        op,
    };
    ctx.commands
        .send(chat, cmd.command_id, &cmd, request_id)
        .await?;
    Ok(CommandAccepted {
        broker_message_id: cmd.command_id,
    })
}

/// Edits a message: the sender only, within `MESSAGE_EDIT_WINDOW_SECS`.
pub async fn edit(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    message: Uuid,
    content: &str,
    request_id: &str,
) -> ServiceResult<CommandAccepted> {
    let content = normalize_content(content).map_err(|m| ServiceError::Invalid(m.into()))?;
    require_member(&ctx.pool, chat, me).await?;
    let m = target(ctx, chat, message).await?;
    match may_edit(
        me,
        m.sender_id,
        m.sent_at,
        ctx.edit_window,
        chrono::Utc::now(),
    ) {
        Err(EditDenied::NotSender) => {
            return Err(ServiceError::Forbidden(
                "only the sender may edit a message".into(),
            ));
        }
        Err(EditDenied::WindowClosed) => return Err(ServiceError::EditWindowClosed),
        Ok(()) => {}
    }
    if m.deleted_at.is_some() {
        return Err(gone());
    }
    let op = Op::Edit {
        message_id: message,
        content,
    };
    submit(ctx, me, chat, op, request_id).await
}

/// Deletes a message (a tombstone): the sender, or an owner or admin of a group.
pub async fn delete(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    message: Uuid,
    request_id: &str,
) -> ServiceResult<CommandAccepted> {
    let (kind, role) = require_member(&ctx.pool, chat, me).await?;
    let m = target(ctx, chat, message).await?;
    if !may_delete(me, m.sender_id, kind, role) {
        return Err(ServiceError::Forbidden(
            "only the sender, or a group's owner or admin, may delete a message".into(),
        ));
    }
    submit(
        ctx,
        me,
        chat,
        Op::Delete {
            message_id: message,
        },
        request_id,
    )
    .await
}

/// Adds or removes the caller's reaction (idempotent).
pub async fn react(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    message: Uuid,
    emoji: &str,
    add: bool,
    request_id: &str,
) -> ServiceResult<CommandAccepted> {
    validate_emoji(emoji).map_err(|m| ServiceError::Invalid(m.into()))?;
    require_member(&ctx.pool, chat, me).await?;
    let m = target(ctx, chat, message).await?;
    if m.deleted_at.is_some() {
        return Err(gone());
    }
    if add {
        let (distinct, present) = db::history::reaction_kinds(&ctx.pool, message, emoji).await?;
        if !present && distinct >= MAX_REACTIONS {
            return Err(ServiceError::Invalid(format!(
                "a message takes at most {MAX_REACTIONS} distinct reactions"
            )));
        }
    }
    let op = Op::React {
        message_id: message,
        emoji: emoji.to_string(),
        add,
    };
    submit(ctx, me, chat, op, request_id).await
}

/// Pins or unpins a message: any participant of a direct chat, an owner or admin of a group.
pub async fn pin(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    message: Uuid,
    pinned: bool,
    request_id: &str,
) -> ServiceResult<CommandAccepted> {
    let (kind, role) = require_member(&ctx.pool, chat, me).await?;
    if !may_pin(kind, role) {
        return Err(ServiceError::Forbidden(
            "only a group's owner or admin may pin messages".into(),
        ));
    }
    let m = target(ctx, chat, message).await?;
    if pinned && m.deleted_at.is_some() {
        return Err(gone());
    }
    let op = Op::Pin {
        message_id: message,
        pinned,
    };
    submit(ctx, me, chat, op, request_id).await
}
