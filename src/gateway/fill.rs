//! Reading a user's timeline back for one connection: the opening replay, and the
//! catch-ups (after the gateway lost its subscription or its routing entries, or when
//! the user joined a group) during which pushes wait.
//!
//! A read covers the user's stream and the timelines of the groups the hub indexes for
//! them. A `Membership::Joined` read back for a group the read did not cover stops the
//! read there: the group is indexed and followed, then the timeline is read again from
//! that join, so the group's events after it come in order.

use std::{collections::HashSet, sync::Arc, time::Duration};

use uuid::Uuid;

use super::conns::{Conn, Hub, Progress};
use crate::{
    cache::timeline::{Stored, TimelineRead},
    domain::events::{EVENT_RECOVERED, Membership, Offset},
};

/// Where a new connection starts.
pub struct Opening {
    /// The offset the client had (or the end of the user's timeline for a fresh
    /// connection).
    pub from: Offset,
    /// Entries after `from`, read at opening.
    pub replay: Vec<Stored>,
    /// The groups the opening read covered (`(chat, upto)`).
    pub groups: Vec<(Uuid, Option<Offset>)>,
    /// The end of the user's timeline at opening, when `replay` holds everything up to it.
    pub end: Option<Offset>,
    /// Whether the client's offset could be honoured.
    pub recovered: bool,
}

/// Whether a read of `groups` covered `chat`'s events after a join at `at`.
fn covers(groups: &[(Uuid, Option<Offset>)], chat: Uuid, at: Offset) -> bool {
    groups
        .iter()
        .any(|(c, upto)| *c == chat && upto.is_none_or(|u| u > at))
}

impl Hub {
    /// Emits the entries of a read past the connection's offset, in order. A group
    /// left is read no further; a group joined that the read did not cover stops it:
    /// returns that group, with the offset at its join.
    fn apply_read(
        &self,
        conn: &Arc<Conn>,
        p: &mut Progress,
        entries: Vec<Stored>,
        groups: &[(Uuid, Option<Offset>)],
    ) -> Option<Uuid> {
        let mut gone: HashSet<Uuid> = HashSet::new();
        for s in entries {
            if s.offset <= p.offset {
                continue;
            }
            p.offset = s.offset;
            if s.group.is_some_and(|g| gone.contains(&g)) {
                continue;
            }
            let Some(e) = s.event() else { continue };
            self.emit(conn, &e);
            let Some(chat) = e.chat else { continue };
            match e.membership {
                Some(Membership::Left) => _ = gone.insert(chat),
                Some(Membership::Joined) => {
                    gone.remove(&chat);
                    if !covers(groups, chat, s.offset) {
                        self.groups.joined_at(conn.user, chat, s.offset);
                        return Some(chat);
                    }
                }
                None => {}
            }
        }
        None
    }

