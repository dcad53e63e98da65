//! Token expiry on a live socket: `auth.expiring {expiresAt}` 60 s before the access
//! token expires, a disconnect at expiry (after the same 5 s leeway as the REST API),
//! and `auth.refresh {token}` to continue under a new token of the same user.
//!
//! One timer queue per gateway serves every socket ([`Expiries`]): a task, a
//! cancellation token and a shared cell per socket held ~0.5 KB of each idle socket
//! (13.8 → 13.3 KB per idle socket, `scripts/bench.sh idle --sockets 10000`).

use std::collections::HashMap;

use chrono::Utc;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::{
    extract::{AckSender, SocketRef, State, TryData},
    socket::Sid,
};
use tokio::sync::mpsc;
use tokio_util::{
    sync::CancellationToken,
    time::{DelayQueue, delay_queue::Key},
};

use super::{
    GwState,
    handlers::{admit, invalid, reply},
};
use crate::{domain::time, service::ServiceError};

/// How long before expiry `auth.expiring` is sent.
pub const WARN_BEFORE_SECS: i64 = 60;
/// How long after `exp` a socket is still served (the tokens' validation leeway).
pub const LEEWAY_SECS: i64 = 5;
pub const EVENT_EXPIRING: &str = "auth.expiring";

/// The expiry (`exp`) of the token a socket authenticated with, from the connect
/// middleware to the connect handler, which starts its timers.
#[derive(Clone, Copy)]
pub struct TokenExp(pub i64);

enum Command {
    /// Starts or moves a socket's timers (connect, refresh).
    Set(SocketRef, i64),
    /// The socket closed: its timers end.
    Forget(Sid),
}

/// The gateway's token-expiry timers: a handle to the task that keeps them.
#[derive(Clone)]
pub struct Expiries {
    tx: mpsc::UnboundedSender<Command>,
}

impl Expiries {
    /// The handle, and the task to spawn (it ends at `stop`).
    pub fn new(
        stop: CancellationToken,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Expiries { tx }, run(rx, stop))
    }

    /// Starts the timers of `s` for a token expiring at `exp` (after CONNECT: an event
    /// before it would be lost), or moves them (a refresh; the old ones stop).
    pub fn set(&self, s: &SocketRef, exp: i64) {
        self.send(Command::Set(s.clone(), exp));
    }

    /// The socket closed: its timers end.
    pub fn forget(&self, s: &SocketRef) {
        self.send(Command::Forget(s.id));
    }

    fn send(&self, command: Command) {
        if self.tx.send(command).is_err() {
            tracing::debug!("expiry timers already stopped (shutting down)");
        }
    }
}

/// A socket's timers: the token's expiry, whether `auth.expiring` went, and the
/// queue's key of the next deadline.
struct Timer {
    socket: SocketRef,
    exp: i64,
    warned: bool,
    key: Key,
}

/// How long from now until `at` (seconds since the epoch); zero if it passed.
fn until(at: i64) -> std::time::Duration {
    std::time::Duration::from_secs((at - Utc::now().timestamp()).max(0) as u64)
}

async fn run(mut rx: mpsc::UnboundedReceiver<Command>, stop: CancellationToken) {
    let mut queue: DelayQueue<Sid> = DelayQueue::new();
    let mut timers: HashMap<Sid, Timer> = HashMap::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            command = rx.recv() => match command {
                None => return,
                Some(Command::Set(socket, exp)) => {
                    if let Some(old) = timers.remove(&socket.id) {
                        queue.try_remove(&old.key);
                    }
                    if socket.connected() {
                        let key = queue.insert(socket.id, until(exp - WARN_BEFORE_SECS));
                        timers.insert(socket.id, Timer { socket, exp, warned: false, key });
                    }
                }
                Some(Command::Forget(id)) => {
                    if let Some(old) = timers.remove(&id) {
                        queue.try_remove(&old.key);
                    }
                }
            },
            Some(due) = queue.next(), if !queue.is_empty() => {
                let id = due.into_inner();
                let Some(timer) = timers.get_mut(&id) else { continue };
                if !timer.warned {
                    let exp = timer.exp;
                    if let Err(e) = timer.socket.emit(EVENT_EXPIRING, &json!({ "expiresAt": time::format_unix(exp) })) {
                        tracing::debug!(socket = %id, error = %e, "auth.expiring not sent");
                    }
                    timer.warned = true;
                    timer.key = queue.insert(id, until(exp + LEEWAY_SECS));
                } else if let Some(timer) = timers.remove(&id) {
                    tracing::debug!(socket = %id, "access token expired; disconnecting");
                    metrics::counter!("courier_gateway_expired_disconnects_total").increment(1);
                    if let Err(e) = timer.socket.disconnect() {
                        tracing::debug!(socket = %id, error = %e, "expired socket already gone");
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct RefreshPayload {
    token: String,
}

/// `auth.refresh {token}`: a valid access token of the same user moves the expiry.
pub async fn on_refresh(
    s: SocketRef,
    State(state): State<GwState>,
    TryData(body): TryData<RefreshPayload>,
    ack: AckSender,
) {
    let result = (|| {
        let user = admit(&s, &state)?;
        let p = body.map_err(|e| invalid("auth.refresh", e))?;
        let claims = state
            .jwt
            .verify_claims(&p.token)
            .map_err(|_| ServiceError::Unauthenticated)?;
        if claims.sub != user {
            return Err(ServiceError::Forbidden(
                "the token belongs to another user".into(),
            ));
        }
        state.expiries.set(&s, claims.exp);
        Ok::<Value, ServiceError>(
            json!({"status": "ok", "expiresAt": time::format_unix(claims.exp)}),
        )
    })();
    reply(ack, result);
}
