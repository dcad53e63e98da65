//! The near cache: what each process keeps in memory so that the hot paths (every
//! authenticated request, every send) ask Redis nothing more than before sessions and
//! blocks existed — the revoked sessions of the token window (complete), users' blocks
//! and chats' shapes.
//!
//! It is kept true by the `near` pub/sub channel, on which every revocation and block
//! change is announced. It is trusted only while subscribed: each (re)subscription
//! reloads the revoked sessions from PostgreSQL and drops the cached blocks, and every
//! [`RESYNC`] reloads the revoked sessions again (a failed reload is retried then).
//! While not subscribed, callers ask Redis or PostgreSQL as before.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Cache, blocks::Relations};
use crate::db;

/// How often the revoked sessions are reloaded from PostgreSQL even when no
/// announcement was lost (the bound on a lost one).
pub const RESYNC: Duration = Duration::from_secs(30);
/// How long a user's blocks stay cached in memory without an announcement.
const BLOCKS_TTL: Duration = Duration::from_secs(60);
/// At most this many users' blocks and chats' shapes are held.
const CAPACITY: u64 = 100_000;

/// A chat's members as far as the send check cares (a direct chat's never change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Group,
    Direct([Uuid; 2]),
}

/// A change announced on the `near` channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Change {
    /// Sessions revoked, with their reasons, for `ttlSecs` (the token window).
    Revoked {
        sids: Vec<(Uuid, String)>,
        ttl_secs: u64,
    },
    /// The blocks of these users changed.
    Blocks { users: Vec<Uuid> },
}

/// The in-memory state; one per process, shared by every clone of its [`Cache`].
pub struct Near {
    synced: AtomicBool,
    revoked: RwLock<HashMap<Uuid, (String, Instant)>>,
    /// Bumped by every block change: a fill that saw another epoch does not store.
    epoch: AtomicU64,
    blocks: moka::sync::Cache<Uuid, Arc<Relations>>,
    shapes: moka::sync::Cache<Uuid, Shape>,
}

impl Default for Near {
    fn default() -> Self {
        Self {
            synced: AtomicBool::new(false),
            revoked: RwLock::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            blocks: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(BLOCKS_TTL)
                .build(),
            shapes: moka::sync::Cache::builder().max_capacity(CAPACITY).build(),
        }
    }
}

impl Near {
    /// Whether the in-memory state may be trusted (subscribed and loaded).
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// `None` when not synced; else the reason session `sid` was revoked, if it was.
    pub fn revoked(&self, sid: Uuid) -> Option<Option<String>> {
        if !self.synced() {
            return None;
        }
        let map = self.revoked.read().unwrap_or_else(|e| e.into_inner());
        Some(
            map.get(&sid)
                .filter(|(_, until)| *until > Instant::now())
                .map(|(reason, _)| reason.clone()),
        )
    }

    /// Notes revoked sessions (announced, or revoked by this process).
    pub fn note_revoked(&self, sids: &[(Uuid, String)], ttl: Duration) {
        let until = Instant::now() + ttl;
        let mut map = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        for (sid, reason) in sids {
            map.insert(*sid, (reason.clone(), until));
        }
    }

    /// Replaces the revoked sessions with PostgreSQL's, dropping expired ones.
    fn load_revoked(&self, rows: Vec<(Uuid, String, i64)>) {
        let now = Instant::now();
        let fresh: HashMap<_, _> = rows
            .into_iter()
            .map(|(sid, reason, left)| (sid, (reason, now + Duration::from_secs(left as u64))))
            .collect();
        let mut map = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        // Keep what was announced while PostgreSQL was read (it may not show there yet).
        map.retain(|sid, (_, until)| *until > now && !fresh.contains_key(sid));
        map.extend(fresh);
    }

    /// The current block epoch, to pass to [`Near::put_blocks`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// `user`'s cached blocks, when synced.
    pub fn blocks(&self, user: Uuid) -> Option<Arc<Relations>> {
        self.synced().then(|| self.blocks.get(&user)).flatten()
    }

    /// Caches `user`'s blocks read at `epoch`, unless a change came since.
    pub fn put_blocks(&self, user: Uuid, relations: Relations, epoch: u64) {
        if self.synced() && self.epoch() == epoch {
            self.blocks.insert(user, Arc::new(relations));
            // A change between the check and the insert drops it again.
            if self.epoch() != epoch {
                self.blocks.invalidate(&user);
            }
        }
    }

    /// Drops the cached blocks of `users`.
    pub fn forget_blocks(&self, users: &[Uuid]) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for u in users {
            self.blocks.invalidate(u);
        }
    }

    pub fn shape(&self, chat: Uuid) -> Option<Shape> {
        self.shapes.get(&chat)
    }

    pub fn put_shape(&self, chat: Uuid, shape: Shape) {
        self.shapes.insert(chat, shape);
    }

    fn apply(&self, change: Change) {
        match change {
            Change::Revoked { sids, ttl_secs } => {
                self.note_revoked(&sids, Duration::from_secs(ttl_secs));
            }
            Change::Blocks { users } => self.forget_blocks(&users),
        }
    }

    fn unsync(&self) {
        self.synced.store(false, Ordering::Release);
        self.forget_blocks(&[]);
        self.blocks.invalidate_all();
    }
}