    /// Makes this gateway follow `chats` (those it does not follow yet), retrying
    /// while `conn` is open; `false` if it closed first.
    async fn follow(&self, chats: &[Uuid], conn: &Conn) -> bool {
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        loop {
            let todo = self.groups.unfollowed(chats);
            match self.cache.follow_chats(&self.gateway, &todo).await {
                Ok(()) => {
                    self.groups.followed(&todo);
                    return true;
                }
                Err(e) if !conn.is_closed() => {
                    tracing::debug!(error = %e, "cannot follow a group; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(_) => return false,
            }
        }
    }

    /// Makes the user's connections wait for a group they just joined: the chat is
    /// followed, then each connection reads its timeline again (from before the join).
    pub(super) fn follow_then_catch_up(&self, conns: Vec<Arc<Conn>>, chat: Uuid) {
        for conn in &conns {
            let mut p = conn.progress();
            p.filling = true;
            p.waits += 1;
        }
        let hub = self.clone();
        tokio::spawn(async move {
            if let Some(first) = conns.first() {
                hub.follow(&[chat], first).await;
            }
            for conn in conns {
                conn.progress().waits -= 1;
                hub.catch_up(&conn);
            }
        });
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
        let (joined, told) = {
            let mut p = conn.progress();
            p.offset = opening.from;
            let joined = self.apply_read(&conn, &mut p, opening.replay, &opening.groups);
            let told = match opening.end {
                Some(end) if joined.is_none() => {
                    p.offset = p.offset.max(end);
                    recovered(p.offset);
                    true
                }
                _ => false,
            };
            p.ready = true;
            if told && !p.again && p.waits == 0 {
                drop(p);
                self.settle(&conn, None);
                return;
            }
            p.reader = true;
            (joined, told)
        };
        if let Some(chat) = joined
            && !self.follow(&[chat], &conn).await
        {
            return;
        }
        self.clone().fill(conn.clone()).await;
        if !told {
            let offset = conn.progress().offset;
            recovered(offset);
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
                Some(o) if o > p.offset && o.epoch == p.offset.epoch => {
                    p.offset = o;
                    self.emit(conn, &e);
                }
                _ => {}
            }
        }
        p.filling = false;
        p.reader = false;
    }

    /// Reads the user's timeline after the connection's offset until a complete read
    /// with nothing left to wait for, then goes live.
    pub async fn fill(self, conn: Arc<Conn>) {
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let window = self.cache.retention.window.as_millis() as u64;
        while !conn.is_closed() {
            let from = {
                let mut p = conn.progress();
                p.again = false;
                p.offset
            };
            let cutoff = (chrono::Utc::now().timestamp_millis() as u64).saturating_sub(window);
            let groups = self.groups.of(conn.user, cutoff);
            let read = match self
                .cache
                .read_timeline(conn.user, &groups, Some(from), false)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, user = %conn.user, "timeline read failed; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            };
            if self.epoch_ended(&conn, &read) {
                continue;
            }
            let joined = {
                let mut p = conn.progress();
                self.apply_read(&conn, &mut p, read.entries, &groups)
            };
            if let Some(chat) = joined {
                if !self.follow(&[chat], &conn).await {
                    return;
                }
                continue;
            }
            if !read.complete {
                // Entries left out (`except`) up to the cut were read too.
                let mut p = conn.progress();
                p.offset = p.offset.max(read.end);
                continue;
            }
            let mut p = conn.progress();
            if p.again {
                continue;
            }
            if p.waits > 0 {
                // The follow that waits catches up again when it is done.
                p.reader = false;
                return;
            }
            drop(p);
            self.settle(&conn, Some(read.end));
            return;
        }
    }

    /// When Redis started a new epoch (a failover: what it lost cannot be read back),
    /// tells the client `session.recovered {recovered: false}` (it re-syncs) and moves
    /// the connection to the new epoch's start; `true` if it did.
    fn epoch_ended(&self, conn: &Arc<Conn>, read: &TimelineRead) -> bool {
        let mut p = conn.progress();
        if read.last.epoch == p.offset.epoch {
            return false;
        }
        tracing::info!(user = %conn.user, conn = %conn.id, "redis epoch changed; the client re-syncs");
        metrics::counter!("courier_gateway_epoch_resyncs_total").increment(1);
        p.offset = read.since.in_epoch(read.last.epoch);
        let body = serde_json::json!({"recovered": false, "offset": p.offset.to_string()});
        match serde_json::value::to_raw_value(&body) {
            Ok(raw) => _ = conn.send_raw(EVENT_RECOVERED, Some(p.offset), &raw),
            Err(e) => tracing::error!(error = %e, "cannot encode session.recovered"),
        }
        true
    }

    /// Has `conn` read its timeline again (once more if a read is under way) before
    /// it goes on live.
    pub(super) fn catch_up(&self, conn: &Arc<Conn>) {
        let mut p = conn.progress();
        p.filling = true;
        p.again = true;
        if p.ready && !p.reader && p.waits == 0 {
            p.reader = true;
            drop(p);
            metrics::counter!("courier_gateway_catch_ups_total").increment(1);
            tokio::spawn(self.clone().fill(conn.clone()));
        }
    }

    /// Reads every connection's timeline again (after Redis lost or dropped pushes).
    pub fn catch_up_all(&self) {
        for conn in self.all() {
            self.catch_up(&conn);
        }
    }
}
