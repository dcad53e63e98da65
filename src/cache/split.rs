//! Connection routing and presence in Redis Cluster mode, where a user's connections,
//! a gateway's and presence live in different slots: what one script does on one
//! server is done here in steps, each atomic in its own slot, and ordered so that a
//! race between them leaves presence right (a register marks the user online after
//! recording the connection; going offline needs the user's pending entry unchanged).

use std::sync::LazyLock;

use redis::Script;
use uuid::Uuid;

use super::Cache;

/// KEYS: pending, online. ARGV: user. Online again; 1 when they were offline.
static ONLINE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('ZREM', KEYS[1], ARGV[1])
        return redis.call('SADD', KEYS[2], ARGV[1])
        ",
    )
});

/// KEYS: the user's sockets. ARGV: connection. The connections the user still holds.
static DROP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('HDEL', KEYS[1], ARGV[1])
        return redis.call('HLEN', KEYS[1])
        ",
    )
});

/// KEYS: pending, online. ARGV: user, their due score, "1" if they hold no connection.
/// Ends the user's pending entry if it is still the one read; 1 when they went offline.
static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if not due or tonumber(due) ~= tonumber(ARGV[2]) then return 0 end
        redis.call('ZREM', KEYS[1], ARGV[1])
        if ARGV[3] ~= '1' then return 0 end
        return redis.call('SREM', KEYS[2], ARGV[1])
        ",
    )
});

impl Cache {
    pub(super) async fn register_split(
        &self,
        gateway: &str,
        user: Uuid,
        conn: &str,
    ) -> redis::RedisResult<bool> {
        let mut c = self.conn.clone();
        redis::cmd("HSET")
            .arg(self.keys.user_sockets(user))
            .arg(conn)
            .arg(gateway)
            .query_async::<()>(&mut c)
            .await?;
        redis::cmd("SADD")
            .arg(self.keys.gateway_sockets(gateway))
            .arg(format!("{user}|{conn}"))
            .query_async::<()>(&mut c)
            .await?;
        let added: i64 = ONLINE
            .key(self.keys.presence_pending())
            .key(self.keys.presence_online())
            .arg(user.to_string())
            .invoke_async(&mut c)
            .await?;
        Ok(added == 1)
    }

    pub(super) async fn unregister_split(
        &self,
        gateway: &str,
        user: Uuid,
        conn: &str,
        due: i64,
    ) -> redis::RedisResult<()> {
        let mut c = self.conn.clone();
        let left: i64 = DROP
            .key(self.keys.user_sockets(user))
            .arg(conn)
            .invoke_async(&mut c)
            .await?;
        redis::cmd("SREM")
            .arg(self.keys.gateway_sockets(gateway))
            .arg(format!("{user}|{conn}"))
            .query_async::<()>(&mut c)
            .await?;
        if left == 0 {
            redis::cmd("ZADD")
                .arg(self.keys.presence_pending())
                .arg(due)
                .arg(user.to_string())
                .query_async::<()>(&mut c)
                .await?;
        }
        Ok(())
    }

    /// The users whose grace ended (`cutoff`) and who hold no connection, marked
    /// offline, with when their last connection closed.
    pub(super) async fn sweep_split(&self, cutoff: i64) -> redis::RedisResult<Vec<(Uuid, i64)>> {
        let mut c = self.conn.clone();
        let due: Vec<(String, f64)> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.presence_pending())
            .arg("-inf")
            .arg(cutoff)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(500)
            .query_async(&mut c)
            .await?;
        let mut gone = Vec::new();
        for (id, score) in due {
            let Ok(user) = Uuid::parse_str(&id) else {
                continue;
            };
            let held: i64 = redis::cmd("HLEN")
                .arg(self.keys.user_sockets(user))
                .query_async(&mut c)
                .await?;
            let offline: i64 = SETTLE
                .key(self.keys.presence_pending())
                .key(self.keys.presence_online())
                .arg(&id)
                .arg(score)
                .arg(if held == 0 { "1" } else { "0" })
                .invoke_async(&mut c)
                .await?;
            if offline == 1 {
                gone.push((user, score as i64));
            }
        }
        Ok(gone)
    }
}
