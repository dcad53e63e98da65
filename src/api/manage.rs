//! Renaming a group and changing roles: thin handlers over the chat management use cases.

use super::responses::{BodyErrors, ChatErrors};
use axum::{Json, extract::State, http::HeaderMap};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiJson, ApiPath, AuthUser, request_id},
};
use crate::{
    domain::chat::{Chat, Role},
    error::ApiResult,
    service::chats as uc,
};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = UpdateChatBody)]
pub struct UpdateBody {
    /// 1–128 characters after trimming.
    #[schema(min_length = 1, max_length = 128)]
    title: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = SetRoleBody)]
pub struct RoleBody {
    /// `admin` or `member`.
    role: Role,
}

/// Renames a group (owner or admin); every participant gets `chat.updated`.
#[utoipa::path(patch, path = "/chats/{chatId}", operation_id = "updateChat",
    tag = "chats", security(("bearer" = [])), request_body = UpdateBody,
    params(("chatId" = Uuid, Path)),
    responses(
        (status = 200, description = "The renamed chat", body = Chat),
        ChatErrors, BodyErrors,
    ))]
pub async fn update(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateBody>,
) -> ApiResult<Json<Chat>> {
    let rid = request_id(&headers);
    let chat = uc::rename(&state.ctx, me, chat, body.title.as_deref(), &rid).await?;
    Ok(Json(chat))
}

/// Makes a participant an admin or a member (the owner only); everyone gets `chat.updated`.
#[utoipa::path(patch, path = "/chats/{chatId}/participants/{userId}", operation_id = "setRole",
    tag = "chats", security(("bearer" = [])), request_body = RoleBody,
    params(("chatId" = Uuid, Path), ("userId" = Uuid, Path)),
    responses(
        (status = 200, description = "The chat with the new role", body = Chat),
        ChatErrors, BodyErrors,
    ))]
pub async fn set_role(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath((chat, user)): ApiPath<(Uuid, Uuid)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RoleBody>,
) -> ApiResult<Json<Chat>> {
    let rid = request_id(&headers);
    let chat = uc::set_role(&state.ctx, me, chat, user, body.role, &rid).await?;
    Ok(Json(chat))
}
