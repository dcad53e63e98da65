//! `POST /chats/:chatId/messages` (202 after the broker's confirm), history, read marks.

use super::responses::{BodyErrors, ChatErrors, RateLimited};
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
};
use crate::{
    domain::message::Message,
    error::ApiResult,
    service::{
        messages::{self as uc, Accepted, ForwardOf, SendInput},
        receipts,
    },
};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SendMessageBody)]
pub struct SendBody {
    /// 1–4000 characters after trimming; optional when forwarding (the source's
    /// content is used) and with `attachments` (absent or blank: stored as "").
    #[schema(min_length = 1, max_length = 4000, example = "Hello")]
    content: Option<String>,
    /// Chosen by the client; a retry with the same id is delivered once.
    client_message_id: Uuid,
    /// A message of the same chat this one answers.
    reply_to_id: Option<Uuid>,
    /// A message of another chat (the caller takes part in) to forward.
    forward_of: Option<ForwardOf>,
    /// Upload ids from `POST /uploads` (at most 10, each the caller's own, uploaded
    /// with its announced size).
    #[serde(default)]
    #[schema(max_items = 10)]
    attachments: Vec<Uuid>,
}

/// Without `before` or `after`: the newest `limit` messages.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// Only messages with a sequence below this one (not together with `after`).
    #[param(minimum = 0)]
    before: Option<i64>,
    /// Only messages with a sequence above this one (not together with `before`).
    #[param(minimum = 0)]
    after: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MessagePage)]
pub struct Page {
    /// Ascending by sequence.
    pub messages: Vec<Message>,
    pub has_more: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReadBody {
    /// Everything up to this sequence is read (never moves backwards).
    #[schema(minimum = 0)]
    sequence: i64,
}

/// Sends a message: answered 202 once RabbitMQ confirmed the publish.
#[utoipa::path(
    post,
    path = "/chats/{chatId}/messages",
    operation_id = "sendMessage",
    tag = "messages",
    security(("bearer" = [])),
    params(("chatId" = Uuid, Path, description = "The chat's id")),
    request_body = SendBody,
    responses(
        (status = 202, description = "Accepted for delivery", body = Accepted),
        ChatErrors, BodyErrors, RateLimited,
    )
)]
pub async fn send(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let input = SendInput {
        content: body.content,
        client_message_id: body.client_message_id,
        reply_to_id: body.reply_to_id,
        forward_of: body.forward_of,
        attachments: body.attachments,
    };
    let accepted = uc::send(&state.ctx, me, chat, input, &request_id(&headers)).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// A page of the chat's messages.
#[utoipa::path(
    get,
    path = "/chats/{chatId}/messages",
    operation_id = "listMessages",
    tag = "messages",
    security(("bearer" = [])),
    params(("chatId" = Uuid, Path, description = "The chat's id"), HistoryQuery),
    responses(
        (status = 200, description = "Messages ascending by sequence", body = Page),
        ChatErrors,
    )
)]
pub async fn history(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<Page>> {
    let (messages, has_more) =
        uc::history_page(&state.ctx, me, chat, q.before, q.after, q.limit).await?;
    Ok(Json(Page { messages, has_more }))
}

/// Marks everything up to `sequence` read for the caller; the other participants get
/// `chat.message.status` "read" (the use case is shared with the gateway's `chat.read`).
#[utoipa::path(
    post,
    path = "/chats/{chatId}/read",
    operation_id = "markRead",
    tag = "messages",
    security(("bearer" = [])),
    params(("chatId" = Uuid, Path, description = "The chat's id")),
    request_body = ReadBody,
    responses(
        (status = 204, description = "Read mark stored"),
        ChatErrors, BodyErrors,
    )
)]
pub async fn mark_read(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ReadBody>,
) -> ApiResult<StatusCode> {
    receipts::mark_read_in(&state.ctx, chat, me, body.sequence).await?;
    Ok(StatusCode::NO_CONTENT)
}
