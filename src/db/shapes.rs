//! Tests of the statements that come in several static shapes (history's cursor, the
//! compatibility pages' direction, notifications' start), against a database of their
//! own, migrated, and dropped by a guard even when a test fails.

use sqlx::{Connection, Executor, PgPool, postgres::PgConnection};
use uuid::Uuid;

use super::{compat, history, history::Cursor, notifications, notifications::Before};

const ADMIN_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

/// A migrated database, dropped (connections and all) when the guard goes (also used
/// by `unnamed.rs`).
pub(super) struct TempDb {
    pub(super) name: String,
    pool: PgPool,
}

impl TempDb {
    pub(super) async fn new() -> Self {
        let name = format!("courier_test_shapes_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(ADMIN_URL).await.unwrap();
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .unwrap();
        admin.close().await.unwrap();
        let url = format!("postgres://postgres:postgres@127.0.0.1:5432/{name}");
        let pool = PgPool::connect(&url).await.unwrap();
        super::MIGRATOR.run(&pool).await.unwrap();
        Self { name, pool }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Its own runtime on its own thread: Drop cannot await on the test's.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut admin = PgConnection::connect(ADMIN_URL).await?;
                let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                admin.execute(sqlx::AssertSqlSafe(drop)).await?;
                admin.close().await
            })
            .map_err(std::io::Error::other)
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

fn id(n: u32) -> Uuid {
    Uuid::from_u128(0x1000 + u128::from(n))
}

/// Users 1-3 (created a day apart, oldest first); chats 10-12 of user 1, active in
/// the order 11, 12, 10; five messages in chat 10 (sequences 1-5).
async fn fill(pool: &PgPool) {
    let sql = format!(
        "INSERT INTO users (id, username, password_hash, created_at) VALUES
           ('{u1}', 'u1', 'h', now() - interval '3 days'),
           ('{u2}', 'u2', 'h', now() - interval '2 days'),
           ('{u3}', 'u3', 'h', now() - interval '1 day');
         INSERT INTO chats (id, type, title, created_by, created_at, last_message_at) VALUES
           ('{c10}', 'group', 'a', '{u1}', now() - interval '9 days', now() - interval '3 hours'),
           ('{c11}', 'group', 'b', '{u1}', now() - interval '8 days', now() - interval '5 hours'),
           ('{c12}', 'group', 'c', '{u1}', now() - interval '7 days', now() - interval '4 hours');
         INSERT INTO chat_participants (chat_id, user_id, role) VALUES
           ('{c10}', '{u1}', 'owner'), ('{c11}', '{u1}', 'owner'), ('{c12}', '{u1}', 'owner');
         INSERT INTO messages (id, chat_id, sender_id, client_message_id, broker_message_id,
                               content, sequence)
         SELECT gen_random_uuid(), '{c10}', '{u1}', gen_random_uuid(), gen_random_uuid(),
                'm' || s, s
         FROM generate_series(1, 5) s;
         INSERT INTO notifications (id, user_id, type, chat_id, message_id, sender_id, excerpt,
                                    created_at)
         SELECT gen_random_uuid(), '{u1}', 'mention', '{c10}', m.id, '{u1}', m.content,
                now() - (6 - m.sequence) * interval '1 minute'
         FROM messages m ORDER BY m.sequence;",
        u1 = id(1),
        u2 = id(2),
        u3 = id(3),
        c10 = id(10),
        c11 = id(11),
        c12 = id(12),
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .unwrap();
}

async fn sequences(pool: &PgPool, cursor: Cursor, limit: i64) -> (Vec<i64>, bool) {
    let (page, more) = history::history(pool, id(1), id(10), cursor, limit)
        .await
        .unwrap();
    (page.iter().map(|m| m.sequence).collect(), more)
}

#[tokio::test]
async fn history_reads_back_from_the_newest_and_from_a_cursor_both_ways() {
    let db = TempDb::new().await;
    fill(&db.pool).await;
    let p = &db.pool;
    assert_eq!(sequences(p, Cursor::Newest, 2).await, (vec![4, 5], true));
    assert_eq!(
        sequences(p, Cursor::Newest, 5).await,
        (vec![1, 2, 3, 4, 5], false)
    );
    assert_eq!(sequences(p, Cursor::Before(4), 2).await, (vec![2, 3], true));
    assert_eq!(sequences(p, Cursor::Before(2), 2).await, (vec![1], false));
    assert_eq!(sequences(p, Cursor::After(1), 2).await, (vec![2, 3], true));
    assert_eq!(sequences(p, Cursor::After(3), 5).await, (vec![4, 5], false));
}

#[tokio::test]
async fn compatibility_pages_go_both_directions() {
    let db = TempDb::new().await;
    fill(&db.pool).await;
    let p = &db.pool;
    let users = |page: Vec<compat::Account>| page.iter().map(|a| a.id).collect::<Vec<_>>();
    let (asc, total) = compat::users_page(p, 0, 2, false).await.unwrap();
    assert_eq!((users(asc), total), (vec![id(1), id(2)], 3));
    let (desc, _) = compat::users_page(p, 1, 2, true).await.unwrap();
    assert_eq!(users(desc), vec![id(2), id(1)]);

    let chats = |page: Vec<serde_json::Value>| -> Vec<String> {
        page.iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (asc, total) = compat::chat_page(p, id(1), 0, 3, false).await.unwrap();
    let order: Vec<String> = [11, 12, 10].map(|n| id(n).to_string()).into();
    assert_eq!((chats(asc), total), (order.clone(), 3));
    let (desc, _) = compat::chat_page(p, id(1), 0, 2, true).await.unwrap();
    assert_eq!(chats(desc), vec![order[2].clone(), order[1].clone()]);
}

#[tokio::test]
async fn notifications_start_at_the_newest_an_id_or_a_time() {
    let db = TempDb::new().await;
    fill(&db.pool).await;
    let p = &db.pool;
    let list = |before| notifications::list(p, id(1), false, before, 2);
    let excerpts = |page: Vec<crate::domain::mention::Notification>| {
        page.into_iter().map(|n| n.excerpt).collect::<Vec<_>>()
    };
    let (newest, more) = list(Before::Newest).await.unwrap();
    let after_id = newest[1].id;
    assert_eq!(
        (excerpts(newest), more),
        (vec!["m5".into(), "m4".into()], true)
    );
    let (older, more) = list(Before::Id(after_id)).await.unwrap();
    assert_eq!(
        (excerpts(older), more),
        (vec!["m3".into(), "m2".into()], true)
    );
    let m2_time = chrono::Utc::now() - chrono::Duration::seconds(270);
    let (oldest, more) = list(Before::Time(m2_time)).await.unwrap();
    assert_eq!((excerpts(oldest), more), (vec!["m1".into()], false));
}
