//! Incoming webhooks: managing a chat's hooks (JWT) and posting through one (its
//! token in the URL, no JWT). Thin over `service::hooks`.

use super::responses::{BadRequest, BodyErrors, ChatErrors, RateLimited, ServerErrors};
use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiJson, ApiPath, AuthUser, request_id},
};
use crate::{
    error::{ApiResult, ErrorBody},
    service::{
        hooks::{self as uc, CreatedHook, HookView},
        messages::Accepted,
    },
};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateHookBody)]
pub struct CreateBody {
    /// 1–64 characters; shown as the messages' `bot.name`.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = HookPostBody)]
pub struct PostBody {
    /// 1–4000 characters after trimming.
    #[schema(min_length = 1, max_length = 4000)]
    content: String,
    /// Makes a retried post idempotent (a new one is made when absent).
    client_message_id: Option<Uuid>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = HookList)]
pub struct HookList {
    hooks: Vec<HookView>,
}

/// Creates an incoming webhook (a group's owner or admin; any participant of a direct
/// chat). The URL, with its token, is shown only here.
#[utoipa::path(post, path = "/chats/{chatId}/hooks", operation_id = "createHook",
    tag = "hooks", security(("bearer" = [])), request_body = CreateBody,
    params(("chatId" = Uuid, Path)),
    responses(
        (status = 201, description = "Created; keep the URL secret", body = CreatedHook),
        ChatErrors, BodyErrors,
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<(StatusCode, Json<CreatedHook>)> {
    let hook = uc::create(&state.ctx, me, chat, &body.name).await?;
    Ok((StatusCode::CREATED, Json(hook)))
}

/// The chat's webhooks (any participant; tokens are never shown again).
#[utoipa::path(get, path = "/chats/{chatId}/hooks", operation_id = "listHooks",
    tag = "hooks", security(("bearer" = [])), params(("chatId" = Uuid, Path)),
    responses(
        (status = 200, description = "Oldest first", body = HookList),
        ChatErrors,
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
) -> ApiResult<Json<HookList>> {
    let hooks = uc::list(&state.ctx, me, chat).await?;
    Ok(Json(HookList { hooks }))
}

/// Deletes a webhook (who may create one); its URL answers 401 from then on.
#[utoipa::path(delete, path = "/chats/{chatId}/hooks/{hookId}", operation_id = "deleteHook",
    tag = "hooks", security(("bearer" = [])),
    params(("chatId" = Uuid, Path), ("hookId" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"),
        ChatErrors,
    ))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath((chat, hook)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    uc::delete(&state.ctx, me, chat, hook).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Posts a message through a webhook (no JWT: the token in the URL is the credential).
/// The message has `bot: {hookId, name}` and `senderId` = the hook's id.
#[utoipa::path(post, path = "/hooks/{hookId}/{token}", operation_id = "postThroughHook",
    tag = "hooks", request_body = PostBody,
    params(("hookId" = Uuid, Path, description = "Anything else answers 401"),
        ("token" = String, Path, description = "The secret part of the hook's URL")),
    responses(
        (status = 202, description = "Accepted; persisted and delivered in chat order", body = Accepted),
        (status = 401, description = "`unauthorized`: unknown or deleted hook, or wrong token", body = ErrorBody),
        BadRequest, ServerErrors, BodyErrors, RateLimited,
    ))]
pub async fn post(
    State(state): State<AppState>,
    ApiPath((hook, token)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PostBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let rid = request_id(&headers);
    let accepted = uc::post(
        &state.ctx,
        &hook,
        &token,
        &body.content,
        body.client_message_id,
        &rid,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}
