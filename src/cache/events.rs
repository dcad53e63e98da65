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

/// Deletes a stream whose newest event is older than the cutoff (with its user's
/// clock, KEYS[2], in cluster mode), else trims the entries older than it (whole
/// nodes, `MINID ~`). Returns 1 if deleted.
static SWEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
        if last == nil or tonumber(string.match(last[1], '^(%d+)')) < tonumber(ARGV[1]) then
          if KEYS[2] then redis.call('DEL', KEYS[2]) end
          return redis.call('DEL', KEYS[1])
        end
        redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[1])
        return 0
        ",
    )
});

/// One payload of a publish script call: an event, the users it goes to through their
/// own streams, and its group target.
pub(super) struct Part<'a> {
    pub event: &'a Outgoing,
    pub targets: &'a [(Uuid, &'static str)],
    pub group: Option<&'a GroupTarget>,
    /// The targets are group members (cluster mode): no membership change for them.
    pub expanded: bool,
}

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
    pub(super) fn group_of(e: &Outgoing) -> Option<&GroupTarget> {
        e.group.as_ref().filter(|_| e.chat.is_some())
    }

    async fn run_publish(&self, events: &[Outgoing], keep: bool) -> redis::RedisResult<()> {
        if events
            .iter()
            .all(|e| e.targets.is_empty() && Self::group_of(e).is_none())
        {
            return Ok(());
        }
        if self.is_cluster() {
            return self.publish_split(events, keep).await;
        }
        let batch: Vec<Part<'_>> = events
            .iter()
            .map(|e| Part {
                event: e,
                targets: &e.targets,
                group: Self::group_of(e),
                expanded: false,
            })
            .collect();
        let mut conn = self.conn.clone();
        self.invocation(&batch, keep)
            .invoke_async::<()>(&mut conn)
            .await
    }

    /// The publish script's call for `parts` (in cluster mode, all in one slot: the
    /// targets' stream keys are its keys, so the cluster routes it there).
    pub(super) fn invocation<'a>(
        &self,
        parts: &[Part<'_>],
        keep: bool,
    ) -> redis::ScriptInvocation<'a> {
        let mut inv = PUBLISH.prepare_invoke();
        let (open, close) = self.keys.user_pattern();
        inv.arg(self.keys.prefix())
            .arg(self.keys.gateway_channel(""))
            .arg(self.retention.max_events)
            .arg(self.retention.window.as_secs().max(1))
            .arg(if keep { "s" } else { "e" })
            .arg(parts.len())
            .arg(open)
            .arg(close);
        for part in parts {
            let e = part.event;
            let except: Vec<String> = part
                .group
                .map(|g| g.except.iter().map(Uuid::to_string).collect())
                .unwrap_or_default();
            inv.arg(&e.data)
                .arg(e.chat.map(|c| c.to_string()).unwrap_or_default())
                .arg(e.sequence)
                .arg(if part.expanded {
                    Membership::code(None)
                } else {
                    Membership::code(e.membership)
                })
                .arg(part.group.map(|g| g.name).unwrap_or_default())
                .arg(except.join(","))
                .arg(part.targets.len());
            for (user, name) in part.targets {
                inv.arg(user.to_string()).arg(*name);
                if self.is_cluster() {
                    inv.key(self.keys.user_events(*user));
                }
            }
        }
        inv
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
                let mut inv = SWEEP.prepare_invoke();
                inv.key(&key);
                // A user's own clock (cluster mode) goes with their stream: an offset
                // of theirs from before is then older than the new clock's start.
                if self.is_cluster()
                    && kind == "user"
                    && let Some(user) = key.strip_suffix(":events")
                {
                    inv.key(format!("{user}:clock"));
                }
                let gone: i64 = inv.arg(cutoff).invoke_async(&mut conn).await?;
                removed += gone as usize;
            }
        }
        Ok(removed)
    }
}
