//! The profile's chats and messages: `POST /chats`, `GET /chats` (paged),
//! `GET /chats/room-ids`, `POST /chats/:chatId/messages` (202 once confirmed) and
//! `GET /chats/:chatId/messages` (paged), over Courier's chat and message use cases.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{PageQuery, envelope::paged};
use crate::{
    api::{
        AppState,
        extract::{ApiJson, ApiPath, ApiQuery, AuthUser, request_id},
    },
    domain::{
        chat::ChatType,
        compat::{self, PageMeta},
    },
    error::{ApiError, ApiResult},
    service::{
        chats::{self as uc, NewChat},
        messages, pages,
    },
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBody {
    participant_user_ids: Vec<Uuid>,
    name: Option<String>,
    is_group: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendBody {
    content: Option<String>,
    client_message_id: Option<Uuid>,
}

/// A group's title when the reference client gave none.
const UNNAMED_GROUP: &str = "Group";

/// Creates a chat (201; the existing direct chat of the same two users again). Not a
/// group with exactly one other user: a direct chat; otherwise a group (the caller
/// owns it) titled `name`.
pub async fn create(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut others = body.participant_user_ids;
    others.retain(|u| *u != me);
    others.sort();
    others.dedup();
    let kind = match (body.is_group.unwrap_or(false), &others[..]) {
        (_, []) => {
            return Err(ApiError::invalid(
                "participantUserIds must name another user",
            ));
        }
        (false, [_]) => ChatType::Direct,
        _ => ChatType::Group,
    };
    let title = (kind == ChatType::Group).then(|| {
        let name = body.name.filter(|n| !n.trim().is_empty());
        name.unwrap_or_else(|| UNNAMED_GROUP.to_string())
    });
    let new = NewChat {
        kind,
        participant_ids: others,
        title,
    };
    let (created, _) = uc::create(&state.ctx, me, new, &request_id(&headers)).await?;
    let id = created.id;
    let chat = pages::chat(&state.ctx, id).await?;
    Ok((StatusCode::CREATED, Json(chat)))
}

pub async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Response> {
    let opts = q.options()?;
    let (chats, total) = pages::chats(&state.ctx, me, opts).await?;
    Ok(paged(chats, PageMeta::new(opts.page, opts.take, total)))
}

pub async fn room_ids(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> ApiResult<Json<Vec<Uuid>>> {
    Ok(Json(pages::room_ids(&state.ctx, me).await?))
}

/// Sends a message: 202 `{status: "queued", brokerMessageId, clientMessageId}` once
/// RabbitMQ confirmed it (a `clientMessageId` is made up when the client sent none).
pub async fn send(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input = messages::SendInput {
        content: body.content,
        client_message_id: body.client_message_id.unwrap_or_else(Uuid::now_v7),
        ..Default::default()
    };
    let accepted = messages::send(&state.ctx, me, chat, input, &request_id(&headers)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "status": "queued",
            "brokerMessageId": accepted.broker_message_id,
            "clientMessageId": accepted.client_message_id,
        })),
    ))
}

pub async fn history(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Response> {
    if q.search.as_deref().is_some_and(|s| !s.trim().is_empty()) {
        return Err(ApiError::invalid(
            "search is not supported by Courier's chat-be profile; use GET /search/messages",
        ));
    }
    let opts = q.options()?;
    let (page, total) = pages::history(&state.ctx, me, chat, opts).await?;
    let data = page
        .iter()
        .map(compat::message)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    Ok(paged(data, PageMeta::new(opts.page, opts.take, total)))
}
