//! Cache of blocks: per user, a Redis SET of whom they blocked and one of who blocked
//! them, each holding the marker `-` so that "no blocks" is cached too; filled from
//! PostgreSQL on a miss.
//!
//! A block change drops both users' sets and bumps their generations before it commits
//! (a Redis failure aborts it) and again after (a fill that read PostgreSQL in between
//! is dropped then); a fill notes the generation first and stores what it read only if
//! the generation did not move meanwhile.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, LazyLock},
};

use redis::Script;
use sqlx::PgPool;
use uuid::Uuid;

use super::{Cache, membership::LookupError};
use crate::db;

/// How long cached block sets live without being invalidated.
const TTL_SECS: i64 = 3600;
/// How long a generation counter outlives the last change.
const GEN_TTL_SECS: i64 = 86400;
/// The member every filled set holds, so that an empty relation is cached.
pub const MARKER: &str = "-";

/// KEYS: blocking, blockers, generation. ARGV: expected generation ("" if none), ttl,
/// count of blocking ids, blocking ids..., blockers ids...
static FILL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local gen = redis.call('GET', KEYS[3]) or ''
        if gen ~= ARGV[1] then return 0 end
        local n = tonumber(ARGV[3])
        redis.call('DEL', KEYS[1], KEYS[2])
        redis.call('SADD', KEYS[1], '-', unpack(ARGV, 4, 3 + n))
        redis.call('SADD', KEYS[2], '-', unpack(ARGV, 4 + n))
        redis.call('EXPIRE', KEYS[1], ARGV[2])
        redis.call('EXPIRE', KEYS[2], ARGV[2])
        return 1
        ",
    )
});

/// A user's blocks, both ways.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relations {
    /// Whom the user blocked.
    pub blocking: HashSet<Uuid>,
    /// Who blocked the user.
    pub blockers: HashSet<Uuid>,
}

fn ids(raw: &[String]) -> HashSet<Uuid> {
    raw.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect()
}

impl Cache {
    /// Each user's blocks, both ways: one Redis round trip, PostgreSQL for the misses.
    pub async fn blocks(
        &self,
        pool: &PgPool,
        users: &[Uuid],
    ) -> Result<HashMap<Uuid, Relations>, LookupError> {
        let mut out = HashMap::with_capacity(users.len());
        if users.is_empty() {
            return Ok(out);
        }
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for u in users {
            pipe.smembers(self.keys.user_blocking(*u))
                .smembers(self.keys.user_blockers(*u));
        }
        let cached: Vec<Vec<String>> = pipe.query_async(&mut conn).await?;
        let mut misses = Vec::new();
        for (u, pair) in users.iter().zip(cached.chunks(2)) {
            match pair {
                [blocking, blockers] if !blocking.is_empty() && !blockers.is_empty() => {
                    out.insert(
                        *u,
                        Relations {
                            blocking: ids(blocking),
                            blockers: ids(blockers),
                        },
                    );
                }
                _ => misses.push(*u),
            }
        }
        for u in misses {
            out.insert(u, self.fill_blocks(pool, u).await?);
        }
        Ok(out)
    }

    /// Each user's blocks: from the process's near cache, the rest from Redis (then
    /// PostgreSQL), kept near.
    pub async fn blocks_near(
        &self,
        pool: &PgPool,
        users: &[Uuid],
    ) -> Result<HashMap<Uuid, Arc<Relations>>, LookupError> {
        let mut out = HashMap::with_capacity(users.len());
        let mut misses = Vec::new();
        for u in users {
            match self.near.blocks(*u) {
                Some(r) => {
                    out.insert(*u, r);
                }
                None => misses.push(*u),
            }
        }
        if misses.is_empty() {
            return Ok(out);
        }
        let epoch = self.near.epoch();
        for (u, r) in self.blocks(pool, &misses).await? {
            self.near.put_blocks(u, r.clone(), epoch);
            out.insert(u, Arc::new(r));
        }
        Ok(out)
    }

    /// Reads `user`'s blocks from PostgreSQL and caches them unless a change raced.
    async fn fill_blocks(&self, pool: &PgPool, user: Uuid) -> Result<Relations, LookupError> {
        let mut conn = self.conn.clone();
        let gen_seen: Option<String> = redis::cmd("GET")
            .arg(self.keys.user_blocks_gen(user))
            .query_async(&mut conn)
            .await?;
        let (blocking, blockers) = db::blocks::relations(pool, user).await?;
        let mut inv = FILL.key(self.keys.user_blocking(user));
        inv.key(self.keys.user_blockers(user))
            .key(self.keys.user_blocks_gen(user))
            .arg(gen_seen.as_deref().unwrap_or(""))
            .arg(TTL_SECS)
            .arg(blocking.len())
            .arg(blocking.iter().map(Uuid::to_string).collect::<Vec<_>>())
            .arg(blockers.iter().map(Uuid::to_string).collect::<Vec<_>>());
        inv.invoke_async::<i64>(&mut conn).await?;
        Ok(Relations {
            blocking: blocking.into_iter().collect(),
            blockers: blockers.into_iter().collect(),
        })
    }

    /// Drops the cached blocks of `users` and bumps their generations.
    pub async fn invalidate_blocks(&self, users: &[Uuid]) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for u in users {
            let gen_key = self.keys.user_blocks_gen(*u);
            pipe.del(self.keys.user_blocking(*u))
                .ignore()
                .del(self.keys.user_blockers(*u))
                .ignore()
                .incr(&gen_key, 1)
                .ignore()
                .expire(&gen_key, GEN_TTL_SECS)
                .ignore();
        }
        pipe.query_async(&mut conn).await
    }
}
