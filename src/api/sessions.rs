//! The caller's sessions: `GET /auth/sessions`, `DELETE /auth/sessions/:id`,
//! `POST /auth/logout`, `POST /auth/logout-all`, and `POST /auth/password`.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiJson, ApiPath, AuthCaller},
    responses::{BadRequest, BodyErrors, RateLimited, ServerErrors, Unauthorized},
};
use crate::{
    error::{ApiResult, ErrorBody},
    service::devices::{self, SessionInfo},
};

/// One session (a login on a device).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionBody {
    id: Uuid,
    /// From the login's `deviceName`, else its `User-Agent` ("unknown" without either).
    device_name: String,
    created_at: DateTime<Utc>,
    /// The last login or token refresh of the session.
    last_seen_at: DateTime<Utc>,
    /// The client's address at login, as seen through `TRUSTED_PROXIES`.
    ip: Option<String>,
    /// Whether the caller's access token belongs to this session.
    current: bool,
}

impl From<SessionInfo> for SessionBody {
    fn from(s: SessionInfo) -> Self {
        Self {
            id: s.id,
            device_name: s.device_name,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            ip: s.ip,
            current: s.current,
        }
    }
}

/// Checked by the use case: `newPassword` 8–128 characters, like registration.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordBody {
    current_password: String,
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

/// Lists the caller's live sessions, newest first.
#[utoipa::path(
    get,
    path = "/auth/sessions",
    operation_id = "listSessions",
    tag = "auth",
    responses(
        (status = 200, description = "The caller's sessions", body = [SessionBody]),
        Unauthorized,
        ServerErrors,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
) -> ApiResult<Json<Vec<SessionBody>>> {
    let sessions = devices::list(&state.ctx, caller).await?;
    Ok(Json(sessions.into_iter().map(Into::into).collect()))
}

/// Revokes one of the caller's sessions: its refresh tokens stop working, its access
/// tokens get 401 `session_revoked`, its sockets get `auth.revoked` and close.
#[utoipa::path(
    delete,
    path = "/auth/sessions/{sessionId}",
    operation_id = "revokeSession",
    tag = "auth",
    params(("sessionId" = Uuid, Path, description = "Session id")),
    responses(
        (status = 204, description = "Revoked"),
        BadRequest,
        Unauthorized,
        (status = 404, description = "`not_found`: no such session of the caller", body = ErrorBody),
        ServerErrors,
    ),
    security(("bearer" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    devices::revoke(&state.ctx, caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes the caller's current session.
#[utoipa::path(
    post,
    path = "/auth/logout",
    operation_id = "logout",
    tag = "auth",
    responses(
        (status = 204, description = "Logged out"),
        Unauthorized,
        ServerErrors,
    ),
    security(("bearer" = []))
)]
pub async fn logout(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
) -> ApiResult<StatusCode> {
    devices::logout(&state.ctx, caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes every session of the caller, the current one included.
#[utoipa::path(
    post,
    path = "/auth/logout-all",
    operation_id = "logoutAll",
    tag = "auth",
    responses(
        (status = 204, description = "Every session logged out"),
        Unauthorized,
        ServerErrors,
    ),
    security(("bearer" = []))
)]
pub async fn logout_all(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
) -> ApiResult<StatusCode> {
    devices::logout_all(&state.ctx, caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the caller's password; every other session is revoked. Counted against
/// `RATE_LIMIT_AUTH_PER_IP` like sign-in.
#[utoipa::path(
    post,
    path = "/auth/password",
    operation_id = "changePassword",
    tag = "auth",
    request_body = PasswordBody,
    responses(
        (status = 204, description = "Changed; the other sessions are revoked"),
        BadRequest,
        (status = 401, description = "`unauthorized`: bad access token or wrong current password; `session_revoked`", body = ErrorBody),
        BodyErrors,
        RateLimited,
        ServerErrors,
    ),
    security(("bearer" = []))
)]
pub async fn password(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    devices::change_password(&state.ctx, caller, body.current_password, body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}
