//! Tests of Courier's sqlx-postgres patch (patches/README.md) against the shared
//! PostgreSQL: without a statement cache every statement runs unnamed in one
//! Parse/Describe/Flush + Bind/Execute/Sync unit, leaves no prepared statement behind,
//! and the connection stays in step after a statement fails to parse or is abandoned
//! half-way. (Through a real PgBouncer: tests/e2e/pgbouncer.test.mjs.)

use std::{str::FromStr, time::Duration};

use futures::FutureExt;

use super::shapes::TempDb;
use sqlx::{
    Column, ConnectOptions, Connection, SqlSafeStr, Statement,
    postgres::{PgConnectOptions, PgConnection},
};

const URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

async fn connect(url: &str, cache: usize) -> PgConnection {
    PgConnectOptions::from_str(url)
        .unwrap()
        .statement_cache_capacity(cache)
        .connect()
        .await
        .unwrap()
}

/// A parameterised statement (the extended protocol) whose answer depends on its argument.
async fn echo(conn: &mut PgConnection, n: i32) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT $1::int4 * 2")
        .bind(n)
        .fetch_one(conn)
        .await
}

/// sqlx's own `prepare()` (not a unit): the name of the statement's column.
async fn prepared_column(conn: &mut PgConnection) -> Result<String, sqlx::Error> {
    let sql = "SELECT $1::int4 * 2 AS doubled".into_sql_str();
    let statement = sqlx::Executor::prepare(conn, sql).await?;
    Ok(statement.columns()[0].name().to_string())
}

async fn named_statements(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_prepared_statements WHERE $1")
        .bind(true)
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn without_a_cache_statements_are_unnamed_units() {
    // A connection out of step with its server waits for ever: fail instead.
    tokio::time::timeout(Duration::from_secs(30), unnamed_units())
        .await
        .expect("a statement hangs: the connection is out of step with its server");
}

async fn unnamed_units() {
    let mut conn = connect(URL, 0).await;
    for n in 0..5 {
        assert_eq!(echo(&mut conn, n).await.unwrap(), n * 2);
    }
    assert_eq!(named_statements(&mut conn).await, 0);

    // An error answering the Parse (after a Flush, no Sync yet): reported, and the
    // connection reads up to the ReadyForQuery of the Sync it then owes.
    let e = sqlx::query_scalar::<_, i32>("SELECT no_such_column FROM pg_database WHERE $1")
        .bind(true)
        .fetch_one(&mut conn)
        .await
        .unwrap_err();
    let code = e
        .as_database_error()
        .and_then(|d| d.code().map(|c| c.into_owned()));
    assert_eq!(code.as_deref(), Some("42703"), "{e}");
    assert_eq!(echo(&mut conn, 21).await.unwrap(), 42);
    conn.close().await.unwrap();

    // Abandoned while waiting for the answer to Parse (which waits for a lock held by
    // another connection, so the server cannot have answered yet): the connection owes
    // the unit's Sync and its answers are still coming. The next use sends the Sync and
    // reads past them first, so even sqlx's own `prepare()` (Parse/Describe/Sync, which
    // reads the first ParseComplete it sees as its own) gets its own statement. A failed
    // abandoned statement's error may reach the next call, as in sqlx without the patch.
    let db = TempDb::new().await;
    let url = format!("postgres://postgres:postgres@127.0.0.1:5432/{}", db.name);
    let mut conn = connect(&url, 0).await;
    let mut locker = connect(&url, 100).await;
    for n in 0..6 {
        let bad = n % 2 == 1;
        let mut lock = locker.begin().await.unwrap();
        sqlx::query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *lock)
            .await
            .unwrap();
        let sql = match bad {
            true => "SELECT no_such_column FROM users WHERE $1",
            false => "SELECT count(*) AS abandoned FROM users WHERE $1",
        };
        let started = sqlx::query_scalar::<_, i64>(sql)
            .bind(true)
            .fetch_one(&mut conn);
        // Polled once (it sends Parse/Describe/Flush and waits for the answer), then dropped.
        assert!(started.now_or_never().is_none(), "answered past the lock");
        lock.commit().await.unwrap();
        let next = async {
            match prepared_column(&mut conn).await {
                Err(e) if bad => prepared_column(&mut conn)
                    .await
                    .map_err(|e2| format!("{e}, then {e2}")),
                other => other.map_err(|e| e.to_string()),
            }
        };
        assert_eq!(
            next.await.as_deref(),
            Ok("doubled"),
            "after abandoned statement {n}"
        );
        assert_eq!(echo(&mut conn, n).await.unwrap(), n * 2);
    }
    conn.close().await.unwrap();
    locker.close().await.unwrap();
}

#[tokio::test]
async fn with_a_cache_statements_are_named_and_kept() {
    // The control: sqlx's own behaviour, which `named_statements` sees.
    let mut conn = connect(URL, 100).await;
    assert_eq!(echo(&mut conn, 4).await.unwrap(), 8);
    assert!(named_statements(&mut conn).await >= 1);
    conn.close().await.unwrap();
}
