//! `GET /events`: the same events as a socket of the user, as Server-Sent Events, with
//! `id:` offsets, `Last-Event-ID` resume and a `: ping` comment every 15 s.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{Query, State},
    http::{HeaderMap, HeaderValue},
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use super::{
    GwState,
    conns::{Conn, Sink},
    session,
};
use crate::{
    domain::events::Offset,
    error::ApiError,
    http::bearer,
    service::{ServiceError, revocation},
};

pub const PING_EVERY: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SseQuery {
    token: Option<String>,
    last_event_id: Option<String>,
}

/// Queues events for the response stream; full means the client is too slow. Closing
/// drops the sender: the stream ends after what is queued.
struct SseSink(Mutex<Option<mpsc::Sender<SseEvent>>>);

impl Sink for SseSink {
    fn send(&self, name: &str, offset: Option<Offset>, payload: &RawValue) -> bool {
        let mut event = SseEvent::default().event(name).data(payload.get());
        if let Some(o) = offset {
            event = event.id(o.to_string());
        }
        let tx = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(tx) = tx else { return false };
        match tx.try_send(event) {
            Ok(()) => {
                metrics::counter!("courier_gateway_emits_total").increment(1);
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, event = name, "SSE stream full or closed");
                false
            }
        }
    }

    fn close(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Closes the connection when the response stream is dropped (client gone, or stop).
struct CloseOnDrop {
    state: GwState,
    conn: Arc<Conn>,
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let (state, conn) = (self.state.clone(), self.conn.clone());
        tokio::spawn(async move { session::close(&state, &conn).await });
    }
}

/// A non-empty query parameter, decoded as a form (`+` is a space, `%XX` a byte, an
/// invalid `%` stays as it is).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.into_owned())
}

/// Opens the user's event stream: `Authorization: Bearer` or `?token=`; resumes after
/// `Last-Event-ID` (header) or `?lastEventId=`; ends when the token expires (the client
/// reconnects with a fresh token and its last event id).
pub async fn events(
    State(state): State<GwState>,
    headers: HeaderMap,
    Query(q): Query<SseQuery>,
) -> Result<Response, ApiError> {
    let token = bearer(&headers)
        .map(str::to_string)
        .or(q.token)
        .ok_or_else(ApiError::unauthorized)?;
    let claims = state
        .jwt
        .verify_claims(&token)
        .map_err(|_| ApiError::unauthorized())?;
    if let Some(sid) = claims.sid {
        let revoked = revocation::is_revoked(&state.pool, &state.cache, sid).await?;
        if revoked {
            return Err(ServiceError::SessionRevoked.into());
        }
    }
    let user = claims.sub;
    // The stream ends when its token expires (with the tokens' leeway).
    let left = (claims.exp + super::expiry::LEEWAY_SECS - chrono::Utc::now().timestamp()).max(0);
    let expired = tokio::time::sleep(std::time::Duration::from_secs(left as u64));
    match state.cache.connection_count(user).await {
        Ok(n) if n >= state.config.max_sockets_per_user => {
            metrics::counter!("courier_gateway_sockets_refused_total").increment(1);
            return Err(ApiError::rate_limited(1));
        }
        Ok(_) => {}
        Err(_) => return Err(ApiError::unavailable("redis")),
    }
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(q.last_event_id);
    let (tx, mut rx) = mpsc::channel(state.socket_buffer);
    let conn = Conn::new(
        format!("sse-{}", uuid::Uuid::new_v4().simple()),
        user,
        claims.sid,
        Box::new(SseSink(Mutex::new(Some(tx)))),
    );
    let opening = session::open(&state, conn.clone(), resume.as_deref())
        .await
        .map_err(|e| {
            if e.is::<session::RevokedMeanwhile>() {
                return ApiError::from(ServiceError::SessionRevoked);
            }
            tracing::warn!(error = %e, "cannot open an SSE stream");
            ApiError::unavailable("redis")
        })?;
    tokio::spawn(state.hub.clone().start(conn.clone(), opening));
    let guard = CloseOnDrop {
        state: state.clone(),
        conn,
    };
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
        .map(move |e| {
            let _keep = &guard;
            Ok::<_, Infallible>(e)
        })
        .take_until(state.stop.clone().cancelled_owned())
        .take_until(expired);
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(PING_EVERY).text("ping"))
        .into_response();
    // Proxies (nginx, Kong) must not buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_decoded() {
        assert_eq!(
            query_param("a=1&token=x%2Ey", "token").as_deref(),
            Some("x.y")
        );
        assert_eq!(query_param("token=", "token"), None);
        assert_eq!(query_param("token", "token"), None);
        assert_eq!(query_param("token=a%zz", "token").as_deref(), Some("a%zz"));
        assert_eq!(query_param("token=a%2", "token").as_deref(), Some("a%2"));
        assert_eq!(
            query_param("token=a+b%20c", "token").as_deref(),
            Some("a b c")
        );
        assert_eq!(
            query_param("x=1&token=%E2%9C%93&token=2", "token").as_deref(),
            Some("✓"),
            "the first non-empty one, UTF-8"
        );
    }
}
