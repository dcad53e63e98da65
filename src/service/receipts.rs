//! Delivery receipts: delivered marks gathered as events reach live connections, read
//! marks from `chat.read` and `POST /chats/:chatId/read`, and the coalesced
//! `chat.message.status` events they cause.
//!
//! Every flush interval (`RECEIPT_FLUSH_MS`, 250 ms) the gathered marks are written and
//! their status events sent, so a quiet chat's tick comes within one interval. Once a
//! (chat, user, status) was sent, its next change waits until `HOLD_FLUSHES` intervals
//! have passed: a busy chat sends at most one per second, not one per interval (in the
//! throughput benchmark this took Redis from 85-92 to 71-82 µs per message).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    cache::Cache,
    db,
    domain::events::{EVENT_STATUS, GroupTarget, Outgoing, StatusEvent},
    service::{ServiceError, ServiceResult},
};

type Key = (Uuid, Uuid); // (chat, user)
type StatusKey = (Uuid, Uuid, &'static str); // (chat, user, status)

/// After a (chat, user, status) was sent, its next change waits this many intervals.
pub const HOLD_FLUSHES: u32 = 4;

#[derive(Default)]
struct Pending {
    /// Delivered marks to write: the highest sequence seen per (chat, user).
    delivered: HashMap<Key, i64>,
    /// Status events to send: the highest sequence per (chat, user, status).
    statuses: HashMap<StatusKey, i64>,
    /// When each recently sent (chat, user, status) went out.
    sent: HashMap<StatusKey, Instant>,
}

impl Pending {
    /// Whether `key` was sent less than `hold` before `now`.
    fn held(&self, key: &StatusKey, now: Instant, hold: Duration) -> bool {
        self.sent
            .get(key)
            .is_some_and(|t| now.duration_since(*t) < hold)
    }

    /// The delivered marks due for writing now (the held ones stay gathered).
    fn take_delivered(&mut self, now: Instant, hold: Duration) -> Vec<(Uuid, Uuid, i64)> {
        self.sent.retain(|_, t| now.duration_since(*t) < hold);
        let due: Vec<Key> = self
            .delivered
            .keys()
            .filter(|(c, u)| !self.held(&(*c, *u, "delivered"), now, hold))
            .copied()
            .collect();
        due.into_iter()
            .filter_map(|k| self.delivered.remove(&k).map(|s| (k.0, k.1, s)))
            .collect()
    }

    /// The status events due now, recorded as sent at `now`.
    fn take_statuses(&mut self, now: Instant, hold: Duration) -> Vec<(StatusKey, i64)> {
        let due: Vec<StatusKey> = self
            .statuses
            .keys()
            .filter(|k| !self.held(k, now, hold))
            .copied()
            .collect();
        let out: Vec<(StatusKey, i64)> = due
            .into_iter()
            .filter_map(|k| self.statuses.remove(&k).map(|s| (k, s)))
            .collect();
        for (k, _) in &out {
            self.sent.insert(*k, now);
        }
        out
    }
}

fn raise<K: std::hash::Hash + Eq>(map: &mut HashMap<K, i64>, key: K, sequence: i64) {
    let e = map.entry(key).or_insert(sequence);
    *e = (*e).max(sequence);
}

/// The process's receipt coalescer; cheap to clone.
#[derive(Clone, Default)]
pub struct Receipts(Arc<Mutex<Pending>>);

impl Receipts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A message event of `chat` at `sequence` reached a live connection of `user`.
    pub fn delivered(&self, chat: Uuid, user: Uuid, sequence: i64) {
        raise(&mut self.lock().delivered, (chat, user), sequence);
    }

    fn announce(&self, chat: Uuid, user: Uuid, status: &'static str, sequence: i64) {
        raise(&mut self.lock().statuses, (chat, user, status), sequence);
    }

    /// Writes the gathered delivered marks and sends the status events, every `every`,
    /// until `stop` (then once more).
    pub async fn run(self, pool: PgPool, cache: Cache, every: Duration, stop: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = stop.cancelled() => true,
                _ = tick.tick() => false,
            };
            if let Err(e) = self.flush(&pool, &cache, every * HOLD_FLUSHES).await {
                tracing::warn!(error = %e, "receipts not flushed; retrying");
            }
            if stopping {
                return;
            }
        }
    }

    async fn flush(&self, pool: &PgPool, cache: &Cache, hold: Duration) -> anyhow::Result<()> {
        let delivered = self.lock().take_delivered(Instant::now(), hold);
        if !delivered.is_empty() {
            match db::chats::advance_delivered(pool, &delivered).await {
                Ok(moved) => {
                    for (chat, user, seq) in moved {
                        self.announce(chat, user, "delivered", seq);
                    }
                }
                Err(e) => {
                    let mut p = self.lock();
                    for (c, u, s) in delivered {
                        raise(&mut p.delivered, (c, u), s);
                    }
                    return Err(e.into());
                }
            }
        }
        let statuses = self.lock().take_statuses(Instant::now(), hold);
        if statuses.is_empty() {
            return Ok(());
        }
        if let Err(e) = send_statuses(pool, cache, &statuses).await {
            let mut p = self.lock();
            for (k, s) in statuses {
                p.sent.remove(&k);
                raise(&mut p.statuses, k, s);
            }
            return Err(e);
        }
        Ok(())
    }
}

/// Past this many members, a group's `chat.message.status` events are not sent live
/// (each member's marks would go to every other member: quadratic); the marks are kept,
/// and `GET /chats/:chatId` (`marks`) and each message's `status`, `deliveredCount` and
/// `readCount` show them.
pub const LIVE_STATUS_MAX_MEMBERS: usize = 100;

