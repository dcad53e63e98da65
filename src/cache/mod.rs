//! Redis: membership cache, connection routing and presence, per-user event streams
//! and group chats' timelines, and the pushes from publishers (worker, API, gateways) to the gateways.
//! Every key and channel starts with `REDIS_KEY_PREFIX`.

pub mod blocks;
pub mod cluster;
pub mod conn;
pub mod connect;
pub mod events;
mod fanout;
pub mod keys;
pub mod kinds;
pub mod membership;
pub mod near;
pub mod push;
pub mod ratelimit;
pub mod routing;
pub mod sentinel;
mod split;
pub mod timeline;

use std::time::Duration;

use redis::{
    Client,
    aio::{ConnectionManager, ConnectionManagerConfig, PubSub},
};

use self::conn::RedisConn;
pub use self::keys::Keys;

use crate::config::Config;

/// How long and how many events stay recoverable per user.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub window: Duration,
    pub max_events: u32,
}

/// A shared, self-reconnecting Redis connection plus the key names.
#[derive(Clone)]
pub struct Cache {
    pub(crate) conn: RedisConn,
    pub keys: Keys,
    pub retention: Retention,
    /// This process's in-memory state (`near`), shared by every clone.
    pub near: std::sync::Arc<near::Near>,
    /// The database, for the members of group chats in cluster mode ([`Cache::with_pool`]).
    pool: Option<sqlx::PgPool>,
}

impl Cache {
    /// Connects, retrying for up to `patience` while Redis starts. A TLS or
    /// certificate failure stops at once, with one line naming the variable and cause.
    pub async fn connect(config: &Config, patience: Duration) -> anyhow::Result<Self> {
        let cm_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = match (&config.redis.sentinel, &config.redis.cluster) {
            (Some(s), _) => RedisConn::sentinel(
                sentinel::Router::connect(config, s, cm_config, patience).await?,
                config.redis.db,
            ),
            (None, Some(nodes)) => {
                RedisConn::cluster(cluster::Cluster::connect(config, nodes, patience).await?)
            }
            (None, None) => Self::connect_direct(config, cm_config, patience).await?,
        };
        let mut keys = Keys::new(&config.redis.key_prefix, &config.notification_channel);
        keys.cluster = config.redis.cluster.is_some();
        Ok(Self {
            conn,
            keys,
            retention: Retention {
                window: config.realtime.recovery_window,
                max_events: config.realtime.recovery_max_events,
            },
            near: Default::default(),
            pool: None,
        })
    }

    /// Gives the cache the database it reads group chats' members from when it
    /// expands group events in cluster mode.
    pub fn with_pool(mut self, pool: sqlx::PgPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// The connection to `REDIS_URL` (or the parts), retried for up to `patience`.
    async fn connect_direct(
        config: &Config,
        cm_config: ConnectionManagerConfig,
        patience: Duration,
    ) -> anyhow::Result<RedisConn> {
        let client = connect::client(config)?;
        let target = client.get_connection_info().addr().to_string();
        let deadline = tokio::time::Instant::now() + patience;
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let conn = loop {
            match ConnectionManager::new_with_config(client.clone(), cm_config.clone()).await {
                Ok(c) => break c,
                Err(e) if let Some(cause) = connect::tls_cause(&e, config.redis.tls) => {
                    return Err(anyhow::anyhow!(
                        "{}: {cause} (redis at {target})",
                        config.redis_var()
                    ));
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, "redis not reachable yet, retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => {
                    return Err(anyhow::anyhow!(
                        "{}: redis at {target}: {e}",
                        config.redis_var()
                    ));
                }
            }
        };
        Ok(RedisConn::direct(conn, client, config.redis.db))
    }

    /// Redis Cluster mode: group events are written to each member's stream, and
    /// each user's events get their ids from the user's own clock.
    pub fn is_cluster(&self) -> bool {
        self.keys.cluster
    }

    /// A client of the server (under Sentinel: of the current master).
    pub fn client(&self) -> Client {
        self.conn.client()
    }

    /// Changes whenever the Redis master changed (`None` without Sentinel): pub/sub
    /// subscribers resubscribe on the new master.
    pub fn master_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.conn.changes()
    }

    /// A new pub/sub connection (same client, so same TLS), given up on after
    /// [`connect::PUBSUB_CONNECT_TIMEOUT`] instead of hanging on a silent server.
    pub async fn pubsub(&self) -> anyhow::Result<PubSub> {
        let client = self.client();
        let result =
            match tokio::time::timeout(connect::PUBSUB_CONNECT_TIMEOUT, client.get_async_pubsub())
                .await
            {
                Ok(Ok(p)) => return Ok(p),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(anyhow::anyhow!(
                    "redis pub/sub connect timed out after {:?}",
                    connect::PUBSUB_CONNECT_TIMEOUT
                )),
            };
        // Under Sentinel the master may have moved: ask again.
        self.conn.lost();
        result
    }

    /// Whether Redis answers; a cluster must also serve every slot (`cluster_state:ok`:
    /// while a lost master's replica is not promoted yet, its users' events wait).
    pub async fn ping(&self) -> bool {
        let mut c = self.conn.clone();
        if self.is_cluster() {
            return redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async::<String>(&mut c)
                .await
                .is_ok_and(|info| info.contains("cluster_state:ok"));
        }
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .is_ok()
    }

    /// Every key matching `pattern` (SCAN, so Redis is never blocked by it; every
    /// master of a cluster).
    pub async fn keys_matching(&self, pattern: &str) -> redis::RedisResult<Vec<String>> {
        if let Some(cluster) = self.conn.as_cluster() {
            return cluster.scan(pattern).await;
        }
        let mut c = self.conn.clone();
        let (mut cursor, mut all) = (0u64, Vec::new());
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut c)
                .await?;
            all.extend(keys);
            if next == 0 {
                return Ok(all);
            }
            cursor = next;
        }
    }

    /// Deletes every key under the prefix (tests and teardown only).
    pub async fn purge_prefix(&self) -> redis::RedisResult<()> {
        let mut c = self.conn.clone();
        let keys = self
            .keys_matching(&format!("{}*", self.keys.prefix()))
            .await?;
        // One key per DEL in a cluster: the keys are in many slots.
        let per = if self.is_cluster() { 1 } else { 500 };
        for chunk in keys.chunks(per) {
            redis::cmd("DEL")
                .arg(chunk)
                .query_async::<()>(&mut c)
                .await?;
        }
        Ok(())
    }
}
