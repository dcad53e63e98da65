//! Per-user event streams in Redis, and publishing events to the gateways.
//!
//! One script appends each recoverable event to its recipient's stream (capped at
//! `RECOVERY_MAX_EVENTS`, expiring after `RECOVERY_WINDOW_SECS` without events), looks
//! up the gateways holding the recipient's connections, and publishes one push per
//! gateway. Append and routing happen atomically, so a connection registered before
//! the script ran gets the push, and one registered after finds the event in its
//! stream. Ephemeral events (typing, presence) skip the stream.

use std::sync::LazyLock;

use redis::Script;
use uuid::Uuid;

use super::Cache;
use crate::domain::events::{Offset, Outgoing};

static PUBLISH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("publish.lua")));
static READ: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("read.lua")));

/// A stream read: where the stream stands, and the entries after the given offset.
#[derive(Debug, Default)]
pub struct StreamRead {
    /// The stream does not exist (never written, expired, or lost with Redis).
    pub missing: bool,
    /// The newest offset ever given out in the stream.
    pub last: Offset,
    /// The oldest entry still kept: events before it may have been trimmed (or lost
    /// with Redis), so only an offset at or after it can be resumed from.
    pub first: Offset,
    /// `(offset, name, data, chat, sequence)`, oldest first.
    pub entries: Vec<(Offset, String, String, String, i64)>,
    /// Every entry up to `last` was returned (the read was not cut at its limit).
    pub complete: bool,
}

type RawEntry = (String, Vec<String>);

impl Cache {
    /// Appends recoverable events to their recipients' streams and pushes them to
    /// the gateways holding those recipients' connections.
    pub async fn publish_events(&self, events: &[Outgoing]) -> redis::RedisResult<()> {
        self.run_publish(events, true).await
    }

    /// Pushes ephemeral events (no offset, not kept) to the recipients' gateways.
    pub async fn publish_ephemeral(&self, events: &[Outgoing]) -> redis::RedisResult<()> {
        self.run_publish(events, false).await
    }

    async fn run_publish(&self, events: &[Outgoing], keep: bool) -> redis::RedisResult<()> {
        if events.iter().all(|e| e.targets.is_empty()) {
            return Ok(());
        }
        let mut inv = PUBLISH.prepare_invoke();
        inv.arg(self.keys.prefix())
            .arg(self.keys.gateway_channel(""))
            .arg(self.retention.max_events)
            .arg(self.retention.window.as_millis() as u64)
            .arg(if keep { "s" } else { "e" })
            .arg(events.len());
        for e in events {
            inv.arg(&e.data)
                .arg(e.chat.map(|c| c.to_string()).unwrap_or_default())
                .arg(e.sequence);
        }
        for (i, e) in events.iter().enumerate() {
            for (user, name) in &e.targets {
                inv.arg(i).arg(user.to_string()).arg(*name);
            }
        }
        let mut conn = self.conn.clone();
        inv.invoke_async::<()>(&mut conn).await
    }

    /// Reads `user`'s stream after `after` (at most twice the retention cap: a capped
    /// stream holds a little more than the cap), with the stream's bounds;
    /// `after = None` reads only the bounds. `start` makes a missing stream exist
    /// (with a marker entry), as a new connection needs an offset it can resume from.
    pub async fn read_events(
        &self,
        user: Uuid,
        after: Option<Offset>,
        start: bool,
    ) -> redis::RedisResult<StreamRead> {
        let mut conn = self.conn.clone();
        let limit = self.retention.max_events as usize * 2 + 128;
        let (last, first, entries): (String, String, Vec<RawEntry>) = READ
            .key(self.keys.user_events(user))
            .arg(after.map(|o| o.to_string()).unwrap_or_default())
            .arg(limit)
            .arg(if start { "1" } else { "" })
            .arg(self.retention.max_events)
            .arg(self.retention.window.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        let bad = |what: &str| {
            redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "bad stream entry",
                what.to_string(),
            ))
        };
        let mut read = StreamRead {
            missing: last.is_empty(),
            last: Offset::parse_or_zero(&last).ok_or_else(|| bad(&last))?,
            first: Offset::parse_or_zero(&first).ok_or_else(|| bad(&first))?,
            complete: entries.len() < limit,
            entries: Vec::with_capacity(entries.len()),
        };
        for (id, fields) in entries {
            let offset = id.parse().map_err(|_| bad(&id))?;
            let (mut name, mut data, mut chat, mut seq) = Default::default();
            for kv in fields.chunks_exact(2) {
                let v = kv[1].clone();
                match kv[0].as_str() {
                    "n" => name = v,
                    "d" => data = v,
                    "c" => chat = v,
                    "s" => seq = v.parse().unwrap_or(0),
                    _ => {}
                }
            }
            read.entries.push((offset, name, data, chat, seq));
        }
        Ok(read)
    }
}
