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
    error::{ApiError, ApiResult},
};

pub async fn me(State(state): State<AppState>, AuthUser(me): AuthUser) -> ApiResult<Json<User>> {
    let user = db::users::find(&state.pool, me)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    Ok(Json(user))
}

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
