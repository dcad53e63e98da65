//! Where each user's connections live (which gateway holds them), the gateways'
//! leases, and presence: a user is online while they hold a connection anywhere, and
//! for `PRESENCE_GRACE_SECS` after the last one closed.
//!
//! Gateways heartbeat into a ZSET; a gateway whose lease ran out is reaped by any
//! other gateway, which removes its connections (its users go offline at once unless
//! they hold a connection elsewhere).

use std::sync::LazyLock;

use redis::Script;
use uuid::Uuid;

use super::Cache;

static REGISTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        redis.call('SADD', KEYS[2], ARGV[3] .. '|' .. ARGV[1])
        redis.call('ZREM', KEYS[3], ARGV[3])
        return redis.call('SADD', KEYS[4], ARGV[3])
        ",
    )
});

static UNREGISTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('HDEL', KEYS[1], ARGV[1])
        redis.call('SREM', KEYS[2], ARGV[3] .. '|' .. ARGV[1])
        if redis.call('HLEN', KEYS[1]) == 0 then
          redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
        end
        return 0
        ",
    )
});

/// Users whose last connection closed over a grace period ago and who hold none now:
/// marked offline, returned with when that connection closed.
static SWEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, 500)
        local gone = {}
        for i = 1, #due, 2 do
          local u = due[i]
          redis.call('ZREM', KEYS[1], u)
          if redis.call('HLEN', ARGV[2] .. 'user:' .. u .. ':sockets') == 0
             and redis.call('SREM', KEYS[2], u) == 1 then
            gone[#gone + 1] = u
            gone[#gone + 1] = due[i + 1]
          end
        end
        return gone
        ",
    )
});

impl Cache {
    /// Records a connection (socket or SSE stream) of `user` on `gateway`. Returns
    /// `true` when the user was offline (not even in their grace period) before.
    pub async fn register_conn(
        &self,
        gateway: &str,
        user: Uuid,
        conn: &str,
    ) -> redis::RedisResult<bool> {
        if self.is_cluster() {
            return self.register_split(gateway, user, conn).await;
        }
        let mut c = self.conn.clone();
        let added: i64 = REGISTER
            .key(self.keys.user_sockets(user))
            .key(self.keys.gateway_sockets(gateway))
            .key(self.keys.presence_pending())
            .key(self.keys.presence_online())
            .arg(conn)
            .arg(gateway)
            .arg(user.to_string())
            .invoke_async(&mut c)
            .await?;
        Ok(added == 1)
    }

    /// Forgets a connection; the user's last one makes them pending offline.
    pub async fn unregister_conn(
        &self,
        gateway: &str,
        user: Uuid,
        conn: &str,
    ) -> redis::RedisResult<()> {
        let due = chrono::Utc::now().timestamp_millis();
        if self.is_cluster() {
            return self.unregister_split(gateway, user, conn, due).await;
        }
        let mut c = self.conn.clone();
        UNREGISTER
            .key(self.keys.user_sockets(user))
            .key(self.keys.gateway_sockets(gateway))
            .key(self.keys.presence_pending())
            .arg(conn)
            .arg(due)
            .arg(user.to_string())
            .invoke_async(&mut c)
            .await
    }

    /// Users who went offline (grace over, no connection left), with when their last
    /// connection closed (ms since epoch); each is returned once.
    pub async fn sweep_offline(
        &self,
        grace: std::time::Duration,
    ) -> redis::RedisResult<Vec<(Uuid, i64)>> {
        let cutoff = chrono::Utc::now().timestamp_millis() - grace.as_millis() as i64;
        if self.is_cluster() {
            return self.sweep_split(cutoff).await;
        }
        let mut c = self.conn.clone();
        let gone: Vec<String> = SWEEP
            .key(self.keys.presence_pending())
            .key(self.keys.presence_online())
            .arg(cutoff)
            .arg(self.keys.prefix())
            .invoke_async(&mut c)
            .await?;
        Ok(gone
            .chunks_exact(2)
            .filter_map(|p| {
                Some((
                    Uuid::parse_str(&p[0]).ok()?,
                    p[1].parse::<f64>().ok()? as i64,
                ))
            })
            .collect())
    }

