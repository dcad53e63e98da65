//! Redis Cluster (`REDIS_CLUSTER_NODES`): the cluster connection, the hash slot of a
//! key, pipelines split by slot (a cluster runs one only when all its keys share a
//! slot), and a SCAN over every master.
//!
//! Keys that one script or transaction touches share a hash tag (`Keys` in cluster
//! mode: `{u:<user>}`, `{c:<chat>}`, `{g:<gateway>}`, `{presence}`), so each such call
//! runs on one node; a plain pipeline over several slots runs command by command.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use redis::{
    Client, Cmd, Pipeline, RedisResult, TlsMode, Value,
    aio::ConnectionLike,
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
};
use secrecy::ExposeSecret;

use crate::config::Config;

/// The number of hash slots of a Redis Cluster.
const SLOTS: u16 = 16384;

/// The hash slot of `key`: CRC16 (XMODEM) of its hash tag (the part between the first
/// `{` and the next `}`, when not empty), else of the whole key, modulo 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|b| *b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|b| *b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % SLOTS
}

/// CRC16-XMODEM, the checksum Redis Cluster hashes keys with.
fn crc16(bytes: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(bytes)
}

/// The slot of a command's key (its first argument; `None` for a command without one).
fn cmd_slot(cmd: &Cmd) -> Option<u16> {
    match cmd.args_iter().nth(1)? {
        redis::Arg::Simple(key) => Some(key_slot(key)),
        _ => None,
    }
}

/// The cluster connection and clients of the seed nodes (for pub/sub, which works on
/// any node: a classic `PUBLISH` reaches every node's subscribers).
pub struct Cluster {
    conn: ClusterConnection,
    seeds: Vec<Client>,
    next: AtomicUsize,
}

impl Cluster {
    /// Connects to the cluster through `nodes`, retrying for up to `patience`.
    pub async fn connect(
        config: &Config,
        nodes: &[(String, u16)],
        patience: Duration,
    ) -> anyhow::Result<Arc<Self>> {
        let r = &config.redis;
        let scheme = if r.tls { "rediss" } else { "redis" };
        let urls: Vec<String> = nodes
            .iter()
            .map(|(h, p)| format!("{scheme}://{h}:{p}"))
            .collect();
        let mut seeds = Vec::with_capacity(nodes.len());
        let mut builder = ClusterClientBuilder::new(urls.clone())
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(5))
            .retries(6)
            .min_retry_wait(100)
            .max_retry_wait(1000);
        if let Some(p) = &r.password {
            builder = builder.password(p.expose_secret());
        }
        if r.tls {
            builder = builder.tls(TlsMode::Secure);
        }
        if !r.tls_files.is_empty() {
            builder = builder.certs(super::connect::certificates(&r.tls_files));
        }
        let auth = match &r.password {
            Some(p) => format!(":{}@", crate::config::urlencode(p.expose_secret())),
            None => String::new(),
        };
        for (h, p) in nodes {
            let url = format!("{scheme}://{auth}{h}:{p}");
            seeds.push(super::connect::client_from(
                &url,
                &r.tls_files,
                "REDIS_CLUSTER_NODES",
            )?);
        }
        let client = builder.build().map_err(|e| {
            anyhow::anyhow!(
                "REDIS_CLUSTER_NODES: cannot build the cluster client: {:?}",
                e.kind()
            )
        })?;
        let deadline = tokio::time::Instant::now() + patience;
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let conn = loop {
            match client.get_async_connection().await {
                Ok(c) => break c,
                Err(e) if let Some(cause) = super::connect::tls_cause(&e, r.tls) => {
                    anyhow::bail!("REDIS_CLUSTER_NODES: {cause}");
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, "redis cluster not reachable yet, retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => anyhow::bail!("REDIS_CLUSTER_NODES: {e}"),
            }
        };
        Ok(Arc::new(Self {
            conn,
            seeds,
            next: AtomicUsize::new(0),
        }))
    }

    /// A client of one seed node (the next one after [`Cluster::lost`]).
    pub fn client(&self) -> Client {
        let i = self.next.load(Ordering::Relaxed) % self.seeds.len();
        self.seeds[i].clone()
    }

    /// The seed node of [`Cluster::client`] failed: use the next one.
    pub fn lost(&self) {
        self.next.fetch_add(1, Ordering::Relaxed);
    }

