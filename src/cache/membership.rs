//! Cache of chat membership: a Redis SET per chat, filled from PostgreSQL on a miss.
//!
//! Never stale after a membership change returns: the change drops the set and bumps
//! the chat's generation while it holds the chat's row lock, before it commits (a Redis
//! failure aborts the change). A fill notes the generation first, reads PostgreSQL
//! under a share lock on the chat (so it waits for a change in flight to commit), and
//! stores what it read only if the generation did not move meanwhile.

use std::{collections::HashMap, sync::LazyLock};

use redis::Script;
use sqlx::PgPool;
use uuid::Uuid;

use super::Cache;
use crate::db;

/// How long a cached member set lives without being invalidated.
const TTL_SECS: i64 = 3600;
/// How long a generation counter outlives the last change.
const GEN_TTL_SECS: i64 = 86400;

/// KEYS: set, generation. ARGV: expected generation ("" if none), ttl, members...
static FILL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local gen = redis.call('GET', KEYS[2]) or ''
        if gen ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        redis.call('SADD', KEYS[1], unpack(ARGV, 3))
        redis.call('EXPIRE', KEYS[1], ARGV[2])
        return 1
        ",
    )
});

/// Why membership could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl Cache {
    /// Member ids of each chat.
    pub async fn members(
        &self,
        pool: &PgPool,
        chats: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<Uuid>>, LookupError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for c in chats {
            pipe.cmd("SMEMBERS").arg(self.keys.members(*c));
        }
        let cached: Vec<Vec<String>> = pipe.query_async(&mut conn).await?;
        let mut out = HashMap::with_capacity(chats.len());
        let mut misses = Vec::new();
        for (chat, ids) in chats.iter().zip(cached) {
            if ids.is_empty() {
                misses.push(*chat);
            } else {
                out.insert(
                    *chat,
                    ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect(),
                );
            }
        }
        if misses.is_empty() {
            return Ok(out);
        }
        // One GET per chat (not MGET): in a cluster the chats' keys are in many slots.
        let mut pipe = redis::pipe();
        for c in &misses {
            pipe.get(self.keys.members_gen(*c));
        }
        let gens: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
        let loaded = db::chats::member_ids_settled(pool, &misses).await?;
        for (chat, gen_seen) in misses.iter().zip(&gens) {
            let users = loaded.get(chat).cloned().unwrap_or_default();
            if !users.is_empty() {
                let mut inv = FILL.key(self.keys.members(*chat));
                inv.key(self.keys.members_gen(*chat))
                    .arg(gen_seen.as_deref().unwrap_or(""))
                    .arg(TTL_SECS)
                    .arg(users.iter().map(Uuid::to_string).collect::<Vec<_>>());
                // One call per missed chat (misses are rare): `invoke_async` loads the
                // script when Redis does not know it yet, which a pipeline cannot.
                inv.invoke_async::<i64>(&mut conn).await?;
            }
            out.insert(*chat, users);
        }
        Ok(out)
    }

    /// The users among `users` who are members of `chat`: one round trip when the
    /// member set is cached (no read of the whole set, however large the chat).
    pub async fn members_among(
        &self,
        pool: &PgPool,
        chat: Uuid,
        users: &[Uuid],
    ) -> Result<Vec<Uuid>, LookupError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.keys.members(chat);
        let ids: Vec<String> = users.iter().map(Uuid::to_string).collect();
        let mut conn = self.conn.clone();
        let (cached, flags): (bool, Vec<bool>) = redis::pipe()
            .exists(&key)
            .cmd("SMISMEMBER")
            .arg(&key)
            .arg(&ids)
            .query_async(&mut conn)
            .await?;
        if cached {
            return Ok(users
                .iter()
                .zip(flags)
                .filter(|(_, m)| *m)
                .map(|(u, _)| *u)
                .collect());
        }
        let all = self.members(pool, &[chat]).await?;
        let all = all.get(&chat).map(Vec::as_slice).unwrap_or(&[]);
        Ok(users.iter().copied().filter(|u| all.contains(u)).collect())
    }

    /// How many members `chat` has (0 for no such chat).
    pub async fn member_count(&self, pool: &PgPool, chat: Uuid) -> Result<usize, LookupError> {
        let mut conn = self.conn.clone();
        let n: usize = redis::cmd("SCARD")
            .arg(self.keys.members(chat))
            .query_async(&mut conn)
            .await?;
        if n > 0 {
            return Ok(n);
        }
        let all = self.members(pool, &[chat]).await?;
        Ok(all.get(&chat).map_or(0, Vec::len))
    }

    /// Drops the cached member set of a chat and bumps its generation. Call it while
    /// holding the chat's row lock, before committing the membership change.
    pub async fn invalidate_members(&self, chat: Uuid) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let gen_key = self.keys.members_gen(chat);
        redis::pipe()
            .atomic()
            .del(self.keys.members(chat))
            .ignore()
            .incr(&gen_key, 1)
            .ignore()
            .expire(&gen_key, GEN_TTL_SECS)
            .ignore()
            .query_async(&mut conn)
            .await
    }
}
