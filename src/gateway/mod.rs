//! The realtime gateway: Socket.IO (socketioxide, namespace `/chat` on path
//! `/socket.io`) and SSE (`GET /events`).
//!
//! Connections authenticate, register in the routing state, follow their user's group
//! chats, and replay what they missed since their offset before any live event. Each instance subscribes to its
//! own channel, heartbeats a lease, reaps the routing state of instances whose lease
//! ran out, and rebuilds its own at once when Redis lost it.

mod conns;
mod delivery;
mod expiry;
mod fill;
mod groups;
mod handlers;
mod head;
mod lease;
mod pid;
mod session;
mod sse;

pub use head::detach as detach_head;

use std::{net::SocketAddr, sync::Arc};

use axum::{Router, routing::get};
use socketioxide::{SocketIo, handler::ConnectHandler, layer::SocketIoLayer};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::JwtKeys, cache::Cache, config::Config, health::Health, server::Service, service::Deps,
};

pub const NAMESPACE: &str = "/chat";
/// Bytes of each WebSocket's read buffer (see the builder below).
const WS_READ_BUFFER: usize = 512;

#[derive(Clone)]
pub struct GwState {
    pub pool: PgPool,
    pub cache: Cache,
    pub jwt: Arc<JwtKeys>,
    pub gateway_id: Arc<str>,
    pub hub: conns::Hub,
    pub config: crate::config::Realtime,
    pub socket_buffer: usize,
    /// The process's stop signal (ends SSE streams).
    pub stop: CancellationToken,
    /// Signs the attachments' URLs of `chat.sync` answers.
    pub storage: crate::storage::Storage,
    /// The sockets' token-expiry timers.
    pub expiries: expiry::Expiries,
    /// Mints and checks the pids of Socket.IO connection state recovery.
    pub pid: pid::PidKey,
}

/// The Socket.IO layer and the SSE route, and the tasks that keep this instance's
/// routing state and presence.
pub fn attach(service: &mut Service, config: &Config, deps: &Deps) -> (SocketIoLayer, Router) {
    let on_sent = session::on_sent(deps.pool.clone(), deps.cache.clone());
    let (expiries, expiry_timers) = expiry::Expiries::new(service.stop.clone());
    service.spawn_on_run(expiry_timers);
    let state = GwState {
        pool: deps.pool.clone(),
        cache: deps.cache.clone(),
        jwt: deps.jwt.clone(),
        gateway_id: Arc::from(config.gateway_id.as_str()),
        hub: conns::Hub::new(
            deps.cache.clone(),
            deps.receipts.clone(),
            Arc::new(on_sent),
            Arc::from(config.gateway_id.as_str()),
        ),
        config: config.realtime,
        socket_buffer: config.gateway_socket_buffer,
        stop: service.stop.clone(),
        storage: deps.storage.clone(),
        expiries,
        pid: pid::PidKey::new(&config.jwt),
    };
    let max_payload = config.realtime.max_payload;
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(config.gateway_socket_buffer)
        // Polling bodies, and WebSocket messages and frames, from clients.
        .max_payload(max_payload as u64)
        .ws_max_message_size(max_payload)
        .ws_max_frame_size(max_payload)
        // Allocated per socket up front (engineioxide's default is 4 KiB); what clients
        // send over the socket (the CONNECT with its token, ~250 bytes; acks, typing,
        // read marks, sync) fits, and a larger frame grows the buffer as it arrives.
        // 1 KiB → 512 B: idle 14.4 → 13.8 KB per socket (`scripts/bench.sh idle`).
        .ws_read_buffer_size(WS_READ_BUFFER)
        .ping_interval(config.realtime.ping_interval)
        .ping_timeout(config.realtime.ping_timeout)
        .with_state(state.clone())
        .build_layer();
    io.ns(NAMESPACE, handlers::on_connect.with(handlers::authenticate));
    let stop = service.stop.clone();
    service.spawn_on_run(delivery::run(state.clone(), stop.clone()));
    service.spawn_on_run(lease::run(state.clone(), stop.clone()));
    service.spawn_on_run(crate::service::presence::sweep(
        deps.pool.clone(),
        deps.cache.clone(),
        config.realtime.presence_grace,
        stop.clone(),
    ));
    // At the signal, not after HTTP drained: open sockets would hold the drain.
    let closing = state.clone();
    service.spawn_on_run(async move {
        stop.cancelled().await;
        shutdown(io, closing).await;
    });
    let sse = Router::new()
        .route("/events", get(sse::events))
        .with_state(state);
    (layer, sse)
}

/// Closes every client's transport (socket.io-client then reconnects, landing on
/// another instance behind the balancer) and drops this instance's routing state.
async fn shutdown(io: SocketIo, state: GwState) {
    io.close().await;
    let now = chrono::Utc::now().timestamp_millis();
    if let Err(e) = state.cache.forget_gateway(&state.gateway_id, now).await {
        tracing::warn!(error = %e, "could not clear routing state; the lease reaper will");
    }
}

/// Builds the gateway role on `GATEWAY_PORT`.
pub async fn build(config: &Config) -> anyhow::Result<Service> {
    let deps = Deps::connect(config).await?;
    crate::db::probe(config).await?;
    let stop = CancellationToken::new();
    let addr = SocketAddr::new(config.bind_host, config.gateway_port);
    let mut service = Service::bind("gateway", addr, Router::new(), stop).await?;
    service.serve_metrics(config).await?;
    service.max_connections = config.http_max_connections;
    service.spawn_on_run(deps.receipts_flusher(config, service.stop.clone()));
    service.spawn_on_run(deps.near_cache(config, service.stop.clone()));
    let (layer, sse) = attach(&mut service, config, &deps);
    let health = Health {
        db: Some(deps.pool.clone()),
        cache: Some(deps.cache.clone()),
        mq: None,
    };
    let router = crate::http::finish(health.router().merge(sse))
        .layer(layer)
        .layer(axum::middleware::map_request(detach_head))
        .layer(crate::http::cors(&config.cors_origins));
    Ok(service.with_router(router))
}
