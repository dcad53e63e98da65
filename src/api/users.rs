//! `GET /users/me`, `GET /users/:userId`.

use axum::{Json, extract::State};
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiPath, AuthUser},
};
use crate::{
    db,
    domain::user::User,
    error::{ApiError, ApiResult, ErrorBody},
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
