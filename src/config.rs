//! Typed configuration read from the environment (and `.env`), with the contract's names.
//!
//! Every problem is reported as one line naming the variable, so a process stops at
//! start with a message an operator can act on.

use std::{collections::HashMap, net::IpAddr, time::Duration};

use secrecy::{ExposeSecret, SecretString};

use crate::cache::ratelimit::Limit;

mod amqp_tls;
mod env;
mod jwt;
mod push;
mod secrets;
mod services;
#[cfg(test)]
mod tests;
mod uploads;

pub use amqp_tls::{ClientIdentity, RabbitTls};
use env::Env;
pub(crate) use env::urlencode;
use jwt::jwt_keys;
pub use jwt::{JwtKeyConfig, MIN_SECRET_BYTES};
pub use push::{FcmConfig, PushConfig, ServiceAccount, VapidConfig};
use services::{DEFAULT_DATABASE_URL, database_url, quorum_replicas, rabbit_uris};
pub use services::{RabbitConfig, RedisConfig, SentinelConfig, TlsFiles};
pub use uploads::{S3Config, Uploads};

/// A bad or missing configuration variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    /// `DATABASE_MIGRATION_URL`: a direct connection for the migrations (their session
    /// lock needs one); `None`: `DATABASE_URL`.
    pub database_migration_url: Option<SecretString>,
    /// `DATABASE_PREPARED_STATEMENTS`: `false` behind PgBouncer's transaction pooling
    /// (no statement cache; each statement one unnamed Parse..Sync unit).
    pub database_prepared_statements: bool,
    pub database_max_connections: u32,
    pub redis: RedisConfig,
    pub rabbitmq: RabbitConfig,
    pub notification_channel: String,
    pub jwt: JwtKeyConfig,
    pub jwt_expiration: Duration,
    pub refresh_token_ttl: Duration,
    /// `ACCOUNT_USERNAME_HOLD`: how long a deleted account's username stays taken.
    pub account_username_hold: Duration,
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
    /// `WEB_APP_DIR`: the built demo web app (`clients/web/dist`) served at `/app/`.
    pub web_app_dir: std::path::PathBuf,
    pub rate_limits: RateLimits,
    pub realtime: Realtime,
    /// `MESSAGE_EDIT_WINDOW_SECS`: how long after sending a message its sender may edit it.
    pub message_edit_window: Duration,
    /// `CHAT_MAX_MEMBERS`: the most members a group may have.
    pub chat_max_members: usize,
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
    /// Push notifications: `PUSH_*`, `FCM_*`, `PUSHER_PORT`.
    pub push: PushConfig,
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
    /// `GET /users/search` requests per user.
    pub user_search: Limit,
    /// Reports per user (`POST /reports`).
    pub reports: Limit,
    /// Push subscription registrations per user (`POST /push/subscriptions`).
    pub push_subscriptions: Limit,
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

    /// Builds the configuration from any variable lookup (used by tests). A secret
    /// given as `NAME_FILE` is read first and then stands for `NAME`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let from_files = secrets::resolve_files(&get)?;
        let lookup = |var: &str| from_files.get(var).cloned().or_else(|| get(var));
        let env = Env(&lookup);
        let redis = services::redis(&env)?;
        let partition_count: u16 = env.at_least("RABBITMQ_CHAT_PARTITION_COUNT", 8, 1)?;
        let uris = rabbit_uris(&env)?;
        let Some(uri) = uris.first().cloned() else {
            return Err(env.bad("RABBITMQ_URIS", "names no URI"));
        };
        let any_tls = uris
            .iter()
            .any(|u| u.expose_secret().starts_with("amqps://"));
        let tls = amqp_tls::rabbit_tls(&env, any_tls)?;
        let rabbitmq = RabbitConfig {
            quorum_replicas: quorum_replicas(&env, uris.len())?,
            uri,
            uris,
            tls,
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
            database_url: database_url(&env, "DATABASE_URL")?
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string().into()),
            database_migration_url: database_url(&env, "DATABASE_MIGRATION_URL")?,
            database_prepared_statements: env.parse("DATABASE_PREPARED_STATEMENTS", true)?,
            database_max_connections: env.parse("DATABASE_MAX_CONNECTIONS", 20)?,
            redis,
            rabbitmq,
            notification_channel: env.name("CHAT_NOTIFICATION_CHANNEL", "chat.notifications")?,
            jwt: jwt_keys(&env)?,
            jwt_expiration,
            refresh_token_ttl: Duration::from_secs(env.parse("REFRESH_TOKEN_TTL", 30 * 24 * 3600)?),
            account_username_hold: Duration::from_secs(
                env.parse("ACCOUNT_USERNAME_HOLD", 30 * 24 * 3600)?,
            ),
            bind_host: bind_host
                .parse()
                .map_err(|_| env.bad("HOST", &format!("not an IP address: {bind_host:?}")))?,
            port: env.parse("PORT", 3000)?,
            gateway_port: env.parse("GATEWAY_PORT", 3001)?,
            worker_port: env.parse("WORKER_PORT", 3002)?,
            worker_commit_linger: Duration::from_millis(env.parse("WORKER_COMMIT_LINGER_MS", 1)?),
            gateway_id: lookup("GATEWAY_ID")
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
            web_app_dir: env.string("WEB_APP_DIR", "clients/web/dist").into(),
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
                user_search: env.limit(
                    "RATE_LIMIT_USER_SEARCH_MAX",
                    "RATE_LIMIT_USER_SEARCH_WINDOW_SECS",
                    60,
                    60,
                )?,
                reports: env.limit(
                    "RATE_LIMIT_REPORT_MAX",
                    "RATE_LIMIT_REPORT_WINDOW_SECS",
                    20,
                    3600,
                )?,
                push_subscriptions: env.limit(
                    "RATE_LIMIT_PUSH_SUBSCRIPTION_MAX",
                    "RATE_LIMIT_PUSH_SUBSCRIPTION_WINDOW_SECS",
                    30,
                    60,
                )?,
            },
            message_edit_window: Duration::from_secs(env.parse("MESSAGE_EDIT_WINDOW_SECS", 86400)?),
            chat_max_members: env.parse("CHAT_MAX_MEMBERS", 10_000)?,
            trusted_proxies: trusted_proxies(&env)?,
            uploads: uploads::from_env(&env)?,
            push: push::from_env(&env)?,
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
