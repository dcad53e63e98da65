//! Typed configuration read from the environment (and `.env`), with the contract's names.
//!
//! Every problem is reported as one line naming the variable, so a process stops at
//! start with a message an operator can act on.

use std::{collections::HashMap, fmt, net::IpAddr, time::Duration};

use secrecy::{ExposeSecret, SecretString};

use crate::cache::ratelimit::Limit;

mod uploads;
pub use uploads::{S3Config, Uploads};

/// A bad or missing configuration variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

/// How access tokens are signed.
#[derive(Clone)]
pub enum JwtKeyConfig {
    Hs256(SecretString),
    Rs256 {
        private_pem: SecretString,
        public_pem: String,
    },
}

impl fmt::Debug for JwtKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hs256(_) => f.write_str("Hs256([REDACTED])"),
            Self::Rs256 { .. } => f.write_str("Rs256([REDACTED])"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub host: String,
    pub port: u16,
    pub password: Option<SecretString>,
    pub db: i64,
    pub key_prefix: String,
}

#[derive(Debug, Clone)]
pub struct RabbitConfig {
    /// Full AMQP URI (from `RABBITMQ_URI` or built from the parts).
    pub uri: SecretString,
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

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    pub database_max_connections: u32,
    pub redis: RedisConfig,
    pub rabbitmq: RabbitConfig,
    pub notification_channel: String,
    pub jwt: JwtKeyConfig,
    pub jwt_expiration: Duration,
    pub refresh_token_ttl: Duration,
    pub bind_host: IpAddr,
    pub port: u16,
    pub gateway_port: u16,
    pub worker_port: u16,
    /// `WORKER_COMMIT_LINGER_MS`: how long the worker's group commit waits for more
    /// batches when a round is small (0: commits at once).
    pub worker_commit_linger: Duration,
    pub gateway_id: String,
    /// Packets a gateway queues per socket before emits to it fail (slow client).
    pub gateway_socket_buffer: usize,
    pub cors_origins: Vec<String>,
    pub rate_limits: RateLimits,
    pub realtime: Realtime,
    /// `MESSAGE_EDIT_WINDOW_SECS`: how long after sending a message its sender may edit it.
    pub message_edit_window: Duration,
    /// `HTTP_MAX_CONNECTIONS`: connections each HTTP listener serves at once.
    pub http_max_connections: usize,
    /// `TRUSTED_PROXIES`: CIDRs of proxies whose `X-Forwarded-For` names the client
    /// (empty: the TCP peer is the client).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `METRICS_HOST`:`METRICS_PORT`: where `/metrics` is served, on its own listener
    /// (never a public port); `None` when `METRICS_PORT` is unset.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Attachments: `S3_*`, `UPLOAD_*`, `ATTACHMENT_URL_TTL_SECS`.
    pub uploads: Uploads,
    /// `API_COMPAT`: `chat-be` serves the reference backend's routes and shapes
    /// (docs/migrating-from-nestjs.md); unset or empty: Courier's own API.
    pub api_compat: crate::domain::compat::ApiCompat,
}

/// Sessions: presence, recovery, receipts, per-socket limits.
#[derive(Debug, Clone, Copy)]
pub struct Realtime {
    /// `PRESENCE_GRACE_SECS`: how long a user stays online after their last connection closed.
    pub presence_grace: Duration,
    /// `GATEWAY_LEASE_SECS`: a gateway silent this long is dead; its users' connections are dropped.
    pub gateway_lease: Duration,
    /// `RECOVERY_WINDOW_SECS`: how long events stay recoverable by offset.
    pub recovery_window: Duration,
    /// `RECOVERY_MAX_EVENTS`: most events kept per user.
    pub recovery_max_events: u32,
    /// `RATE_LIMIT_SOCKET_EVENTS`: client events a socket may send per second.
    pub socket_events_per_sec: u32,
    /// `RECEIPT_FLUSH_MS`: how often delivery marks are written and status events coalesced.
    pub receipt_flush: Duration,
    /// `GATEWAY_MAX_PAYLOAD`: largest Socket.IO packet or WebSocket frame/message a client may send.
    pub max_payload: usize,
    /// `GATEWAY_MAX_SOCKETS_PER_USER`: connections one user may hold across every gateway.
    pub max_sockets_per_user: u64,
    /// `GATEWAY_PING_INTERVAL_MS` / `GATEWAY_PING_TIMEOUT_MS`: engine.io heartbeat; the
    /// gateway pings every interval and closes a socket that does not answer in time.
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
}

