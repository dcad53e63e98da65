//! The REST API (axum): auth, users, chats, messages. Sends are published to the
//! chat's partition queue and answered 202 once RabbitMQ confirmed them.

pub mod auth;
pub mod chats;
pub mod extract;
pub mod limits;
pub mod messages;
pub mod openapi;
pub mod users;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, Request},
    routing::{delete, get, post},
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    auth::JwtKeys,
    cache::Cache,
    config::Config,
    error::ApiError,
    health::Health,
    mq::{Link, Topology},
    server::Service,
};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;
/// How long a send waits for RabbitMQ's confirm before answering 503.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub cache: Cache,
    pub jwt: Arc<JwtKeys>,
    pub link: Link,
    pub topology: Arc<Topology>,
    pub refresh_ttl: Duration,
    pub limits: crate::config::RateLimits,
}

/// The shared connections of a process, made once and given to each role it runs.
#[derive(Clone)]
pub struct Deps {
    pub pool: PgPool,
    pub cache: Cache,
    pub jwt: Arc<JwtKeys>,
}

impl Deps {
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let jwt = JwtKeys::new(&config.jwt, config.jwt_expiration)?;
        Ok(Self {
            pool: crate::db::pool(config)?,
            cache: Cache::connect(config, Duration::from_secs(30)).await?,
            jwt: Arc::new(jwt),
        })
    }
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
        .route("/users/{user_id}", get(users::get_user))
        .route("/chats", post(chats::create).get(chats::list))
        .route("/chats/{chat_id}", get(chats::get_chat))
        .route(
            "/chats/{chat_id}/participants",
            post(chats::add_participants),
        )
        .route(
            "/chats/{chat_id}/participants/{user_id}",
            delete(chats::remove_participant),
        )
        .route(
            "/chats/{chat_id}/messages",
            post(messages::send).get(messages::history),
        )
        .route("/chats/{chat_id}/read", post(messages::mark_read))
        .route("/openapi.json", get(openapi::serve))
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Fallbacks and cross-cutting layers for any router serving clients.
pub fn finish(router: Router) -> Router {
    use axum::http::{HeaderValue, header};
    use tower_http::set_header::SetResponseHeaderLayer;
    crate::telemetry::metrics_handle();
    let x_request_id = HeaderName::from_static("x-request-id");
    let security = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed("method not allowed on this route".into()) })
        .layer(axum::middleware::from_fn(crate::telemetry::track_http))
        .layer(
            tower::ServiceBuilder::new()
                .layer(security(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .layer(security(header::X_FRAME_OPTIONS, "DENY"))
                .layer(security(header::REFERRER_POLICY, "no-referrer"))
                .layer(security(header::CACHE_CONTROL, "no-store"))
                .layer(SetRequestIdLayer::new(x_request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::new(x_request_id))
                .layer(CatchPanicLayer::custom(|_| {
                    axum::response::IntoResponse::into_response(ApiError::Internal(anyhow::anyhow!("handler panicked")))
                })),
        )
}

/// CORS for REST and the Socket.IO handshake: only the configured origins (none by
/// default, so browsers get no cross-origin access until it is configured).
pub fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600))
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
    let state = AppState {
        pool: deps.pool.clone(),
        cache: deps.cache.clone(),
        jwt: deps.jwt.clone(),
        link,
        topology: Arc::new(topology),
        refresh_ttl: config.refresh_token_ttl,
        limits: config.rate_limits,
    };
    (state, task)
}

/// Builds the API role on `PORT`.
pub async fn build(config: &Config) -> anyhow::Result<Service> {
    let deps = Deps::connect(config).await?;
    crate::db::migrate(config).await?;
    let addr = SocketAddr::new(config.bind_host, config.port);
    let mut service = Service::bind("api", addr, Router::new(), CancellationToken::new()).await?;
    let (state, link_task) = state(config, &deps, &service);
    let health = Health {
        db: Some(deps.pool.clone()),
        cache: Some(deps.cache.clone()),
        mq: Some(state.link.clone()),
    };
    let router = finish(routes(state).merge(health.router())).layer(cors(&config.cors_origins));
    service = service.with_router(router);
    service.spawn_on_run(async move {
        if let Err(e) = link_task.await {
            tracing::error!(error = %e, "rabbitmq supervisor failed");
        }
    });
    Ok(service)
}
