//! PostgreSQL: the pool, migrations, and the queries of each aggregate.

pub mod chats;
pub mod compat;
pub mod connect;
pub mod history;
pub mod holds;
pub mod hooks;
pub mod lifecycle;
pub mod manage;
pub mod messages;
pub mod notifications;
pub mod search;
#[cfg(test)]
mod shapes;
pub mod tokens;
pub mod uploads;
pub mod users;

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::{
    ConnectOptions, Connection, Executor, PgPool,
    postgres::{PgConnectOptions, PgConnection, PgPoolOptions},
};

use crate::config::Config;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn options(config: &Config) -> anyhow::Result<PgConnectOptions> {
    Ok(connect::options(config.database_url.expose_secret())
        .map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?
        .log_statements(tracing::log::LevelFilter::Trace))
}

/// A lazily connecting pool: start-up does not fail while PostgreSQL is briefly away.
pub fn pool(config: &Config) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options(config)?))
}

/// The worker persister's own pool: one connection used by one transaction at a time.
/// Connections are not pinged before each use (a round trip and a query per batch);
/// a dead one fails its batch as an outage, and the batch is retried on a new one.
pub fn persist_pool(config: &Config) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .test_before_acquire(false)
        .connect_lazy_with(options(config)?))
}

/// The start-up check of a `DATABASE_URL` that asks for TLS: a TLS or certificate
/// failure stops start-up with one line naming the variable (`connect::probe`).
pub async fn probe(config: &Config) -> anyhow::Result<()> {
    connect::probe(&options(config)?, "DATABASE_URL").await
}

/// Creates the database of `DATABASE_URL` if it is missing, then runs the migrations.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let opts = options(config)?;
    let db = opts.get_database().unwrap_or("postgres").to_string();
    let mut admin = PgConnection::connect_with(&opts.clone().database("postgres"))
        .await
        .map_err(|e| connect::named(e, "DATABASE_URL"))?;
    let exists = sqlx::query_scalar!("SELECT datname FROM pg_database WHERE datname = $1", db)
        .fetch_optional(&mut admin)
        .await?;
    if exists.is_none() {
        let quoted = db.replace('"', "\"\"");
        // Another process may create it concurrently; that is fine. The one statement
        // not checked at compile time: a database name is an identifier, not a value.
        let create = format!("CREATE DATABASE \"{quoted}\"");
        if let Err(e) = admin.execute(sqlx::AssertSqlSafe(create)).await {
            tracing::info!(error = %e, "create database");
        }
    }
    admin.close().await?;
    let mut conn = PgConnection::connect_with(&opts)
        .await
        .map_err(|e| connect::named(e, "DATABASE_URL"))?;
    MIGRATOR.run(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Whether an error means PostgreSQL is unreachable (an outage) rather than a bad query.
pub fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
        sqlx::Error::Database(db) => {
            matches!(
                db.code().as_deref(),
                Some("57P01" | "57P02" | "57P03" | "53300" | "08006" | "08001" | "08004")
            )
        }
        _ => false,
    }
}

/// `SELECT 1` for readiness.
pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query_scalar!("SELECT 1 AS one")
        .fetch_one(pool)
        .await
        .is_ok()
}
