//! Per-chat order under retries. A command that fails for a reason of its own (not an
//! outage) goes to a retry queue; it then *holds* its chat: the chat's later commands
//! are parked behind it, in the same retry queue (FIFO), without spending their own
//! attempts, until the head is applied or dead-lettered. Other chats of the partition
//! go on. Each partition consumer keeps its holds in memory (its chats are its own:
//! single active consumer) and in PostgreSQL, read back when it starts consuming.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use sqlx::PgPool;
use uuid::Uuid;

use crate::{db, mq::Topology};

/// A hold older than this is ignored (its head must have been lost: the longest
/// retry path is well under it), so a chat can never stay held forever.
pub const HOLD_MAX: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone, Copy)]
pub struct Hold {
    /// The held command's id (a send's broker message id, a lifecycle command's id).
    pub head: Uuid,
    /// The retry queue the head waits in.
    pub delay: Duration,
    since: Instant,
}

/// The holds of one partition's chats.
#[derive(Debug, Default)]
pub struct Holds {
    partition: i32,
    map: HashMap<Uuid, Hold>,
}

impl Holds {
    /// The holds of `partition`, as the last consumer left them.
    pub async fn load(pool: &PgPool, partition: u16) -> Result<Self, sqlx::Error> {
        let rows = db::holds::of_partition(pool, i32::from(partition)).await?;
        let now = Instant::now();
        let map = rows
            .into_iter()
            .map(|r| {
                let age = Duration::from_secs_f64(r.age_secs.clamp(0.0, HOLD_MAX.as_secs_f64()));
                let since = now.checked_sub(age).unwrap_or(now);
                let delay = Duration::from_millis(r.delay_ms.max(0) as u64);
                let hold = Hold {
                    head: r.head,
                    delay,
                    since,
                };
                (r.chat_id, hold)
            })
            .collect();
        Ok(Self {
            partition: i32::from(partition),
            map,
        })
    }

    /// The hold that parks command `id` of `chat`: a live hold whose head is another command.
    pub fn blocking(&self, chat: Uuid, id: Uuid) -> Option<Hold> {
        self.map
            .get(&chat)
            .filter(|h| h.head != id && h.since.elapsed() < HOLD_MAX)
            .copied()
    }

    /// Where a command parked behind `chat`'s head waits: the head's retry queue.
    pub fn park_delay(&self, chat: Uuid) -> Duration {
        self.map
            .get(&chat)
            .map_or_else(|| Topology::retry_delay(1), |h| h.delay)
    }

    /// `head` of `chat` goes to the retry queue of `delay`: the chat is held behind it.
    pub async fn hold(
        &mut self,
        pool: &PgPool,
        chat: Uuid,
        head: Uuid,
        delay: Duration,
    ) -> Result<(), sqlx::Error> {
        db::holds::put(pool, chat, self.partition, head, delay.as_millis() as i64).await?;
        self.map.insert(
            chat,
            Hold {
                head,
                delay,
                since: Instant::now(),
            },
        );
        metrics::counter!("courier_worker_chat_holds_total").increment(1);
        Ok(())
    }

    /// Command `id` of `chat` is done (applied or dead-lettered): if it held the chat,
    /// the chat goes on.
    pub async fn release(
        &mut self,
        pool: &PgPool,
        chat: Uuid,
        id: Uuid,
    ) -> Result<(), sqlx::Error> {
        if self.map.get(&chat).is_none_or(|h| h.head != id) {
            return Ok(());
        }
        db::holds::release(pool, chat, id).await?;
        self.map.remove(&chat);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
