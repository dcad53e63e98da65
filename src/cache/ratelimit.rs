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
}

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

    /// A send's rate-limit hit (on `name`) and its sender's cached membership of
    /// `chat`, pipelined in one round trip: the hot path of `POST .../messages`.
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
            .arg(user.to_string());
        let mut conn = self.conn.clone();
        let (retry_after_secs, cached, member) = match counted {
            Some((_, _, left)) => {
                let (count, cached, member): (u64, bool, bool) =
                    pipe.query_async(&mut conn).await?;
                (
                    (count > u64::from(limit.max)).then_some(left),
                    cached,
                    member,
                )
            }
            None => {
                let (cached, member): (bool, bool) = pipe.query_async(&mut conn).await?;
                (None, cached, member)
            }
        };
        Ok(SendCheck {
            retry_after_secs,
            cached_member: cached.then_some(member),
        })
    }
}
