//! Redis Sentinel: the master is asked of the sentinels (`SENTINEL
//! get-master-addr-by-name`, each in turn) and checked with `ROLE`, and asked again
//! whenever a command fails on a lost connection, `READONLY` or `MASTERDOWN`, and
//! whenever a sentinel announces `+switch-master`. The `redis` crate's own sentinel
//! support resolves the master only when it connects (redis-rs #1438), and its
//! connection manager reconnects to the same address: here a new manager is built
//! against the new master instead, and pub/sub subscribers are told to resubscribe.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use redis::{Client, RedisError, RedisResult, aio::ConnectionManager};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Notify, watch};

use super::connect;
use crate::config::{Config, SentinelConfig, TlsFiles};

/// How long one sentinel or master may take to connect and answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the master is found and how it and the sentinels are reached.
struct Spec {
    sentinel: SentinelConfig,
    password: Option<SecretString>,
    db: i64,
    tls: bool,
    files: TlsFiles,
    manager: redis::aio::ConnectionManagerConfig,
}

impl Spec {
    fn url(&self, host: &str, port: u16, password: Option<&SecretString>, db: i64) -> String {
        let auth = password.map_or(String::new(), |p| {
            let p = percent_encoding::utf8_percent_encode(
                p.expose_secret(),
                percent_encoding::NON_ALPHANUMERIC,
            );
            format!(":{p}@")
        });
        let scheme = if self.tls { "rediss" } else { "redis" };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        format!("{scheme}://{auth}{host}:{port}/{db}")
    }

    fn client(&self, url: &str) -> anyhow::Result<Client> {
        connect::client_from(url, &self.files, "REDIS_SENTINELS")
    }

    fn sentinel_client(&self, host: &str, port: u16) -> anyhow::Result<Client> {
        self.client(&self.url(host, port, self.sentinel.password.as_ref(), 0))
    }
}

/// The current master: its address, a client for pub/sub, and the shared connection.
struct Node {
    addr: String,
    client: Client,
    conn: ConnectionManager,
}

/// The master found through the sentinels, found again when it changes.
pub struct Router {
    spec: Spec,
    node: RwLock<Arc<Node>>,
    kick: Arc<Notify>,
    generation: watch::Sender<u64>,
}

