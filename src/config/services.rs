//! PostgreSQL, Redis and RabbitMQ: the connection settings and URLs (their text never
//! goes to the log).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{Config, ConfigError, Env, env::urlencode};

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub host: String,
    pub port: u16,
    pub password: Option<SecretString>,
    pub db: i64,
    pub key_prefix: String,
    /// `REDIS_URL` (`redis://` or `rediss://`): wins over the parts above.
    pub url: Option<SecretString>,
    /// `REDIS_TLS`: with the parts, connect with `rediss://`.
    pub tls: bool,
    /// `REDIS_CA_CERT`, `REDIS_CLIENT_CERT`, `REDIS_CLIENT_KEY`, read and checked.
    pub tls_files: TlsFiles,
    /// `REDIS_SENTINELS`, `REDIS_SENTINEL_MASTER`, `REDIS_SENTINEL_PASSWORD`: the master
    /// is asked of these sentinels (instead of `REDIS_HOST`/`REDIS_PORT`).
    pub sentinel: Option<SentinelConfig>,
    /// `REDIS_CLUSTER_NODES` (`host:port,...`): Redis Cluster mode, these nodes the
    /// seeds the cluster's layout is learned from (with the password and TLS above).
    pub cluster: Option<Vec<(String, u16)>>,
}

/// Redis Sentinel: where the sentinels are and which master they watch.
#[derive(Debug, Clone)]
pub struct SentinelConfig {
    /// `REDIS_SENTINELS` (`host:port,...`), in the order they are asked.
    pub nodes: Vec<(String, u16)>,
    /// `REDIS_SENTINEL_MASTER` (default `mymaster`).
    pub master: String,
    /// `REDIS_SENTINEL_PASSWORD`: the sentinels' own password (`requirepass`).
    pub password: Option<SecretString>,
}