/// `chat.message.status` to the other participants of each chat: through each one's
/// stream in a direct chat, once through the timeline of a group (up to
/// [`LIVE_STATUS_MAX_MEMBERS`] members).
async fn send_statuses(
    pool: &PgPool,
    cache: &Cache,
    statuses: &[(StatusKey, i64)],
) -> anyhow::Result<()> {
    let mut chats: Vec<Uuid> = statuses.iter().map(|((c, _, _), _)| *c).collect();
    chats.sort();
    chats.dedup();
    let groups = cache.groups_among(pool, &chats).await?;
    let direct: Vec<Uuid> = chats
        .iter()
        .copied()
        .filter(|c| !groups.contains(c))
        .collect();
    let members = if direct.is_empty() {
        Default::default()
    } else {
        cache.members(pool, &direct).await?
    };
    let mut live_groups = HashSet::new();
    for g in &groups {
        if cache.member_count(pool, *g).await? <= LIVE_STATUS_MAX_MEMBERS {
            live_groups.insert(*g);
        }
    }
    // Delivered before read, so a client never sees a read tick undone by a delivered one.
    let mut ordered: Vec<_> = statuses.to_vec();
    ordered.sort_by_key(|((_, _, status), _)| *status != "delivered");
    let mut events = Vec::with_capacity(ordered.len());
    for ((chat_id, user_id, status), sequence) in ordered {
        let payload = StatusEvent {
            chat_id,
            user_id,
            status,
            sequence,
        };
        if live_groups.contains(&chat_id) {
            events.push(Outgoing {
                chat: Some(chat_id),
                group: Some(GroupTarget {
                    name: EVENT_STATUS,
                    except: vec![user_id],
                }),
                ..Outgoing::to_users(EVENT_STATUS, &payload, [])?
            });
        } else if !groups.contains(&chat_id) {
            let others = members.get(&chat_id).into_iter().flatten().copied();
            events.push(Outgoing::to_users(
                EVENT_STATUS,
                &payload,
                others.filter(|u| *u != user_id),
            )?);
        }
    }
    cache.publish_events(&events).await?;
    Ok(())
}

/// `mark_read` on the context's pool and receipts.
pub async fn mark_read_in(
    ctx: &super::Ctx,
    chat: Uuid,
    user: Uuid,
    sequence: i64,
) -> ServiceResult<()> {
    mark_read(&ctx.pool, &ctx.receipts, chat, user, sequence).await
}

/// Marks everything up to `sequence` of `chat` read for `user` (never backwards); the
/// other participants learn of it through `chat.message.status`.
pub async fn mark_read(
    pool: &PgPool,
    receipts: &Receipts,
    chat: Uuid,
    user: Uuid,
    sequence: i64,
) -> ServiceResult<()> {
    if sequence < 0 {
        return Err(ServiceError::Invalid(
            "sequence must be non-negative".into(),
        ));
    }
    super::require_member(pool, chat, user).await?;
    let moved = db::chats::mark_read(pool, chat, user, sequence)
        .await?
        .map_err(|last| {
            ServiceError::Invalid(format!(
                "sequence must not exceed the chat's lastSequence ({last})"
            ))
        })?;
    if moved {
        receipts.announce(chat, user, "read", sequence);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_to_the_highest_sequence() {
        let r = Receipts::default();
        let (c, u) = (Uuid::new_v4(), Uuid::new_v4());
        r.delivered(c, u, 3);
        r.delivered(c, u, 9);
        r.delivered(c, u, 5);
        r.announce(c, u, "read", 4);
        r.announce(c, u, "read", 2);
        let p = r.lock();
        assert_eq!(p.delivered.get(&(c, u)), Some(&9));
        assert_eq!(p.statuses.get(&(c, u, "read")), Some(&4));
        assert_eq!(p.delivered.len() + p.statuses.len(), 2);
    }

    #[test]
    fn a_sent_status_holds_the_next_change_of_its_key_only() {
        let mut p = Pending::default();
        let (c, u, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let hold = Duration::from_secs(1);
        let t0 = Instant::now();
        raise(&mut p.statuses, (c, u, "delivered"), 3);
        assert_eq!(
            p.take_statuses(t0, hold),
            vec![((c, u, "delivered"), 3)],
            "quiet: at once"
        );

        raise(&mut p.statuses, (c, u, "delivered"), 5);
        raise(&mut p.statuses, (c, u, "read"), 4);
        raise(&mut p.statuses, (c, other, "delivered"), 7);
        p.delivered.insert((c, u), 6);
        p.delivered.insert((c, other), 8);
        let t1 = t0 + Duration::from_millis(250);
        assert_eq!(
            p.take_delivered(t1, hold),
            vec![(c, other, 8)],
            "u's delivered mark waits with its status"
        );
        let due = p.take_statuses(t1, hold);
        assert_eq!(
            due.len(),
            2,
            "the other status and the other user are not held"
        );
        assert!(due.iter().all(|(k, _)| *k != (c, u, "delivered")));

        let t2 = t0 + Duration::from_millis(1000);
        raise(&mut p.statuses, (c, u, "delivered"), 6);
        assert_eq!(p.take_delivered(t2, hold), vec![(c, u, 6)]);
        assert_eq!(
            p.take_statuses(t2, hold),
            vec![((c, u, "delivered"), 6)],
            "once the hold ran out, the newest value goes"
        );
    }
}
