//! Reading a user's timeline back: their own stream and their group chats' timelines,
//! merged by the global ids; which gateways follow which group chats; the groups a
//! user left within the retention window.
//!
//! Every recoverable event has one id from the global clock (`{p}clock`), the same in
//! every stream it went to, so a connection's offset is one position across all of its
//! user's streams, and an event read from two streams (equal ids) is the same event.

use std::sync::{Arc, LazyLock};

use redis::Script;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::Cache;
use crate::domain::events::{Event, Membership, Offset};

static READ: LazyLock<Script> =
    LazyLock::new(|| Script::new(concat!(include_str!("epoch.lua"), include_str!("read.lua"))));

/// A read of a user's timeline after an offset.
#[derive(Debug, Default)]
pub struct TimelineRead {
    /// The clock's last id (created when `start` and missing).
    pub last: Offset,
    /// The clock's first id (`ZERO` when there is no clock): an offset before it
    /// predates a loss of Redis's data.
    pub since: Offset,
    /// The end of this user's timeline: the newest id of their streams (a left group's
    /// up to its `chat.removed`), else `last`. A connection that read everything up
    /// to here has handled every event of the user's up to `last`. When the read is
    /// not complete: the id up to which `entries` holds everything (some entries up to
    /// it may have been left out for `except`).
    pub end: Offset,
    /// `after` is `Some`, `since <= after <= last`, and no stream lost (trimmed) an
    /// entry newer than `after`; for a user in no group, also `after` is not before the
    /// first entry their own stream kept (an offset from before their stream existed,
    /// such as another user's, is not theirs: a new connection's read starts the
    /// stream with a marker entry).
    pub recoverable: bool,
    /// The entries after `after`, oldest first, each id once.
    pub entries: Vec<Stored>,
    /// Every stream returned everything after `after` (the read was not cut).
    pub complete: bool,
}

/// One entry read back from a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub offset: Offset,
    pub name: String,
    pub data: String,
    pub chat: String,
    pub sequence: i64,
    /// The membership change a per-user entry carries.
    pub membership: Option<Membership>,
    /// The group chat whose timeline it came from (`None`: the user's own stream).
    pub group: Option<Uuid>,
}

impl Stored {
    /// The event as a gateway emits it (`None` for an unreadable entry).
    pub fn event(&self) -> Option<Event> {
        if self.name.is_empty() {
            return None;
        }
        let data = RawValue::from_string(self.data.clone()).ok()?;
        Some(Event {
            name: Arc::from(self.name.as_str()),
            data: Arc::from(data),
            chat: Uuid::parse_str(&self.chat).ok(),
            sequence: self.sequence,
            offset: Some(self.offset),
            membership: self.membership,
        })
    }
}

type RawEntry = (String, Vec<String>);
/// exists, length, entries-added, first id, last-generated id, entries.
type RawStream = (i64, i64, i64, String, String, Vec<RawEntry>);

fn bad(what: &str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "bad stream entry",
        what.to_string(),
    ))
}

fn offset(s: &str) -> redis::RedisResult<Offset> {
    Offset::parse_or_zero(s).ok_or_else(|| bad(s))
}

/// A raw entry as `Stored`; `None` when its except list names `user`.
fn stored(
    (id, fields): RawEntry,
    group: Option<Uuid>,
    user: &str,
) -> redis::RedisResult<Option<Stored>> {
    let mut s = Stored {
        offset: id.parse().map_err(|_| bad(&id))?,
        name: String::new(),
        data: String::new(),
        chat: String::new(),
        sequence: 0,
        membership: None,
        group,
    };
    for kv in fields.chunks_exact(2) {
        let v = &kv[1];
        match kv[0].as_str() {
            "n" => s.name = v.clone(),
            "d" => s.data = v.clone(),
            "c" => s.chat = v.clone(),
            "s" => s.sequence = v.parse().unwrap_or(0),
            "m" if v == "j" => s.membership = Some(Membership::Joined),
            "m" if v == "l" => s.membership = Some(Membership::Left),
            "x" if group.is_some() && v.split(',').any(|u| u == user) => return Ok(None),
            _ => {}
        }
    }
    Ok(Some(s))
}