/// Whether `e` means the node is gone or no longer the master.
pub fn is_lost_master(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(e.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
}

impl Router {
    /// Finds the master (retrying for up to `patience`), then keeps following it.
    pub async fn connect(
        config: &Config,
        sentinel: &SentinelConfig,
        manager: redis::aio::ConnectionManagerConfig,
        patience: Duration,
    ) -> anyhow::Result<Arc<Self>> {
        crate::tls::install_crypto_provider();
        let r = &config.redis;
        let spec = Spec {
            sentinel: sentinel.clone(),
            password: r.password.clone(),
            db: r.db,
            tls: r.tls,
            files: r.tls_files.clone(),
            manager,
        };
        let deadline = tokio::time::Instant::now() + patience;
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let node = loop {
            match resolve(&spec).await {
                Ok(n) => break n,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, "redis master not found yet, retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => return Err(anyhow::anyhow!("REDIS_SENTINELS: {e}")),
            }
        };
        tracing::info!(master = %node.addr, "redis master found through the sentinels");
        let router = Arc::new(Self {
            spec,
            node: RwLock::new(Arc::new(node)),
            kick: Arc::new(Notify::new()),
            generation: watch::Sender::new(0),
        });
        tokio::spawn(follow(Arc::downgrade(&router), router.kick.clone()));
        for (host, port) in router.spec.sentinel.nodes.clone() {
            tokio::spawn(watch_switches(Arc::downgrade(&router), host, port));
        }
        Ok(router)
    }

    fn node(&self) -> Arc<Node> {
        self.node
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The shared connection to the current master.
    pub fn conn(&self) -> ConnectionManager {
        self.node().conn.clone()
    }

    /// A client of the current master (for pub/sub connections).
    pub fn client(&self) -> Client {
        self.node().client.clone()
    }

    /// Asks the sentinels again (soon, once for any number of calls).
    pub fn lost(&self) {
        self.kick.notify_one();
    }

    /// Asks again after `result` if it failed because the master went away.
    pub fn check<T>(&self, result: &RedisResult<T>) {
        if let Err(e) = result
            && is_lost_master(e)
        {
            self.lost();
        }
    }

    /// Bumped whenever the master changes: subscribers resubscribe on the new one.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

/// Asks each sentinel in turn for the master and checks its `ROLE`.
async fn resolve(spec: &Spec) -> anyhow::Result<Node> {
    let mut last = anyhow::anyhow!("no sentinel");
    for (host, port) in &spec.sentinel.nodes {
        let found = async {
            let sentinel = spec.sentinel_client(host, *port)?;
            let mut s =
                tokio::time::timeout(ASK_TIMEOUT, sentinel.get_multiplexed_async_connection())
                    .await
                    .map_err(|_| anyhow::anyhow!("timed out"))??;
            let addr: Option<(String, u16)> = tokio::time::timeout(
                ASK_TIMEOUT,
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(&spec.sentinel.master)
                    .query_async(&mut s),
            )
            .await
            .map_err(|_| anyhow::anyhow!("timed out"))??;
            let (mhost, mport) = addr.ok_or_else(|| {
                anyhow::anyhow!("does not know a master {:?}", spec.sentinel.master)
            })?;
            let client = spec.client(&spec.url(&mhost, mport, spec.password.as_ref(), spec.db))?;
            let mut conn = tokio::time::timeout(
                ASK_TIMEOUT,
                ConnectionManager::new_with_config(client.clone(), spec.manager.clone()),
            )
            .await
            .map_err(|_| anyhow::anyhow!("master {mhost}:{mport}: connect timed out"))?
            .map_err(|e| anyhow::anyhow!("master {mhost}:{mport}: {e}"))?;
            let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await?;
            match role.first() {
                Some(redis::Value::BulkString(r)) if r == b"master" => Ok(Node {
                    addr: format!("{mhost}:{mport}"),
                    client,
                    conn,
                }),
                _ => Err(anyhow::anyhow!("{mhost}:{mport} is not a master (yet)")),
            }
        };
        match found.await {
            Ok(node) => return Ok(node),
            Err(e) => last = anyhow::anyhow!("sentinel {host}:{port}: {e}"),
        }
    }
    Err(last)
}

/// Finds the master again whenever asked to, until it answers as the master.
async fn follow(router: std::sync::Weak<Router>, kick: Arc<Notify>) {
    loop {
        kick.notified().await;
        let Some(r) = router.upgrade() else { return };
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(50), Duration::from_millis(500));
        loop {
            match resolve(&r.spec).await {
                Ok(node) => {
                    let old = r.node().addr.clone();
                    if node.addr != old {
                        tracing::warn!(from = %old, to = %node.addr, "redis master changed");
                        *r.node
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(node);
                        r.generation.send_modify(|g| *g += 1);
                    }
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "redis master not found yet, retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }
}

/// Follows one sentinel's `+switch-master` announcements (any announcement for our
/// master asks the sentinels again; so does every resubscription after a loss).
async fn watch_switches(router: std::sync::Weak<Router>, host: String, port: u16) {
    let mut backoff =
        crate::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
    let mut first = true;
    loop {
        let (client, master) = match router.upgrade() {
            Some(r) => (
                r.spec.sentinel_client(&host, port),
                r.spec.sentinel.master.clone(),
            ),
            None => return,
        };
        let subscribed = async {
            let mut pubsub = tokio::time::timeout(ASK_TIMEOUT, client?.get_async_pubsub())
                .await
                .map_err(|_| anyhow::anyhow!("timed out"))??;
            pubsub.subscribe("+switch-master").await?;
            if !std::mem::take(&mut first)
                && let Some(r) = router.upgrade()
            {
                r.lost();
            }
            let mut messages = pubsub.into_on_message();
            while let Some(m) = messages.next().await {
                let text: String = m.get_payload().unwrap_or_default();
                if text.split(' ').next() == Some(master.as_str()) {
                    tracing::info!(sentinel = %format!("{host}:{port}"), switch = %text, "+switch-master");
                    match router.upgrade() {
                        Some(r) => r.lost(),
                        None => return anyhow::Ok(()),
                    }
                }
            }
            Err(anyhow::anyhow!("subscription ended"))
        };
        let started = tokio::time::Instant::now();
        if let Err(e) = subscribed.await {
            tracing::debug!(error = %e, sentinel = %format!("{host}:{port}"), "sentinel subscription lost");
        }
        if router.strong_count() == 0 {
            return;
        }
        backoff.reset_after(started.elapsed());
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