/// Per-user send and per-username/per-IP auth limits (`max` 0 disables one).
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    pub sends: Limit,
    pub auth_per_username: Limit,
    pub auth_per_ip: Limit,
    /// Posts per incoming webhook.
    pub hooks: Limit,
}

impl Config {
    /// Reads `.env` (if present) and then the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is reported.
        if let Err(e) = dotenvy::dotenv()
            && !e.not_found()
        {
            return Err(ConfigError {
                var: ".env",
                reason: e.to_string(),
            });
        }
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_lookup(|k| vars.get(k).cloned())
    }

    /// Builds the configuration from any variable lookup (used by tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let redis = RedisConfig {
            host: env.string("REDIS_HOST", "127.0.0.1"),
            port: env.parse("REDIS_PORT", 6379)?,
            password: env.secret_opt("REDIS_PASSWORD"),
            db: env.parse("REDIS_DB", 0)?,
            key_prefix: env.string("REDIS_KEY_PREFIX", "courier:"),
        };
        let partition_count: u16 = env.at_least("RABBITMQ_CHAT_PARTITION_COUNT", 8, 1)?;
        let rabbitmq = RabbitConfig {
            uri: rabbit_uri(&env)?,
            exchange: env.name("RABBITMQ_CHAT_EXCHANGE", "chat.events")?,
            dlx_exchange: env.name("RABBITMQ_CHAT_DLX_EXCHANGE", "chat.dlx")?,
            queue_prefix: env.name("RABBITMQ_CHAT_QUEUE_PREFIX", "chat.message.send")?,
            dlq_name: env.name("RABBITMQ_CHAT_DLQ_NAME", "chat.message.send.dlq")?,
            integration_exchange: env.name("RABBITMQ_INTEGRATION_EXCHANGE", "chat.integrations")?,
            partition_count,
            max_retries: env.parse("RABBITMQ_CHAT_MAX_RETRIES", 5)?,
            prefetch: env.parse("RABBITMQ_CHAT_CONSUMER_PREFETCH", 256)?,
            confirm_timeout: Duration::from_millis(env.at_least(
                "RABBITMQ_CONFIRM_TIMEOUT_MS",
                5000,
                1,
            )?),
        };
        let jwt_expiration = Duration::from_secs(env.parse("JWT_EXPIRATION_TIME", 3600)?);
        if jwt_expiration.is_zero() {
            return Err(env.bad("JWT_EXPIRATION_TIME", "must be at least 1 second"));
        }
        let bind_host = env.string("HOST", "0.0.0.0");
        Ok(Config {
            database_url: database_url(&env)?,
            database_max_connections: env.parse("DATABASE_MAX_CONNECTIONS", 20)?,
            redis,
            rabbitmq,
            notification_channel: env.name("CHAT_NOTIFICATION_CHANNEL", "chat.notifications")?,
            jwt: jwt_keys(&env)?,
            jwt_expiration,
            refresh_token_ttl: Duration::from_secs(env.parse("REFRESH_TOKEN_TTL", 30 * 24 * 3600)?),
            bind_host: bind_host
                .parse()
                .map_err(|_| env.bad("HOST", &format!("not an IP address: {bind_host:?}")))?,
            port: env.parse("PORT", 3000)?,
            gateway_port: env.parse("GATEWAY_PORT", 3001)?,
            worker_port: env.parse("WORKER_PORT", 3002)?,
            worker_commit_linger: Duration::from_millis(env.parse("WORKER_COMMIT_LINGER_MS", 1)?),
            gateway_id: get("GATEWAY_ID")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
            gateway_socket_buffer: env.at_least("GATEWAY_SOCKET_BUFFER", 4096, 1)?,
            cors_origins: env
                .string("CORS_ORIGINS", "")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            rate_limits: RateLimits {
                sends: env.limit(
                    "RATE_LIMIT_SEND_MAX",
                    "RATE_LIMIT_SEND_WINDOW_SECS",
                    1000,
                    60,
                )?,
                auth_per_username: env.limit(
                    "RATE_LIMIT_AUTH_USERNAME_MAX",
                    "RATE_LIMIT_AUTH_USERNAME_WINDOW_SECS",
                    10,
                    60,
                )?,
                auth_per_ip: env.limit(
                    "RATE_LIMIT_AUTH_IP_MAX",
                    "RATE_LIMIT_AUTH_IP_WINDOW_SECS",
                    100,
                    60,
                )?,
                hooks: env.limit("RATE_LIMIT_HOOK_MAX", "RATE_LIMIT_HOOK_WINDOW_SECS", 60, 60)?,
            },
            message_edit_window: Duration::from_secs(env.parse("MESSAGE_EDIT_WINDOW_SECS", 86400)?),
            trusted_proxies: trusted_proxies(&env)?,
            uploads: uploads::from_env(&env)?,
            api_compat: crate::domain::compat::ApiCompat::parse(&env.string("API_COMPAT", ""))
                .map_err(|r| env.bad("API_COMPAT", &r))?,
            http_max_connections: env.at_least(
                "HTTP_MAX_CONNECTIONS",
                crate::server::DEFAULT_MAX_CONNECTIONS,
                1,
            )?,
            metrics_addr: match env.raw("METRICS_PORT") {
                None => None,
                Some(_) => {
                    let host = env.string("METRICS_HOST", "127.0.0.1");
                    let ip: IpAddr = host.parse().map_err(|_| {
                        env.bad("METRICS_HOST", &format!("not an IP address: {host:?}"))
                    })?;
                    Some(std::net::SocketAddr::new(
                        ip,
                        env.parse("METRICS_PORT", 0u16)?,
                    ))
                }
            },
            realtime: Realtime {
                presence_grace: Duration::from_secs(env.parse("PRESENCE_GRACE_SECS", 5)?),
                gateway_lease: Duration::from_secs(env.at_least("GATEWAY_LEASE_SECS", 15, 2)?),
                recovery_window: Duration::from_secs(env.at_least(
                    "RECOVERY_WINDOW_SECS",
                    600,
                    1,
                )?),
                recovery_max_events: env.at_least("RECOVERY_MAX_EVENTS", 1000, 1)?,
                socket_events_per_sec: env.at_least("RATE_LIMIT_SOCKET_EVENTS", 20, 1)?,
                receipt_flush: Duration::from_millis(env.at_least("RECEIPT_FLUSH_MS", 250, 250)?),
                max_payload: env.at_least("GATEWAY_MAX_PAYLOAD", 65536, 1024)?,
                max_sockets_per_user: env.at_least("GATEWAY_MAX_SOCKETS_PER_USER", 20, 1)?,
                ping_interval: Duration::from_millis(env.at_least(
                    "GATEWAY_PING_INTERVAL_MS",
                    25_000,
                    100,
                )?),
                ping_timeout: Duration::from_millis(env.at_least(
                    "GATEWAY_PING_TIMEOUT_MS",
                    20_000,
                    100,
                )?),
            },
        })
    }

    /// The Redis connection URL built from the parts.
    pub fn redis_url(&self) -> SecretString {
        let r = &self.redis;
        let auth = match &r.password {
            Some(p) => format!(":{}@", urlencode(p.expose_secret())),
            None => String::new(),
        };
        format!("redis://{auth}{}:{}/{}", r.host, r.port, r.db).into()
    }
}

