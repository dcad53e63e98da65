//! Socket.IO: handshake authentication, the opening of a socket's session (with the
//! `pid` of connection state recovery), and the client events `chat.typing`,
//! `chat.read` and `chat.sync`.
//!
//! Everything a socket needs is set up in the connect middleware, which socketioxide
//! runs before it sends the CONNECT packet: the event handlers are registered before
//! any client packet can be read, and the socket is in the routing state before the
//! client sees `connect`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json, value::RawValue};
use socketioxide::{
    SendError, SocketError,
    extract::{AckSender, SocketRef, State, TryData},
    socket::{ConnectPid, DisconnectReason},
};
use uuid::Uuid;

use super::{
    GwState,
    conns::{Conn, OffsetArg, Sink},
    fill::Opening,
    session,
};
use crate::{
    domain::events::Offset,
    http::bearer,
    service::{ServiceError, messages, receipts, revocation, typing},
};

/// Most chats one `chat.sync` may name.
const SYNC_MAX_CHATS: usize = 1000;

/// The connection of a socket: its user, and its id in the hub.
#[derive(Debug, Clone)]
pub struct ConnKey {
    pub user: Uuid,
    pub id: String,
}

/// The opening read, from the middleware to the connect handler.
#[derive(Clone)]
struct PendingOpening(Arc<Mutex<Option<Opening>>>);

/// Client events left this second (`RATE_LIMIT_SOCKET_EVENTS`).
#[derive(Clone)]
struct Budget(Arc<Mutex<(Instant, u32)>>);

/// Why a handshake was refused (the client's `connect_error` message).
#[derive(Debug)]
pub struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Emits to one socket.
struct SocketSink(SocketRef);

impl Sink for SocketSink {
    fn send(&self, name: &str, offset: Option<Offset>, payload: &RawValue) -> bool {
        // The offset also goes as a trailing string argument: socket.io-client keeps
        // the last one as its recovery offset.
        let sent = match offset {
            Some(o) => self.0.emit(name, &(payload, OffsetArg(o))),
            None => self.0.emit(name, payload),
        };
        match sent {
            Ok(()) => {
                metrics::counter!("courier_gateway_emits_total").increment(1);
                true
            }
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                // A client this far behind recovers the gap with its offset or chat.sync.
                tracing::warn!(socket = %self.0.id, event = name, "socket buffer full; event not sent live");
                false
            }
            Err(e) => {
                tracing::debug!(socket = %self.0.id, error = %e, event = name, "emit failed (socket closing)");
                false
            }
        }
    }

    fn close(&self) {
        if let Err(e) = self.0.clone().disconnect() {
            tracing::debug!(socket = %self.0.id, error = %e, "revoked socket already gone");
        }
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
    if let Some(t) = bearer(&parts.headers) {
        return Some(t.to_string());
    }
    super::sse::query_param(parts.uri.query()?, "token")
}

/// Connect middleware: authenticates, registers the socket's handlers and its
/// connection, watches its token's expiry, and reads what it missed. Refuses with
/// `connect_error` "unauthorized" (bad token), "session_revoked" (its session was
/// revoked), "banned" (revoked by a ban), "too_many_connections" (the user holds
/// `GATEWAY_MAX_SOCKETS_PER_USER` already) or "unavailable" (Redis down).
pub async fn authenticate(
    s: SocketRef,
    State(state): State<GwState>,
    TryData(auth): TryData<Value>,
) -> Result<(), Refused> {
    let auth = auth.ok();
    let token = find_token(&s, auth.as_ref()).ok_or(Refused("unauthorized"))?;
    let claims = state
        .jwt
        .verify_claims(&token)
        .map_err(|_| Refused("unauthorized"))?;
    if let Some(sid) = claims.sid {
        match revocation::revoked_reason(&state.pool, &state.cache, sid).await {
            Ok(None) => {}
            Ok(Some(r)) if r == revocation::BANNED => return Err(Refused("banned")),
            Ok(Some(_)) => return Err(Refused("session_revoked")),
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the session; refusing the socket");
                return Err(Refused("unavailable"));
            }
        }
    }
    let user = claims.sub;
    match state.cache.connection_count(user).await {
        Ok(n) if n >= state.config.max_sockets_per_user => {
            metrics::counter!("courier_gateway_sockets_refused_total").increment(1);
            return Err(Refused("too_many_connections"));
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot count the user's connections; refusing the socket");
            return Err(Refused("unavailable"));
        }
    }
    let field = |name| {
        auth.as_ref()
            .and_then(|a| a.get(name))
            .and_then(Value::as_str)
    };
    // socket.io-client's recovery sends the pid it was given with its offset: an
    // offset under a pid that is not this user's is not honoured.
    let pid = field("pid").filter(|p| state.pid.verify(user, p));
    let requested = field("offset").filter(|_| pid.is_some() || field("pid").is_none());
    let id = s.id.to_string();
    s.extensions.insert(ConnKey {
        user,
        id: id.clone(),
    });
    s.extensions.insert(Budget(Arc::new(Mutex::new((
        Instant::now(),
        state.config.socket_events_per_sec,
    )))));
    s.on("chat.typing", on_typing);
    s.on("chat.read", on_read);
    s.on("chat.sync", on_sync);
    s.on("auth.refresh", super::expiry::on_refresh);
    s.on_disconnect(on_disconnect);
    s.extensions.insert(super::expiry::TokenExp(claims.exp));
    let conn = Conn::new(id, user, claims.sid, Box::new(SocketSink(s.clone())));
    let opening = session::open(&state, conn, requested).await.map_err(|e| {
        if e.is::<session::RevokedMeanwhile>() {
            return Refused("session_revoked");
        }
        tracing::warn!(error = %e, "cannot open a session; refusing the socket");
        Refused("unavailable")
    })?;
    // The same pid when the offset was recovered (socket.recovered), else a new one.
    let pid = match pid {
        Some(p) if opening.recovered => p.to_string(),
        _ => state.pid.mint(user),
    };
    s.extensions.insert(ConnectPid(pid));
    s.extensions
        .insert(PendingOpening(Arc::new(Mutex::new(Some(opening)))));
    Ok(())
}

