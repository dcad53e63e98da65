//! Tests of Courier's sqlx-postgres patch (patches/README.md) against the shared
//! PostgreSQL: without a statement cache every statement runs unnamed in one
//! Parse/Describe/Flush + Bind/Execute/Sync unit, leaves no prepared statement behind,
//! and the connection stays in step after a statement fails to parse or is abandoned
//! half-way. (Through a real PgBouncer: tests/e2e/pgbouncer.test.mjs.)

use std::{str::FromStr, time::Duration};

use sqlx::{
    ConnectOptions, Connection,
    postgres::{PgConnectOptions, PgConnection},
};

const URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

async fn connect(cache: usize) -> PgConnection {
    PgConnectOptions::from_str(URL)
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
    let mut conn = connect(0).await;
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

    // Abandoned while waiting for the answer to Parse: the Sync it owes is sent first,
    // so the next statement is not swallowed by a server skipping to a Sync after an
    // error (it would hang) and gets its own answer. A failed abandoned statement's
    // error may reach the next call, as in sqlx without the patch; the one after is clean.
    let mut abandoned = 0;
    for n in 0..20 {
        let bad = n % 2 == 1;
        let started = async {
            match bad {
                true => {
                    sqlx::query_scalar::<_, i32>("SELECT no_such_column FROM pg_database WHERE $1")
                        .bind(true)
                        .fetch_one(&mut conn)
                        .await
                        .map(|_| ())
                }
                false => echo(&mut conn, -1).await.map(|_| ()),
            }
        };
        abandoned += usize::from(tokio::time::timeout(Duration::ZERO, started).await.is_err());
        let next = async {
            match echo(&mut conn, n).await {
                Err(e) if bad => echo(&mut conn, n)
                    .await
                    .map_err(|e2| format!("{e}, then {e2}")),
                other => other.map_err(|e| e.to_string()),
            }
        };
        assert_eq!(next.await, Ok(n * 2));
    }
    assert!(abandoned > 0, "no statement was abandoned half-way");
    assert_eq!(named_statements(&mut conn).await, 0);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn with_a_cache_statements_are_named_and_kept() {
    // The control: sqlx's own behaviour, which `named_statements` sees.
    let mut conn = connect(100).await;
    assert_eq!(echo(&mut conn, 4).await.unwrap(), 8);
    assert!(named_statements(&mut conn).await >= 1);
    conn.close().await.unwrap();
}
