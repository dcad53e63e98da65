//! Handshake authentication and the client events `chat.read` and `chat.sync`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socketioxide::{
    extract::{AckSender, SocketRef, State, TryData},
    socket::DisconnectReason,
};
use uuid::Uuid;

use super::{GwState, delivery::Emitted};
use crate::{api::messages::apply_read, db, domain::notification::user_room, error::ApiError};

/// Most messages one `chat.sync` answers with.
pub const SYNC_CAP: i64 = 500;
/// Most chats one `chat.sync` may name.
const SYNC_MAX_CHATS: usize = 1000;

/// The authenticated user of a socket.
#[derive(Debug, Clone, Copy)]
pub struct UserId(pub Uuid);

#[derive(Debug)]
pub struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unauthorized")
    }
}

/// The token: `auth.token`, then `Authorization: Bearer`, then `?token=`.
fn find_token(s: &SocketRef, auth: Option<&Value>) -> Option<String> {
    if let Some(t) = auth
        .and_then(|a| a.get("token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        return Some(t.to_string());
    }
    let parts = s.req_parts();
    if let Some(t) = crate::api::extract::bearer(&parts.headers) {
        return Some(t.to_string());
    }
    parts.uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "token" && !v.is_empty()).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Connect middleware: refuses the handshake with `connect_error` "unauthorized".
pub async fn authenticate(
    s: SocketRef,
    State(state): State<GwState>,
    TryData(auth): TryData<Value>,
) -> Result<(), Unauthorized> {
    let token = find_token(&s, auth.as_ref().ok()).ok_or(Unauthorized)?;
    let user = state.jwt.verify(&token).map_err(|_| Unauthorized)?;
    s.extensions.insert(UserId(user));
    Ok(())
}

pub async fn on_connect(s: SocketRef, State(state): State<GwState>) {
    let Some(UserId(user)) = s.extensions.get::<UserId>() else {
        tracing::error!("socket connected without a user");
        if let Err(e) = s.disconnect() {
            tracing::debug!(error = %e, "disconnect");
        }
        return;
    };
    s.extensions.insert(Emitted::default());
    s.join(user_room(user));
    metrics::gauge!("courier_gateway_sockets").increment(1.0);
    s.on("chat.read", on_read);
    s.on("chat.sync", on_sync);
    s.on_disconnect(on_disconnect);
    let sid = s.id.to_string();
    if let Err(e) = state
        .cache
        .register_socket(&state.gateway_id, user, &sid)
        .await
    {
        // Without routing state the socket would miss messages: make the client retry.
        tracing::warn!(error = %e, "cannot register socket; disconnecting it");
        if let Err(e) = s.disconnect() {
            tracing::debug!(error = %e, "disconnect");
        }
        return;
    }
    tracing::debug!(%user, socket = %sid, "socket connected");
}

async fn on_disconnect(s: SocketRef, State(state): State<GwState>, reason: DisconnectReason) {
    let Some(UserId(user)) = s.extensions.get::<UserId>() else {
        return;
    };
    metrics::gauge!("courier_gateway_sockets").decrement(1.0);
    if let Err(e) = state
        .cache
        .unregister_socket(&state.gateway_id, user, &s.id.to_string())
        .await
    {
        tracing::warn!(error = %e, "cannot unregister socket; the lease reaper or next connect will");
    }
    tracing::debug!(%user, socket = %s.id, ?reason, "socket disconnected");
}

fn error_ack(e: &ApiError) -> Value {
    json!({"status": "error", "code": e.code(), "message": e.public_message()})
}

fn answer(ack: AckSender, body: &Value) {
    if let Err(e) = ack.send(body) {
        tracing::debug!(error = %e, "ack not delivered (socket gone)");
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadPayload {
    chat_id: Uuid,
    sequence: i64,
}

async fn on_read(
    s: SocketRef,
    State(state): State<GwState>,
    TryData(body): TryData<ReadPayload>,
    ack: AckSender,
) {
    let Some(UserId(user)) = s.extensions.get::<UserId>() else {
        return;
    };
    let result = match body {
        Err(e) => Err(ApiError::Validation(format!(
            "invalid chat.read payload: {e}"
        ))),
        Ok(p) => apply_read(&state.pool, &state.cache, p.chat_id, user, p.sequence).await,
    };
    match result {
        Ok(()) => answer(ack, &json!({"status": "ok"})),
        Err(e) => answer(ack, &error_ack(&e)),
    }
}

#[derive(Deserialize)]
struct SyncPayload {
    chats: HashMap<String, i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncAck {
    status: &'static str,
    messages: Vec<crate::domain::message::Message>,
    has_more: bool,
}

async fn sync(
    state: &GwState,
    user: Uuid,
    body: Result<SyncPayload, String>,
) -> Result<SyncAck, ApiError> {
    let p = body.map_err(|e| ApiError::Validation(format!("invalid chat.sync payload: {e}")))?;
    if p.chats.len() > SYNC_MAX_CHATS {
        return Err(ApiError::Validation(format!(
            "at most {SYNC_MAX_CHATS} chats per sync"
        )));
    }
    let mut seen = Vec::with_capacity(p.chats.len());
    for (chat, seq) in p.chats {
        let chat = Uuid::parse_str(&chat)
            .map_err(|_| ApiError::Validation(format!("not a chat id: {chat}")))?;
        seen.push((chat, seq.max(0)));
    }
    let (messages, has_more) = db::messages::since(&state.pool, user, &seen, SYNC_CAP).await?;
    Ok(SyncAck {
        status: "ok",
        messages,
        has_more,
    })
}

async fn on_sync(
    s: SocketRef,
    State(state): State<GwState>,
    TryData(body): TryData<SyncPayload>,
    ack: AckSender,
) {
    let Some(UserId(user)) = s.extensions.get::<UserId>() else {
        return;
    };
    match sync(&state, user, body.map_err(|e| e.to_string())).await {
        Ok(resp) => match serde_json::to_value(&resp) {
            Ok(v) => answer(ack, &v),
            Err(e) => answer(ack, &error_ack(&ApiError::Internal(e.into()))),
        },
        Err(e) => answer(ack, &error_ack(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Eb"), "a.b");
        assert_eq!(percent_decode("abc"), "abc");
        assert_eq!(percent_decode("a%zz"), "a%zz");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
