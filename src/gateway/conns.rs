//! This gateway's live connections (Socket.IO sockets and SSE streams) and the
//! delivery of each user's events to them, in id order, exactly once each.
//!
//! Every connection tracks the offset (global id) it has handled up to. Pushes reach
//! the gateway in id order, so a pushed event past that offset is emitted at once, and
//! one at or below it is skipped. While the user's timeline is being read (a
//! connection opening, a catch-up after the gateway lost its subscription or its
//! routing entries, a group joined), pushes wait and are emitted after what the read
//! returned (`fill`).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use serde_json::value::RawValue;
use uuid::Uuid;

use super::groups::Groups;
use crate::{
    cache::Cache,
    domain::events::{EVENT_REVOKED, EVENT_SAVED, Event, Membership, Offset},
    domain::offset::MAX_LEN,
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

/// An offset as a JSON string, the trailing argument of a Socket.IO emit, written by
/// [`Offset::encode`] (no allocation on the emit path).
pub(super) struct OffsetArg(pub Offset);

impl serde::Serialize for OffsetArg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.encode(&mut [0; MAX_LEN]))
    }
}

#[derive(Default)]
pub(super) struct Progress {
    /// Every event of the user's timeline up to here has been handled for this
    /// connection.
    pub(super) offset: Offset,
    /// Live events may be emitted (the opening replay is done).
    pub(super) ready: bool,
    /// A read of the timeline is due or under way; pushes wait in `pending`.
    pub(super) filling: bool,
    pub(super) pending: Vec<Event>,
    /// A fill task is running for this connection.
    pub(super) reader: bool,
    /// Read once more before going live (something the last read missed may exist).
    pub(super) again: bool,
    /// Groups joined whose following is not confirmed yet: no going live before.
    pub(super) waits: u32,
}

/// One live connection of a user on this gateway.
pub struct Conn {
    /// Its id in the routing state.
    pub id: String,
    pub user: Uuid,
    /// The session of the token it authenticated with (`None` for a token from before
    /// sessions existed).
    pub sid: Option<Uuid>,
    pub(super) sink: Box<dyn Sink>,
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

    pub(super) fn progress(&self) -> MutexGuard<'_, Progress> {
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
    /// Which local users are in which group chats.
    pub groups: Arc<Groups>,
    /// This gateway's id (what it follows chats as).
    pub gateway: Arc<str>,
    pub cache: Cache,
    pub receipts: Receipts,
    /// Told when a `chat.message.saved` reaches a connection typing in that chat.
    pub on_sent: OnSent,
}

impl Hub {
    pub fn new(cache: Cache, receipts: Receipts, on_sent: OnSent, gateway: Arc<str>) -> Self {
        Self {
            conns: Arc::default(),
            groups: Arc::default(),
            gateway,
            cache,
            receipts,
            on_sent,
        }
    }

    pub fn add(&self, conn: Arc<Conn>) {
        let mut map = self.conns.write().unwrap_or_else(|p| p.into_inner());
        self.groups.add_user(conn.user);
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
                self.groups.remove_user(conn.user);
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

    /// The local connections of `user`.
    pub fn of(&self, user: Uuid) -> Vec<Arc<Conn>> {
        let map = self.conns.read().unwrap_or_else(|p| p.into_inner());
        map.get(&user).cloned().unwrap_or_default()
    }

    /// Hands a pushed event to every local connection of `user`; `auth.revoked` goes
    /// only to the connections of the sessions it names, which it closes. A group
    /// joined is followed (its events after the join are read, then pushed); a group
    /// left gets no more deliveries.
    pub fn dispatch(&self, user: Uuid, event: &Event) {
        let conns = self.of(user);
        if conns.is_empty() {
            return;
        }
        if &*event.name == EVENT_REVOKED {
            self.revoke(&conns, event);
            return;
        }
        for conn in &conns {
            self.offer(conn, event);
        }
        match (event.membership, event.chat, event.offset) {
            (Some(Membership::Joined), Some(chat), Some(_)) if self.groups.joined(user, chat) => {
                self.follow_then_catch_up(conns, chat);
            }
            (Some(Membership::Left), Some(chat), Some(at)) => self.groups.left(user, chat, at),
            _ => {}
        }
    }

    /// Hands a pushed group event to every local connection of the group's members
    /// but `except`.
    pub fn dispatch_group(&self, chat: Uuid, except: &[Uuid], event: &Event) {
        for user in self.groups.users_in(chat) {
            if except.contains(&user) {
                continue;
            }
            for conn in self.of(user) {
                self.offer(&conn, event);
            }
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

    pub(super) fn offer(&self, conn: &Arc<Conn>, event: &Event) {
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
        } else if offset.epoch != p.offset.epoch {
            // Redis started a new epoch: read it (`fill` tells the client to re-sync).
            p.pending.push(event.clone());
            drop(p);
            self.catch_up(conn);
        } else if offset > p.offset {
            p.offset = offset;
            self.emit(conn, event);
        }
        // else: already handled (read back from the stream before its push arrived).
    }

    /// Emits one event to one connection; records delivery and ends typing.
    pub(super) fn emit(&self, conn: &Arc<Conn>, event: &Event) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_argument_is_the_offset_as_a_json_string() {
        for (o, json) in [
            (Offset::new(9, 10), r#""9-10""#),
            (
                Offset::new(1_765_137_600_123, 4).in_epoch(1),
                r#""1:1765137600123-4""#,
            ),
        ] {
            assert_eq!(serde_json::to_string(&OffsetArg(o)).unwrap(), json);
        }
    }
}
