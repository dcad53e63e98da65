//! Token expiry on a live socket: `auth.expiring {expiresAt}` 60 s before the access
//! token expires, a disconnect at expiry (after the same 5 s leeway as the REST API),
//! and `auth.refresh {token}` to continue under a new token of the same user.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use tokio_util::sync::CancellationToken;

use super::{
    GwState,
    handlers::{admit, invalid, reply},
};
use crate::service::ServiceError;

/// How long before expiry `auth.expiring` is sent.
pub const WARN_BEFORE_SECS: i64 = 60;
/// How long after `exp` a socket is still served (the tokens' validation leeway).
pub const LEEWAY_SECS: i64 = 5;
pub const EVENT_EXPIRING: &str = "auth.expiring";

/// A socket's token expiry (`exp`), with a generation each refresh bumps; cancelled when
/// the socket goes.
#[derive(Clone)]
pub struct Expiry {
    state: Arc<Mutex<(i64, u64)>>,
    gone: CancellationToken,
}

impl Expiry {
    /// The expiry of a socket's token (`exp`); `start` it once the socket is connected.
    pub fn new(exp: i64) -> Self {
        Expiry {
            state: Arc::new(Mutex::new((exp, 0))),
            gone: CancellationToken::new(),
        }
    }

    /// Starts the timers (after CONNECT: an event before it would be lost).
    pub fn start(&self, s: &SocketRef) {
        let generation = self.get().1;
        tokio::spawn(run(s.clone(), self.clone(), generation));
    }

    fn get(&self) -> (i64, u64) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the expiry (a refresh); the timers of the old one stop.
    fn renew(&self, s: &SocketRef, exp: i64) {
        let generation = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            *st = (exp, st.1 + 1);
            st.1
        };
        tokio::spawn(run(s.clone(), self.clone(), generation));
    }

    /// The socket closed: its timers end.
    pub fn cancel(&self) {
        self.gone.cancel();
    }
}

fn rfc3339(exp: i64) -> String {
    DateTime::<Utc>::from_timestamp(exp, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Sleeps until `at` (seconds since the epoch); `false` if the socket went meanwhile.
async fn until(e: &Expiry, at: i64) -> bool {
    let wait = (at - Utc::now().timestamp()).max(0) as u64;
    tokio::select! {
        _ = e.gone.cancelled() => false,
        _ = tokio::time::sleep(std::time::Duration::from_secs(wait)) => true,
    }
}

async fn run(s: SocketRef, e: Expiry, generation: u64) {
    let (exp, _) = e.get();
    if !until(&e, exp - WARN_BEFORE_SECS).await || e.get().1 != generation {
        return;
    }
    if let Err(err) = s.emit(EVENT_EXPIRING, &json!({ "expiresAt": rfc3339(exp) })) {
        tracing::debug!(socket = %s.id, error = %err, "auth.expiring not sent");
    }
    if !until(&e, exp + LEEWAY_SECS).await || e.get().1 != generation {
        return;
    }
    tracing::debug!(socket = %s.id, "access token expired; disconnecting");
    metrics::counter!("courier_gateway_expired_disconnects_total").increment(1);
    let id = s.id;
    if let Err(err) = s.disconnect() {
        tracing::debug!(socket = %id, error = %err, "expired socket already gone");
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
        let expiry = s
            .extensions
            .get::<Expiry>()
            .ok_or(ServiceError::Unauthenticated)?;
        expiry.renew(&s, claims.exp);
        Ok::<Value, ServiceError>(json!({"status": "ok", "expiresAt": rfc3339(claims.exp)}))
    })();
    reply(ack, result);
}