    pub async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        let mut c = self.conn.clone();
        c.req_packed_command(cmd).await
    }

    /// Runs a pipeline: as is when its keys share a slot; else as one pipeline per slot
    /// (in parallel; a transaction as one transaction per slot), the answers merged
    /// back in order. Commands without a key go with the first slot's.
    pub async fn pipeline(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let slots: Vec<Option<u16>> = pipeline.cmd_iter().map(cmd_slot).collect();
        let mut distinct = slots.iter().flatten();
        let first = distinct.next();
        if distinct.all(|s| Some(s) == first) {
            let mut c = self.conn.clone();
            return c.req_packed_commands(pipeline, offset, count).await;
        }
        let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
        for (i, s) in slots.iter().enumerate() {
            let slot = s.or(first.copied()).unwrap_or_default();
            match groups.iter_mut().find(|(g, _)| *g == slot) {
                Some((_, members)) => members.push(i),
                None => groups.push((slot, vec![i])),
            }
        }
        let cmds: Vec<&Cmd> = pipeline.cmd_iter().collect();
        let atomic = pipeline.is_transaction();
        let answers = futures::future::try_join_all(groups.iter().map(|(_, members)| {
            let mut sub = redis::pipe();
            if atomic {
                sub.atomic();
            }
            for i in members {
                sub.add_command(cmds[*i].clone());
            }
            let mut c = self.conn.clone();
            async move {
                let (offset, count) = if atomic {
                    (sub.len() + 1, 1)
                } else {
                    (0, sub.len())
                };
                let mut got = c.req_packed_commands(&sub, offset, count).await?;
                match (atomic, got.pop()) {
                    (false, last) => Ok(got.into_iter().chain(last).collect::<Vec<_>>()),
                    (true, Some(Value::Array(values))) => Ok(values),
                    (true, _) => Err(redis::RedisError::from((
                        redis::ErrorKind::UnexpectedReturnType,
                        "transaction without results",
                    ))),
                }
            }
        }))
        .await?;
        let mut merged: Vec<Value> = vec![Value::Nil; cmds.len()];
        for ((_, members), values) in groups.into_iter().zip(answers) {
            for (i, v) in members.into_iter().zip(values) {
                merged[i] = v;
            }
        }
        if atomic {
            return Ok(vec![Value::Array(merged)]);
        }
        Ok(merged.into_iter().skip(offset).take(count).collect())
    }

    /// Every key matching `pattern`, from every master.
    pub async fn scan(&self, pattern: &str) -> RedisResult<Vec<String>> {
        let mut c = self.conn.clone();
        let nodes: String = redis::from_redis_value(
            c.route_command(
                redis::cmd("CLUSTER").arg("NODES").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?,
        )?;
        let mut all = Vec::new();
        for (host, port) in masters(&nodes) {
            let mut cursor = 0u64;
            loop {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000);
                let route = SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port,
                };
                let (next, keys): (u64, Vec<String>) = redis::from_redis_value(
                    c.route_command(cmd, RoutingInfo::SingleNode(route)).await?,
                )?;
                all.extend(keys);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(all)
    }
}

/// The live masters of a `CLUSTER NODES` answer.
fn masters(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut f = line.split(' ');
            let addr = f.nth(1)?;
            let flags = f.next()?;
            let master = flags.split(',').any(|x| x == "master");
            let down = flags.split(',').any(|x| x == "fail" || x == "noaddr");
            let (host, port) = addr.split('@').next()?.rsplit_once(':')?;
            let port = port.parse().ok()?;
            (master && !down).then(|| (host.to_string(), port))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_redis() {
        // Values from `CLUSTER KEYSLOT` and the Redis Cluster specification.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"p:user:{u:1}:events"), key_slot(b"x{u:1}y"));
    }

    #[test]
    fn masters_are_the_live_ones() {
        let nodes = "a1 127.0.0.1:7311@17311 myself,master - 0 0 1 connected 0-5460\n\
                     b2 127.0.0.1:7312@17312 master,fail - 0 0 2 connected\n\
                     c3 127.0.0.1:7313@17313 slave a1 0 0 1 connected\n\
                     d4 127.0.0.1:7314@17314 master - 0 0 4 connected 5461-10922\n";
        assert_eq!(
            masters(nodes),
            vec![("127.0.0.1".into(), 7311), ("127.0.0.1".into(), 7314)]
        );
    }
}
