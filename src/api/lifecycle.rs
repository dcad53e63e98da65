//! Edit, delete, replies, reactions and pins: thin handlers over the lifecycle use cases.

use super::responses::{BodyErrors, ChatErrors};
use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiJson, ApiPath, ApiQuery, AuthUser, request_id},
    messages::Page,
};
use crate::{
    domain::message::Message,
    error::ApiResult,
    service::{
        lifecycle::{self as uc, CommandAccepted},
        messages,
    },
};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = EditMessageBody)]
pub struct EditBody {
    /// 1–4000 characters after trimming.
    #[schema(min_length = 1, max_length = 4000)]
    content: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RepliesQuery {
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// Only replies with a sequence above this one.
    #[param(minimum = 0)]
    after: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PinList {
    /// Most recently pinned first.
    messages: Vec<Message>,
}

/// Edits a message (the sender, within `MESSAGE_EDIT_WINDOW_SECS`); every participant
/// gets `chat.message.updated`.
#[utoipa::path(patch, path = "/chats/{chatId}/messages/{messageId}", operation_id = "editMessage",
    tag = "lifecycle", security(("bearer" = [])), request_body = EditBody,
    params(("chatId" = Uuid, Path), ("messageId" = Uuid, Path)),
    responses(
        (status = 202, description = "Accepted; applied in chat order", body = CommandAccepted),
        ChatErrors, BodyErrors,
    ))]
pub async fn edit(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath((chat, message)): ApiPath<(Uuid, Uuid)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EditBody>,
) -> ApiResult<(StatusCode, Json<CommandAccepted>)> {
    let rid = request_id(&headers);
    let accepted = uc::edit(&state.ctx, me, chat, message, &body.content, &rid).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// Deletes a message (the sender, or a group's owner/admin); it stays as a tombstone,
/// and every participant gets `chat.message.deleted`.
#[utoipa::path(delete, path = "/chats/{chatId}/messages/{messageId}", operation_id = "deleteMessage",
    tag = "lifecycle", security(("bearer" = [])),
    params(("chatId" = Uuid, Path), ("messageId" = Uuid, Path)),
    responses(
        (status = 202, description = "Accepted; applied in chat order (idempotent)", body = CommandAccepted),
        ChatErrors,
    ))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath((chat, message)): ApiPath<(Uuid, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<CommandAccepted>)> {
    let accepted = uc::delete(&state.ctx, me, chat, message, &request_id(&headers)).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// The replies to a message, ascending by sequence.
#[utoipa::path(get, path = "/chats/{chatId}/messages/{messageId}/replies", operation_id = "listReplies",
    tag = "lifecycle", security(("bearer" = [])),
    params(("chatId" = Uuid, Path), ("messageId" = Uuid, Path), RepliesQuery),
    responses(
        (status = 200, description = "Replies ascending by sequence", body = Page),
        ChatErrors,
    ))]
pub async fn replies(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath((chat, message)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(q): ApiQuery<RepliesQuery>,
) -> ApiResult<Json<Page>> {
    let (messages, has_more) =
        messages::replies(&state.ctx, me, chat, message, q.after, q.limit).await?;
    Ok(Json(Page { messages, has_more }))
}

/// Adds the caller's reaction (idempotent); everyone gets `chat.reaction.updated`.
#[utoipa::path(put, path = "/chats/{chatId}/messages/{messageId}/reactions/{emoji}", operation_id = "addReaction",
    tag = "lifecycle", security(("bearer" = [])),
    params(("chatId" = Uuid, Path), ("messageId" = Uuid, Path),
        ("emoji" = String, Path, description = "One emoji, or a shortcode of 1 to 32 of [a-z0-9_+-]")),
    responses(
        (status = 204, description = "Accepted (applied in chat order)"),
        ChatErrors,
    ))]
pub async fn add_reaction(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath((chat, message, emoji)): ApiPath<(Uuid, Uuid, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let rid = request_id(&headers);
    uc::react(&state.ctx, me, chat, message, &emoji, true, &rid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the caller's reaction (idempotent).
#[utoipa::path(delete, path = "/chats/{chatId}/messages/{messageId}/reactions/{emoji}", operation_id = "removeReaction",
    tag = "lifecycle", security(("bearer" = [])),
    params(("chatId" = Uuid, Path), ("messageId" = Uuid, Path), ("emoji" = String, Path)),
    responses(
        (status = 204, description = "Accepted (applied in chat order)"),
        ChatErrors,
    ))]
pub async fn remove_reaction(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath((chat, message, emoji)): ApiPath<(Uuid, Uuid, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let rid = request_id(&headers);
    uc::react(&state.ctx, me, chat, message, &emoji, false, &rid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pins a message (direct: anyone; group: owner/admin); everyone gets `chat.pins.updated`.
#[utoipa::path(put, path = "/chats/{chatId}/pins/{messageId}", operation_id = "pinMessage",
    tag = "lifecycle", security(("bearer" = [])),
    params(("chatId" = Uuid, Path), ("messageId" = Uuid, Path)),
    responses(
        (status = 204, description = "Accepted (applied in chat order)"),
        ChatErrors,
    ))]
pub async fn pin(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath((chat, message)): ApiPath<(Uuid, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    uc::pin(&state.ctx, me, chat, message, true, &request_id(&headers)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unpins a message.
#[utoipa::path(delete, path = "/chats/{chatId}/pins/{messageId}", operation_id = "unpinMessage",
    tag = "lifecycle", security(("bearer" = [])),
    params(("chatId" = Uuid, Path), ("messageId" = Uuid, Path)),
    responses(
        (status = 204, description = "Accepted (applied in chat order)"),
        ChatErrors,
    ))]
pub async fn unpin(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath((chat, message)): ApiPath<(Uuid, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    uc::pin(&state.ctx, me, chat, message, false, &request_id(&headers)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The chat's pinned messages.
#[utoipa::path(get, path = "/chats/{chatId}/pins", operation_id = "listPins",
    tag = "lifecycle", security(("bearer" = [])),
    params(("chatId" = Uuid, Path)),
    responses(
        (status = 200, description = "Pinned messages, most recently pinned first", body = PinList),
        ChatErrors,
    ))]
pub async fn pins(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
) -> ApiResult<Json<PinList>> {
    let messages = messages::pins(&state.ctx, me, chat).await?;
    Ok(Json(PinList { messages }))
}