/// After the CONNECT packet: the replay, `session.recovered`, then live events.
pub async fn on_connect(s: SocketRef, State(state): State<GwState>) {
    if let Some(super::expiry::TokenExp(exp)) = s.extensions.remove::<super::expiry::TokenExp>() {
        state.expiries.set(&s, exp);
    }
    let (Some(key), Some(PendingOpening(opening))) = (
        s.extensions.get::<ConnKey>(),
        s.extensions.get::<PendingOpening>(),
    ) else {
        return;
    };
    let opening = opening.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let (Some(conn), Some(opening)) = (state.hub.find(key.user, &key.id), opening) {
        tracing::debug!(user = %key.user, socket = %key.id, "socket connected");
        state.hub.clone().start(conn, opening).await;
    }
}

async fn on_disconnect(s: SocketRef, State(state): State<GwState>, reason: DisconnectReason) {
    state.expiries.forget(&s);
    let Some(key) = s.extensions.get::<ConnKey>() else {
        return;
    };
    if let Some(conn) = state.hub.find(key.user, &key.id) {
        session::close(&state, &conn).await;
    }
    tracing::debug!(user = %key.user, socket = %key.id, ?reason, "socket disconnected");
}

fn error_ack(e: &ServiceError) -> Value {
    json!({"status": "error", "code": e.code(), "message": e.public_message()})
}

/// Acks with the result: its body, or `{status: "error", code, message}`.
pub(super) fn reply(ack: AckSender, result: Result<Value, ServiceError>) {
    let body = result.unwrap_or_else(|e| error_ack(&e));
    if let Err(e) = ack.send(&body) {
        tracing::debug!(error = %e, "ack not delivered (socket gone)");
    }
}

fn ok() -> Value {
    json!({"status": "ok"})
}

/// The socket's user, if it may send one more event this second.
pub(super) fn admit(s: &SocketRef, state: &GwState) -> Result<Uuid, ServiceError> {
    let key = s
        .extensions
        .get::<ConnKey>()
        .ok_or(ServiceError::Unauthenticated)?;
    if let Some(Budget(b)) = s.extensions.get::<Budget>() {
        let mut b = b.lock().unwrap_or_else(|p| p.into_inner());
        if b.0.elapsed().as_secs() >= 1 {
            *b = (Instant::now(), state.config.socket_events_per_sec);
        }
        if b.1 == 0 {
            metrics::counter!("courier_gateway_events_limited_total").increment(1);
            return Err(ServiceError::RateLimited {
                retry_after_secs: 1,
            });
        }
        b.1 -= 1;
    }
    Ok(key.user)
}

pub(super) fn invalid(event: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Invalid(format!("invalid {event} payload: {e}"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypingPayload {
    chat_id: Uuid,
    is_typing: bool,
}

async fn on_typing(
    s: SocketRef,
    State(state): State<GwState>,
    TryData(body): TryData<TypingPayload>,
    ack: AckSender,
) {
    let result = async {
        let user = admit(&s, &state)?;
        let p = body.map_err(|e| invalid("chat.typing", e))?;
        let conn = state
            .hub
            .find(user, &s.id.to_string())
            .ok_or(ServiceError::Unauthenticated)?;
        if p.is_typing {
            typing::set(&state.pool, &state.cache, p.chat_id, user, true).await?;
            session::typing_started(&state, &conn, p.chat_id);
        } else {
            session::typing_ended(&conn, p.chat_id);
            typing::set(&state.pool, &state.cache, p.chat_id, user, false).await?;
        }
        Ok(ok())
    };
    reply(ack, result.await);
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
    let result = async {
        let user = admit(&s, &state)?;
        let p = body.map_err(|e| invalid("chat.read", e))?;
        receipts::mark_read(
            &state.pool,
            &state.hub.receipts,
            p.chat_id,
            user,
            p.sequence,
        )
        .await?;
        Ok(ok())
    };
    reply(ack, result.await);
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

async fn sync(state: &GwState, user: Uuid, p: SyncPayload) -> Result<SyncAck, ServiceError> {
    if p.chats.len() > SYNC_MAX_CHATS {
        return Err(ServiceError::Invalid(format!(
            "at most {SYNC_MAX_CHATS} chats per sync"
        )));
    }
    let mut seen = Vec::with_capacity(p.chats.len());
    for (chat, seq) in p.chats {
        let chat = Uuid::parse_str(&chat)
            .map_err(|_| ServiceError::Invalid(format!("not a chat id: {chat}")))?;
        seen.push((chat, seq.max(0)));
    }
    let (messages, has_more) =
        messages::sync(&state.pool, &state.cache, &state.storage, user, &seen).await?;
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
    let result = async {
        let user = admit(&s, &state)?;
        let p = body.map_err(|e| invalid("chat.sync", e))?;
        let resp = sync(&state, user, p).await?;
        serde_json::to_value(&resp).map_err(ServiceError::internal)
    };
    reply(ack, result.await);
}
