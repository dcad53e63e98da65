//! The chat-be compatibility profile (`API_COMPAT=chat-be`): the NestJS reference
//! backend's routes at the same paths and in its shapes (envelope, e-mail accounts,
//! `participantUserIds`, paged lists with `meta`, uppercase enums), as adapters over
//! the same use cases as Courier's own API. Courier's routes the reference backend
//! does not have stay reachable behind them, in Courier's shapes.
//! See docs/migrating-from-nestjs.md.

pub mod auth;
pub mod chats;
pub mod envelope;

use axum::{
    Router,
    extract::{ConnectInfo, Request},
    http::Method,
    middleware::Next,
    routing::{get, post},
};
use std::net::SocketAddr;

use serde::Deserialize;
use tower::ServiceExt;

use super::{AppState, limits};
use crate::{
    domain::compat::{ApiCompat, PageOptions},
    error::ApiError,
};

/// `page`, `take`, `order` (and `search` on history) as the reference backend reads them.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    page: Option<i64>,
    take: Option<i64>,
    order: Option<String>,
    search: Option<String>,
}

impl PageQuery {
    fn options(&self) -> Result<PageOptions, ApiError> {
        PageOptions::parse(self.page, self.take, self.order.as_deref()).map_err(ApiError::invalid)
    }
}

/// A finished router (`crate::http::finish`) with the profile in front of it when
/// `compat` is `ChatBe`: requests for the reference routes go to the profile's own
/// finished router; anything else (Courier's routes the reference backend lacks,
/// health, Socket.IO) to `router` as before. Unchanged when the profile is off.
pub fn wrap(router: Router, state: AppState, compat: ApiCompat) -> Router {
    if compat == ApiCompat::Off {
        return router;
    }
    let profile = crate::http::finish(profile(state));
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let profile = profile.clone();
            async move {
                if is_profile_route(req.method(), req.uri().path()) {
                    match profile.oneshot(fresh(req)).await {
                        Ok(resp) => resp,
                        Err(never) => match never {},
                    }
                } else {
                    next.run(req).await
                }
            }
        },
    ))
}

/// The request without what the outer router's match left in its extensions (its path
/// parameters), keeping the peer address the auth limits read.
fn fresh(req: Request) -> Request {
    let (mut parts, body) = req.into_parts();
    let peer = parts.extensions.remove::<ConnectInfo<SocketAddr>>();
    parts.extensions = Default::default();
    if let Some(peer) = peer {
        parts.extensions.insert(peer);
    }
    Request::from_parts(parts, body)
}

/// Whether the profile serves this method and path.
fn is_profile_route(method: &Method, path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (get, post) = (method == Method::GET, method == Method::POST);
    match segments[..] {
        ["auth", "register" | "login" | "logout"] => post,
        ["auth", "me"] | ["users"] | ["chats", "room-ids"] => get,
        // Courier's own `GET /users/me` and `GET /users/search` stay.
        ["users", id] => get && id != "me" && id != "search",
        ["chats"] | ["chats", _, "messages"] => get || post,
        _ => false,
    }
}

/// The reference routes, each answer in the envelope.
fn profile(state: AppState) -> Router {
    let auth_limit = axum::middleware::from_fn_with_state(state.clone(), limits::limit_auth);
    Router::new()
        .route(
            "/auth/register",
            post(auth::register).layer(auth_limit.clone()),
        )
        .route("/auth/login", post(auth::login).layer(auth_limit))
        .route("/auth/me", get(auth::me))
        .route("/auth/logout", post(auth::logout))
        .route("/users", get(auth::list_users))
        .route("/users/{user_id}", get(auth::get_user))
        .route("/chats", post(chats::create).get(chats::list))
        .route("/chats/room-ids", get(chats::room_ids))
        .route(
            "/chats/{chat_id}/messages",
            post(chats::send).get(chats::history),
        )
        .route_layer(axum::middleware::from_fn(envelope::envelope))
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(super::BODY_LIMIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_routes() {
        for (m, p) in [
            (Method::POST, "/auth/login"),
            (Method::GET, "/auth/me"),
            (Method::GET, "/users"),
            (Method::GET, "/users/0198"),
            (Method::POST, "/chats"),
            (Method::GET, "/chats/room-ids"),
            (Method::GET, "/chats/x/messages"),
        ] {
            assert!(is_profile_route(&m, p), "{m} {p}");
        }
        for (m, p) in [
            (Method::POST, "/auth/refresh"),
            (Method::GET, "/users/me"),
            (Method::GET, "/users/search"),
            (Method::PATCH, "/users/me"),
            (Method::GET, "/chats/x"),
            (Method::PATCH, "/chats/x/messages/y"),
            (Method::POST, "/chats/x/read"),
            (Method::GET, "/healthz"),
        ] {
            assert!(!is_profile_route(&m, p), "{m} {p}");
        }
    }
}