/// `TRUSTED_PROXIES`: comma- or space-separated CIDRs or addresses.
fn trusted_proxies<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let raw = env.string("TRUSTED_PROXIES", "");
    raw.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| env.bad("TRUSTED_PROXIES", &format!("not a CIDR or address: {s:?}")))
        })
        .collect()
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn raw(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }
    fn string(&self, var: &str, default: &str) -> String {
        self.raw(var).unwrap_or_else(|| default.to_string())
    }
    fn secret_opt(&self, var: &str) -> Option<SecretString> {
        self.raw(var).map(Into::into)
    }
    fn bad(&self, var: &'static str, reason: &str) -> ConfigError {
        ConfigError {
            var,
            reason: reason.to_string(),
        }
    }
    fn parse<T: std::str::FromStr>(&self, var: &'static str, default: T) -> Result<T, ConfigError> {
        match self.raw(var) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                self.bad(
                    var,
                    &format!("expected {}, got {v:?}", std::any::type_name::<T>()),
                )
            }),
        }
    }
    /// A number that must be at least `min`.
    fn at_least<T>(&self, var: &'static str, default: T, min: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        match self.parse(var, default)? {
            n if n < min => Err(self.bad(var, &format!("must be at least {min}"))),
            n => Ok(n),
        }
    }
    /// `max_var` hits per `window_var` seconds.
    fn limit(
        &self,
        max_var: &'static str,
        window_var: &'static str,
        max: u32,
        window: u64,
    ) -> Result<Limit, ConfigError> {
        Ok(Limit {
            max: self.parse(max_var, max)?,
            window: Duration::from_secs(self.parse(window_var, window)?),
        })
    }

    /// An AMQP/Redis name: non-empty, printable, no spaces.
    fn name(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        let v = self.string(var, default);
        if v.len() > 200 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(self.bad(var, "must be at most 200 characters without spaces"));
        }
        Ok(v)
    }
}

