//! `POST /auth/register`, `/auth/login`, `/auth/refresh` (each login opens a session;
//! see `sessions` for the session routes).

use super::responses::AuthErrors;
use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use super::{
    AppState,
    extract::{ApiJson, ClientInfo},
};
use crate::{
    domain::user::User,
    error::{ApiResult, ErrorBody},
    service::sessions::{self, Registration, Session},
};

/// Checked by the register use case: `username` 3–32 of `[a-z0-9_.-]`, `password` 8–128
/// characters, `displayName` at most 64.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterBody {
    #[schema(pattern = "^[a-z0-9_.-]{3,32}$", example = "alice")]
    username: String,
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    #[schema(max_length = 64, example = "Alice")]
    display_name: Option<String>,
    /// The session's device name (default: the `User-Agent`).
    #[schema(max_length = 128, example = "Alice's phone")]
    device_name: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginBody {
    username: String,
    password: String,
    /// The session's device name (default: the `User-Agent`).
    #[schema(max_length = 128, example = "Alice's phone")]
    device_name: Option<String>,
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
    /// JWT (`sub` = user id, `sid` = session id, `iss` = `courier`); send as `Authorization: Bearer <accessToken>`.
    access_token: String,
    /// Opaque, single use: `POST /auth/refresh` rotates it.
    refresh_token: String,
    /// Access token lifetime in seconds.
    expires_in: u64,
}

impl From<Session> for AuthResponse {
    fn from(s: Session) -> Self {
        Self {
            user: s.user,
            access_token: s.access.token,
            refresh_token: s.refresh_token,
            expires_in: s.access.expires_in.as_secs(),
        }
    }
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
        (status = 409, description = "`conflict`: username is already taken", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<(StatusCode, Json<AuthResponse>)> {
    let device = client.device(body.device_name.as_deref());
    let registration = Registration {
        username: body.username,
        password: body.password,
        display_name: body.display_name,
    };
    let session = sessions::register(&state.ctx, registration, &device).await?;
    Ok((StatusCode::CREATED, Json(session.into())))
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
        (status = 401, description = "`unauthorized`: wrong username or password", body = ErrorBody),
        (status = 403, description = "`banned`: the account is banned (the message says until when)", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Json<AuthResponse>> {
    let device = client.device(body.device_name.as_deref());
    let session = sessions::login(&state.ctx, &body.username, body.password, &device).await?;
    Ok(Json(session.into()))
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
        (status = 401, description = "`unauthorized`: refresh token invalid, expired or reused", body = ErrorBody),
        (status = 403, description = "`banned`: the account is banned", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Json<AuthResponse>> {
    let session = sessions::refresh(&state.ctx, &body.refresh_token).await?;
    Ok(Json(session.into()))
}
