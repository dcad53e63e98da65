//! The REST API (axum): auth, users, chats, messages. Sends are published to the
//! chat's partition queue and answered 202 once RabbitMQ confirmed them.

pub mod asyncapi;
pub mod auth;
pub mod chats;
pub mod compat;
pub mod extract;
pub mod hooks;
pub mod lifecycle;
pub mod limits;
pub mod manage;
pub mod messages;
pub mod notifications;
pub mod openapi;
pub mod search;
pub mod uploads;
pub mod users;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{delete, get, patch, post, put},
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::JwtKeys,
    cache::Cache,
    config::Config,
    health::Health,
    mq::{Link, Topology},
    server::Service,
};

pub use crate::http::{BODY_LIMIT, cors, finish};
pub use crate::service::Deps;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub cache: Cache,
    pub jwt: Arc<JwtKeys>,
    pub link: Link,
    pub topology: Arc<Topology>,
    pub refresh_ttl: Duration,
    pub limits: crate::config::RateLimits,
    pub receipts: crate::service::receipts::Receipts,
    /// What the message and chat use cases run on.
    pub ctx: crate::service::Ctx,
    /// `TRUSTED_PROXIES`.
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
}

/// The REST routes with their middleware (no health routes).
pub fn routes(state: AppState) -> Router {
    let auth_limit = axum::middleware::from_fn_with_state(state.clone(), limits::limit_auth);
    Router::new()
        .route(
            "/auth/register",
            post(auth::register).layer(auth_limit.clone()),
        )
        .route("/auth/login", post(auth::login).layer(auth_limit.clone()))
        .route("/auth/refresh", post(auth::refresh).layer(auth_limit))
        .route("/users/me", get(users::me))
        .route("/users/presence", post(users::presence_bulk))
        .route("/users/{user_id}", get(users::get_user))
        .route("/users/{user_id}/presence", get(users::presence))
        .route("/chats", post(chats::create).get(chats::list))
        .route(
            "/chats/{chat_id}",
            get(chats::get_chat).patch(manage::update),
        )
        .route(
            "/chats/{chat_id}/participants",
            post(chats::add_participants),
        )
        .route(
            "/chats/{chat_id}/participants/{user_id}",
            delete(chats::remove_participant).patch(manage::set_role),
        )
        .route(
            "/chats/{chat_id}/messages",
            post(messages::send).get(messages::history),
        )
        .route(
            "/chats/{chat_id}/messages/{message_id}",
            patch(lifecycle::edit).delete(lifecycle::delete),
        )
        .route(
            "/chats/{chat_id}/messages/{message_id}/replies",
            get(lifecycle::replies),
        )
        .route(
            "/chats/{chat_id}/messages/{message_id}/reactions/{emoji}",
            put(lifecycle::add_reaction).delete(lifecycle::remove_reaction),
        )
        .route("/chats/{chat_id}/pins", get(lifecycle::pins))
        .route(
            "/chats/{chat_id}/pins/{message_id}",
            put(lifecycle::pin).delete(lifecycle::unpin),
        )
        .route("/chats/{chat_id}/read", post(messages::mark_read))
        .route(
            "/chats/{chat_id}/hooks",
            post(hooks::create).get(hooks::list),
        )
        .route("/chats/{chat_id}/hooks/{hook_id}", delete(hooks::delete))
        .route("/hooks/{hook_id}/{token}", post(hooks::post))
        .route("/notifications", get(notifications::list))
        .route("/notifications/read", post(notifications::mark_read))
        .route("/search/messages", get(search::messages))
        .route("/uploads", post(uploads::create))
        .route("/openapi.json", get(openapi::serve))
        .route("/asyncapi.json", get(asyncapi::serve))
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Connects to the broker (supervised, closed once `service` has drained its
/// requests) and returns the API state.
pub fn state(
    config: &Config,
    deps: &Deps,
    service: &Service,
) -> (AppState, tokio::task::JoinHandle<()>) {
    let topology = Topology::new(&config.rabbitmq);
    let (link, task) = Link::spawn(
        config.rabbitmq.uri.clone(),
        topology.clone(),
        "courier-api",
        service.drained.clone(),
    );
    let topology = Arc::new(topology);
    let ctx = crate::service::Ctx {
        pool: deps.pool.clone(),
        cache: deps.cache.clone(),
        commands: crate::service::commands::Commands {
            link: link.clone(),
            topology: topology.clone(),
            confirm_timeout: config.rabbitmq.confirm_timeout,
        },
        limits: config.rate_limits,
        edit_window: config.message_edit_window,
        storage: deps.storage.clone(),
    };
    let state = AppState {
        pool: deps.pool.clone(),
        cache: deps.cache.clone(),
        jwt: deps.jwt.clone(),
        link,
        topology,
        refresh_ttl: config.refresh_token_ttl,
        limits: config.rate_limits,
        receipts: deps.receipts.clone(),
        ctx,
        trusted_proxies: config.trusted_proxies.clone().into(),
    };
    (state, task)
}

/// How often expired refresh tokens are deleted.
pub const TOKEN_PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes expired refresh tokens every `TOKEN_PURGE_EVERY` (every API instance does;
/// it is idempotent).
pub fn spawn_token_purge(service: &mut Service, pool: PgPool) {
    let stop = service.stop.clone();
    service.spawn_on_run(async move {
        let mut tick = tokio::time::interval(TOKEN_PURGE_EVERY);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match crate::db::tokens::purge_expired(&pool).await {
                Ok(n) => metrics::counter!("courier_refresh_tokens_purged_total").increment(n),
                Err(e) => tracing::warn!(error = %e, "purging expired refresh tokens failed"),
            }
        }
    });
}

/// Builds the API role on `PORT`.
pub async fn build(config: &Config) -> anyhow::Result<Service> {
    let deps = Deps::connect(config).await?;
    crate::db::migrate(config).await?;
    let addr = SocketAddr::new(config.bind_host, config.port);
    let mut service = Service::bind("api", addr, Router::new(), CancellationToken::new()).await?;
    service.serve_metrics(config).await?;
    service.max_connections = config.http_max_connections;
    deps.spawn_receipts(&mut service, config);
    spawn_token_purge(&mut service, deps.pool.clone());
    let (state, link_task) = state(config, &deps, &service);
    let health = Health {
        db: Some(deps.pool.clone()),
        cache: Some(deps.cache.clone()),
        mq: Some(state.link.clone()),
    };
    let router = finish(routes(state.clone()).merge(health.router()));
    let router = compat::wrap(router, state, config.api_compat).layer(cors(&config.cors_origins));
    service = service.with_router(router);
    service.spawn_on_run(async move {
        if let Err(e) = link_task.await {
            tracing::error!(error = %e, "rabbitmq supervisor failed");
        }
    });
    Ok(service)
}
