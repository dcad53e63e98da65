//! `DELETE /users/me`: the caller deletes their account.

use axum::{
    extract::{FromRequest, Request, State},
    http::{
        StatusCode,
        header::{CONTENT_LENGTH, CONTENT_TYPE},
    },
};
use serde::Deserialize;

use super::{
    AppState,
    extract::{ApiJson, AuthCaller},
    responses::{BadRequest, BodyErrors, RateLimited, ServerErrors},
};
use crate::{
    error::{ApiResult, ErrorBody},
    service::{ServiceError, account_deletion},
};

/// The account's password, checked again before deleting.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct DeleteAccountBody {
    password: String,
}

/// Deletes the caller's account (docs/rest.md#deleting-an-account): every session is
/// revoked (sockets get `auth.revoked` `account_deleted`), the caller leaves every
/// group (`chat.updated` to the others), direct chats with them refuse sends (403
/// `blocked`), their uploads are deleted from storage; their messages stay, from
/// "Deleted user". The username is free again after `ACCOUNT_USERNAME_HOLD`. Counted
/// against `RATE_LIMIT_AUTH_PER_IP` like sign-in.
#[utoipa::path(
    delete,
    path = "/users/me",
    operation_id = "deleteMe",
    tag = "users",
    request_body = DeleteAccountBody,
    responses(
        (status = 204, description = "Deleted; every session is revoked"),
        BadRequest,
        (status = 401, description = "`unauthorized`: bad access token or wrong password; `session_revoked`", body = ErrorBody),
        BodyErrors,
        RateLimited,
        ServerErrors,
    ),
    security(("bearer" = []))
)]
pub async fn delete_me(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
    request: Request,
) -> ApiResult<StatusCode> {
    // A DELETE is often sent bare: no body is a missing password (400), not 415.
    let headers = request.headers();
    let bare = !headers.contains_key(CONTENT_TYPE)
        && headers
            .get(CONTENT_LENGTH)
            .is_none_or(|l| l.as_bytes() == b"0");
    if bare {
        return Err(ServiceError::Invalid("password is required".into()).into());
    }
    let ApiJson(body) = ApiJson::<DeleteAccountBody>::from_request(request, &state).await?;
    account_deletion::delete(&state.ctx, caller, body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}
