//! Per-user event streams in Redis, and publishing events to the gateways.
//!
//! One script appends each recoverable event to its recipient's stream (capped at
//! `RECOVERY_MAX_EVENTS`; the worker's sweep removes streams without an event in
//! `RECOVERY_WINDOW_SECS` and trims older entries from the others), looks
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

/// Deletes a stream whose newest event is older than the cutoff, else trims the
/// entries older than it (whole nodes, `MINID ~`). Returns 1 if deleted.
static SWEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
        if last == nil or tonumber(string.match(last[1], '^(%d+)')) < tonumber(ARGV[1]) then
          return redis.call('DEL', KEYS[1])
        end
        redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[1])
        return 0
        ",
    )
});

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

/// How often the worker sweeps the event streams.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

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
            .arg(0)
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

    /// Removes the streams of users without an event in the retention window, and
    /// trims older entries from the others. Returns how many streams were removed.
    pub async fn sweep_streams(&self) -> redis::RedisResult<usize> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}user:*:events", self.keys.prefix());
        let cutoff =
            chrono::Utc::now().timestamp_millis() - self.retention.window.as_millis() as i64;
        let mut removed = 0;
        for key in self.keys_matching(&pattern).await? {
            let gone: i64 = SWEEP.key(key).arg(cutoff).invoke_async(&mut conn).await?;
            removed += gone as usize;
        }
        Ok(removed)
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
