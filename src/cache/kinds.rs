//! Which chats are groups: a chat's shape (group, or direct with its two members) from
//! this process's near cache, read from PostgreSQL once (it never changes). Group chats
//! deliver through one timeline per chat; the others through each recipient's stream.

use std::collections::HashSet;

use sqlx::PgPool;
use uuid::Uuid;

use super::{Cache, near::Shape};

impl Cache {
    /// `chat`'s shape; `None` for no such chat (or a direct chat not complete yet).
    pub async fn chat_shape(
        &self,
        pool: &PgPool,
        chat: Uuid,
    ) -> Result<Option<Shape>, sqlx::Error> {
        if let Some(shape) = self.near.shape(chat) {
            return Ok(Some(shape));
        }
        let Some((kind, members)) = crate::db::blocks::chat_shape(pool, chat).await? else {
            return Ok(None);
        };
        let shape = match (kind.as_str(), members.as_slice()) {
            ("direct", [a, b]) => Shape::Direct([*a, *b]),
            ("direct", _) => return Ok(None),
            _ => Shape::Group,
        };
        self.near.put_shape(chat, shape);
        Ok(Some(shape))
    }

    /// The chats among `chats` that are groups (unknown chats are not).
    pub async fn groups_among(
        &self,
        pool: &PgPool,
        chats: &[Uuid],
    ) -> Result<HashSet<Uuid>, sqlx::Error> {
        let mut groups = HashSet::new();
        for chat in chats {
            if self.chat_shape(pool, *chat).await? == Some(Shape::Group) {
                groups.insert(*chat);
            }
        }
        Ok(groups)
    }

    /// Whether `chat` is a group.
    pub async fn is_group(&self, pool: &PgPool, chat: Uuid) -> Result<bool, sqlx::Error> {
        Ok(self.chat_shape(pool, chat).await? == Some(Shape::Group))
    }
}
