//! The REST API (axum): auth, users, chats, messages. Sends are published to the
//! chat's partition queue and answered 202 once RabbitMQ confirmed them.

pub mod account;
pub mod admin;
pub mod app;
pub mod asyncapi;
pub mod auth;
pub mod blocks;
pub mod chat_list;
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
pub mod profiles;
pub mod push;
pub mod responses;
pub mod search;
pub mod sessions;
pub mod uploads;
pub mod users;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    handler::Handler,
    routing::{delete, get, patch, post, put},
};
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    health::Health,
    mq::{Link, Topology},
    server::Service,
};

pub use crate::http::{BODY_LIMIT, cors, finish};
pub use crate::service::Deps;

/// What the routes need: the use cases' context, and the proxies whose
/// `X-Forwarded-For` is believed (for the per-client auth limit).
#[derive(Clone)]
pub struct AppState {
    /// What every use case runs on (connections, limits, token keys).
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
        .route(
            "/auth/refresh",
            post(auth::refresh).layer(auth_limit.clone()),
        )
        .route("/auth/sessions", get(sessions::list))
        .route("/auth/sessions/{session_id}", delete(sessions::revoke))
        .route("/auth/logout", post(sessions::logout))
        .route("/auth/logout-all", post(sessions::logout_all))
        .route(
            "/auth/password",
            post(sessions::password).layer(auth_limit.clone()),
        )
        .route(
            "/users/me",
            get(users::me)
                .patch(profiles::update)
                .delete(account::delete_me.layer(auth_limit)),
        )
        .route("/users/search", get(profiles::search))
        .route("/users/me/blocks", get(blocks::list))
        .route(
            "/users/{user_id}/block",
            put(blocks::block).delete(blocks::unblock),
        )
        .route("/users/presence", post(users::presence_bulk))
        .route("/users/{user_id}", get(users::get_user))
        .route("/users/{user_id}/presence", get(users::presence))
        .route("/chats", post(chats::create).get(chat_list::list))
        .route("/chats/{chat_id}/settings", put(chat_list::update_settings))
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
        .route("/push/vapid-public-key", get(push::vapid_public_key))
        .route("/push/subscriptions", post(push::create).get(push::list))
        .route(
            "/push/subscriptions/{subscription_id}",
            delete(push::delete),
        )
        .route("/reports", post(admin::create_report))
        .route("/admin/reports", get(admin::list_reports))
        .route(
            "/admin/reports/{report_id}/resolve",
            post(admin::resolve_report),
        )
        .route(
            "/admin/users/{user_id}/ban",
            post(admin::ban).delete(admin::unban),
        )
        .route(
            "/admin/messages/{message_id}",
            delete(admin::delete_message),
        )
        .route("/openapi.json", get(openapi::serve))
        .route("/asyncapi.json", get(asyncapi::serve))
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Connects to the broker (supervised, closed once `service` has drained its
/// requests) and returns the API state, its broker link (for readiness) and the link's
/// supervisor task.
pub fn state(
    config: &Config,
    deps: &Deps,
    service: &Service,
) -> (AppState, Link, tokio::task::JoinHandle<()>) {
    let topology = Topology::new(&config.rabbitmq);
    let (link, task) = Link::spawn(
        config.rabbitmq.clone(),
        topology.clone(),
        "courier-api",
        service.drained.clone(),
    );
    let ctx = crate::service::Ctx {
        pool: deps.pool.clone(),
        cache: deps.cache.clone(),
        commands: crate::service::commands::Commands {
            link: link.clone(),
            topology: Arc::new(topology),
            confirm_timeout: config.rabbitmq.confirm_timeout,
        },
        limits: config.rate_limits,
        edit_window: config.message_edit_window,
        max_members: config.chat_max_members,
        storage: deps.storage.clone(),
        jwt: deps.jwt.clone(),
        refresh_ttl: config.refresh_token_ttl,
        username_hold: config.account_username_hold,
        receipts: deps.receipts.clone(),
        push: crate::service::push_subscriptions::PushSettings {
            vapid_public_key: config.push.vapid.as_ref().map(|v| v.public_key.clone()),
            allow_http_endpoints: config.push.allow_http_endpoints,
        },
    };
    let state = AppState {
        ctx,
        trusted_proxies: config.trusted_proxies.clone().into(),
    };
    (state, link, task)
}

/// Runs the tasks every API process runs beside its routes: the receipts flusher and
/// the near cache (once per process), and the purge of expired refresh tokens and
/// sessions.
pub fn spawn_tasks(service: &mut Service, config: &Config, deps: &Deps) {
    service.spawn_on_run(deps.receipts_flusher(config, service.stop.clone()));
    service.spawn_on_run(deps.near_cache(config, service.stop.clone()));
    service.spawn_on_run(crate::service::sessions::purge_expired_tokens(
        deps.pool.clone(),
        config.refresh_token_ttl,
        crate::service::revocation::window(config.jwt_expiration),
        service.stop.clone(),
    ));
}

/// Runs the relay of `admin.*` events an action could not publish at once (every
/// process that serves the API runs one).
pub fn spawn_audit_relay(service: &mut Service, state: &AppState) {
    service.spawn_on_run(crate::service::audit::relay(
        state.ctx.pool.clone(),
        state.ctx.commands.clone(),
        service.stop.clone(),
    ));
}

/// Builds the API role on `PORT`.
pub async fn build(config: &Config) -> anyhow::Result<Service> {
    let deps = Deps::connect(config).await?;
    crate::db::probe(config).await?;
    crate::mq::connect::preflight(&config.rabbitmq, "courier-api").await?;
    crate::db::migrate_or_check(config).await?;
    let addr = SocketAddr::new(config.bind_host, config.port);
    let mut service = Service::bind("api", addr, Router::new(), CancellationToken::new()).await?;
    service.serve_metrics(config).await?;
    service.max_connections = config.http_max_connections;
    spawn_tasks(&mut service, config, &deps);
    let (state, link, link_task) = state(config, &deps, &service);
    spawn_audit_relay(&mut service, &state);
    let health = Health {
        db: Some(deps.pool.clone()),
        cache: Some(deps.cache.clone()),
        mq: Some(link),
    };
    let router = finish(
        routes(state.clone())
            .merge(health.router())
            .merge(app::routes(&config.web_app_dir)),
    );
    let router = compat::wrap(router, state, config.api_compat).layer(cors(&config.cors_origins));
    service = service.with_router(router);
    service.spawn_on_run(async move {
        if let Err(e) = link_task.await {
            tracing::error!(error = %e, "rabbitmq supervisor failed");
        }
    });
    Ok(service)
}
