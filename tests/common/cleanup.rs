//! Removing what a test made (its database, Redis keys and broker topology) when its
//! `TestApp` is dropped, so a test that fails (panics) cleans up as well as one that passes.

use std::time::Duration;

use courier::{cache::Cache, config::Config, mq::Topology};
use lapin::{Connection, ConnectionProperties};
use secrecy::ExposeSecret;
use sqlx::{Connection as _, PgConnection};

/// Removes a test's database, Redis keys and broker topology when dropped, so a test
/// that fails (panics) cleans up as well as one that passes.
pub(super) struct Cleanup {
    config: Config,
}

impl Cleanup {
    pub(super) fn new(config: &Config) -> Self {
        Cleanup {
            config: config.clone(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // `Drop` is synchronous and the tests' runtime is current-thread (it cannot
        // `block_in_place`): the removal runs on a thread with a runtime of its own.
        // The app's tasks are frozen meanwhile, and dropped with the test's runtime.
        let config = self.config.clone();
        let removed = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| vec![format!("runtime: {e}")])?
                .block_on(remove_resources(&config))
        })
        .join();
        // Never panic here: a test that is already unwinding would abort.
        match removed {
            Ok(Ok(())) => {}
            Ok(Err(errors)) => eprintln!("test cleanup incomplete: {}", errors.join("; ")),
            Err(_) => eprintln!("test cleanup panicked"),
        }
    }
}

/// Deletes the broker topology, the Redis keys under the prefix and the database; each
/// step runs even if another failed.
async fn remove_resources(config: &Config) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    // Outage tests point the app at a dead broker: nothing was declared there.
    if let Ok(conn) = Connection::connect(
        config.rabbitmq.uri.expose_secret(),
        ConnectionProperties::default(),
    )
    .await
    {
        let deleted = match conn.create_channel().await {
            Ok(ch) => match Topology::new(&config.rabbitmq).delete(&ch).await {
                Ok(()) => ch.close(200, "bye".into()).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = deleted {
            errors.push(format!("broker topology: {e}"));
        }
        if let Err(e) = conn.close(200, "bye".into()).await {
            errors.push(format!("broker close: {e}"));
        }
    }
    match Cache::connect(config, Duration::from_secs(5)).await {
        Ok(cache) => {
            if let Err(e) = cache.purge_prefix().await {
                errors.push(format!("redis keys: {e}"));
            }
        }
        Err(e) => errors.push(format!("redis: {e}")),
    }
    if let Err(e) = drop_database(config).await {
        errors.push(format!("database: {e}"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

async fn drop_database(config: &Config) -> Result<(), sqlx::Error> {
    let url = config.database_url.expose_secret();
    let Some((base, db)) = url.rsplit_once('/') else {
        return Err(sqlx::Error::Configuration("no database in the URL".into()));
    };
    let mut admin = PgConnection::connect(&format!("{base}/postgres")).await?;
    let stmt = format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(stmt))
        .execute(&mut admin)
        .await?;
    admin.close().await
}
