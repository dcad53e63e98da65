//! `GET /users/me`, `GET /users/:userId`, and presence lookups.

use super::responses::{BadRequest, BodyErrors, ServerErrors, Unauthorized};
use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiJson, ApiPath, AuthUser},
};
use crate::{
    domain::user::User,
    error::{ApiResult, ErrorBody},
    service::{
        presence::{self, Presence},
        users,
    },
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
        Unauthorized, ServerErrors,
    )
)]
pub async fn me(State(state): State<AppState>, AuthUser(me): AuthUser) -> ApiResult<Json<User>> {
    Ok(Json(users::me(&state.ctx, me).await?))
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
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        BadRequest, Unauthorized, ServerErrors,
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    _caller: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<User>> {
    Ok(Json(users::get(&state.ctx, id).await?))
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
        (status = 403, description = "`forbidden`: the user shares no chat with the caller", body = ErrorBody),
        BadRequest, Unauthorized, ServerErrors,
    )
)]
pub async fn presence(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Presence>> {
    Ok(Json(presence::of(&state.ctx, me, id).await?))
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
        (status = 403, description = "`forbidden`: a user shares no chat with the caller", body = ErrorBody),
        BadRequest, Unauthorized, ServerErrors, BodyErrors,
    )
)]
pub async fn presence_bulk(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<PresenceQuery>,
) -> ApiResult<Json<PresenceList>> {
    let presence = presence::lookup(&state.ctx, me, &body.user_ids).await?;
    Ok(Json(PresenceList { presence }))
}
