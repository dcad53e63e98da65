//! Incoming webhooks: a chat's owner/admin (any participant of a direct chat) creates
//! one and gets its URL once; anyone holding the URL posts into the chat through the
//! same pipeline as a send, as the hook, under the hook's own rate limit.

use chrono::{DateTime, Utc};
use serde::Serialize;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult, messages::Accepted, require_member};
use crate::{
    auth::refresh,
    db,
    domain::{
        chat::may_manage_hooks,
        message::{Bot, SendCommand, normalize_content},
    },
};

/// Longest hook name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// A hook as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Hook)]
pub struct HookView {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub name: String,
    pub created_by: Uuid,
    #[serde(with = "crate::domain::time")]
    pub created_at: DateTime<Utc>,
}

/// A new hook with its URL: the only time its token is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedHook {
    pub id: Uuid,
    pub name: String,
    /// `/hooks/<id>/<token>`: POST `{"content"}` to it. Keep it secret.
    #[schema(
        example = "/hooks/0190a0c4-8f1e-7c6a-9d1e-3b2f4a5c6d7e/3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    )]
    pub url: String,
}

impl From<db::hooks::Hook> for HookView {
    fn from(h: db::hooks::Hook) -> Self {
        Self {
            id: h.id,
            chat_id: h.chat_id,
            name: h.name,
            created_by: h.created_by,
            created_at: h.created_at,
        }
    }
}

fn checked_name(raw: &str) -> ServiceResult<String> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ServiceError::Invalid(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters, without control characters"
        )));
    }
    Ok(name.to_string())
}

async fn require_manager(ctx: &Ctx, me: Uuid, chat: Uuid) -> ServiceResult<()> {
    let (kind, role) = require_member(&ctx.pool, chat, me).await?;
    if !may_manage_hooks(kind, role) {
        return Err(ServiceError::Forbidden(
            "only an owner or admin manages a group's hooks".into(),
        ));
    }
    Ok(())
}

/// Creates a hook; its token is returned once and stored as a SHA-256 digest.
pub async fn create(ctx: &Ctx, me: Uuid, chat: Uuid, name: &str) -> ServiceResult<CreatedHook> {
    let name = checked_name(name)?;
    require_manager(ctx, me, chat).await?;
    let token = refresh::generate();
    let hook = db::hooks::create(&ctx.pool, chat, &name, &refresh::digest(&token), me).await?;
    Ok(CreatedHook {
        id: hook.id,
        name: hook.name,
        url: format!("/hooks/{}/{token}", hook.id),
    })
}

/// The chat's hooks (any participant may see them; tokens never).
pub async fn list(ctx: &Ctx, me: Uuid, chat: Uuid) -> ServiceResult<Vec<HookView>> {
    require_member(&ctx.pool, chat, me).await?;
    Ok(db::hooks::list(&ctx.pool, chat)
        .await?
        .into_iter()
        .map(HookView::from)
        .collect())
}

/// Deletes a hook: its URL answers 401 from now on.
pub async fn delete(ctx: &Ctx, me: Uuid, chat: Uuid, hook: Uuid) -> ServiceResult<()> {
    require_manager(ctx, me, chat).await?;
    if db::hooks::delete(&ctx.pool, chat, hook).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound("hook not found".into()))
    }
}

/// Posts `content` into the hook's chat; `Unauthenticated` for an unknown or deleted
/// hook or a wrong token (one answer for all three).
pub async fn post(
    ctx: &Ctx,
    hook: &str,
    token: &str,
    content: &str,
    client_message_id: Option<Uuid>,
    request_id: &str,
) -> ServiceResult<Accepted> {
    // A malformed id names no hook: the same answer as an unknown one.
    let hook = Uuid::parse_str(hook).map_err(|_| ServiceError::Unauthenticated)?;
    let creds = db::hooks::credentials(&ctx.pool, hook)
        .await?
        .ok_or(ServiceError::Unauthenticated)?;
    let given = refresh::digest(token);
    if !bool::from(given.ct_eq(&creds.token_hash)) {
        return Err(ServiceError::Unauthenticated);
    }
    let name = format!("hook:{hook}");
    match ctx.cache.hit(&name, ctx.limits.hooks).await {
        Ok(Some(retry_after_secs)) => {
            metrics::counter!("courier_rate_limited_total").increment(1);
            return Err(ServiceError::RateLimited { retry_after_secs });
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, limit = %name, "hook limit check failed; allowing"),
    }
    let content = normalize_content(content).map_err(|m| ServiceError::Invalid(m.into()))?;
    let cmd = SendCommand {
        broker_message_id: Uuid::now_v7(),
        chat_id: creds.chat_id,
        sender_id: creds.id,
        client_message_id: client_message_id.unwrap_or_else(Uuid::new_v4),
        content,
        accepted_at: Utc::now(),
        reply_to: None,
        forwarded_from: None,
        attachments: Vec::new(),
        bot: Some(Bot {
            hook_id: creds.id,
            name: creds.name,
        }),
    };
    ctx.commands
        .send(creds.chat_id, cmd.broker_message_id, &cmd, request_id)
        .await?;
    Ok(Accepted {
        broker_message_id: cmd.broker_message_id,
        client_message_id: cmd.client_message_id,
    })
}
