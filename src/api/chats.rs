//! Chats and participants.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiJson, ApiPath, AuthUser, request_id},
};
use crate::{
    db,
    domain::chat::{Chat, ChatType},
    error::{ApiError, ApiResult, ErrorBody},
    service::chats as uc,
};

/// `direct`: exactly one other user in `participantIds`. `group`: a `title` (1–128
/// characters after trimming) and any other users; the caller becomes `owner`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CreateChatBody)]
pub struct CreateBody {
    #[serde(rename = "type")]
    kind: ChatType,
    #[serde(default)]
    #[schema(max_items = 1000)]
    participant_ids: Vec<Uuid>,
    #[schema(max_length = 128)]
    title: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AddParticipantsBody)]
pub struct AddBody {
    #[schema(min_items = 1, max_items = 1000)]
    user_ids: Vec<Uuid>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatWithUnread {
    #[serde(flatten)]
    chat: Chat,
    /// Messages from other participants above the caller's read mark.
    #[schema(minimum = 0)]
    unread_count: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChatList {
    chats: Vec<ChatWithUnread>,
}

use crate::service::require_member;

/// Creates a chat, or returns the existing direct chat with that user.
#[utoipa::path(
    post,
    path = "/chats",
    operation_id = "createChat",
    tag = "chats",
    security(("bearer" = [])),
    request_body = CreateBody,
    responses(
        (status = 200, description = "The direct chat with that user already existed", body = Chat),
        (status = 201, description = "Created", body = Chat),
        (status = 400, description = "`validation_failed` (e.g. unknown user ids) or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, malformed or expired access token", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over 64 KiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a dependency is down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<Response> {
    let rid = request_id(&headers);
    match body.kind {
        ChatType::Direct => {
            let [other] = body.participant_ids[..] else {
                return Err(ApiError::Validation(
                    "a direct chat needs exactly one participantId".into(),
                ));
            };
            let (chat, created) = uc::create_direct(&state.ctx, me, other, &rid).await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, Json(chat)).into_response())
        }
        ChatType::Group => {
            let chat = uc::create_group(
                &state.ctx,
                me,
                body.title.as_deref(),
                body.participant_ids,
                &rid,
            )
            .await?;
            Ok((StatusCode::CREATED, Json(chat)).into_response())
        }
    }
}

/// The caller's chats, most recently active first.
#[utoipa::path(
    get,
    path = "/chats",
    operation_id = "listChats",
    tag = "chats",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's chats", body = ChatList),
        (status = 401, description = "`unauthorized`: missing, malformed or expired access token", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a dependency is down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> ApiResult<Json<ChatList>> {
    let chats = db::chats::list_for(&state.pool, me)
        .await?
        .into_iter()
        .map(|(chat, unread_count)| ChatWithUnread { chat, unread_count })
        .collect();
    Ok(Json(ChatList { chats }))
}

/// One chat the caller participates in.
#[utoipa::path(
    get,
    path = "/chats/{chatId}",
    operation_id = "getChat",
    tag = "chats",
    security(("bearer" = [])),
    params(("chatId" = Uuid, Path, description = "The chat's id")),
    responses(
        (status = 200, description = "The chat, with every participant's delivered and read marks", body = ChatWithMarks),
        (status = 400, description = "`validation_failed`: a path parameter is not a UUID", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, malformed or expired access token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not a participant of the chat", body = ErrorBody),
        (status = 404, description = "`not_found`: no such chat", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a dependency is down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn get_chat(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
) -> ApiResult<Json<ChatWithMarks>> {
    require_member(&state.pool, chat, me).await?;
    let marks = db::chats::marks(&state.pool, &[chat])
        .await?
        .remove(&chat)
        .unwrap_or_default();
    let chat = db::chats::load(&state.pool, chat)
        .await?
        .ok_or_else(|| ApiError::NotFound("chat not found".into()))?;
    Ok(Json(ChatWithMarks { chat, marks }))
}

/// A chat with each participant's delivery receipts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChatWithMarks {
    #[serde(flatten)]
    chat: Chat,
    marks: Vec<crate::domain::receipts::Marks>,
}

/// Adds users to a group chat (owner or admin only).
#[utoipa::path(
    post,
    path = "/chats/{chatId}/participants",
    operation_id = "addParticipants",
    tag = "chats",
    security(("bearer" = [])),
    params(("chatId" = Uuid, Path, description = "The chat's id")),
    request_body = AddBody,
    responses(
        (status = 200, description = "The chat with its new participants", body = Chat),
        (status = 400, description = "`validation_failed` (not a group, unknown user ids, bad path parameter) or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, malformed or expired access token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a participant, or not owner/admin", body = ErrorBody),
        (status = 404, description = "`not_found`: no such chat", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over 64 KiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a dependency is down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn add_participants(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AddBody>,
) -> ApiResult<Json<Chat>> {
    let rid = request_id(&headers);
    let chat = uc::add_participants(&state.ctx, me, chat, &body.user_ids, &rid).await?;
    Ok(Json(chat))
}

/// Removes a participant from a group chat (owner/admin, or oneself).
#[utoipa::path(
    delete,
    path = "/chats/{chatId}/participants/{userId}",
    operation_id = "removeParticipant",
    tag = "chats",
    security(("bearer" = [])),
    params(
        ("chatId" = Uuid, Path, description = "The chat's id"),
        ("userId" = Uuid, Path, description = "The participant to remove"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "`validation_failed`: not a group chat, or a path parameter is not a UUID", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, malformed or expired access token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a participant, or may not remove that participant", body = ErrorBody),
        (status = 404, description = "`not_found`: no such chat, or that user is not a participant", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a dependency is down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn remove_participant(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath((chat, target)): ApiPath<(Uuid, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    uc::remove_participant(&state.ctx, me, chat, target, &request_id(&headers)).await?;
    Ok(StatusCode::NO_CONTENT)
}