fn rabbit_uri<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<SecretString, ConfigError> {
    if let Some(uri) = env.raw("RABBITMQ_URI") {
        if !(uri.starts_with("amqp://") || uri.starts_with("amqps://")) {
            return Err(env.bad("RABBITMQ_URI", "must start with amqp:// or amqps://"));
        }
        // The parser's message may quote the URI: keep the password out of the log.
        if uri.parse::<lapin::uri::AMQPUri>().is_err() {
            return Err(env.bad("RABBITMQ_URI", "not a valid AMQP URI"));
        }
        return Ok(uri.into());
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

/// `DATABASE_URL`, checked to be a PostgreSQL URL (its text never goes to the log).
fn database_url<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<SecretString, ConfigError> {
    let url = env.string(
        "DATABASE_URL",
        "postgres://postgres:postgres@127.0.0.1:5432/courier",
    );
    match url.parse::<sqlx::postgres::PgConnectOptions>() {
        Ok(_) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(url.into())
        }
        _ => Err(env.bad(
            "DATABASE_URL",
            "not a valid postgres:// URL (postgres://user:password@host:port/database)",
        )),
    }
}

/// The shortest HS256 secret accepted without `JWT_ALLOW_WEAK_SECRET=true`.
pub const MIN_SECRET_BYTES: usize = 32;

fn jwt_keys<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<JwtKeyConfig, ConfigError> {
    match (env.raw("JWT_PRIVATE_KEY"), env.raw("JWT_PUBLIC_KEY")) {
        (Some(private), Some(public)) => {
            // PEM passed through env files often has literal "\n".
            let (private, public) = (private.replace("\\n", "\n"), public.replace("\\n", "\n"));
            if jsonwebtoken::EncodingKey::from_rsa_pem(private.as_bytes()).is_err() {
                return Err(env.bad("JWT_PRIVATE_KEY", "not an RSA private key in PEM"));
            }
            if jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).is_err() {
                return Err(env.bad("JWT_PUBLIC_KEY", "not an RSA public key in PEM"));
            }
            Ok(JwtKeyConfig::Rs256 {
                private_pem: private.into(),
                public_pem: public,
            })
        }
        (Some(_), None) => Err(env.bad("JWT_PUBLIC_KEY", "required with JWT_PRIVATE_KEY")),
        (None, Some(_)) => Err(env.bad("JWT_PRIVATE_KEY", "required with JWT_PUBLIC_KEY")),
        (None, None) => match env.raw("JWT_SECRET") {
            Some(s) if s.len() < MIN_SECRET_BYTES => {
                if env.parse("JWT_ALLOW_WEAK_SECRET", false)? {
                    tracing::warn!(
                        "JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes (allowed by JWT_ALLOW_WEAK_SECRET): for development only"
                    );
                    Ok(JwtKeyConfig::Hs256(s.into()))
                } else {
                    Err(env.bad(
                        "JWT_SECRET",
                        "shorter than 32 bytes: anyone could guess it and forge tokens; use a long random secret (JWT_ALLOW_WEAK_SECRET=true allows it for development)",
                    ))
                }
            }
            Some(s) => Ok(JwtKeyConfig::Hs256(s.into())),
            None => Err(env.bad(
                "JWT_SECRET",
                "missing (or set JWT_PRIVATE_KEY and JWT_PUBLIC_KEY)",
            )),
        },
    }
}

