//! Account deletion against real services (PostgreSQL, Redis, RabbitMQ, the S3 stand-in
//! on 127.0.0.1:9090 or `S3_TEST_ENDPOINT`): the password check, sessions revoked,
//! groups left (`chat.updated`, `member.removed`), messages kept from "Deleted user",
//! direct chats closed, uploads gone from storage, and the username hold.

mod common;

use common::{
    Mode, PASSWORD, TestApp, TestUser, probe::Probe, reads::history, spawn_with, spawn_with_s3,
    test_config,
};
use futures::StreamExt;
use lapin::Consumer;
use serde_json::{Value, json};
use uuid::Uuid;

/// Announces and PUTs a small file; returns the upload id.
async fn upload(app: &TestApp, user: &TestUser) -> Uuid {
    let body = json!({"fileName": "notes.txt", "contentType": "text/plain", "size": 5});
    let (s, ticket) = app
        .call("POST", "/uploads", Some(&user.token), Some(body))
        .await;
    assert_eq!(s, 201, "{ticket}");
    let put = reqwest::Client::new()
        .put(ticket["uploadUrl"].as_str().unwrap())
        .header("Content-Type", "text/plain")
        .body(b"hello".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    ticket["id"].as_str().unwrap().parse().unwrap()
}

/// The body of the next integration event with routing key `key`.
async fn next_event(consumer: &mut Consumer, key: &str) -> Value {
    let wait = async {
        while let Some(d) = consumer.next().await {
            let d = d.unwrap();
            if d.routing_key.as_str() == key {
                return serde_json::from_slice::<Value>(&d.data).unwrap();
            }
        }
        panic!("the consumer closed");
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), wait)
        .await
        .expect("the integration event within 10 s")
}

async fn delete_me(app: &TestApp, user: &TestUser, body: Option<Value>) -> (u16, Value) {
    app.call("DELETE", "/users/me", Some(&user.token), body)
        .await
}

async fn login(app: &TestApp, username: &str, password: &str) -> (u16, Value) {
    let body = json!({"username": username, "password": password});
    app.call("POST", "/auth/login", None, Some(body)).await
}

fn code(r: &(u16, Value)) -> (u16, &str) {
    (r.0, r.1["code"].as_str().unwrap_or(""))
}