    /// The gateways holding at least one connection of each user (users with none are absent).
    pub async fn gateways_of(
        &self,
        users: &[Uuid],
    ) -> redis::RedisResult<std::collections::HashMap<Uuid, Vec<String>>> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for u in users {
            pipe.hvals(self.keys.user_sockets(*u));
        }
        let vals: Vec<Vec<String>> = pipe.query_async(&mut conn).await?;
        Ok(users
            .iter()
            .zip(vals)
            .filter(|(_, g)| !g.is_empty())
            .map(|(u, mut g)| {
                g.sort();
                g.dedup();
                (*u, g)
            })
            .collect())
    }

    /// How many connections (sockets and SSE streams) `user` holds on every gateway.
    pub async fn connection_count(&self, user: Uuid) -> redis::RedisResult<u64> {
        let mut c = self.conn.clone();
        redis::cmd("HLEN")
            .arg(self.keys.user_sockets(user))
            .query_async(&mut c)
            .await
    }

    /// Which of `users` are online (grace period included).
    pub async fn online(&self, users: &[Uuid]) -> redis::RedisResult<Vec<bool>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn.clone();
        let ids: Vec<String> = users.iter().map(Uuid::to_string).collect();
        redis::cmd("SMISMEMBER")
            .arg(self.keys.presence_online())
            .arg(&ids)
            .query_async(&mut c)
            .await
    }

    /// Renews a gateway's lease; `true` if the gateway was not registered (new, reaped,
    /// or Redis lost its state).
    pub async fn heartbeat(&self, gateway: &str) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        let now = chrono::Utc::now().timestamp_millis();
        let added: i64 = redis::cmd("ZADD")
            .arg(self.keys.gateways())
            .arg(now)
            .arg(gateway)
            .query_async(&mut conn)
            .await?;
        Ok(added == 1)
    }

    /// Removes gateways whose lease is older than `lease_ms`, with their connections;
    /// their users go offline at once (`grace` is taken off when they were lost).
    /// Returns the number of gateways reaped.
    pub async fn reap_gateways(
        &self,
        lease_ms: i64,
        grace: std::time::Duration,
    ) -> redis::RedisResult<usize> {
        let mut conn = self.conn.clone();
        let now = chrono::Utc::now().timestamp_millis();
        let dead: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.gateways())
            .arg("-inf")
            .arg(now - lease_ms)
            .query_async(&mut conn)
            .await?;
        for gateway in &dead {
            tracing::warn!(%gateway, "gateway lease expired: removing its connections");
            self.forget_gateway(gateway, now - grace.as_millis() as i64)
                .await?;
        }
        Ok(dead.len())
    }

    /// Removes a gateway, the chats it followed, and all the connections it registered; users left with none
    /// go offline at the next sweep (`lost_at`: when the gateway was last heard of,
    /// so no further grace is given: the lease already ran).
    pub async fn forget_gateway(&self, gateway: &str, lost_at: i64) -> redis::RedisResult<()> {
        self.unfollow_all(gateway).await?;
        let mut conn = self.conn.clone();
        let entries: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.gateway_sockets(gateway))
            .query_async(&mut conn)
            .await?;
        let mut users = Vec::new();
        let mut pipe = redis::pipe();
        for entry in &entries {
            if let Some((user, socket)) = entry.split_once('|')
                && let Ok(user) = Uuid::parse_str(user)
            {
                pipe.hdel(self.keys.user_sockets(user), socket).ignore();
                users.push(user);
            }
        }
        pipe.del(self.keys.gateway_sockets(gateway)).ignore();
        pipe.zrem(self.keys.gateways(), gateway).ignore();
        pipe.query_async::<()>(&mut conn).await?;
        users.sort();
        users.dedup();
        if users.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for user in &users {
            pipe.hlen(self.keys.user_sockets(*user));
        }
        let left: Vec<i64> = pipe.query_async(&mut conn).await?;
        let gone: Vec<String> = users
            .iter()
            .zip(left)
            .filter(|(_, n)| *n == 0)
            .map(|(u, _)| u.to_string())
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for user in gone {
            pipe.zadd(self.keys.presence_pending(), user, lost_at)
                .ignore();
        }
        pipe.query_async(&mut conn).await
    }
}
