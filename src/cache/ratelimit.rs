//! Fixed-window rate limiting in Redis, so limits hold across API instances.

use std::time::Duration;

use uuid::Uuid;

use super::Cache;

/// At most `max` hits per `window`; `max == 0` disables the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    pub fn enabled(&self) -> bool {
        self.max > 0 && !self.window.is_zero()
    }
}

/// What one round trip to Redis tells a send before it is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendCheck {
    /// `Some(seconds)` once the sender is over its limit.
    pub retry_after_secs: Option<u64>,
    /// Whether the sender is in the chat's cached member set; `None` if not cached.
    pub cached_member: Option<bool>,
    /// Whether the chat is a direct one; `None` if its type is not cached.
    pub direct: Option<bool>,
    /// Whether a block stands between the sender and another member of the chat (either
    /// way); `None` unless both the sender's blocks and the member set are cached.
    pub blocked: Option<bool>,
}

/// The cached-state replies of a send check: member set exists, sender in it, chat
/// type, two of the members (both of a direct chat), whom the sender blocked, who
/// blocked the sender. Single-key commands only, so it works on Redis Cluster too.
type CheckReplies = (
    bool,
    bool,
    Option<String>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
);

impl Cache {
    /// The fixed-window counter key of `name`, the window, and the seconds left in it.
    fn window_key(&self, name: &str, limit: Limit) -> (String, u64, u64) {
        let window = limit.window.as_secs().max(1);
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let key = format!("{}rl:{name}:{}", self.keys.prefix(), now / window);
        (key, window, window - now % window)
    }

    /// Counts a hit on `name`; `Some(retry_after_secs)` once over the limit.
    pub async fn hit(&self, name: &str, limit: Limit) -> redis::RedisResult<Option<u64>> {
        if !limit.enabled() {
            return Ok(None);
        }
        let (key, window, left) = self.window_key(name, limit);
        let mut conn = self.conn.clone();
        let (count,): (u64,) = redis::pipe()
            .incr(&key, 1)
            .expire(&key, (window + 1) as i64)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok((count > u64::from(limit.max)).then_some(left))
    }

    /// A send's rate-limit hit (on `name`), its sender's cached membership of `chat`,
    /// the chat's cached type and the blocks between the sender and the chat's members,
    /// pipelined in one round trip: the hot path of `POST .../messages`.
    pub async fn check_send(
        &self,
        name: &str,
        limit: Limit,
        chat: Uuid,
        user: Uuid,
    ) -> redis::RedisResult<SendCheck> {
        let members = self.keys.members(chat);
        let mut pipe = redis::pipe();
        let counted = limit.enabled().then(|| self.window_key(name, limit));
        if let Some((key, window, _)) = &counted {
            pipe.incr(key, 1).expire(key, (*window + 1) as i64).ignore();
        }
        pipe.exists(&members)
            .cmd("SISMEMBER")
            .arg(&members)
            .arg(user.to_string())
            .get(self.keys.chat_kind(chat))
            .cmd("SRANDMEMBER")
            .arg(&members)
            .arg(2)
            .smembers(self.keys.user_blocking(user))
            .smembers(self.keys.user_blockers(user));
        let mut conn = self.conn.clone();
        let (retry_after_secs, replies) = match counted {
            Some((_, _, left)) => {
                let (count, a, b, c, d, e, f): (u64, bool, bool, _, _, _, _) =
                    pipe.query_async(&mut conn).await?;
                (
                    (count > u64::from(limit.max)).then_some(left),
                    (a, b, c, d, e, f),
                )
            }
            None => (None, pipe.query_async::<CheckReplies>(&mut conn).await?),
        };
        let (cached, member, kind, pair, blocking, blockers) = replies;
        let blocks_cached = !blocking.is_empty() && !blockers.is_empty();
        let me = user.to_string();
        let blocked = pair
            .iter()
            .filter(|u| **u != me)
            .any(|u| blocking.contains(u) || blockers.contains(u));
        Ok(SendCheck {
            retry_after_secs,
            cached_member: cached.then_some(member),
            direct: kind.map(|k| k == "direct"),
            blocked: (cached && blocks_cached).then_some(blocked),
        })
    }
}
