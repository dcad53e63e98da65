//! `POST /chats/:chatId/messages` (202 after the broker's confirm), history, read marks.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use lapin::types::FieldTable;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AppState, CONFIRM_TIMEOUT,
    chats::require_member,
    extract::{ApiJson, ApiPath, ApiQuery, AuthUser, request_id},
};
use crate::{
    cache::membership::LookupError,
    db::{self, messages::Cursor},
    domain::message::{Message, SendCommand, normalize_content},
    error::{ApiError, ApiResult, ErrorBody},
    mq::{self, publish},
    service::receipts,
};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SendMessageBody)]
pub struct SendBody {
    /// 1–4000 characters after trimming.
    #[schema(min_length = 1, max_length = 4000, example = "Hello")]
    content: String,
    /// Chosen by the client; a retry with the same id is delivered once.
    client_message_id: Uuid,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SendAccepted)]
pub struct Accepted {
    broker_message_id: Uuid,
    client_message_id: Uuid,
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
    messages: Vec<Message>,
    has_more: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReadBody {
    /// Everything up to this sequence is read (never moves backwards).
    #[schema(minimum = 0)]
    sequence: i64,
}

/// Membership for a send, from the Redis cache; PostgreSQL decides 404 vs 403, and
/// answers alone while Redis is unreachable (the cache is a cache: sends go on).
pub(super) async fn require_sender(state: &AppState, chat: Uuid, me: Uuid) -> ApiResult<()> {
    match state.cache.members(&state.pool, &[chat]).await {
        Ok(members) if members.get(&chat).is_some_and(|m| m.contains(&me)) => return Ok(()),
        Ok(_) => {}
        Err(LookupError::Redis(e)) => {
            tracing::warn!(error = %e, %chat, "membership cache unreachable; asking PostgreSQL");
        }
        Err(e) => return Err(e.into()),
    }
    require_member(&state.pool, chat, me).await.map(|_| ())
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
        (status = 400, description = "`validation_failed` (bad body or path parameter) or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, malformed or expired access token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not a participant of the chat", body = ErrorBody),
        (status = 404, description = "`not_found`: no such chat", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over 64 KiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many sends by this user", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the broker (or another dependency) is unreachable or did not confirm; nothing was sent", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn send(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let content = normalize_content(&body.content).map_err(|m| ApiError::Validation(m.into()))?;
    super::limits::admit_send(&state, chat, me).await?;
    let cmd = SendCommand {
        broker_message_id: Uuid::now_v7(),
        chat_id: chat,
        sender_id: me,
        client_message_id: body.client_message_id,
        content,
        accepted_at: chrono::Utc::now(),
    };
    let session = state
        .link
        .current()
        .ok_or(ApiError::Unavailable("rabbitmq"))?;
    let payload = serde_json::to_vec(&cmd).map_err(|e| ApiError::Internal(e.into()))?;
    let mut hdrs = FieldTable::default();
    hdrs.insert(
        mq::HEADER_REQUEST_ID.into(),
        mq::long_string(&request_id(&headers)),
    );
    let props = publish::json_properties(&cmd.broker_message_id.to_string(), hdrs);
    let route = state.topology.route(chat);
    if let Err(e) = publish::publish_confirmed(
        &session.publish,
        &state.topology.exchange,
        &route,
        &payload,
        props,
        CONFIRM_TIMEOUT,
    )
    .await
    {
        tracing::warn!(error = %e, %chat, "send not confirmed");
        return Err(ApiError::Unavailable("rabbitmq"));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            broker_message_id: cmd.broker_message_id,
            client_message_id: cmd.client_message_id,
        }),
    ))
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
        (status = 400, description = "`validation_failed`: bad query or path parameter", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, malformed or expired access token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not a participant of the chat", body = ErrorBody),
        (status = 404, description = "`not_found`: no such chat", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a dependency is down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<Page>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::Validation("limit must be 1 to 100".into()));
    }
    let cursor = match (q.before, q.after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::Validation(
                "use either before or after, not both".into(),
            ));
        }
        (Some(b), None) if b >= 0 => Cursor::Before(b),
        (None, Some(a)) if a >= 0 => Cursor::After(a),
        (None, None) => Cursor::Newest,
        _ => {
            return Err(ApiError::Validation(
                "before and after must be non-negative".into(),
            ));
        }
    };
    require_member(&state.pool, chat, me).await?;
    let (messages, has_more) = db::messages::history(&state.pool, chat, cursor, limit).await?;
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
        (status = 400, description = "`validation_failed` (e.g. beyond the chat's lastSequence) or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, malformed or expired access token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not a participant of the chat", body = ErrorBody),
        (status = 404, description = "`not_found`: no such chat", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over 64 KiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a dependency is down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn mark_read(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ReadBody>,
) -> ApiResult<StatusCode> {
    receipts::mark_read(&state.pool, &state.receipts, chat, me, body.sequence).await?;
    Ok(StatusCode::NO_CONTENT)
}
