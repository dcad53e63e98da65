//! scripts/import-chat-be.sql on a small fixture of the reference backend's tables (as
//! its TypeORM migrations create them): users, chats, participants and messages land
//! in Courier's tables, imported users sign in with their old password, and history
//! reads in order through the chat-be profile.

mod common;

use common::{Mode, spawn_with, test_config};
use serde_json::json;
use uuid::Uuid;

/// The reference backend's tables (its migrations 1622299665807 and 1771078098289/679).
const REFERENCE_SCHEMA: &str = r#"
CREATE SCHEMA chat_be;
CREATE TYPE chat_be.users_role_enum AS ENUM ('VISITOR', 'AGENT');
CREATE TYPE chat_be.chat_messages_message_type_enum AS ENUM ('TEXT', 'ATTACHMENT', 'MIXED');
CREATE TYPE chat_be.chat_messages_status_enum AS ENUM ('SENT');
CREATE TABLE chat_be.users (
    id uuid PRIMARY KEY, created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(),
    role chat_be.users_role_enum NOT NULL DEFAULT 'VISITOR',
    email varchar NOT NULL UNIQUE, password varchar NOT NULL);
CREATE TABLE chat_be.chats (
    id uuid PRIMARY KEY, created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(), name varchar,
    is_group boolean NOT NULL DEFAULT false);
CREATE TABLE chat_be.chat_participants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(),
    chat_id uuid NOT NULL REFERENCES chat_be.chats(id), user_id uuid NOT NULL REFERENCES chat_be.users(id),
    UNIQUE (chat_id, user_id));
CREATE TABLE chat_be.chat_messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(),
    chat_id uuid NOT NULL REFERENCES chat_be.chats(id), sender_id uuid NOT NULL REFERENCES chat_be.users(id),
    content varchar, message_type chat_be.chat_messages_message_type_enum NOT NULL,
    status chat_be.chat_messages_status_enum NOT NULL, sequence bigint NOT NULL,
    broker_message_id varchar NOT NULL UNIQUE, sent_at timestamp NOT NULL,
    client_message_id varchar, UNIQUE (chat_id, sequence));
"#;

const IMPORT: &str = include_str!("../scripts/import-chat-be.sql");

