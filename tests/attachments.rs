//! Attachments against a real S3-compatible server (moto's server mode, started by
//! scripts/services.sh on 127.0.0.1:9090, or `S3_TEST_ENDPOINT`): announce, presigned
//! PUT of real bytes, send, history, presigned GET; every refusal. Each test uses a
//! bucket of its own.

mod common;

use common::{Mode, TestApp, TestUser, spawn_with, spawn_with_s3, test_config};
use serde_json::{Value, json};
use uuid::Uuid;

/// Polls `probe` until it yields `Some` (the worker applied what we wait for).
use common::poll::until;

async fn announce(app: &TestApp, user: &TestUser, name: &str, ct: &str, size: i64) -> (u16, Value) {
    app.call(
        "POST",
        "/uploads",
        Some(&user.token),
        Some(json!({"fileName": name, "contentType": ct, "size": size})),
    )
    .await
}

/// Announces and uploads `bytes`; returns the upload id.
async fn upload(app: &TestApp, user: &TestUser, name: &str, ct: &str, bytes: &[u8]) -> Uuid {
    let (s, ticket) = announce(app, user, name, ct, bytes.len() as i64).await;
    assert_eq!(s, 201, "{ticket}");
    assert_eq!(put(&ticket, bytes.to_vec()).await, 200);
    ticket["id"].as_str().unwrap().parse().unwrap()
}

/// The client's upload: one PUT of the bytes to the presigned URL with its headers.
async fn put(ticket: &Value, bytes: Vec<u8>) -> u16 {
    assert_eq!(ticket["method"], "PUT");
    let mut req = reqwest::Client::new().put(ticket["uploadUrl"].as_str().unwrap());
    for (k, v) in ticket["headers"].as_object().unwrap() {
        req = req.header(k.as_str(), v.as_str().unwrap());
    }
    req.body(bytes)
        .send()
        .await
        .expect("upload")
        .status()
        .as_u16()
}

async fn send(app: &TestApp, user: &TestUser, chat: Uuid, body: Value) -> (u16, Value) {
    let mut body = body;
    body["clientMessageId"] = json!(Uuid::new_v4());
    app.call(
        "POST",
        &format!("/chats/{chat}/messages"),
        Some(&user.token),
        Some(body),
    )
    .await
}

use common::reads::history;

fn refused(status: u16, body: &Value, what: &str) {
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(body["code"], "validation_failed", "{what}: {body}");
    assert_eq!(body["statusCode"], 400, "{what}: {body}");
}

