//! Per-user event streams and group chats' timelines in Redis, and publishing events to
//! the gateways.
//!
//! One script gives each recoverable event one id from the global clock, appends it
//! with that id to its recipients' streams and, for a group event, once to the chat's
//! timeline (each capped at `RECOVERY_MAX_EVENTS`; the worker's sweep removes streams
//! without an event in `RECOVERY_WINDOW_SECS` and trims older entries from the others),
//! looks up the gateways holding the recipients' connections or following the chat,
//! and publishes one push per gateway. Append and routing happen atomically, so a
//! connection registered (or a chat followed) before the script ran gets the push, and
//! one registered after finds the event in its stream. Ephemeral events (typing,
//! presence) skip the streams.

use std::sync::LazyLock;

use redis::Script;
use uuid::Uuid;

use super::Cache;
use crate::domain::events::{GroupTarget, Membership, Outgoing};

static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("epoch.lua"),
        include_str!("publish.lua")
    ))
});

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

    /// `e`'s group target (none without a chat).
    fn group_of(e: &Outgoing) -> Option<&GroupTarget> {
        e.group.as_ref().filter(|_| e.chat.is_some())
    }

    async fn run_publish(&self, events: &[Outgoing], keep: bool) -> redis::RedisResult<()> {
        if events
            .iter()
            .all(|e| e.targets.is_empty() && Self::group_of(e).is_none())
        {
            return Ok(());
        }
        let mut inv = PUBLISH.prepare_invoke();
        inv.arg(self.keys.prefix())
            .arg(self.keys.gateway_channel(""))
            .arg(self.retention.max_events)
            .arg(self.retention.window.as_secs().max(1))
            .arg(if keep { "s" } else { "e" })
            .arg(events.len());
        for e in events {
            let group = Self::group_of(e);
            let except: Vec<String> = group
                .map(|g| g.except.iter().map(Uuid::to_string).collect())
                .unwrap_or_default();
            inv.arg(&e.data)
                .arg(e.chat.map(|c| c.to_string()).unwrap_or_default())
                .arg(e.sequence)
                .arg(Membership::code(e.membership))
                .arg(group.map(|g| g.name).unwrap_or_default())
                .arg(except.join(","))
                .arg(e.targets.len());
            for (user, name) in &e.targets {
                inv.arg(user.to_string()).arg(*name);
            }
        }
        let mut conn = self.conn.clone();
        inv.invoke_async::<()>(&mut conn).await
    }

    /// Removes the streams of users without an event in the retention window, and
    /// trims older entries from the others. Returns how many streams were removed.
    pub async fn sweep_streams(&self) -> redis::RedisResult<usize> {
        let mut conn = self.conn.clone();
        let cutoff =
            chrono::Utc::now().timestamp_millis() - self.retention.window.as_millis() as i64;
        let mut removed = 0;
        for kind in ["user", "chat"] {
            let pattern = format!("{}{kind}:*:events", self.keys.prefix());
            for key in self.keys_matching(&pattern).await? {
                let gone: i64 = SWEEP.key(key).arg(cutoff).invoke_async(&mut conn).await?;
                removed += gone as usize;
            }
        }
        Ok(removed)
    }
}
