//! Extractors that turn every rejection into the contract's error shape.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Path, Query},
    http::{HeaderMap, header::USER_AGENT, request::Parts},
};
use uuid::Uuid;

use super::AppState;
use crate::{
    domain::session::device_name as device_name_of,
    error::ApiError,
    http::{bearer, client_ip},
    service::sessions::{Caller, Device},
};

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

/// The authenticated caller, from `Authorization: Bearer <accessToken>` (401
/// `session_revoked` when its session was revoked).
#[derive(Debug, Clone, Copy)]
pub struct AuthUser(pub Uuid);

impl<S> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let AuthCaller(caller) = AuthCaller::from_request_parts(parts, state).await?;
        Ok(AuthUser(caller.user))
    }
}

/// The authenticated caller with the session of its token.
#[derive(Debug, Clone, Copy)]
pub struct AuthCaller(pub Caller);

impl<S> FromRequestParts<S> for AuthCaller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let token = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        Ok(AuthCaller(
            crate::service::sessions::authenticate(&app.ctx, token).await?,
        ))
    }
}

/// Where a login comes from: the client's address (through `TRUSTED_PROXIES`) and its
/// `User-Agent`; the handler adds the body's `deviceName`.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The session's device: `deviceName` if given, else the `User-Agent`.
    pub fn device(&self, device_name: Option<&str>) -> Device {
        Device {
            name: device_name_of(device_name, self.user_agent.as_deref()),
            ip: self.ip.map(|ip| ip.to_string()),
        }
    }
}

impl<S> FromRequestParts<S> for ClientInfo
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| client_ip(peer.ip(), &parts.headers, &app.trusted_proxies));
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(ClientInfo { ip, user_agent })
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
