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
    error::{ApiError, ApiResult, ErrorBody},
};

#[derive(Deserialize, Validate, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterBody {
    #[validate(custom(function = "validate_username"))]
    #[schema(pattern = "^[a-z0-9_.-]{3,32}$", example = "alice")]
    username: String,
    #[validate(custom(function = "validate_password"))]
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    #[validate(length(max = 64, message = "displayName must be at most 64 characters"))]
    #[schema(max_length = 64, example = "Alice")]
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

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    username: String,
    password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshBody {
    refresh_token: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthResponse {
    user: User,
    /// JWT (`sub` = user id, `iss` = `courier`); send as `Authorization: Bearer <accessToken>`.
    access_token: String,
    /// Opaque, single use: `POST /auth/refresh` rotates it.
    refresh_token: String,
    /// Access token lifetime in seconds.
    expires_in: u64,
}

async fn tokens_for(state: &AppState, user: User, family: Uuid) -> ApiResult<AuthResponse> {
    let refresh_token = db::tokens::issue(&state.pool, user.id, family, state.refresh_ttl).await?;
    respond(state, user, refresh_token)
}

fn respond(state: &AppState, user: User, refresh_token: String) -> ApiResult<AuthResponse> {
    let access_token = state
        .jwt
        .issue(user.id)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(AuthResponse {
        user,
        access_token,
        refresh_token,
        expires_in: state.jwt.lifetime().as_secs(),
    })
}

/// Registers a user and signs them in.
#[utoipa::path(
    post,
    path = "/auth/register",
    operation_id = "register",
    tag = "auth",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "Registered", body = AuthResponse),
        (status = 400, description = "`validation_failed` or `invalid_json`", body = ErrorBody),
        (status = 409, description = "`conflict`: username is already taken", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over 64 KiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts from this address or for this username", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a dependency is down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
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

/// Signs in with username and password.
#[utoipa::path(
    post,
    path = "/auth/login",
    operation_id = "login",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in", body = AuthResponse),
        (status = 400, description = "`validation_failed` or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong username or password", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over 64 KiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts from this address or for this username", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a dependency is down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
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
    // A bcrypt hash imported from the reference backend is upgraded on the way.
    if !crate::service::accounts::check(&state.pool, user.id, body.password, hash).await? {
        return Err(wrong());
    }
    Ok(Json(tokens_for(&state, user, Uuid::now_v7()).await?))
}

/// Exchanges a refresh token for a new token pair (the old one is spent).
#[utoipa::path(
    post,
    path = "/auth/refresh",
    operation_id = "refreshTokens",
    tag = "auth",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "New token pair", body = AuthResponse),
        (status = 400, description = "`validation_failed` or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: refresh token invalid, expired or reused", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over 64 KiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts from this address or for this username", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a dependency is down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Json<AuthResponse>> {
    match db::tokens::rotate(&state.pool, &body.refresh_token, state.refresh_ttl).await? {
        Rotation::Rotated { user, token } => {
            let user = db::users::find(&state.pool, user)
                .await?
                .ok_or_else(ApiError::unauthorized)?;
            Ok(Json(respond(&state, user, token)?))
        }
        Rotation::Invalid => Err(ApiError::Unauthorized(
            "refresh token is invalid or expired".into(),
        )),
        Rotation::Reused => Err(ApiError::Unauthorized(
            "refresh token was already used; session revoked".into(),
        )),
    }
}
