//! Cache of chat membership: a Redis SET per chat, filled from PostgreSQL on a miss
//! and dropped whenever membership changes.

use std::collections::HashMap;

use sqlx::PgPool;
use uuid::Uuid;

use super::Cache;
use crate::db;

/// How long a cached member set lives without being invalidated.
const TTL_SECS: i64 = 3600;

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
        if !misses.is_empty() {
            let loaded = db::chats::member_ids(pool, &misses).await?;
            let mut fill = redis::pipe();
            for (chat, users) in &loaded {
                let key = self.keys.members(*chat);
                fill.cmd("SADD")
                    .arg(&key)
                    .arg(users.iter().map(Uuid::to_string).collect::<Vec<_>>())
                    .ignore();
                fill.cmd("EXPIRE").arg(&key).arg(TTL_SECS).ignore();
            }
            if !loaded.is_empty() {
                fill.query_async::<()>(&mut conn).await?;
            }
            for chat in misses {
                out.insert(chat, loaded.get(&chat).cloned().unwrap_or_default());
            }
        }
        Ok(out)
    }

    /// Drops the cached member set of a chat (after its membership changed).
    pub async fn invalidate_members(&self, chat: Uuid) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.keys.members(chat))
            .query_async(&mut conn)
            .await
    }
}