#[tokio::test]
async fn files_go_up_through_presigned_puts_and_come_back_with_the_message() {
    let app = spawn_with_s3(Mode::AllInOne, &[]).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let chat = app.direct_chat(&alice, &bob).await;

    let (s, ticket) = announce(&app, &alice, "notes.txt", "text/plain", 11).await;
    assert_eq!(s, 201, "{ticket}");
    assert_eq!(ticket["headers"], json!({"Content-Type": "text/plain"}));
    let expires: chrono::DateTime<chrono::Utc> =
        ticket["expiresAt"].as_str().unwrap().parse().unwrap();
    assert!(expires > chrono::Utc::now() + chrono::Duration::seconds(600));
    assert_eq!(put(&ticket, b"hello world".to_vec()).await, 200);
    let notes: Uuid = ticket["id"].as_str().unwrap().parse().unwrap();
    let pixel = upload(
        &app,
        &alice,
        "dot.png",
        "image/png",
        &[0x89, b'P', b'N', b'G'],
    )
    .await;

    // Attachments only: the content may be left out. Order is the send's.
    let (s, r) = send(&app, &alice, chat, json!({"attachments": [pixel, notes]})).await;
    assert_eq!(s, 202, "{r}");
    let m = until("the message in bob's history", || async {
        history(&app, &bob, chat).await.pop()
    })
    .await;
    assert_eq!(m["content"], "");
    let atts = m["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 2, "{m}");
    assert_eq!(atts[0]["id"], json!(pixel));
    assert_eq!(atts[0]["fileName"], "dot.png");
    assert_eq!(atts[1]["id"], json!(notes));
    assert_eq!(atts[1]["fileName"], "notes.txt");
    assert_eq!(atts[1]["contentType"], "text/plain");
    assert_eq!(atts[1]["size"], 11);

    // The url is a presigned GET of the very bytes.
    let got = reqwest::get(atts[1]["url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "text/plain");
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"hello world");
    let url = atts[1]["url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert!(url.contains("X-Amz-Expires=3600"), "{url}");

    // With content too; the upload is confirmed once found in storage.
    let (s, r) = send(
        &app,
        &alice,
        chat,
        json!({"content": " look ", "attachments": [notes]}),
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let m2 = until("the second message", || async {
        history(&app, &alice, chat)
            .await
            .into_iter()
            .find(|m| m["content"] == "look")
    })
    .await;
    assert_eq!(m2["attachments"][0]["id"], json!(notes));
    let confirmed: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT confirmed_at FROM uploads WHERE id = $1")
            .bind(notes)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(confirmed.is_some());

    // A tombstone carries no attachments.
    let id = m["id"].as_str().unwrap();
    let (s, r) = app
        .call(
            "DELETE",
            &format!("/chats/{chat}/messages/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(s, 202, "{r}");
    let tomb = until("the tombstone", || async {
        history(&app, &bob, chat)
            .await
            .into_iter()
            .find(|x| x["id"] == m["id"] && !x["deletedAt"].is_null())
    })
    .await;
    assert_eq!(tomb["attachments"], json!([]));
}

#[tokio::test]
async fn announcements_outside_the_limits_are_refused() {
    let app = spawn_with_s3(Mode::AllInOne, &[]).await;
    let alice = app.register("alice").await;
    for (name, ct, size, what) in [
        (
            "big.bin",
            "application/zip",
            26_214_401,
            "over UPLOAD_MAX_BYTES",
        ),
        ("empty.txt", "text/plain", 0, "empty"),
        ("neg.txt", "text/plain", -5, "negative size"),
        (
            "setup.exe",
            "application/x-msdownload",
            10,
            "type not allowed",
        ),
        ("x", "not a type", 10, "not a media type"),
        ("../../etc/passwd", "text/plain", 10, "path separator"),
        ("a\\b.txt", "text/plain", 10, "backslash"),
        ("a\u{0}b.txt", "text/plain", 10, "NUL"),
        ("   ", "text/plain", 10, "blank name"),
    ] {
        let (s, body) = announce(&app, &alice, name, ct, size).await;
        refused(s, &body, what);
    }
    let (s, body) = announce(&app, &alice, &"n".repeat(256), "text/plain", 1).await;
    refused(s, &body, "long name");
    let (s, ok) = announce(&app, &alice, "max.zip", "application/zip", 26_214_400).await;
    assert_eq!(s, 201, "the limit itself is allowed: {ok}");
    let (s, body) = app
        .call(
            "POST",
            "/uploads",
            None,
            Some(json!({"fileName": "a", "contentType": "text/plain", "size": 1})),
        )
        .await;
    assert_eq!((s, body["code"].as_str()), (401, Some("unauthorized")));
    let (s, body) = app
        .call(
            "POST",
            "/uploads",
            Some(&alice.token),
            Some(json!({"fileName": "a"})),
        )
        .await;
    refused(s, &body, "missing fields");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM uploads")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "only the accepted announcement is recorded");
}

#[tokio::test]
async fn sends_naming_unusable_uploads_are_refused_and_nothing_is_sent() {
    let app = spawn_with_s3(Mode::AllInOne, &[]).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let chat = app.direct_chat(&alice, &bob).await;
    let mine = upload(&app, &alice, "a.txt", "text/plain", b"abc").await;
    let bobs = upload(&app, &bob, "b.txt", "text/plain", b"bob's").await;
    let (s, pending) = announce(&app, &alice, "later.txt", "text/plain", 4).await;
    assert_eq!(s, 201);
    let pending: Uuid = pending["id"].as_str().unwrap().parse().unwrap();
    let (s, short) = announce(&app, &alice, "short.txt", "text/plain", 10).await;
    assert_eq!(s, 201);
    assert_eq!(put(&short, b"12345".to_vec()).await, 200);
    let short: Uuid = short["id"].as_str().unwrap().parse().unwrap();
    let eleven: Vec<Uuid> = std::iter::repeat_n(mine, 1)
        .chain((0..10).map(|_| Uuid::new_v4()))
        .collect();

    for (attachments, what, needle) in [
        (
            json!([bobs]),
            "someone else's upload",
            "not an upload of yours",
        ),
        (
            json!([Uuid::new_v4()]),
            "unknown id",
            "not an upload of yours",
        ),
        (
            json!([pending]),
            "announced, never uploaded",
            "not been uploaded",
        ),
        (json!([short]), "size differs", "not the 10 announced"),
        (json!(eleven), "more than 10", "at most 10"),
        (json!([mine, mine]), "the same upload twice", "twice"),
        (
            json!([mine, bobs]),
            "one bad among good ones",
            "not an upload of yours",
        ),
        (json!(["not-a-uuid"]), "not an id", ""),
    ] {
        let (s, body) = send(
            &app,
            &alice,
            chat,
            json!({"content": "x", "attachments": attachments}),
        )
        .await;
        refused(s, &body, what);
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{what}: {body}"
        );
    }
    let (s, body) = send(&app, &alice, chat, json!({"attachments": []})).await;
    refused(s, &body, "no content and no attachment");

    // What was refused never reached the partition: the next send is the chat's first.
    let (s, r) = send(
        &app,
        &alice,
        chat,
        json!({"content": "ok", "attachments": [mine]}),
    )
    .await;
    assert_eq!(s, 202, "{r}");
    app.wait_messages(chat, 1).await;
    assert_eq!(app.sequences(chat).await, [1]);
    let m = history(&app, &bob, chat).await.pop().unwrap();
    assert_eq!(m["content"], "ok");
    assert_eq!(m["attachments"][0]["id"], json!(mine));
}

#[tokio::test]
async fn attachments_are_off_without_a_bucket() {
    let app = spawn_with(Mode::AllInOne, test_config(&[])).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let chat = app.direct_chat(&alice, &bob).await;
    let (s, body) = announce(&app, &alice, "a.txt", "text/plain", 3).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("not configured"),
        "{body}"
    );
    let (s, body) = send(
        &app,
        &alice,
        chat,
        json!({"content": "x", "attachments": [Uuid::new_v4()]}),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    // Plain messages are unaffected and carry an empty list.
    let (s, _) = send(&app, &alice, chat, json!({"content": "plain"})).await;
    assert_eq!(s, 202);
    app.wait_messages(chat, 1).await;
    assert_eq!(history(&app, &bob, chat).await[0]["attachments"], json!([]));
}
