//! Receives this instance's pushes from Redis and hands each event to the local
//! connections of its recipient (a user, or the members of a group chat). After any
//! loss of the subscription (a Redis restart), the routing state is rebuilt and every
//! connection reads back what it missed.

use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use tokio::sync::watch;

use super::GwState;
use crate::{
    cache::conn::changed,
    domain::events::{Delivery, Push},
};

/// Subscribes to this gateway's channel, resubscribing after a Redis outage.
pub async fn run(state: GwState, stop: CancellationToken) {
    let channel = state.cache.keys.gateway_channel(&state.gateway_id);
    let mut backoff =
        crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut changes = state.cache.master_changes();
    while !stop.is_cancelled() {
        let started = tokio::time::Instant::now();
        match subscribe(&state, &channel, &stop, &mut changes).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, %channel, "notification subscription lost; resubscribing");
                backoff.reset_after(started.elapsed());
                // A new Redis master ends the wait: resubscribe there at once.
                tokio::select! {
                    go = backoff.wait(&stop) => if !go { return },
                    _ = changed(&mut changes) => {}
                }
            }
        }
    }
}

async fn subscribe(
    state: &GwState,
    channel: &str,
    stop: &CancellationToken,
    changes: &mut Option<watch::Receiver<u64>>,
) -> anyhow::Result<()> {
    if let Some(c) = changes {
        c.mark_unchanged();
    }
    let mut pubsub = state.cache.pubsub().await?;
    pubsub.subscribe(channel).await?;
    tracing::info!(%channel, "subscribed to notifications");
    // Pushes published while we were not subscribed are lost: rebuild and read back.
    resync(state).await?;
    let mut messages = pubsub.into_on_message();
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = changed(changes) => anyhow::bail!("the redis master changed"),
            m = messages.next() => m.ok_or_else(|| anyhow::anyhow!("redis pub/sub stream ended"))?,
        };
        match serde_json::from_slice::<Push>(msg.get_payload_bytes()) {
            Ok(push) => {
                for delivery in push.into_deliveries() {
                    match delivery {
                        Delivery::User(user, event) => state.hub.dispatch(user, &event),
                        Delivery::Group {
                            chat,
                            except,
                            event,
                        } => state.hub.dispatch_group(chat, &except, &event),
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "malformed push"),
        }
    }
}

/// Follows every locally indexed group chat and registers every local connection again
/// (Redis may have lost them), then has each read back the events it may have missed.
pub async fn resync(state: &GwState) -> redis::RedisResult<()> {
    let conns = state.hub.all();
    if conns.is_empty() {
        return Ok(());
    }
    tracing::info!(connections = conns.len(), "rebuilding routing state");
    let chats = state.hub.groups.refollow();
    state.cache.follow_chats(&state.gateway_id, &chats).await?;
    state.hub.groups.followed(&chats);
    for conn in &conns {
        state
            .cache
            .register_conn(&state.gateway_id, conn.user, &conn.id)
            .await?;
    }
    state.hub.catch_up_all();
    Ok(())
}
