//! `POST /auth/register`, `/auth/login`, `/auth/refresh`.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use validator::Validate;

use super::{AppState, extract::ApiJson};
use crate::{
    auth::password,
    db::{self, tokens::Rotation},
    domain::user::{User, validate_username},
    error::{ApiError, ApiResult},
};

#[derive(Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct RegisterBody {
    #[validate(custom(function = "validate_username"))]
    username: String,
    #[validate(custom(function = "validate_password"))]
    password: String,
    #[validate(length(max = 64, message = "displayName must be at most 64 characters"))]
    display_name: Option<String>,
}

fn validate_password(p: &str) -> Result<(), validator::ValidationError> {
    if password::valid_password(p) {
        Ok(())
    } else {
        Err(validator::ValidationError::new("password")
            .with_message(password::PASSWORD_RULE.into()))
    }
}

#[derive(Deserialize)]
pub struct LoginBody {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshBody {
    refresh_token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthResponse {
    user: User,
    access_token: String,
    refresh_token: String,
    expires_in: u64,
}

async fn tokens_for(state: &AppState, user: User, family: Uuid) -> ApiResult<AuthResponse> {
    let access_token = state
        .jwt
        .issue(user.id)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let refresh_token = db::tokens::issue(&state.pool, user.id, family, state.refresh_ttl).await?;
    Ok(AuthResponse {
        user,
        access_token,
        refresh_token,
        expires_in: state.jwt.lifetime().as_secs(),
    })
}

pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<(StatusCode, Json<AuthResponse>)> {
    body.validate()?;
    let hash = password::hash(body.password).await?;
    let display = body
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let user = db::users::insert(&state.pool, &body.username, display, &hash)
        .await?
        .ok_or_else(|| ApiError::Conflict("username is already taken".into()))?;
    let resp = tokens_for(&state, user, Uuid::now_v7()).await?;
    Ok((StatusCode::CREATED, Json(resp)))
}

pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Json<AuthResponse>> {
    let wrong = || ApiError::Unauthorized("invalid username or password".into());
    let found = db::users::find_credentials(&state.pool, &body.username).await?;
    let Some((user, hash)) = found else {
        // Same work as a wrong password, so timing does not reveal which usernames exist.
        password::verify(body.password, password::dummy_hash().await?).await?;
        return Err(wrong());
    };
    if !password::verify(body.password, hash).await? {
        return Err(wrong());
    }
    Ok(Json(tokens_for(&state, user, Uuid::now_v7()).await?))
}

pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Json<AuthResponse>> {
    match db::tokens::rotate(&state.pool, &body.refresh_token).await? {
        Rotation::Rotated { user, family } => {
            let user = db::users::find(&state.pool, user)
                .await?
                .ok_or_else(ApiError::unauthorized)?;
            Ok(Json(tokens_for(&state, user, family).await?))
        }
        Rotation::Invalid => Err(ApiError::Unauthorized(
            "refresh token is invalid or expired".into(),
        )),
        Rotation::Reused => Err(ApiError::Unauthorized(
            "refresh token was already used; session revoked".into(),
        )),
    }
}
