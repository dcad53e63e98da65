//! Extractors that turn every rejection into the contract's error shape.

use axum::{
    extract::{FromRef, FromRequest, FromRequestParts, Path, Query},
    http::{HeaderMap, request::Parts},
};
use uuid::Uuid;

use super::AppState;
use crate::{error::ApiError, http::bearer};

/// `Json<T>` whose rejections are `invalid_json`, `validation_failed`, 413 or 415.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The authenticated caller, from `Authorization: Bearer <accessToken>`.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser(pub Uuid);

impl<S> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let token = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        Ok(AuthUser(crate::service::sessions::authenticate(
            &app.ctx, token,
        )?))
    }
}

/// The request id set by the request-id layer.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}