impl Cache {
    /// Announces a change to every process (this one applies it itself first).
    pub async fn announce(&self, change: &Change) -> redis::RedisResult<()> {
        let payload = serde_json::to_string(change).map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::Client, "near change", e.to_string()))
        })?;
        let mut conn = self.conn.clone();
        redis::cmd("PUBLISH")
            .arg(self.keys.near_channel())
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
    }
}

/// Keeps this process's near cache true until `stop`: subscribes, loads, applies the
/// announcements, reloads every [`RESYNC`], and starts over after a lost subscription.
pub async fn run(cache: Cache, pool: PgPool, window: Duration, stop: CancellationToken) {
    let mut backoff =
        crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut changes = cache.master_changes();
    while !stop.is_cancelled() {
        let started = tokio::time::Instant::now();
        if let Some(c) = &mut changes {
            c.mark_unchanged();
        }
        let result = follow(&cache, &pool, window, &stop, &mut changes).await;
        cache.near.unsync();
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "near-cache subscription lost; resubscribing");
                backoff.reset_after(started.elapsed());
                // A new Redis master ends the wait: resubscribe there at once.
                tokio::select! {
                    go = backoff.wait(&stop) => if !go { return },
                    _ = super::conn::changed(&mut changes) => {}
                }
            }
        }
    }
}

async fn follow(
    cache: &Cache,
    pool: &PgPool,
    window: Duration,
    stop: &CancellationToken,
    changes: &mut Option<tokio::sync::watch::Receiver<u64>>,
) -> anyhow::Result<()> {
    let channel = cache.keys.near_channel();
    let mut pubsub = cache.pubsub().await?;
    pubsub.subscribe(&channel).await?;
    let mut messages = pubsub.into_on_message();
    let near = &cache.near;
    // Subscribed first, then loaded: nothing announced in between is missed.
    near.forget_blocks(&[]);
    near.blocks.invalidate_all();
    near.load_revoked(db::sessions::recently_revoked(pool, window).await?);
    near.synced.store(true, Ordering::Release);
    tracing::info!(%channel, "near cache synced");
    let mut resync = tokio::time::interval(RESYNC);
    resync.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = super::conn::changed(changes) => anyhow::bail!("the redis master changed"),
            _ = resync.tick() => match db::sessions::recently_revoked(pool, window).await {
                Ok(rows) => near.load_revoked(rows),
                // Still subscribed, so still current: a PostgreSQL outage must not send
                // every check to PostgreSQL (sends go on without it).
                Err(e) => tracing::warn!(error = %e, "cannot reload the revoked sessions; retrying"),
            },
            m = messages.next() => {
                let m = m.ok_or_else(|| anyhow::anyhow!("redis pub/sub stream ended"))?;
                match serde_json::from_slice::<Change>(m.get_payload_bytes()) {
                    Ok(change) => near.apply(change),
                    Err(e) => tracing::error!(error = %e, "malformed near-cache change"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synced() -> Near {
        let n = Near::default();
        n.synced.store(true, Ordering::Release);
        n
    }

    #[test]
    fn unknown_until_synced() {
        let n = Near::default();
        let sid = Uuid::now_v7();
        assert_eq!(n.revoked(sid), None);
        n.synced.store(true, Ordering::Release);
        assert_eq!(n.revoked(sid), Some(None));
        n.note_revoked(&[(sid, "banned".into())], Duration::from_secs(60));
        assert_eq!(n.revoked(sid), Some(Some("banned".into())));
    }

    #[test]
    fn expired_revocations_are_forgotten() {
        let n = synced();
        let sid = Uuid::now_v7();
        n.note_revoked(&[(sid, "logout".into())], Duration::ZERO);
        assert_eq!(n.revoked(sid), Some(None));
    }

    #[test]
    fn a_reload_keeps_fresh_announcements() {
        let n = synced();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        n.note_revoked(&[(a, "logout".into())], Duration::from_secs(60));
        n.load_revoked(vec![(b, "banned".into(), 60)]);
        assert_eq!(n.revoked(a), Some(Some("logout".into())));
        assert_eq!(n.revoked(b), Some(Some("banned".into())));
    }

    #[test]
    fn a_fill_that_raced_a_change_is_not_kept() {
        let n = synced();
        let u = Uuid::now_v7();
        let seen = n.epoch();
        n.forget_blocks(&[u]);
        n.put_blocks(u, Relations::default(), seen);
        assert!(n.blocks(u).is_none());
        n.put_blocks(u, Relations::default(), n.epoch());
        assert!(n.blocks(u).is_some());
        n.unsync();
        assert!(n.blocks(u).is_none());
    }

    #[test]
    fn changes_round_trip() {
        let c = Change::Revoked {
            sids: vec![(Uuid::nil(), "banned".into())],
            ttl_secs: 960,
        };
        let raw = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Change>(&raw).unwrap(), c);
    }
}
