//! The chat list (`GET /chats`) and a user's chat settings (`PUT /chats/:id/settings`).

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiJson, ApiPath, ApiQuery, AuthUser},
    responses::{BadRequest, BodyErrors, ChatErrors, ServerErrors, Unauthorized},
};
use crate::{
    db::chat_list::Listed,
    domain::{
        chat::{Chat, ChatSettings},
        message::Message,
    },
    error::ApiResult,
    service::chat_list::{self as uc, ListQuery, SettingsChange},
};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1–200 (50 with a `cursor`). Without `limit` and `cursor`: every chat.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[param(max_length = 64)]
    cursor: Option<String>,
    /// `true`: the archived chats only; otherwise they are left out.
    archived: Option<bool>,
}

/// A chat of the caller's list.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatWithUnread {
    #[serde(flatten)]
    chat: Chat,
    /// Messages from other participants above the caller's read mark.
    #[schema(minimum = 0)]
    unread_count: i64,
    /// The chat's newest message (a tombstone if deleted); null while it has none.
    #[schema(required = true)]
    last_message: Option<Message>,
    /// The caller's own settings of the chat.
    settings: ChatSettings,
}

impl From<Listed> for ChatWithUnread {
    fn from(l: Listed) -> Self {
        Self {
            chat: l.chat,
            unread_count: l.unread,
            last_message: l.last_message,
            settings: l.settings,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatList {
    chats: Vec<ChatWithUnread>,
    /// The next page's cursor; null on the last page and without `limit` and `cursor`.
    #[schema(required = true, max_length = 64)]
    next_cursor: Option<String>,
}

/// The caller's chats, most recently active first. Paged with `limit` / `cursor`: the
/// first page fixes the walk's order (activity as of that moment), so a chat that gets
/// a message meanwhile is neither repeated nor skipped (docs/rest.md).
#[utoipa::path(
    get,
    path = "/chats",
    operation_id = "listChats",
    tag = "chats",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "The caller's chats", body = ChatList),
        BadRequest, Unauthorized, ServerErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult<Json<ChatList>> {
    let query = ListQuery {
        limit: q.limit,
        cursor: q.cursor.as_deref(),
        archived: q.archived,
    };
    let page = uc::list(&state.ctx, me, query).await?;
    Ok(Json(ChatList {
        chats: page.chats.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Absent: unchanged; null: cleared; a value: set.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
    Option::<DateTime<Utc>>::deserialize(d).map(Some)
}

/// The settings to change; a field left out stays as it is.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = ChatSettingsBody)]
pub struct SettingsBody {
    /// Mute until this RFC 3339 time; null unmutes.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    muted_until: Option<Option<DateTime<Utc>>>,
    archived: Option<bool>,
    /// `true`: while muted, mentions of the caller do not push either (by default they
    /// still do).
    mute_mentions: Option<bool>,
}

/// Sets the caller's own settings of a chat (mute, archive, mute of mentions);
/// announced to the caller's devices as `chat.settings`.
#[utoipa::path(
    put,
    path = "/chats/{chatId}/settings",
    operation_id = "updateChatSettings",
    tag = "chats",
    security(("bearer" = [])),
    params(("chatId" = Uuid, Path, description = "The chat's id")),
    request_body = SettingsBody,
    responses(
        (status = 200, description = "The caller's settings of the chat", body = ChatSettings),
        ChatErrors, BodyErrors,
    )
)]
pub async fn update_settings(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(chat): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SettingsBody>,
) -> ApiResult<Json<ChatSettings>> {
    let change = SettingsChange {
        muted_until: body.muted_until,
        archived: body.archived,
        mute_mentions: body.mute_mentions,
    };
    Ok(Json(
        uc::update_settings(&state.ctx, me, chat, change).await?,
    ))
}