#[tokio::test]
async fn deleting_an_account_keeps_its_messages_and_closes_everything_else() {
    let app = spawn_with_s3(Mode::AllInOne, &[]).await;
    let (alice, bob, carol) = (
        app.register("alice").await,
        app.register("bob").await,
        app.register("carol").await,
    );
    let group = app.group_chat(&bob, &[&alice, &carol]).await;
    let direct = app.direct_chat(&alice, &bob).await;
    let file = upload(&app, &alice).await;
    let with_file =
        json!({"content": "see file", "attachments": [file], "clientMessageId": Uuid::new_v4()});
    let path = format!("/chats/{group}/messages");
    let r = app
        .call("POST", &path, Some(&alice.token), Some(with_file))
        .await;
    assert_eq!(r.0, 202, "{}", r.1);
    assert_eq!(
        app.send(&alice, direct, "hi bob", Uuid::new_v4()).await.0,
        202
    );
    app.wait_messages(group, 1).await;
    app.wait_messages(direct, 1).await;
    let storage = courier::storage::Storage::new(&app.config.uploads).unwrap();
    let object = courier::storage::object_key(file);
    assert_eq!(storage.size(&object).await.unwrap(), Some(5));
    let (_amqp, mut events) = app.integration_events("#", true).await;
    let mut probe = Probe::new(&app, &[&bob]).await;

    // Refused without a body or with a wrong password; nothing changes.
    let bare = delete_me(&app, &alice, None).await;
    assert_eq!(code(&bare), (400, "validation_failed"), "{}", bare.1);
    assert_eq!(bare.1["statusCode"], 400);
    let empty = delete_me(&app, &alice, Some(json!({}))).await;
    assert_eq!(code(&empty).0, 400, "{}", empty.1);
    let wrong = delete_me(&app, &alice, Some(json!({"password": "not-it-1234"}))).await;
    assert_eq!(code(&wrong), (401, "unauthorized"));
    assert_eq!(
        app.call("GET", "/users/me", Some(&alice.token), None)
            .await
            .0,
        200
    );

    let r = delete_me(&app, &alice, Some(json!({"password": PASSWORD}))).await;
    assert_eq!(r.0, 204, "{}", r.1);

    // Every session is closed; the account is no one to log in as.
    let me = app.call("GET", "/users/me", Some(&alice.token), None).await;
    assert_eq!(code(&me), (401, "session_revoked"));
    let refresh = json!({"refreshToken": alice.refresh});
    let r = app.call("POST", "/auth/refresh", None, Some(refresh)).await;
    assert_eq!(code(&r), (401, "unauthorized"));
    let unknown = login(&app, "nobody_here", PASSWORD).await;
    let r = login(&app, &alice.username, PASSWORD).await;
    assert_eq!(
        (code(&r), &r.1["message"]),
        (code(&unknown), &unknown.1["message"])
    );

    // The group is left, announced to the others and on the integration exchange.
    let removed = next_event(&mut events, "member.removed").await;
    assert_eq!(
        (&removed["chatId"], &removed["data"]["userId"]),
        (&json!(group), &json!(alice.id))
    );
    let (to, updated) = probe.next("chat.updated").await;
    let updated: Value = serde_json::from_str(updated.data.get()).unwrap();
    assert_eq!((to, &updated["chat"]["id"]), (bob.id, &json!(group)));
    let ids: Vec<&Value> = updated["chat"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["userId"])
        .collect();
    assert!(!ids.contains(&&json!(alice.id)), "{updated}");

    // Its messages stay, from "Deleted user"; the attachment is gone with the upload.
    let m = history(&app, &carol, group)
        .await
        .pop()
        .expect("the message");
    assert_eq!(
        (&m["senderId"], &m["content"]),
        (&json!(alice.id), &json!("see file"))
    );
    assert_eq!(m["attachments"], json!([]));
    let (s, u) = app
        .call(
            "GET",
            &format!("/users/{}", alice.id),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!((s, &u["displayName"]), (200, &json!("Deleted user")));
    assert_eq!(
        storage.size(&object).await.unwrap(),
        None,
        "gone from storage"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM uploads WHERE owner_id = $1")
        .bind(alice.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);

    // The direct chat stays readable and refuses sends; nobody adds the account again.
    let m = history(&app, &bob, direct)
        .await
        .pop()
        .expect("the direct message");
    assert_eq!(m["senderId"], json!(alice.id));
    let r = app
        .send(&bob, direct, "are you there?", Uuid::new_v4())
        .await;
    assert_eq!(code(&r), (403, "blocked"));
    let add = json!({"userIds": [alice.id]});
    let r = app
        .call(
            "POST",
            &format!("/chats/{group}/participants"),
            Some(&bob.token),
            Some(add),
        )
        .await;
    assert_eq!(code(&r), (400, "validation_failed"));
    let new = json!({"type": "direct", "participantIds": [alice.id]});
    let r = app
        .call("POST", "/chats", Some(&carol.token), Some(new))
        .await;
    assert_eq!(code(&r), (400, "validation_failed"));

    // Within the hold (30 days by default) the username stays taken.
    let again = json!({"username": alice.username, "password": PASSWORD});
    let r = app.call("POST", "/auth/register", None, Some(again)).await;
    assert_eq!(code(&r), (409, "conflict"));
}

#[tokio::test]
async fn the_username_is_free_again_after_the_hold() {
    let app = spawn_with_s3(Mode::AllInOne, &[("ACCOUNT_USERNAME_HOLD", "0")]).await;
    let alice = app.register("alice").await;
    let r = delete_me(&app, &alice, Some(json!({"password": PASSWORD}))).await;
    assert_eq!(r.0, 204, "{}", r.1);

    let again = json!({"username": alice.username, "password": "another-pass-1"});
    let (s, body) = app.call("POST", "/auth/register", None, Some(again)).await;
    assert_eq!(s, 201, "{body}");
    assert_ne!(body["user"]["id"], json!(alice.id), "a new account");
    assert_eq!(login(&app, &alice.username, "another-pass-1").await.0, 200);
    let (s, old) = app
        .call(
            "GET",
            &format!("/users/{}", alice.id),
            Some(body["accessToken"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let renamed = old["username"].as_str().unwrap();
    assert!(
        renamed.starts_with("deleted-") && renamed.len() == 32,
        "{old}"
    );
    assert_eq!(old["displayName"], "Deleted user");

    // Those names are reserved.
    let taken = json!({"username": "deleted-0123", "password": PASSWORD});
    let r = app.call("POST", "/auth/register", None, Some(taken)).await;
    assert_eq!(code(&r), (409, "conflict"));
}

#[tokio::test]
async fn a_password_change_spends_the_other_sessions_refresh_tokens() {
    let app = spawn_with_s3(Mode::AllInOne, &[]).await;
    let u = app.register("pw").await;
    let (s, other) = login(&app, &u.username, PASSWORD).await;
    assert_eq!(s, 200, "{other}");
    let change = json!({"currentPassword": PASSWORD, "newPassword": "another-pass-1"});
    let r = app
        .call("POST", "/auth/password", Some(&u.token), Some(change))
        .await;
    assert_eq!(r.0, 204, "{}", r.1);
    let refresh = json!({"refreshToken": other["refreshToken"]});
    let r = app.call("POST", "/auth/refresh", None, Some(refresh)).await;
    assert_eq!(code(&r), (401, "unauthorized"));
    let mine = json!({"refreshToken": u.refresh});
    let r = app.call("POST", "/auth/refresh", None, Some(mine)).await;
    assert_eq!(r.0, 200, "the caller's session keeps working: {}", r.1);
}

#[tokio::test]
async fn a_storage_failure_leaves_the_account_untouched() {
    // Storage that refuses connections: deleting the upload's object fails.
    let cfg = test_config(&[
        ("S3_ENDPOINT", "http://127.0.0.1:1"),
        ("S3_BUCKET", "unreachable"),
        ("S3_REGION", "us-east-1"),
        ("S3_ACCESS_KEY_ID", "test"),
        ("S3_SECRET_ACCESS_KEY", "test-secret"),
    ]);
    let app = spawn_with(Mode::AllInOne, cfg).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let group = app.group_chat(&bob, &[&alice]).await;
    let upload = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO uploads (id, owner_id, file_name, content_type, size, object_key)
         VALUES ($1, $2, 'a.txt', 'text/plain', 1, $3)",
    )
    .bind(upload)
    .bind(alice.id)
    .bind(courier::storage::object_key(upload))
    .execute(&app.pool)
    .await
    .unwrap();

    let r = delete_me(&app, &alice, Some(json!({"password": PASSWORD}))).await;
    assert_eq!(code(&r), (503, "unavailable"), "{}", r.1);

    // Nothing was written: same name, still in the group, the upload row, sessions.
    let (s, me) = app.call("GET", "/users/me", Some(&alice.token), None).await;
    assert_eq!(s, 200, "{me}");
    assert_ne!(me["displayName"], "Deleted user");
    let (_, chat) = app
        .call("GET", &format!("/chats/{group}"), Some(&bob.token), None)
        .await;
    let members: Vec<&Value> = chat["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["userId"])
        .collect();
    assert!(members.contains(&&json!(alice.id)), "{chat}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM uploads WHERE id = $1")
        .bind(upload)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(login(&app, &alice.username, PASSWORD).await.0, 200);
}
