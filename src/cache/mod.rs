//! Redis: membership cache, connection routing and presence, per-user event streams
//! and group chats' timelines, and the pushes from publishers (worker, API, gateways) to the gateways.
//! Every key and channel starts with `REDIS_KEY_PREFIX`.

pub mod blocks;
pub mod conn;
pub mod connect;
pub mod events;
pub mod kinds;
pub mod membership;
pub mod near;
pub mod push;
pub mod ratelimit;
pub mod routing;
pub mod sentinel;
pub mod timeline;

use std::time::Duration;

use redis::{
    Client,
    aio::{ConnectionManager, ConnectionManagerConfig, PubSub},
};

use self::conn::RedisConn;
use uuid::Uuid;

use crate::config::Config;

/// Key and channel names under the deployment's prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    notify: String,
}

impl Keys {
    pub fn new(prefix: &str, notification_channel: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            notify: notification_channel.to_string(),
        }
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// SET of user ids of a chat (cache of `chat_participants`).
    pub fn members(&self, chat: Uuid) -> String {
        format!("{}chat:{chat}:members", self.prefix)
    }
    /// STRING counter bumped whenever a chat's membership changes: a cache fill that
    /// started before the change does not store what it read.
    pub fn members_gen(&self, chat: Uuid) -> String {
        format!("{}chat:{chat}:members:gen", self.prefix)
    }
    /// SET of the users `user` blocked, plus the `-` marker (cache of `user_blocks`).
    pub fn user_blocking(&self, user: Uuid) -> String {
        format!("{}user:{user}:blocking", self.prefix)
    }
    /// SET of the users who blocked `user`, plus the `-` marker.
    pub fn user_blockers(&self, user: Uuid) -> String {
        format!("{}user:{user}:blockers", self.prefix)
    }
    /// STRING counter bumped whenever a block involving `user` changes.
    pub fn user_blocks_gen(&self, user: Uuid) -> String {
        format!("{}user:{user}:blocks:gen", self.prefix)
    }
    /// Pub/sub channel of revocations and block changes for every process's near cache.
    pub fn near_channel(&self) -> String {
        format!("{}near", self.prefix)
    }
    /// HASH connection id → gateway id of a user's live sockets and SSE streams.
    pub fn user_sockets(&self, user: Uuid) -> String {
        format!("{}user:{user}:sockets", self.prefix)
    }
    /// STREAM of a user's recoverable events (its ids are the events' offsets).
    pub fn user_events(&self, user: Uuid) -> String {
        format!("{}user:{user}:events", self.prefix)
    }
    /// HASH {ms, n, since}: the global clock every recoverable event's id comes from.
    pub fn clock(&self) -> String {
        format!("{}clock", self.prefix)
    }
    /// STREAM of a group chat's events (one entry per event, the same ids as users').
    pub fn chat_events(&self, chat: Uuid) -> String {
        format!("{}chat:{chat}:events", self.prefix)
    }
    /// SET of the gateways following a group chat's timeline.
    pub fn chat_gateways(&self, chat: Uuid) -> String {
        format!("{}chat:{chat}:gws", self.prefix)
    }
    /// SET of the chats a gateway follows (the reverse of `chat_gateways`, for cleanup).
    pub fn gateway_chats(&self, gateway: &str) -> String {
        format!("{}gateway:{gateway}:chats", self.prefix)
    }
    /// HASH chat id → id of the `chat.removed` of the groups `user` left lately.
    pub fn user_left(&self, user: Uuid) -> String {
        format!("{}user:{user}:left", self.prefix)
    }
    /// SET of users who are online (grace period included).
    pub fn presence_online(&self) -> String {
        format!("{}presence:online", self.prefix)
    }
    /// ZSET user → when they go offline unless they connect again (ms since epoch).
    pub fn presence_pending(&self) -> String {
        format!("{}presence:pending", self.prefix)
    }
    /// SET of "userId|socketId" registered by one gateway (for crash cleanup).
    pub fn gateway_sockets(&self, gateway: &str) -> String {
        format!("{}gateway:{gateway}:sockets", self.prefix)
    }
    /// ZSET gateway id → last heartbeat (ms since epoch).
    pub fn gateways(&self) -> String {
        format!("{}gateways", self.prefix)
    }
    /// Pub/sub channel of one gateway instance.
    pub fn gateway_channel(&self, gateway: &str) -> String {
        format!("{}{}.{gateway}", self.prefix, self.notify)
    }
}

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
        let conn = match &config.redis.sentinel {
            Some(s) => RedisConn::sentinel(
                sentinel::Router::connect(config, s, cm_config, patience).await?,
                config.redis.db,
            ),
            None => Self::connect_direct(config, cm_config, patience).await?,
        };
        Ok(Self {
            conn,
            keys: Keys::new(&config.redis.key_prefix, &config.notification_channel),
            retention: Retention {
                window: config.realtime.recovery_window,
                max_events: config.realtime.recovery_max_events,
            },
            near: Default::default(),
        })
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

    pub async fn ping(&self) -> bool {
        let mut c = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .is_ok()
    }

    /// Every key matching `pattern` (SCAN, so Redis is never blocked by it).
    pub(crate) async fn keys_matching(&self, pattern: &str) -> redis::RedisResult<Vec<String>> {
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
            .keys_matching(&format!("{}*", self.keys.prefix))
            .await?;
        for chunk in keys.chunks(500) {
            redis::cmd("DEL")
                .arg(chunk)
                .query_async::<()>(&mut c)
                .await?;
        }
        Ok(())
    }
}
