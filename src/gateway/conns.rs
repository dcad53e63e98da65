//! This gateway's live connections (Socket.IO sockets and SSE streams) and the
//! delivery of each user's events to them, in stream order, exactly once each.
//!
//! Every connection tracks the offset it has handled up to. Pushes reach the gateway
//! in stream order, so a pushed event past that offset is emitted at once, and one at
//! or below it is skipped. While the stream is being read (a connection opening, or a
//! catch-up after the gateway lost its subscription or its routing entries), pushes
//! wait and are emitted after what the read returned.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::value::RawValue;
use uuid::Uuid;

use crate::{
    cache::Cache,
    domain::events::{EVENT_RECOVERED, EVENT_REVOKED, EVENT_SAVED, Event, Offset},
    domain::session::Revoked,
    service::receipts::Receipts,
};

/// Where a connection's events go.
pub trait Sink: Send + Sync {
    /// Emits one event (`offset` is also inside recoverable payloads); `false` if the
    /// connection could not take it.
    fn send(&self, name: &str, offset: Option<Offset>, payload: &RawValue) -> bool;
    /// Closes the connection after what was sent (a revoked session).
    fn close(&self);
}

#[derive(Default)]
struct Progress {
    /// Every event of the user's stream up to here has been handled for this connection.
    offset: Offset,
    /// Live events may be emitted (the opening replay is done).
    ready: bool,
    /// A read of the stream is under way; pushes wait in `pending`.
    filling: bool,
    pending: Vec<Event>,
}

/// One live connection of a user on this gateway.
pub struct Conn {
    /// Its id in the routing state.
    pub id: String,
    pub user: Uuid,
    /// The session of the token it authenticated with (`None` for a token from before
    /// sessions existed).
    pub sid: Option<Uuid>,
    sink: Box<dyn Sink>,
    progress: Mutex<Progress>,
    closed: AtomicBool,
    /// Per chat, the highest message sequence and the highest chat version (lifecycle
    /// and chat events) emitted: an event notified twice (a redelivery after a worker
    /// crash) is a second stream entry, and is skipped.
    emitted: Mutex<HashMap<(Uuid, bool), i64>>,
    /// Chats the user is typing in through this connection, with a generation number
    /// that each refresh bumps (the expiry timer of an older generation does nothing).
    pub typing: Mutex<HashMap<Uuid, u64>>,
}

impl Conn {
    pub fn new(id: String, user: Uuid, sid: Option<Uuid>, sink: Box<dyn Sink>) -> Arc<Self> {
        Arc::new(Self {
            id,
            user,
            sid,
            sink,
            // Until the opening read is done, everything waits.
            progress: Mutex::new(Progress {
                filling: true,
                ..Default::default()
            }),
            closed: AtomicBool::new(false),
            emitted: Mutex::new(HashMap::new()),
            typing: Mutex::new(HashMap::new()),
        })
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Emits an event that is not in the stream (e.g. `session.recovered`).
    pub fn send_raw(&self, name: &str, offset: Option<Offset>, payload: &RawValue) -> bool {
        self.sink.send(name, offset, payload)
    }
}

/// Called when a user's own message reached one of their connections, with its chat.
pub type OnSent = Arc<dyn Fn(&Arc<Conn>, Uuid) + Send + Sync>;

/// The registry of local connections, and the delivery machinery; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    conns: Arc<RwLock<HashMap<Uuid, Vec<Arc<Conn>>>>>,
    pub cache: Cache,
    pub receipts: Receipts,
    /// Told when a `chat.message.saved` reaches a connection typing in that chat.
    pub on_sent: OnSent,
}

impl Hub {
    pub fn new(cache: Cache, receipts: Receipts, on_sent: OnSent) -> Self {
        Self {
            conns: Arc::default(),
            cache,
            receipts,
            on_sent,
        }
    }

