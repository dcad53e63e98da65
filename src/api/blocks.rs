//! `PUT` / `DELETE /users/:id/block` and `GET /users/me/blocks`.

use axum::{Json, extract::State, http::StatusCode};
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiPath, AuthUser},
    responses::{BadRequest, ServerErrors, Unauthorized},
};
use crate::{
    domain::user::User,
    error::{ApiResult, ErrorBody},
    service::blocks,
};

/// Blocks a user (idempotent): they can no longer open or send into a direct chat with
/// the caller, nor see the caller's presence or typing; in groups the caller gets their
/// messages with `blockedSender: true`.
#[utoipa::path(
    put,
    path = "/users/{userId}/block",
    operation_id = "blockUser",
    tag = "users",
    security(("bearer" = [])),
    params(("userId" = Uuid, Path, description = "The user to block")),
    responses(
        (status = 204, description = "Blocked (also when already blocked)"),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        BadRequest, Unauthorized, ServerErrors,
    )
)]
pub async fn block(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    blocks::block(&state.ctx, me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts the caller's block of a user (idempotent).
#[utoipa::path(
    delete,
    path = "/users/{userId}/block",
    operation_id = "unblockUser",
    tag = "users",
    security(("bearer" = [])),
    params(("userId" = Uuid, Path, description = "The user to unblock")),
    responses(
        (status = 204, description = "Not blocked (also when it was not)"),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        BadRequest, Unauthorized, ServerErrors,
    )
)]
pub async fn unblock(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    blocks::unblock(&state.ctx, me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The users the caller blocked, most recent first.
#[utoipa::path(
    get,
    path = "/users/me/blocks",
    operation_id = "listBlocks",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The blocked users", body = Vec<User>),
        Unauthorized, ServerErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(blocks::list(&state.ctx, me).await?))
}
