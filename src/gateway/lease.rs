//! This instance's lease in Redis, and the reaping of instances that died.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{GwState, delivery::resync};

/// How often the lease is renewed (and a lost registration noticed).
pub const HEARTBEAT: Duration = Duration::from_secs(1);

pub async fn run(state: GwState, stop: CancellationToken) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    let lease = state.config.gateway_lease;
    let mut registered = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match state.cache.heartbeat(&state.gateway_id).await {
            // Our entry was missing after we had one: we were reaped (a long pause) or
            // Redis lost its data (a flush); our connections' routing is gone too.
            Ok(true) if registered => {
                if let Err(e) = resync(&state).await {
                    tracing::warn!(error = %e, "rebuilding routing state failed");
                }
            }
            Ok(_) => registered = true,
            Err(e) => tracing::warn!(error = %e, "gateway heartbeat failed"),
        }
        if let Err(e) = state
            .cache
            .reap_gateways(lease.as_millis() as i64, state.config.presence_grace)
            .await
        {
            tracing::warn!(error = %e, "reaping dead gateways failed");
        }
    }
}