    pub fn add(&self, conn: Arc<Conn>) {
        let mut map = self.conns.write().unwrap_or_else(|p| p.into_inner());
        map.entry(conn.user).or_default().push(conn);
        metrics::gauge!("courier_gateway_connections").increment(1.0);
    }

    /// Removes a connection; it receives nothing more.
    pub fn remove(&self, conn: &Conn) {
        conn.closed.store(true, Ordering::Relaxed);
        let mut map = self.conns.write().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = map.get_mut(&conn.user) {
            let before = list.len();
            list.retain(|c| c.id != conn.id);
            if list.len() < before {
                metrics::gauge!("courier_gateway_connections").decrement(1.0);
            }
            if list.is_empty() {
                map.remove(&conn.user);
            }
        }
    }

    pub fn find(&self, user: Uuid, id: &str) -> Option<Arc<Conn>> {
        let map = self.conns.read().unwrap_or_else(|p| p.into_inner());
        map.get(&user)?.iter().find(|c| c.id == id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Conn>> {
        let map = self.conns.read().unwrap_or_else(|p| p.into_inner());
        map.values().flatten().cloned().collect()
    }

    /// Hands a pushed event to every local connection of `user`; `auth.revoked` goes
    /// only to the connections of the sessions it names, which it closes.
    pub fn dispatch(&self, user: Uuid, event: &Event) {
        let conns: Vec<Arc<Conn>> = {
            let map = self.conns.read().unwrap_or_else(|p| p.into_inner());
            match map.get(&user) {
                Some(list) => list.clone(),
                None => return,
            }
        };
        if &*event.name == EVENT_REVOKED {
            self.revoke(&conns, event);
            return;
        }
        for conn in conns {
            self.offer(&conn, event);
        }
    }

    /// Sends `auth.revoked {reason}` to, and closes, the connections whose session the
    /// event names.
    fn revoke(&self, conns: &[Arc<Conn>], event: &Event) {
        let Some(revoked) = Revoked::parse(&event.data) else {
            tracing::error!("malformed auth.revoked push");
            return;
        };
        let body =
            match serde_json::value::to_raw_value(&serde_json::json!({"reason": revoked.reason})) {
                Ok(b) => b,
                Err(e) => return tracing::error!(error = %e, "cannot encode auth.revoked"),
            };
        for conn in conns.iter().filter(|c| revoked.covers(c.sid)) {
            tracing::debug!(user = %conn.user, conn = %conn.id, "session revoked; closing");
            metrics::counter!("courier_gateway_revoked_disconnects_total").increment(1);
            // The close runs the connection's own cleanup (routing state, presence).
            conn.sink.send(EVENT_REVOKED, None, &body);
            conn.sink.close();
        }
    }

    fn offer(&self, conn: &Arc<Conn>, event: &Event) {
        let mut p = conn.progress();
        let Some(offset) = event.offset else {
            // Ephemeral: live only, never replayed.
            if p.ready {
                drop(p);
                self.emit(conn, event);
            }
            return;
        };
        if p.filling {
            p.pending.push(event.clone());
        } else if offset > p.offset {
            p.offset = offset;
            self.emit(conn, event);
        }
        // else: already handled (read back from the stream before its push arrived).
    }

    /// Emits one event to one connection; records delivery and ends typing.
    fn emit(&self, conn: &Arc<Conn>, event: &Event) {
        if let Some(chat) = event.chat
            && event.sequence > 0
        {
            let mut emitted = conn.emitted.lock().unwrap_or_else(|p| p.into_inner());
            let last = emitted.entry((chat, event.is_message())).or_insert(0);
            if event.sequence <= *last {
                return;
            }
            *last = event.sequence;
        }
        let ok = conn.sink.send(&event.name, event.offset, &event.payload());
        if !ok {
            metrics::counter!("courier_gateway_emits_dropped_total").increment(1);
            return;
        }
        if let Some(chat) = event.chat {
            if event.is_new_message() {
                self.receipts.delivered(chat, conn.user, event.sequence);
            } else if &*event.name == EVENT_SAVED {
                (self.on_sent)(conn, chat);
            }
        }
    }

    /// Opens a connection's live flow: the events missed since the client's offset
    /// (read at opening) first, then `session.recovered`, then whatever was pushed
    /// meanwhile, then live events.
    pub async fn start(self, conn: Arc<Conn>, opening: Opening) {
        let recovered = |offset: Offset| {
            let body =
                serde_json::json!({"recovered": opening.recovered, "offset": offset.to_string()});
            match serde_json::value::to_raw_value(&body) {
                Ok(raw) => _ = conn.send_raw(EVENT_RECOVERED, Some(offset), &raw),
                Err(e) => tracing::error!(error = %e, "cannot encode session.recovered"),
            }
        };
        {
            let mut p = conn.progress();
            p.offset = opening.from;
            for e in &opening.replay {
                if let Some(o) = e.offset
                    && o > p.offset
                {
                    p.offset = o;
                    self.emit(&conn, e);
                }
            }
            if let Some(end) = opening.end {
                p.offset = p.offset.max(end);
                recovered(p.offset);
            }
            p.ready = true;
        }
        match opening.end {
            Some(_) => self.settle(&conn, None),
            None => {
                self.clone().fill(conn.clone()).await;
                let offset = conn.progress().offset;
                recovered(offset);
            }
        }
    }

    /// Moves `offset` past a complete read's end, then emits the pushes that waited
    /// and come after it, and goes live.
    fn settle(&self, conn: &Arc<Conn>, read_end: Option<Offset>) {
        let mut p = conn.progress();
        if let Some(end) = read_end {
            p.offset = p.offset.max(end);
        }
        for e in std::mem::take(&mut p.pending) {
            match e.offset {
                Some(o) if o > p.offset => {
                    p.offset = o;
                    self.emit(conn, &e);
                }
                _ => {}
            }
        }
        p.filling = false;
    }

    /// Reads the user's stream after the connection's offset, then goes live.
    pub async fn fill(self, conn: Arc<Conn>) {
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        while !conn.is_closed() {
            let from = conn.progress().offset;
            let read = match self.cache.read_events(conn.user, Some(from), false).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, user = %conn.user, "stream read failed; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            };
            let complete = read.complete;
            {
                let mut p = conn.progress();
                for (offset, name, data, chat, sequence) in read.entries {
                    if offset <= p.offset {
                        continue;
                    }
                    p.offset = offset;
                    if let Some(e) = stored_event(offset, name, data, &chat, sequence) {
                        self.emit(&conn, &e);
                    }
                }
            }
            if complete {
                self.settle(&conn, Some(read.last));
                return;
            }
        }
    }

    /// Reads every connection's stream again (after Redis lost or dropped pushes).
    pub fn catch_up_all(&self) {
        for conn in self.all() {
            let mut p = conn.progress();
            if p.ready && !p.filling {
                p.filling = true;
                drop(p);
                metrics::counter!("courier_gateway_catch_ups_total").increment(1);
                tokio::spawn(self.clone().fill(conn));
            }
        }
    }
}

/// Where a new connection starts.
pub struct Opening {
    /// The offset the client had (or the stream's end for a fresh connection).
    pub from: Offset,
    /// Events after `from`, read at opening.
    pub replay: Vec<Event>,
    /// The stream's end at opening, when `replay` holds everything up to it.
    pub end: Option<Offset>,
    /// Whether the client's offset could be honoured.
    pub recovered: bool,
}

/// An event read back from a stream (`None` for the marker that starts a stream).
pub fn stored_event(
    offset: Offset,
    name: String,
    data: String,
    chat: &str,
    sequence: i64,
) -> Option<Event> {
    if name.is_empty() {
        return None;
    }
    let data = RawValue::from_string(data).ok()?;
    Some(Event {
        name: Arc::from(name),
        data: Arc::from(data),
        chat: Uuid::parse_str(chat).ok(),
        sequence,
        offset: Some(offset),
        membership: None,
    })
}
