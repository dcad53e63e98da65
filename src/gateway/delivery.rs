//! Receives this instance's notifications from Redis and emits them to local sockets.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use socketioxide::{SendError, SocketError, SocketIo, extract::SocketRef};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{GwState, NAMESPACE};
use crate::domain::notification::{
    EVENT_NEW, EVENT_SAVED, EVENT_STATUS, GatewayNotification, MessageEvent, user_room,
};

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

async fn subscribe(
    io: &SocketIo,
    state: &GwState,
    channel: &str,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
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

/// Per socket, the highest sequence emitted per chat. Messages of a chat reach a
/// gateway in sequence order, so anything at or below it is a redelivery: skipped,
/// which makes every event arrive at most once on each socket.
#[derive(Clone, Default)]
pub struct Emitted(Arc<Mutex<HashMap<Uuid, i64>>>);

impl Emitted {
    /// Runs `send` unless `sequence` (or a later one) of `chat` was emitted already;
    /// records it only if `send` succeeded.
    pub fn once(&self, chat: Uuid, sequence: i64, send: impl FnOnce() -> bool) {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let last = seen.entry(chat).or_insert(0);
        if sequence > *last && send() {
            *last = sequence;
        }
    }
}

/// Emits one event; `false` if the socket could not take it.
fn emit_to<T: serde::Serialize + ?Sized>(
    socket: &SocketRef,
    event: &'static str,
    payload: &T,
) -> bool {
    match socket.emit(event, payload) {
        Ok(()) => {
            metrics::counter!("courier_gateway_emits_total", "event" => event).increment(1);
            true
        }
        Err(SendError::Socket(SocketError::InternalChannelFull)) => {
            // A client this far behind recovers the gap with chat.sync.
            metrics::counter!("courier_gateway_emits_dropped_total", "event" => event).increment(1);
            tracing::warn!(socket = %socket.id, event, "socket buffer full; event not sent live");
            false
        }
        Err(e) => {
            tracing::debug!(socket = %socket.id, error = %e, event, "emit failed (socket closing)");
            false
        }
    }
}

/// `chat.message.saved` to the sender's sockets, `chat.message.new` to everyone
/// else's, `chat.message.status` to the users a status concerns.
pub async fn emit(io: &SocketIo, note: GatewayNotification) {
    let Some(ns) = io.of(NAMESPACE) else { return };
    for d in note.deliveries {
        let m = &d.message;
        if let Some(accepted) = d.accepted_at_ms {
            let ms = chrono::Utc::now().timestamp_millis() - accepted;
            metrics::histogram!("courier_delivery_latency_seconds")
                .record(ms.max(0) as f64 / 1000.0);
        }
        tracing::debug!(
            request_id = d.request_id.as_deref().unwrap_or(""),
            chat = %m.chat_id,
            sequence = m.sequence,
            users = d.users.len(),
            "emitting message"
        );
        let payload = match serde_json::value::to_raw_value(&MessageEvent {
            chat_id: m.chat_id,
            message: m,
        }) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode message event");
                continue;
            }
        };
        for user in &d.users {
            let event = if *user == m.sender_id {
                EVENT_SAVED
            } else {
                EVENT_NEW
            };
            for socket in ns.clone().to(user_room(*user)).sockets() {
                let send = || emit_to(&socket, event, &payload);
                match socket.extensions.get::<Emitted>() {
                    Some(emitted) => emitted.once(m.chat_id, m.sequence, send),
                    None => _ = send(),
                }
            }
        }
    }
    for s in note.statuses {
        for user in s.users.iter().filter(|u| **u != s.event.user_id) {
            for socket in ns.clone().to(user_room(*user)).sockets() {
                _ = emit_to(&socket, EVENT_STATUS, &s.event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sends(e: &Emitted, chat: Uuid, sequence: i64, ok: bool) -> bool {
        let mut called = false;
        e.once(chat, sequence, || {
            called = true;
            ok
        });
        called
    }

    #[test]
    fn each_sequence_is_emitted_once_per_chat() {
        let e = Emitted::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(sends(&e, a, 1, true));
        assert!(!sends(&e, a, 1, true));
        assert!(sends(&e, b, 1, true), "chats are independent");
        assert!(sends(&e, a, 3, true));
        assert!(!sends(&e, a, 2, true), "older than what was emitted");
    }

    #[test]
    fn a_failed_send_is_not_recorded() {
        let e = Emitted::default();
        let a = Uuid::new_v4();
        assert!(sends(&e, a, 1, false));
        assert!(sends(&e, a, 1, true), "tried again after a failure");
        assert!(!sends(&e, a, 1, true));
    }
}