/// Everything but RFC 3986's unreserved characters.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes everything but unreserved characters (for URI user, password, vhost).
fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const SECRET: (&str, &str) = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");

    /// The configuration of a good `JWT_SECRET` and `pairs`.
    fn with_secret(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        cfg(&[&[SECRET], pairs].concat())
    }

    /// The variable a good `JWT_SECRET` and `pairs` are refused for.
    fn refused(pairs: &[(&str, &str)]) -> String {
        with_secret(pairs).unwrap_err().var.to_string()
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = with_secret(&[]).unwrap();
        assert_eq!(c.rabbitmq.partition_count, 8);
        assert_eq!(c.rabbitmq.exchange, "chat.events");
        assert_eq!(
            c.rabbitmq.uri.expose_secret(),
            "amqp://guest:guest@127.0.0.1:5672/%2F"
        );
        assert_eq!(c.redis.key_prefix, "courier:");
        assert_eq!(c.port, 3000);
        assert_eq!(c.jwt_expiration, Duration::from_secs(3600));
        assert_eq!(c.worker_commit_linger, Duration::from_millis(1));
        let c = with_secret(&[("WORKER_COMMIT_LINGER_MS", "0")]).unwrap();
        assert!(c.worker_commit_linger.is_zero());
    }

    #[test]
    fn heartbeat_defaults_to_socket_io_and_has_a_floor() {
        let c = with_secret(&[]).unwrap();
        assert_eq!(c.realtime.ping_interval, Duration::from_secs(25));
        assert_eq!(c.realtime.ping_timeout, Duration::from_secs(20));
        let c = with_secret(&[
            ("GATEWAY_PING_INTERVAL_MS", "300"),
            ("GATEWAY_PING_TIMEOUT_MS", "200"),
        ])
        .unwrap();
        assert_eq!(c.realtime.ping_interval, Duration::from_millis(300));
        assert_eq!(c.realtime.ping_timeout, Duration::from_millis(200));
        assert_eq!(
            refused(&[("GATEWAY_PING_TIMEOUT_MS", "99")]),
            "GATEWAY_PING_TIMEOUT_MS"
        );
    }

    #[test]
    fn bad_variables_are_named() {
        assert_eq!(refused(&[("REDIS_PORT", "abc")]), "REDIS_PORT");
        let e = cfg(&[]).unwrap_err();
        assert_eq!(e.var, "JWT_SECRET");
        assert!(e.to_string().starts_with("configuration error: JWT_SECRET"));
        assert_eq!(
            refused(&[("RABBITMQ_CHAT_PARTITION_COUNT", "0")]),
            "RABBITMQ_CHAT_PARTITION_COUNT"
        );
    }

    #[test]
    fn rabbit_uri_wins_and_parts_are_encoded() {
        let c = with_secret(&[
            ("RABBITMQ_URI", "amqp://u:p@h:1/v"),
            ("RABBITMQ_HOST", "ignored"),
        ])
        .unwrap();
        assert_eq!(c.rabbitmq.uri.expose_secret(), "amqp://u:p@h:1/v");
        let c = with_secret(&[("RABBITMQ_PASSWORD", "p@ss/w")]).unwrap();
        assert!(c.rabbitmq.uri.expose_secret().contains("guest:p%40ss%2Fw@"));
    }

    #[test]
    fn secrets_are_not_printed() {
        let c = cfg(&[("JWT_SECRET", "super-secret-value-123-0123456789")]).unwrap();
        assert!(!format!("{c:?}").contains("super-secret-value-123"));
    }

    #[test]
    fn weak_secrets_are_refused_unless_allowed() {
        let e = cfg(&[("JWT_SECRET", "short-secret")]).unwrap_err();
        assert_eq!(e.var, "JWT_SECRET");
        assert!(
            cfg(&[
                ("JWT_SECRET", "short-secret"),
                ("JWT_ALLOW_WEAK_SECRET", "true")
            ])
            .is_ok()
        );
        let e = cfg(&[
            ("JWT_SECRET", "short-secret"),
            ("JWT_ALLOW_WEAK_SECRET", "yes"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "JWT_ALLOW_WEAK_SECRET");
    }

    #[test]
    fn unusable_urls_and_keys_are_named_without_their_secrets() {
        let e =
            with_secret(&[("DATABASE_URL", "postgres://u:hunter2@host:notaport/db")]).unwrap_err();
        assert_eq!(e.var, "DATABASE_URL");
        assert!(!e.to_string().contains("hunter2"));
        assert_eq!(
            refused(&[("DATABASE_URL", "mysql://u:p@h/db")]),
            "DATABASE_URL"
        );
        let e = with_secret(&[("RABBITMQ_URI", "amqp://u:hunter2@host:notaport/v")]).unwrap_err();
        assert_eq!(e.var, "RABBITMQ_URI");
        assert!(!e.to_string().contains("hunter2"));
        let e = cfg(&[
            (
                "JWT_PRIVATE_KEY",
                "-----BEGIN PRIVATE KEY-----\\nnope\\n-----END PRIVATE KEY-----",
            ),
            ("JWT_PUBLIC_KEY", "nope"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "JWT_PRIVATE_KEY");
        let private = include_str!("../tests/fixtures/rs256-test.key");
        let e = cfg(&[("JWT_PRIVATE_KEY", private), ("JWT_PUBLIC_KEY", "nope")]).unwrap_err();
        assert_eq!(e.var, "JWT_PUBLIC_KEY");
        let public = include_str!("../tests/fixtures/rs256-test.pub");
        assert!(cfg(&[("JWT_PRIVATE_KEY", private), ("JWT_PUBLIC_KEY", public)]).is_ok());
    }
}
