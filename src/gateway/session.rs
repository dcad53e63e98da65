//! Opening and closing a connection (socket or SSE stream): routing state and
//! presence, the user's groups, the recovery read, typing expiry and the end of typing.

use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;

use super::{GwState, conns::Conn, fill::Opening};
use crate::{
    cache::Cache,
    db,
    domain::events::Offset,
    service::{presence, revocation, typing},
};

/// The connection's session was revoked while it was opening (after the handshake's
/// check, before it was registered where `auth.revoked` would find it).
#[derive(Debug, thiserror::Error)]
#[error("the session was revoked")]
pub struct RevokedMeanwhile;

/// Registers `conn` (locally, then in Redis, so no event routed to its user after this
/// returns can miss it), loads the user's groups (once per user on this gateway) and
/// follows them (no group event routed after this can miss it either), then reads
/// what it needs to start: the events after `requested` when that offset is still
/// recoverable, else only the clock's end.
///
/// The groups are loaded after the registration: a join that committed after the load
/// is published after the registration, so it is pushed here.
pub async fn open(
    state: &GwState,
    conn: Arc<Conn>,
    requested: Option<&str>,
) -> anyhow::Result<Opening> {
    state.hub.add(conn.clone());
    let opened = async {
        presence::connected(
            &state.pool,
            &state.cache,
            &state.gateway_id,
            conn.user,
            &conn.id,
        )
        .await?;
        // Registered now: a revocation from here on reaches it; one from before is seen here.
        if let Some(sid) = conn.sid
            && revocation::is_revoked(&state.pool, &state.cache, sid).await?
        {
            return Err(RevokedMeanwhile.into());
        }
        let groups = groups(state, conn.user).await?;
        let requested = requested.and_then(|s| s.parse::<Offset>().ok());
        let read = state
            .cache
            .read_timeline(conn.user, &groups, requested, true)
            .await?;
        anyhow::Ok((requested, groups, read))
    };
    let (requested, groups, read) = match opened.await {
        Ok(r) => r,
        Err(e) => {
            close(state, &conn).await;
            return Err(e);
        }
    };
    let window_start =
        chrono::Utc::now().timestamp_millis() - state.cache.retention.window.as_millis() as i64;
    Ok(match requested {
        Some(o) if read.recoverable && o.ms as i64 >= window_start => Opening {
            from: o,
            replay: read.entries,
            groups,
            end: read.complete.then_some(read.end),
            recovered: true,
        },
        _ => Opening {
            from: read.end,
            replay: Vec::new(),
            groups,
            end: Some(read.end),
            recovered: false,
        },
    })
}

/// The user's groups (loaded unless another connection of theirs did), followed by
/// this gateway.
async fn groups(state: &GwState, user: Uuid) -> anyhow::Result<Vec<(Uuid, Option<Offset>)>> {
    // In Redis Cluster mode group events are in each member's own stream.
    if state.cache.is_cluster() {
        return Ok(Vec::new());
    }
    let hub = &state.hub;
    if !hub.groups.is_loaded(user) {
        let current = db::chats::group_ids_of(&state.pool, user).await?;
        let left = state.cache.left_groups(user).await?;
        hub.groups.load(user, &current, &left);
    }
    let window = state.cache.retention.window.as_millis() as u64;
    let cutoff = (chrono::Utc::now().timestamp_millis() as u64).saturating_sub(window);
    let groups = hub.groups.of(user, cutoff);
    let current: Vec<Uuid> = groups
        .iter()
        .filter(|(_, upto)| upto.is_none())
        .map(|(c, _)| *c)
        .collect();
    let todo = hub.groups.unfollowed(&current);
    state.cache.follow_chats(&state.gateway_id, &todo).await?;
    hub.groups.followed(&todo);
    Ok(groups)
}

/// Forgets a closed connection: no more events, presence updated, typing ended.
pub async fn close(state: &GwState, conn: &Arc<Conn>) {
    state.hub.remove(conn);
    if let Err(e) = state
        .cache
        .unregister_conn(&state.gateway_id, conn.user, &conn.id)
        .await
    {
        tracing::warn!(error = %e, "cannot unregister connection; the lease reaper or a resync will");
    }
    let chats: Vec<Uuid> = conn
        .typing
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain()
        .map(|(chat, _)| chat)
        .collect();
    for chat in chats {
        stop_typing(&state.pool, &state.cache, conn.user, chat).await;
    }
}

async fn stop_typing(pool: &PgPool, cache: &Cache, user: Uuid, chat: Uuid) {
    if let Err(e) = typing::set(pool, cache, chat, user, false).await {
        tracing::debug!(error = %e, %chat, "could not end typing");
    }
}

/// `isTyping: true` from `conn` in `chat`: announced, and ended by itself after
/// `TYPING_EXPIRY` unless refreshed.
pub fn typing_started(state: &GwState, conn: &Arc<Conn>, chat: Uuid) {
    let generation = {
        let mut t = conn.typing.lock().unwrap_or_else(|p| p.into_inner());
        let g = t.entry(chat).or_insert(0);
        *g += 1;
        *g
    };
    let (state, conn) = (state.clone(), conn.clone());
    tokio::spawn(async move {
        tokio::time::sleep(typing::TYPING_EXPIRY).await;
        let expired = {
            let mut t = conn.typing.lock().unwrap_or_else(|p| p.into_inner());
            let current = t.get(&chat) == Some(&generation);
            if current {
                t.remove(&chat);
            }
            current
        };
        if expired && !conn.is_closed() {
            stop_typing(&state.pool, &state.cache, conn.user, chat).await;
        }
    });
}

/// Ends typing in `chat` through `conn` if it was on; `true` if it was.
pub fn typing_ended(conn: &Conn, chat: Uuid) -> bool {
    conn.typing
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&chat)
        .is_some()
}

/// What the hub calls when a message of the typist's reached one of their
/// connections: typing there ends.
pub fn on_sent(pool: PgPool, cache: Cache) -> impl Fn(&Arc<Conn>, Uuid) + Send + Sync {
    move |conn, chat| {
        if typing_ended(conn, chat) {
            let (pool, cache, user) = (pool.clone(), cache.clone(), conn.user);
            tokio::spawn(async move { stop_typing(&pool, &cache, user, chat).await });
        }
    }
}