/// PEM contents of a CA bundle and of a client certificate and key (read at start, so
/// a bad path stops start-up). `Debug` shows which are set, never their contents.
#[derive(Clone, Default)]
pub struct TlsFiles {
    /// Trusted instead of the system's roots.
    pub ca: Option<Vec<u8>>,
    /// Client certificate and its private key (mutual TLS; `Debug` never shows them).
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("ca", &self.ca.is_some())
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl TlsFiles {
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.client.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct RabbitConfig {
    /// Full AMQP URI of the first node (from `RABBITMQ_URIS`, `RABBITMQ_URI` or built
    /// from the parts).
    pub uri: SecretString,
    /// Every node of the cluster (`RABBITMQ_URIS`; else the one `uri`): a process
    /// connects to one and moves to the next when it is lost.
    pub uris: Vec<SecretString>,
    /// `x-quorum-initial-group-size` of the quorum queues: `RABBITMQ_QUORUM_REPLICAS`,
    /// else min(3, nodes) when several nodes are given; `None` (the broker's default)
    /// for one URI, which may be a load balancer in front of a cluster.
    pub quorum_replicas: Option<u16>,
    /// `RABBITMQ_CA_CERT`, `RABBITMQ_CLIENT_CERT`, `RABBITMQ_CLIENT_KEY` (amqps only).
    pub tls: super::RabbitTls,
    pub exchange: String,
    pub dlx_exchange: String,
    pub queue_prefix: String,
    pub dlq_name: String,
    /// `RABBITMQ_INTEGRATION_EXCHANGE`: the topic exchange of integration events.
    pub integration_exchange: String,
    pub partition_count: u16,
    pub max_retries: u32,
    pub prefetch: u16,
    /// `RABBITMQ_CONFIRM_TIMEOUT_MS`: how long the API waits for the broker's confirm
    /// of a command before answering 503 (the command may still arrive: retry with the
    /// same id).
    pub confirm_timeout: Duration,
}

impl Config {
    /// The Redis connection URL: `REDIS_URL`, or built from the parts (`rediss://`
    /// under `REDIS_TLS`).
    pub fn redis_url(&self) -> SecretString {
        let r = &self.redis;
        if let Some(url) = &r.url {
            return url.clone();
        }
        let auth = match &r.password {
            Some(p) => format!(":{}@", urlencode(p.expose_secret())),
            None => String::new(),
        };
        let scheme = if r.tls { "rediss" } else { "redis" };
        format!("{scheme}://{auth}{}:{}/{}", r.host, r.port, r.db).into()
    }

    /// The variable the Redis connection comes from, for error lines.
    pub fn redis_var(&self) -> &'static str {
        if self.redis.cluster.is_some() {
            "REDIS_CLUSTER_NODES"
        } else if self.redis.sentinel.is_some() {
            "REDIS_SENTINELS"
        } else if self.redis.url.is_some() {
            "REDIS_URL"
        } else if self.redis.tls {
            "REDIS_TLS"
        } else {
            "REDIS_HOST"
        }
    }
}

/// `REDIS_*`: the URL or the parts, and the TLS files (allowed only with TLS).
pub(super) fn redis<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<RedisConfig, ConfigError> {
    let url = env.raw("REDIS_URL");
    let sentinel = sentinel(env)?;
    let cluster = host_ports(env, "REDIS_CLUSTER_NODES")?;
    if cluster.is_some() && (url.is_some() || sentinel.is_some()) {
        return Err(env.bad(
            "REDIS_CLUSTER_NODES",
            "set at most one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES",
        ));
    }
    if url.is_some() && sentinel.is_some() {
        return Err(env.bad(
            "REDIS_SENTINELS",
            "set at most one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES",
        ));
    }
    if let Some(u) = &url {
        if !(u.starts_with("redis://") || u.starts_with("rediss://")) {
            return Err(env.bad("REDIS_URL", "must start with redis:// or rediss://"));
        }
        if u.contains('#') {
            return Err(env.bad(
                "REDIS_URL",
                "a #fragment (such as #insecure) is not supported",
            ));
        }
        // The parser's message may quote the URL: keep the password out of the log.
        if redis::IntoConnectionInfo::into_connection_info(u.as_str()).is_err() {
            return Err(env.bad(
                "REDIS_URL",
                "not a valid Redis URL (rediss://user:password@host:port/db)",
            ));
        }
    }
    let tls_flag: bool = env.parse("REDIS_TLS", false)?;
    let tls = match &url {
        Some(u) => u.starts_with("rediss://"),
        None => tls_flag,
    };
    let file = |var: &'static str, read: fn(&str) -> Result<Vec<u8>, String>| {
        env.raw(var)
            .map(|path| read(path.trim()).map_err(|reason| env.bad(var, &reason)))
            .transpose()
    };
    let ca = file("REDIS_CA_CERT", crate::tls::read_certs)?;
    let cert = file("REDIS_CLIENT_CERT", crate::tls::read_certs)?;
    let key = file("REDIS_CLIENT_KEY", crate::tls::read_key)?;
    let client = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(env.bad("REDIS_CLIENT_KEY", "REDIS_CLIENT_CERT needs its key"));
        }
        (None, Some(_)) => {
            return Err(env.bad(
                "REDIS_CLIENT_CERT",
                "REDIS_CLIENT_KEY needs its certificate",
            ));
        }
    };
    let tls_files = TlsFiles { ca, client };
    if !tls && !tls_files.is_empty() {
        let var = if tls_files.ca.is_some() {
            "REDIS_CA_CERT"
        } else {
            "REDIS_CLIENT_CERT"
        };
        return Err(env.bad(var, "needs TLS: a rediss:// REDIS_URL or REDIS_TLS=true"));
    }
    let db = env.parse("REDIS_DB", 0)?;
    if cluster.is_some() && db != 0 {
        return Err(env.bad("REDIS_DB", "a Redis Cluster has only database 0"));
    }
    Ok(RedisConfig {
        host: env.string("REDIS_HOST", "127.0.0.1"),
        port: env.parse("REDIS_PORT", 6379)?,
        password: env.secret_opt("REDIS_PASSWORD"),
        db,
        key_prefix: env.string("REDIS_KEY_PREFIX", "courier:"),
        url: url.map(Into::into),
        tls,
        tls_files,
        sentinel,
        cluster,
    })
}

/// `REDIS_SENTINELS` and the rest (`None` without sentinels).
fn sentinel<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<Option<SentinelConfig>, ConfigError> {
    let Some(nodes) = host_ports(env, "REDIS_SENTINELS")? else {
        return Ok(None);
    };
    Ok(Some(SentinelConfig {
        nodes,
        master: env.name("REDIS_SENTINEL_MASTER", "mymaster")?,
        password: env.secret_opt("REDIS_SENTINEL_PASSWORD"),
    }))
}

