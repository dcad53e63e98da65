//! Chats and participants.

use super::responses::{BadRequest, BodyErrors, ChatErrors, ServerErrors, Unauthorized};
use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiJson, ApiPath, AuthUser, request_id},
};
use crate::{
    domain::chat::{Chat, ChatType},
    error::ApiResult,
    service::chats::{self as uc, NewChat},
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
        (status = 403, description = "`blocked`: a direct chat with a user who blocked the caller, or whom the caller blocked", body = crate::error::ErrorBody),
        (status = 422, description = "`too_many_members`: a group of more than `CHAT_MAX_MEMBERS` members", body = crate::error::ErrorBody),
        BadRequest, Unauthorized, ServerErrors, BodyErrors,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<(StatusCode, Json<Chat>)> {
    let new = NewChat {
        kind: body.kind,
        participant_ids: body.participant_ids,
        title: body.title,
    };
    let (chat, created) = uc::create(&state.ctx, me, new, &request_id(&headers)).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(chat)))
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
        ChatErrors,
    )
)]
pub async fn get_chat(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
) -> ApiResult<Json<ChatWithMarks>> {
    let (chat, marks) = uc::get(&state.ctx, me, chat).await?;
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
        (status = 422, description = "`too_many_members`: the group would pass `CHAT_MAX_MEMBERS`", body = crate::error::ErrorBody),
        ChatErrors, BodyErrors,
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
        ChatErrors,
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
