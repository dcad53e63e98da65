//! PostgreSQL: the pool, migrations, and the queries of each aggregate.

pub mod accounts;
pub mod audit;
pub mod blocks;
pub mod chat_list;
pub mod chats;
pub mod compat;
pub mod connect;
pub mod history;
pub mod holds;
pub mod hooks;
pub mod lifecycle;
pub mod manage;
pub mod messages;
pub mod moderation;
pub mod notifications;
pub mod profiles;
pub mod push;
pub mod pusher;
pub mod reports;
pub mod search;
pub mod sessions;
#[cfg(test)]
mod shapes;
pub mod tokens;
#[cfg(test)]
mod unnamed;
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

/// The variable a connection's URL comes from, for error lines.
fn url_var(config: &Config, migration: bool) -> &'static str {
    if migration && config.database_migration_url.is_some() {
        "DATABASE_MIGRATION_URL"
    } else {
        "DATABASE_URL"
    }
}

/// Connect options of `DATABASE_URL`, or with `migration` of `DATABASE_MIGRATION_URL`
/// (a direct connection: prepared statements stay on), with libpq's TLS rules
/// (`connect::options`).
fn options(config: &Config, migration: bool) -> anyhow::Result<PgConnectOptions> {
    let url = if migration {
        config.migration_url()
    } else {
        &config.database_url
    };
    let opts = connect::options(url.expose_secret())
        .map_err(|e| anyhow::anyhow!("{}: {e}", url_var(config, migration)))?
        .log_statements(tracing::log::LevelFilter::Trace);
    // Behind PgBouncer's transaction pooling: no statement cache, which makes the patched
    // sqlx-postgres send each statement as one unnamed unit (patches/README.md), and no
    // extra_float_digits startup parameter (PgBouncer 1.18 rejects unknown ones).
    Ok(match migration || config.database_prepared_statements {
        true => opts,
        false => opts.statement_cache_capacity(0).extra_float_digits(None),
    })
}

/// A lazily connecting pool: start-up does not fail while PostgreSQL is briefly away.
pub fn pool(config: &Config) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options(config, false)?))
}

/// The worker persister's own pool: one connection used by one transaction at a time.
/// Connections are not pinged before each use (a round trip and a query per batch);
/// a dead one fails its batch as an outage, and the batch is retried on a new one.
pub fn persist_pool(config: &Config) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .test_before_acquire(false)
        .connect_lazy_with(options(config, false)?))
}

/// The start-up check of a `DATABASE_URL` that asks for TLS: a TLS or certificate
/// failure stops start-up with one line naming the variable (`connect::probe`).
pub async fn probe(config: &Config) -> anyhow::Result<()> {
    connect::probe(&options(config, false)?, "DATABASE_URL").await
}

/// What a role does at start: migrates, or behind PgBouncer
/// (`DATABASE_PREPARED_STATEMENTS=false`) without a `DATABASE_MIGRATION_URL`, only
/// checks that the schema is current.
pub async fn migrate_or_check(config: &Config) -> anyhow::Result<()> {
    if config.database_prepared_statements || config.database_migration_url.is_some() {
        return migrate(config).await;
    }
    let mut conn = PgConnection::connect_with(&options(config, false)?).await?;
    let applied = applied_version(&mut conn).await?;
    conn.close().await?;
    let needed = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    if applied < needed {
        anyhow::bail!(
            "DATABASE_MIGRATION_URL: schema at {applied}, this build needs {needed}: \
             run `courier migrate` with DATABASE_MIGRATION_URL"
        );
    }
    Ok(())
}

/// The newest migration applied (0 when none or no migrations table).
async fn applied_version(conn: &mut PgConnection) -> anyhow::Result<i64> {
    let table = sqlx::query_scalar!("SELECT to_regclass('_sqlx_migrations')::text AS name")
        .fetch_one(&mut *conn)
        .await?;
    if table.is_none() {
        return Ok(0);
    }
    let version =
        sqlx::query_scalar!("SELECT max(version) AS version FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await?;
    Ok(version.unwrap_or(0))
}

/// Creates the database of `DATABASE_MIGRATION_URL` (or `DATABASE_URL`) if it is
/// missing, then runs the migrations there. Behind PgBouncer
/// (`DATABASE_PREPARED_STATEMENTS=false`) it needs `DATABASE_MIGRATION_URL`: their
/// session-level advisory lock does not survive transaction pooling.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    if !config.database_prepared_statements && config.database_migration_url.is_none() {
        anyhow::bail!(
            "DATABASE_MIGRATION_URL: needed with DATABASE_PREPARED_STATEMENTS=false: set it \
             to a direct connection to PostgreSQL (the migrations' session lock does not \
             survive PgBouncer's transaction pooling)"
        );
    }
    let opts = options(config, true)?;
    let db = opts.get_database().unwrap_or("postgres").to_string();
    let mut admin = PgConnection::connect_with(&opts.clone().database("postgres"))
        .await
        .map_err(|e| connect::named(e, url_var(config, true)))?;
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
        .map_err(|e| connect::named(e, url_var(config, true)))?;
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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::options;
    use crate::config::Config;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let get = |k: &str| {
            [("JWT_SECRET", "0123456789abcdef0123456789abcdef")]
                .iter()
                .chain(pairs)
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        Config::from_lookup(get).unwrap()
    }

    #[test]
    fn behind_pgbouncer_no_statement_cache_and_no_extra_float_digits() {
        const CACHE_OFF: &str = "statement_cache_capacity: 0,";
        const NO_DIGITS: &str = "extra_float_digits: None,";
        let prepared = format!("{:?}", options(&config(&[]), false).unwrap());
        assert!(!prepared.contains(CACHE_OFF) && !prepared.contains(NO_DIGITS));
        let c = config(&[
            ("DATABASE_URL", "postgres://u:p@bouncer:6432/d"),
            ("DATABASE_PREPARED_STATEMENTS", "false"),
            ("DATABASE_MIGRATION_URL", "postgres://owner:p@db:5432/d"),
        ]);
        let pooled = options(&c, false).unwrap();
        assert_eq!(pooled.get_host(), "bouncer");
        let pooled = format!("{pooled:?}");
        assert!(
            pooled.contains(CACHE_OFF) && pooled.contains(NO_DIGITS),
            "{pooled}"
        );
        // The migrations: the direct URL, prepared statements on.
        let migration = options(&c, true).unwrap();
        assert_eq!(
            (migration.get_host(), migration.get_username()),
            ("db", "owner")
        );
        assert!(!format!("{migration:?}").contains(CACHE_OFF));
        assert_eq!(
            c.migration_url().expose_secret(),
            "postgres://owner:p@db:5432/d"
        );
    }
}
