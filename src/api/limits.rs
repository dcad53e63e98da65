//! Rate limits on auth attempts (per username and per client IP), answering 429
//! `rate_limited` with `Retry-After` (the send limit is part of the send use case). A
//! Redis failure lets the request through: the limit is protection, not a dependency.

use std::net::SocketAddr;

use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{AppState, BODY_LIMIT};
use crate::{
    domain::{compat::normalize_email, user::validate_username},
    error::ApiError,
    service::sessions::{AttemptLimit, count_attempt},
};

#[derive(Deserialize)]
struct Username {
    username: Option<String>,
    /// The chat-be compatibility profile signs in with an e-mail.
    email: Option<String>,
}

/// Per-client and per-(username, client) limits on register, login and refresh; the
/// client is the TCP peer, or what a trusted proxy says it is (`TRUSTED_PROXIES`).
pub async fn limit_auth(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let client = crate::http::client_ip(peer.ip(), req.headers(), &state.trusted_proxies);
    let key = format!("auth:ip:{client}");
    if let Err(e) = count_attempt(&state.ctx, &key, AttemptLimit::PerClient).await {
        return ApiError::from(e).into_response();
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return ApiError::PayloadTooLarge(BODY_LIMIT).into_response(),
    };
    // Only well-formed usernames get a counter (others cannot name an account), so a
    // key is always short and printable. The counter is per username *and* client: a
    // stranger hammering someone's username exhausts only their own bucket, never locks
    // the owner out; the per-client limit above bounds what one client tries in all.
    let account = match serde_json::from_slice::<Username>(&bytes) {
        Ok(Username {
            username: Some(u), ..
        }) if validate_username(&u).is_ok() => Some(format!("auth:user:{u}:{client}")),
        Ok(Username { email: Some(e), .. }) => {
            normalize_email(&e).map(|e| format!("auth:email:{e}:{client}"))
        }
        _ => None,
    };
    if let Some(key) = account
        && let Err(e) = count_attempt(&state.ctx, &key, AttemptLimit::PerAccount).await
    {
        return ApiError::from(e).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