#[tokio::test]
async fn the_reference_tables_import_and_read_back() {
    let app = spawn_with(Mode::AllInOne, test_config(&[("API_COMPAT", "chat-be")])).await;
    sqlx::raw_sql(REFERENCE_SCHEMA)
        .execute(&app.pool)
        .await
        .unwrap();
    let hash = bcrypt::hash("old-secret", 4).unwrap();
    let (ann, ann2, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for (id, email, role) in [
        (ann, "Ann@Example.com", "AGENT"),
        (ann2, "ann@other.org", "VISITOR"),
        (bob, "bob@example.com", "VISITOR"),
    ] {
        sqlx::query("INSERT INTO chat_be.users (id, email, password, role, created_at) VALUES ($1, $2, $3, $4::chat_be.users_role_enum, now() - interval '1 day')")
            .bind(id).bind(email).bind(&hash).bind(role)
            .execute(&app.pool).await.unwrap();
    }
    let (direct, group) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query(
        "INSERT INTO chat_be.chats (id, is_group, name) VALUES ($1, false, NULL), ($2, true, NULL)",
    )
    .bind(direct)
    .bind(group)
    .execute(&app.pool)
    .await
    .unwrap();
    for (chat, user) in [
        (direct, ann),
        (direct, bob),
        (group, bob),
        (group, ann),
        (group, ann2),
    ] {
        sqlx::query("INSERT INTO chat_be.chat_participants (chat_id, user_id, created_at) VALUES ($1, $2, clock_timestamp())")
            .bind(chat).bind(user).execute(&app.pool).await.unwrap();
    }
    let dup = Uuid::new_v4().to_string();
    // Gapped reference sequences, a repeated client id, a non-UUID client id.
    for (chat, sender, seq, content, cid) in [
        (direct, ann, 1, Some("hello"), Some(dup.as_str())),
        (direct, bob, 5, Some("hi ann"), Some(dup.as_str())),
        (direct, ann, 7, None, Some("not-a-uuid")),
        (direct, ann, 9, Some("third"), Some(dup.as_str())),
        (group, bob, 3, Some("team"), None),
    ] {
        sqlx::query("INSERT INTO chat_be.chat_messages (chat_id, sender_id, sequence, content, client_message_id, message_type, status, broker_message_id, sent_at)
                     VALUES ($1, $2, $3, $4, $5, 'TEXT', 'SENT', gen_random_uuid()::text, now() - interval '1 hour' + $3 * interval '1 second')")
            .bind(chat).bind(sender).bind(seq).bind(content).bind(cid)
            .execute(&app.pool).await.unwrap();
    }

    sqlx::raw_sql(IMPORT).execute(&app.pool).await.unwrap();
    // Idempotent: a second run adds nothing.
    sqlx::raw_sql(IMPORT).execute(&app.pool).await.unwrap();

    let users: Vec<(Uuid, String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, username, email, legacy_role FROM users ORDER BY email")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(users.len(), 3, "{users:?}");
    let by_id = |id| users.iter().find(|u| u.0 == id).unwrap();
    assert_eq!(by_id(ann).2.as_deref(), Some("ann@example.com"));
    assert_eq!(by_id(ann).3.as_deref(), Some("AGENT"));
    assert_ne!(by_id(ann).1, by_id(ann2).1, "usernames stay unique");
    assert!([&by_id(ann).1, &by_id(ann2).1].contains(&&"ann".to_string()));
    assert_eq!(by_id(bob).1, "bob");

    let chats: Vec<(Uuid, String, Option<String>, i64, Uuid)> = sqlx::query_as(
        "SELECT id, type, title, last_sequence, created_by FROM chats ORDER BY type",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(chats[0], (direct, "direct".into(), None, 4, ann));
    assert_eq!(
        chats[1],
        (group, "group".into(), Some("Chat".into()), 1, bob)
    );
    let seqs: Vec<(i64, String)> = sqlx::query_as(
        "SELECT sequence, content FROM messages WHERE chat_id = $1 ORDER BY sequence",
    )
    .bind(direct)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let want = [(1, "hello"), (2, "hi ann"), (3, ""), (4, "third")];
    assert_eq!(seqs, want.map(|(s, c)| (s, c.to_string())));
    let owner: String = sqlx::query_scalar(
        "SELECT role FROM chat_participants WHERE chat_id = $1 AND user_id = $2",
    )
    .bind(group)
    .bind(bob)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(owner, "owner");

    // The imported user signs in with the old password; history reads in order.
    let creds = json!({"email": "ann@example.com", "password": "old-secret"});
    let (s, login) = app.call("POST", "/auth/login", None, Some(creds)).await;
    assert_eq!(s, 200, "{login}");
    let token = login["data"]["accessToken"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/chats/{direct}/messages?take=3&order=DESC");
    let (s, page) = app.call("GET", &path, Some(&token), None).await;
    assert_eq!(s, 200, "{page}");
    let contents: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["third", "", "hi ann"]);
    assert_eq!(page["meta"]["itemCount"], 4);
    let (s, rooms) = app.call("GET", "/chats/room-ids", Some(&token), None).await;
    assert_eq!(
        (s, rooms["data"].as_array().unwrap().len()),
        (200, 2),
        "{rooms}"
    );
    // A new message continues the imported sequence.
    let (s, _) = app
        .call(
            "POST",
            &format!("/chats/{direct}/messages"),
            Some(&token),
            Some(json!({"content": "after import"})),
        )
        .await;
    assert_eq!(s, 202);
    app.wait_messages(direct, 5).await;
    assert_eq!(app.sequences(direct).await, vec![1, 2, 3, 4, 5]);
}
