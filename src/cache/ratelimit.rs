//! Fixed-window rate limiting in Redis, so limits hold across API instances.

use std::time::Duration;

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

impl Cache {
    /// Counts a hit on `name`; `Some(retry_after_secs)` once over the limit.
    pub async fn hit(&self, name: &str, limit: Limit) -> redis::RedisResult<Option<u64>> {
        if !limit.enabled() {
            return Ok(None);
        }
        let window = limit.window.as_secs().max(1);
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let key = format!("{}rl:{name}:{}", self.keys.prefix(), now / window);
        let mut conn = self.conn.clone();
        let (count,): (u64,) = redis::pipe()
            .incr(&key, 1)
            .expire(&key, (window + 1) as i64)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok((count > u64::from(limit.max)).then(|| window - now % window))
    }
}
