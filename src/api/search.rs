//! `GET /search/messages`: full-text search over the caller's chats (thin handler over
//! `service::search`).

use super::responses::ChatErrors;
use axum::{Json, extract::State};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiQuery, AuthUser},
};
use crate::{
    error::ApiResult,
    service::search::{self as uc, SearchInput, SearchPage},
};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Web-search syntax (`websearch_to_tsquery`): words (all must match), `"a phrase"`,
    /// `or` between alternatives, `-word` to exclude. 1–200 characters; words are
    /// matched whole and case-insensitively, without stemming.
    #[param(
        required = true,
        min_length = 1,
        max_length = 200,
        example = "deploy -friday"
    )]
    q: Option<String>,
    /// Only this chat (the caller must take part in it).
    chat_id: Option<Uuid>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The `nextCursor` of the previous page (opaque).
    cursor: Option<String>,
}

/// Searches the messages of the chats the caller takes part in (never others), best
/// match first; edits are searched as edited, deleted messages never found.
#[utoipa::path(
    get,
    path = "/search/messages",
    operation_id = "searchMessages",
    tag = "search",
    security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of results, best match first", body = SearchPage),
        ChatErrors,
    )
)]
pub async fn messages(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SearchPage>> {
    let input = SearchInput {
        q: q.q.unwrap_or_default(),
        chat_id: q.chat_id,
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(Json(uc::messages(&state.ctx, me, input).await?))
}
