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
}

#[derive(Debug, Clone)]
pub struct RabbitConfig {
    /// Full AMQP URI (from `RABBITMQ_URI` or built from the parts).
    pub uri: SecretString,
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

pub(super) fn rabbit_uri<F: Fn(&str) -> Option<String>>(
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
pub(super) fn database_url<F: Fn(&str) -> Option<String>>(
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