/// The `host:port,...` list of `var` (`None` when unset).
fn host_ports<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    var: &'static str,
) -> Result<Option<Vec<(String, u16)>>, ConfigError> {
    let Some(list) = env.raw(var) else {
        return Ok(None);
    };
    let mut nodes = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let parsed = item
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
            .filter(|(h, p)| !h.is_empty() && *p > 0);
        match parsed {
            Some((h, p)) => nodes.push((h.to_string(), p)),
            None => {
                return Err(env.bad(
                    var,
                    &format!("expected host:port,host:port,..., got {item:?}"),
                ));
            }
        }
    }
    if nodes.is_empty() {
        return Err(env.bad(var, "expected host:port,host:port,..."));
    }
    Ok(Some(nodes))
}

/// Checks one AMQP URI of `var` (the parser's message may quote the URI: it is not
/// repeated, so the password stays out of the log).
fn checked_amqp<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    var: &'static str,
    uri: &str,
) -> Result<SecretString, ConfigError> {
    if !(uri.starts_with("amqp://") || uri.starts_with("amqps://")) {
        return Err(env.bad(var, "must start with amqp:// or amqps://"));
    }
    if uri.parse::<lapin::uri::AMQPUri>().is_err() {
        return Err(env.bad(var, "not a valid AMQP URI"));
    }
    Ok(uri.to_string().into())
}

/// `RABBITMQ_URIS` (comma-separated, one cluster's nodes), else the one URI of
/// [`rabbit_uri`].
pub(super) fn rabbit_uris<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<Vec<SecretString>, ConfigError> {
    let Some(list) = env.raw("RABBITMQ_URIS") else {
        return Ok(vec![rabbit_uri(env)?]);
    };
    list.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| checked_amqp(env, "RABBITMQ_URIS", u))
        .collect()
}

/// `RABBITMQ_QUORUM_REPLICAS` (at least 1), else min(3, nodes) for several nodes.
pub(super) fn quorum_replicas<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    nodes: usize,
) -> Result<Option<u16>, ConfigError> {
    if env.raw("RABBITMQ_QUORUM_REPLICAS").is_some() {
        return env.at_least("RABBITMQ_QUORUM_REPLICAS", 1, 1).map(Some);
    }
    Ok((nodes > 1).then(|| nodes.min(3) as u16))
}

pub(super) fn rabbit_uri<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<SecretString, ConfigError> {
    if let Some(uri) = env.raw("RABBITMQ_URI") {
        return checked_amqp(env, "RABBITMQ_URI", &uri);
    }
    let host = env.string("RABBITMQ_HOST", "127.0.0.1");
    let port: u16 = env.parse("RABBITMQ_PORT", 5672)?;
    let user = env.string("RABBITMQ_USERNAME", "guest");
    let pass = env.string("RABBITMQ_PASSWORD", "guest");
    let vhost = env.string("RABBITMQ_VHOST", "/");
    Ok(format!(
        "amqp://{}:{}@{host}:{port}/{}",
        urlencode(&user),
        urlencode(&pass),
        urlencode(&vhost)
    )
    .into())
}

pub(super) const DEFAULT_DATABASE_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/courier";

/// `DATABASE_URL` or `DATABASE_MIGRATION_URL` when set, checked to be a PostgreSQL URL
/// (its text never goes to the log).
pub(super) fn database_url<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    var: &'static str,
) -> Result<Option<SecretString>, ConfigError> {
    let Some(url) = env.raw(var) else {
        return Ok(None);
    };
    match url.parse::<sqlx::postgres::PgConnectOptions>() {
        Ok(_) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            // sslmode and the certificate files, as the pools will read them.
            crate::db::connect::options(&url).map_err(|e| env.bad(var, &e))?;
            Ok(Some(url.into()))
        }
        _ => Err(env.bad(
            var,
            "not a valid postgres:// URL (postgres://user:password@host:port/database)",
        )),
    }
}

impl Config {
    /// Where the migrations run: `DATABASE_MIGRATION_URL`, else `DATABASE_URL`.
    pub fn migration_url(&self) -> &SecretString {
        self.database_migration_url
            .as_ref()
            .unwrap_or(&self.database_url)
    }
}
