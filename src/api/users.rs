//! `GET /users/me`, `GET /users/:userId`, and presence lookups.

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiJson, ApiPath, AuthUser},
};
use crate::{
    db,
    domain::user::User,
    error::{ApiError, ApiResult, ErrorBody},
    service::presence::{self, Presence},
};

/// The caller's own user.
#[utoipa::path(
    get,
    path = "/users/me",
    operation_id = "getMe",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        (status = 401, description = "`unauthorized`: missing, malformed or expired access token", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a dependency is down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn me(State(state): State<AppState>, AuthUser(me): AuthUser) -> ApiResult<Json<User>> {
    let user = db::users::find(&state.pool, me)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    Ok(Json(user))
}

/// Any user, by id.
#[utoipa::path(
    get,
    path = "/users/{userId}",
    operation_id = "getUser",
    tag = "users",
    security(("bearer" = [])),
    params(("userId" = Uuid, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 400, description = "`validation_failed`: a path parameter is not a UUID", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, malformed or expired access token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a dependency is down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    _caller: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<User>> {
    let user = db::users::find(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("user not found".into()))?;
    Ok(Json(user))
}

/// Whether a user is online, and when they were last seen (oneself, or a user who
/// shares a chat with the caller).
#[utoipa::path(
    get,
    path = "/users/{userId}/presence",
    operation_id = "getPresence",
    tag = "users",
    security(("bearer" = [])),
    params(("userId" = Uuid, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user's presence", body = Presence),
        (status = 400, description = "`validation_failed`: a path parameter is not a UUID", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, malformed or expired access token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the user shares no chat with the caller", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a dependency is down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn presence(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Presence>> {
    let mut found = presence::lookup(&state.pool, &state.cache, me, &[id]).await?;
    found
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("user not found".into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceQuery {
    /// At most 500; each the caller or a user who shares a chat with them.
    #[schema(max_items = 500)]
    user_ids: Vec<Uuid>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PresenceList {
    /// In the order asked.
    presence: Vec<Presence>,
}

/// The presence of several users at once.
#[utoipa::path(
    post,
    path = "/users/presence",
    operation_id = "getPresenceBulk",
    tag = "users",
    security(("bearer" = [])),
    request_body = PresenceQuery,
    responses(
        (status = 200, description = "Each user's presence", body = PresenceList),
        (status = 400, description = "`validation_failed` (over 500 ids) or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, malformed or expired access token", body = ErrorBody),
        (status = 403, description = "`forbidden`: a user shares no chat with the caller", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over 64 KiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a dependency is down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn presence_bulk(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<PresenceQuery>,
) -> ApiResult<Json<PresenceList>> {
    let presence = presence::lookup(&state.pool, &state.cache, me, &body.user_ids).await?;
    Ok(Json(PresenceList { presence }))
}
