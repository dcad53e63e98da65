//! Receives this instance's notifications from Redis and emits them to local sockets.

use std::time::Duration;

use futures::StreamExt;
use socketioxide::SocketIo;
use tokio_util::sync::CancellationToken;

use super::{GwState, NAMESPACE};
use crate::domain::notification::{EVENT_NEW, EVENT_SAVED, GatewayNotification, MessageEvent, user_room};

/// Subscribes to this gateway's channel, resubscribing after a Redis outage.
pub async fn run(io: SocketIo, state: GwState, stop: CancellationToken) {
    let channel = state.cache.keys.gateway_channel(&state.gateway_id);
    while !stop.is_cancelled() {
        match subscribe(&io, &state, &channel, &stop).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, %channel, "notification subscription lost; resubscribing");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
}

async fn subscribe(io: &SocketIo, state: &GwState, channel: &str, stop: &CancellationToken) -> anyhow::Result<()> {
    let mut pubsub = state.cache.client().get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    tracing::info!(%channel, "subscribed to notifications");
    let mut messages = pubsub.into_on_message();
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            m = messages.next() => m.ok_or_else(|| anyhow::anyhow!("redis pub/sub stream ended"))?,
        };
        match serde_json::from_slice::<GatewayNotification>(msg.get_payload_bytes()) {
            Ok(note) => emit(io, note).await,
            Err(e) => tracing::error!(error = %e, "malformed notification"),
        }
    }
}

/// `chat.message.saved` to the sender's sockets, `chat.message.new` to everyone else's.
pub async fn emit(io: &SocketIo, note: GatewayNotification) {
    let Some(ns) = io.of(NAMESPACE) else { return };
    for d in note.deliveries {
        let event = MessageEvent { chat_id: d.message.chat_id, message: &d.message };
        let sender = d.message.sender_id;
        let others: Vec<String> = d.users.iter().filter(|u| **u != sender).map(|u| user_room(*u)).collect();
        if !others.is_empty()
            && let Err(e) = ns.clone().to(others).emit(EVENT_NEW, &event).await
        {
            tracing::warn!(error = %e, "emit chat.message.new failed");
        }
        if d.users.contains(&sender)
            && let Err(e) = ns.clone().to(user_room(sender)).emit(EVENT_SAVED, &event).await
        {
            tracing::warn!(error = %e, "emit chat.message.saved failed");
        }
    }
}
