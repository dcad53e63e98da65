//! This instance's lease in Redis, and the reaping of instances that died.

use std::time::Duration;

use socketioxide::SocketIo;
use tokio_util::sync::CancellationToken;

use super::{GwState, NAMESPACE, handlers::UserId};

pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A gateway silent for this long is considered dead and its sockets forgotten.
pub const LEASE: Duration = Duration::from_secs(15);

pub async fn run(io: SocketIo, state: GwState, stop: CancellationToken) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match state.cache.heartbeat(&state.gateway_id).await {
            // Our entry was missing: we were reaped (a long pause); re-register our sockets.
            Ok(true) => reregister(&io, &state).await,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "gateway heartbeat failed"),
        }
        if let Err(e) = state.cache.reap_gateways(LEASE.as_millis() as i64).await {
            tracing::warn!(error = %e, "reaping dead gateways failed");
        }
    }
}

async fn reregister(io: &SocketIo, state: &GwState) {
    let Some(ns) = io.of(NAMESPACE) else { return };
    for s in ns.sockets() {
        if let Some(UserId(user)) = s.extensions.get::<UserId>()
            && let Err(e) = state
                .cache
                .register_socket(&state.gateway_id, user, &s.id.to_string())
                .await
        {
            tracing::warn!(error = %e, "re-registering socket failed");
        }
    }
}
