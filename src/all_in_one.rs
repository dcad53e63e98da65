//! `courier`: API, worker, gateway and pusher in one process, REST and Socket.IO on `PORT`.

use std::net::SocketAddr;

use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::{api, config::Config, gateway, health::Health, server::Service, worker};

pub async fn build(config: &Config) -> anyhow::Result<Service> {
    let deps = crate::service::Deps::connect(config).await?;
    crate::db::probe(config).await?;
    crate::mq::connect::preflight(&config.rabbitmq, "courier").await?;
    crate::db::migrate_or_check(config).await?;
    let stop = CancellationToken::new();
    let addr = SocketAddr::new(config.bind_host, config.port);
    let mut service = Service::bind("courier", addr, Router::new(), stop.clone()).await?;
    service.serve_metrics(config).await?;
    service.max_connections = config.http_max_connections;
    let (state, api_link, api_link_task) = api::state(config, &deps, &service);
    api::spawn_audit_relay(&mut service, &state);
    service.spawn_on_run(async move {
        if let Err(e) = api_link_task.await {
            tracing::error!(error = %e, "rabbitmq supervisor failed");
        }
    });
    let worker_link = worker::spawn_consumers(&mut service, config, &deps)?;
    // The pusher, when a push service is configured.
    let pusher_link = if config.push.configured() {
        Some(crate::pusher::spawn(&mut service, config, &deps)?)
    } else {
        tracing::info!("no push service configured (PUSH_VAPID_*, FCM_*): the pusher is off");
        None
    };
    // The receipts flusher (once per process) and the refresh-token purge.
    api::spawn_tasks(&mut service, config, &deps);
    let (layer, sse) = gateway::attach(&mut service, config, &deps);
    // Ready only when both broker links are up.
    let health = Health {
        db: Some(deps.pool.clone()),
        cache: Some(deps.cache.clone()),
        mq: Some(api_link),
    };
    let worker_health = [Some(worker_link), pusher_link].map(|mq| Health {
        mq,
        ..Health::default()
    });
    let router = api::routes(state.clone())
        .merge(health.router())
        .merge(sse)
        .merge(api::app::routes(&config.web_app_dir))
        .route_layer(axum::middleware::from_fn(
            move |req, next: axum::middleware::Next| {
                let worker_health = worker_health.clone();
                async move { readyz_guard(&worker_health, req, next).await }
            },
        ));
    let router = api::compat::wrap(crate::http::finish(router), state, config.api_compat)
        .layer(layer)
        .layer(axum::middleware::map_request(gateway::detach_head))
        .layer(crate::http::cors(&config.cors_origins));
    Ok(service.with_router(router))
}

/// Fails `/readyz` while the worker's (or the pusher's) own broker link is down.
async fn readyz_guard(
    healths: &[Health; 2],
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if req.uri().path() == "/readyz" {
        for h in healths {
            if let Some(dep) = h.first_down().await {
                return crate::error::ApiError::unavailable(dep).into_response();
            }
        }
    }
    next.run(req).await
}
