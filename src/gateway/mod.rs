//! The Socket.IO gateway (socketioxide): namespace `/chat` on path `/socket.io`.
//!
//! Sockets authenticate at the handshake and join their user's room; their location
//! is recorded in Redis so the worker notifies only the gateways that need a message.
//! Each instance subscribes to its own channel, heartbeats a lease, and reaps the
//! routing state of instances whose lease ran out.

mod delivery;
mod handlers;
mod lease;

use std::{net::SocketAddr, sync::Arc};

use axum::Router;
use socketioxide::{SocketIo, handler::ConnectHandler, layer::SocketIoLayer};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{
    api::Deps, auth::JwtKeys, cache::Cache, config::Config, health::Health, server::Service,
};

pub const NAMESPACE: &str = "/chat";

#[derive(Clone)]
pub struct GwState {
    pub pool: PgPool,
    pub cache: Cache,
    pub jwt: Arc<JwtKeys>,
    pub gateway_id: Arc<str>,
}

/// The Socket.IO layer, and the tasks that keep this instance's routing state.
pub fn attach(service: &mut Service, config: &Config, deps: &Deps) -> SocketIoLayer {
    let state = GwState {
        pool: deps.pool.clone(),
        cache: deps.cache.clone(),
        jwt: deps.jwt.clone(),
        gateway_id: Arc::from(config.gateway_id.as_str()),
    };
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(config.gateway_socket_buffer)
        .with_state(state.clone())
        .build_layer();
    io.ns(NAMESPACE, handlers::on_connect.with(handlers::authenticate));
    service.spawn_on_run(delivery::run(
        io.clone(),
        state.clone(),
        service.stop.clone(),
    ));
    service.spawn_on_run(lease::run(io.clone(), state.clone(), service.stop.clone()));
    // At the signal, not after HTTP drained: open sockets would hold the drain.
    let stop = service.stop.clone();
    service.spawn_on_run(async move {
        stop.cancelled().await;
        shutdown(io, state).await;
    });
    layer
}

/// Closes every client's transport (socket.io-client then reconnects, landing on
/// another instance behind the balancer) and drops this instance's routing state.
async fn shutdown(io: SocketIo, state: GwState) {
    io.close().await;
    if let Err(e) = state.cache.forget_gateway(&state.gateway_id).await {
        tracing::warn!(error = %e, "could not clear routing state; the lease reaper will");
    }
}

/// Builds the gateway role on `GATEWAY_PORT`.
pub async fn build(config: &Config) -> anyhow::Result<Service> {
    let deps = Deps::connect(config).await?;
    let stop = CancellationToken::new();
    let addr = SocketAddr::new(config.bind_host, config.gateway_port);
    let mut service = Service::bind("gateway", addr, Router::new(), stop).await?;
    let layer = attach(&mut service, config, &deps);
    let health = Health {
        db: Some(deps.pool.clone()),
        cache: Some(deps.cache.clone()),
        mq: None,
    };
    let router = crate::api::finish(health.router())
        .layer(layer)
        .layer(crate::api::cors(&config.cors_origins));
    Ok(service.with_router(router))
}
