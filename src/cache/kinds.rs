//! Which chats are groups, remembered in this process: a chat's type never changes, so
//! the answer never goes stale. Group chats deliver through one timeline per chat; the
//! others through each recipient's own stream.

use std::{
    collections::{HashMap, HashSet},
    sync::{LazyLock, Mutex},
};

use sqlx::PgPool;
use uuid::Uuid;

use super::Cache;

/// Past this many remembered chats the memory starts over (they are read again).
const MAX_REMEMBERED: usize = 200_000;

static KINDS: LazyLock<Mutex<HashMap<Uuid, bool>>> = LazyLock::new(Mutex::default);

impl Cache {
    /// The chats among `chats` that are groups (unknown chats are not).
    pub async fn groups_among(
        &self,
        pool: &PgPool,
        chats: &[Uuid],
    ) -> Result<HashSet<Uuid>, sqlx::Error> {
        let mut groups = HashSet::new();
        let mut unknown = Vec::new();
        {
            let kinds = KINDS.lock().unwrap_or_else(|p| p.into_inner());
            for c in chats {
                match kinds.get(c) {
                    Some(true) => _ = groups.insert(*c),
                    Some(false) => {}
                    None => unknown.push(*c),
                }
            }
        }
        if unknown.is_empty() {
            return Ok(groups);
        }
        // Only existing chats are remembered (an unknown id is not a group, yet).
        let found = crate::db::chat_kinds::kinds(pool, &unknown).await?;
        let mut kinds = KINDS.lock().unwrap_or_else(|p| p.into_inner());
        if kinds.len() + found.len() > MAX_REMEMBERED {
            kinds.clear();
        }
        for (c, group) in found {
            kinds.insert(c, group);
            if group {
                groups.insert(c);
            }
        }
        Ok(groups)
    }

    /// Whether `chat` is a group.
    pub async fn is_group(&self, pool: &PgPool, chat: Uuid) -> Result<bool, sqlx::Error> {
        Ok(self.groups_among(pool, &[chat]).await?.contains(&chat))
    }
}