impl Cache {
    /// Reads `user`'s stream and the timelines of `groups` (`(chat, upto)`: a group
    /// the user left is read up to the id of its `chat.removed`) after `after`, at
    /// most twice the retention cap per stream (a capped stream holds a little more
    /// than the cap); `after = None` reads only the bounds. `start` creates a missing
    /// clock and starts a missing user stream with a marker entry, as a new connection
    /// needs an offset it can resume from.
    pub async fn read_timeline(
        &self,
        user: Uuid,
        groups: &[(Uuid, Option<Offset>)],
        after: Option<Offset>,
        start: bool,
    ) -> redis::RedisResult<TimelineRead> {
        let limit = self.retention.max_events as usize * 2 + 128;
        // In cluster mode a user's stream holds their group events too.
        let groups = if self.is_cluster() { &[] } else { groups };
        let mut inv = READ.prepare_invoke();
        inv.key(self.keys.clock(user))
            .key(self.keys.user_events(user));
        for (chat, _) in groups {
            inv.key(self.keys.chat_events(*chat));
        }
        inv.arg(after.map(|o| o.id()).unwrap_or_default())
            .arg(limit)
            .arg(if start { "1" } else { "" });
        for (_, upto) in groups {
            inv.arg(upto.map(|o| o.id()).unwrap_or_default());
        }
        let mut conn = self.conn.clone();
        let (last, since, streams, epoch): (String, String, Vec<RawStream>, String) =
            inv.invoke_async(&mut conn).await?;
        let epoch: u64 = epoch.parse().map_err(|_| bad(&epoch))?;
        let (last, since) = (offset(&last)?.in_epoch(epoch), offset(&since)?);
        let mut read = TimelineRead {
            last,
            since,
            end: Offset::ZERO.in_epoch(epoch),
            // An offset of another epoch may miss what the dataset lost.
            recoverable: after.is_some_and(|a| a.epoch == epoch && since <= a && a <= last),
            complete: true,
            entries: Vec::new(),
        };
        let anchored = groups.is_empty();
        let me = user.to_string();
        // A stream cut at its limit: nothing past its last returned entry is complete.
        let mut cut: Option<Offset> = None;
        for (k, (exists, len, added, first, last_id, raw)) in streams.into_iter().enumerate() {
            let slot = k.checked_sub(1).and_then(|g| groups.get(g));
            let group = slot.map(|g| g.0);
            let (first, last_id) = (offset(&first)?, offset(&last_id)?);
            if exists != 0 {
                let upto = slot.and_then(|g| g.1).unwrap_or(last_id);
                read.end = read.end.max(last_id.min(upto).in_epoch(epoch));
            }
            if let Some(a) = after {
                let kept = exists == 0 || added == len || (len > 0 && a >= first) || a >= last_id;
                // A user in no group: their own stream is where their offsets live.
                let theirs = !anchored
                    || group.is_some()
                    || (exists != 0 && a >= if len > 0 { first } else { last_id });
                read.recoverable &= kept && theirs;
            }
            if raw.len() >= limit {
                read.complete = false;
                if let Some((id, _)) = raw.last() {
                    let end = offset(id)?.in_epoch(epoch);
                    cut = Some(cut.map_or(end, |c| c.min(end)));
                }
            }
            for entry in raw {
                if let Some(mut s) = stored(entry, group, &me)? {
                    s.offset = s.offset.in_epoch(epoch);
                    read.entries.push(s);
                }
            }
        }
        if read.end == Offset::ZERO {
            read.end = last;
        }
        // Equal ids are one event: the user's own copy first.
        read.entries.sort_by_key(|s| (s.offset, s.group.is_some()));
        read.entries.dedup_by_key(|s| s.offset);
        if let Some(c) = cut {
            read.entries.retain(|s| s.offset <= c);
            read.end = c;
        }
        Ok(read)
    }

    /// The groups `user` left within the retention window, with the id of each one's
    /// `chat.removed`.
    pub async fn left_groups(&self, user: Uuid) -> redis::RedisResult<Vec<(Uuid, Offset)>> {
        let mut conn = self.conn.clone();
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(self.keys.user_left(user))
            .query_async(&mut conn)
            .await?;
        Ok(all
            .into_iter()
            .filter_map(|(c, o)| Some((Uuid::parse_str(&c).ok()?, o.parse().ok()?)))
            .collect())
    }

    /// Makes `gateway` follow the timelines of `chats`: their group events are pushed
    /// to it from now on.
    pub async fn follow_chats(&self, gateway: &str, chats: &[Uuid]) -> redis::RedisResult<()> {
        // In cluster mode group events go to each member's stream: nothing to follow.
        if chats.is_empty() || self.is_cluster() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for chat in chats {
            pipe.sadd(self.keys.chat_gateways(*chat), gateway).ignore();
        }
        pipe.sadd(
            self.keys.gateway_chats(gateway),
            chats.iter().map(Uuid::to_string).collect::<Vec<_>>(),
        )
        .ignore();
        let mut conn = self.conn.clone();
        pipe.query_async(&mut conn).await
    }

    /// Stops `gateway` following any chat (it stopped, or was reaped).
    pub(super) async fn unfollow_all(&self, gateway: &str) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let key = self.keys.gateway_chats(gateway);
        let chats: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&key)
            .query_async(&mut conn)
            .await?;
        let mut pipe = redis::pipe();
        for chat in chats.iter().filter_map(|c| Uuid::parse_str(c).ok()) {
            pipe.srem(self.keys.chat_gateways(chat), gateway).ignore();
        }
        pipe.del(&key).ignore();
        pipe.query_async(&mut conn).await
    }
}
