//! Message lifecycle over REST against real services: edit, delete, replies, forward,
//! reactions and pins — every permission and error code, and exactly-once application.

mod common;

use common::{TestApp, TestUser, spawn_app};
use serde_json::{Value, json};
use uuid::Uuid;

/// Polls `probe` until it yields `Some` (the worker applied what we wait for).
use common::poll::until;

/// Sends and waits until stored; returns the message as the history shows it to `user`.
async fn sent(app: &TestApp, user: &TestUser, chat: Uuid, body: Value) -> Value {
    let client = Uuid::new_v4();
    let mut body = body;
    body["clientMessageId"] = json!(client);
    let (s, r) = app
        .call(
            "POST",
            &format!("/chats/{chat}/messages"),
            Some(&user.token),
            Some(body),
        )
        .await;
    assert_eq!(s, 202, "{r}");
    until("the message", || async {
        history(app, user, chat)
            .await
            .into_iter()
            .find(|m| m["clientMessageId"] == json!(client))
    })
    .await
}

use common::reads::history;

/// The message as `user` sees it now, once `ready` holds for it.
async fn message_when(
    app: &TestApp,
    user: &TestUser,
    chat: Uuid,
    id: &Value,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    until(what, || async {
        history(app, user, chat)
            .await
            .into_iter()
            .find(|m| m["id"] == *id && ready(m))
    })
    .await
}

fn code(r: &(u16, Value)) -> (u16, &str) {
    (r.0, r.1["code"].as_str().unwrap_or(""))
}

#[tokio::test]
async fn edits_follow_the_rules_and_show_in_history() {
    let app = spawn_app().await;
    let (a, b, outsider) = (
        app.register("a").await,
        app.register("b").await,
        app.register("o").await,
    );
    let chat = app.direct_chat(&a, &b).await;
    let m = sent(&app, &a, chat, json!({"content": "draft"})).await;
    assert_eq!(m["editedAt"], Value::Null);
    let id = m["id"].as_str().unwrap();
    let path = format!("/chats/{chat}/messages/{id}");
    let edit = |t: &TestUser, c: &str| {
        let token = t.token.clone();
        let body = json!({ "content": c });
        let (app, path) = (&app, &path);
        async move { app.call("PATCH", path, Some(&token), Some(body)).await }
    };
    assert_eq!(code(&edit(&b, "hijack").await), (403, "forbidden"));
    assert_eq!(code(&edit(&outsider, "x").await), (403, "forbidden"));
    assert_eq!(code(&edit(&a, "   ").await), (400, "validation_failed"));
    let r = app
        .call("PATCH", &path, None, Some(json!({"content": "x"})))
        .await;
    assert_eq!(code(&r), (401, "unauthorized"));
    let other = format!("/chats/{chat}/messages/{}", Uuid::new_v4());
    let r = app
        .call(
            "PATCH",
            &other,
            Some(&a.token),
            Some(json!({"content": "x"})),
        )
        .await;
    assert_eq!(code(&r), (404, "not_found"));
    let r = edit(&a, "final").await;
    assert_eq!(r.0, 202, "{}", r.1);
    assert!(r.1["brokerMessageId"].is_string());
    let shown = message_when(&app, &b, chat, &m["id"], "the edit", |m| {
        m["content"] == "final"
    })
    .await;
    assert!(shown["editedAt"].is_string());
    assert_eq!(
        shown["sequence"], m["sequence"],
        "an edit keeps the sequence"
    );

    // Past the window: 403 edit_window_closed.
    sqlx::query("UPDATE messages SET sent_at = now() - interval '2 days' WHERE id = $1::uuid")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        code(&edit(&a, "too late").await),
        (403, "edit_window_closed")
    );
}

#[tokio::test]
async fn deletes_leave_tombstones_and_follow_roles() {
    let app = spawn_app().await;
    let (owner, admin, m1, m2) = (
        app.register("own").await,
        app.register("adm").await,
        app.register("m1").await,
        app.register("m2").await,
    );
    let chat = app.group_chat(&owner, &[&admin, &m1, &m2]).await;
    let role = format!("/chats/{chat}/participants/{}", admin.id);
    let r = app
        .call(
            "PATCH",
            &role,
            Some(&owner.token),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let msg = sent(&app, &m1, chat, json!({"content": "oops"})).await;
    let path = format!("/chats/{chat}/messages/{}", msg["id"].as_str().unwrap());
    let r = app
        .call(
            "PUT",
            &format!(
                "/chats/{chat}/messages/{}/reactions/👍",
                msg["id"].as_str().unwrap()
            ),
            Some(&m2.token),
            None,
        )
        .await;
    assert_eq!(r.0, 204, "{}", r.1);
    message_when(&app, &m1, chat, &msg["id"], "the reaction", |m| {
        m["reactions"].as_array().is_some_and(|r| !r.is_empty())
    })
    .await;
    assert_eq!(
        code(&app.call("DELETE", &path, Some(&m2.token), None).await),
        (403, "forbidden")
    );
    let r = app.call("DELETE", &path, Some(&admin.token), None).await;
    assert_eq!(r.0, 202, "an admin deletes another's message: {}", r.1);
    let tomb = message_when(&app, &m1, chat, &msg["id"], "the tombstone", |m| {
        m["deletedAt"].is_string()
    })
    .await;
    assert_eq!(tomb["content"], "");
    assert_eq!(tomb["reactions"], json!([]));
    assert_eq!(tomb["mentions"], json!([]));
    assert_eq!(tomb["attachments"], json!([]));
    assert_eq!(tomb["sequence"], msg["sequence"]);
    // Deleting again is accepted and changes nothing; editing a tombstone is 404.
    assert_eq!(
        app.call("DELETE", &path, Some(&m1.token), None).await.0,
        202
    );
    let r = app
        .call(
            "PATCH",
            &path,
            Some(&m1.token),
            Some(json!({"content": "back"})),
        )
        .await;
    assert_eq!(code(&r), (404, "not_found"));

    // A tombstone takes no reaction and no pin; unknown targets, outsiders, bad input.
    let mid = msg["id"].as_str().unwrap();
    let on = |tail: String| format!("/chats/{chat}/{tail}");
    let checks: Vec<(&str, String, &TestUser, (u16, &str))> = vec![
        (
            "PUT",
            on(format!("messages/{mid}/reactions/ok")),
            &m1,
            (404, "not_found"),
        ),
        ("PUT", on(format!("pins/{mid}")), &owner, (404, "not_found")),
        (
            "DELETE",
            on(format!("messages/{}", Uuid::new_v4())),
            &owner,
            (404, "not_found"),
        ),
        (
            "PUT",
            on(format!("messages/{}/reactions/ok", Uuid::new_v4())),
            &m1,
            (404, "not_found"),
        ),
        (
            "DELETE",
            on(format!("messages/{mid}/reactions/Not%20One")),
            &m1,
            (400, "validation_failed"),
        ),
        (
            "DELETE",
            on("messages/not-a-uuid".into()),
            &m1,
            (400, "validation_failed"),
        ),
        (
            "DELETE",
            format!("/chats/{}/messages/{mid}", Uuid::new_v4()),
            &m1,
            (404, "not_found"),
        ),
    ];
    for (method, path, user, expected) in checks {
        let r = app.call(method, &path, Some(&user.token), None).await;
        assert_eq!(code(&r), expected, "{method} {path}: {}", r.1);
    }
    let outsider = app.register("out").await;
    for (method, path) in [
        ("DELETE", path.clone()),
        ("PUT", on(format!("pins/{mid}"))),
        ("GET", on("pins".into())),
        ("PUT", on(format!("messages/{mid}/reactions/ok"))),
    ] {
        let r = app.call(method, &path, Some(&outsider.token), None).await;
        assert_eq!(code(&r), (403, "forbidden"), "{method} {path}: {}", r.1);
    }
    let r = app
        .raw(
            "PATCH",
            &path,
            Some(&m1.token),
            "application/json",
            b"{nope".to_vec(),
        )
        .await;
    assert_eq!(code(&r), (400, "invalid_json"));
}

#[tokio::test]
async fn replies_keep_their_excerpt_current_and_forwards_check_the_source() {
    let app = spawn_app().await;
    let (a, b, c) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
    );
    let chat = app.direct_chat(&a, &b).await;
    let elsewhere = app.direct_chat(&a, &c).await;
    let long = "x".repeat(150);
    let original = sent(&app, &a, chat, json!({"content": long})).await;
    let oid = original["id"].clone();
    let reply = sent(&app, &b, chat, json!({"content": "re", "replyToId": oid})).await;
    assert_eq!(reply["replyTo"]["id"], oid);
    assert_eq!(reply["replyTo"]["senderId"], json!(a.id));
    assert_eq!(
        reply["replyTo"]["excerpt"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        100
    );
    let foreign = sent(&app, &a, elsewhere, json!({"content": "other chat"})).await;
    let r = app
        .call("POST", &format!("/chats/{chat}/messages"), Some(&b.token),
            Some(json!({"content": "bad", "clientMessageId": Uuid::new_v4(), "replyToId": foreign["id"]})))
        .await;
    assert_eq!(code(&r), (400, "validation_failed"));

    let replies = format!("/chats/{chat}/messages/{}/replies", oid.as_str().unwrap());
    let (s, page) = app.call("GET", &replies, Some(&a.token), None).await;
    assert_eq!(s, 200);
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    assert_eq!(page["messages"][0]["id"], reply["id"]);
    assert_eq!(page["hasMore"], false);
    let bad = format!("/chats/{chat}/messages/{}/replies", Uuid::new_v4());
    assert_eq!(
        code(&app.call("GET", &bad, Some(&a.token), None).await),
        (404, "not_found")
    );
    assert_eq!(
        code(&app.call("GET", &replies, Some(&c.token), None).await),
        (403, "forbidden")
    );

    let edit = format!("/chats/{chat}/messages/{}", oid.as_str().unwrap());
    assert_eq!(
        app.call(
            "PATCH",
            &edit,
            Some(&a.token),
            Some(json!({"content": "short now"}))
        )
        .await
        .0,
        202
    );
    message_when(&app, &b, chat, &reply["id"], "the new excerpt", |m| {
        m["replyTo"]["excerpt"] == "short now"
    })
    .await;
    assert_eq!(app.call("DELETE", &edit, Some(&a.token), None).await.0, 202);
    message_when(&app, &b, chat, &reply["id"], "the emptied excerpt", |m| {
        m["replyTo"]["excerpt"] == ""
    })
    .await;

    // Forward: content copied; the source chat's membership is checked.
    let fwd = sent(
        &app,
        &a,
        chat,
        json!({"forwardOf": {"chatId": elsewhere, "messageId": foreign["id"]}}),
    )
    .await;
    assert_eq!(fwd["content"], "other chat");
    assert_eq!(
        fwd["forwardedFrom"],
        json!({"chatId": elsewhere, "messageId": foreign["id"], "senderId": a.id})
    );
    let r = app
        .call("POST", &format!("/chats/{chat}/messages"), Some(&b.token),
            Some(json!({"clientMessageId": Uuid::new_v4(), "forwardOf": {"chatId": elsewhere, "messageId": foreign["id"]}})))
        .await;
    assert_eq!(code(&r), (403, "forbidden"), "b is not in the source chat");
    let r = app
        .call(
            "POST",
            &format!("/chats/{chat}/messages"),
            Some(&a.token),
            Some(json!({"clientMessageId": Uuid::new_v4()})),
        )
        .await;
    assert_eq!(
        code(&r),
        (400, "validation_failed"),
        "content is required unless forwarding"
    );
}

#[tokio::test]
async fn reactions_are_idempotent_exact_and_limited() {
    let app = spawn_app().await;
    let owner = app.register("own").await;
    let mut others = Vec::new();
    for i in 0..8 {
        others.push(app.register(&format!("u{i}")).await);
    }
    let refs: Vec<&TestUser> = others.iter().collect();
    let chat = app.group_chat(&owner, &refs).await;
    let m = sent(&app, &owner, chat, json!({"content": "react to me"})).await;
    let mid = m["id"].as_str().unwrap().to_string();
    let react = |u: &TestUser, e: &str, method: &'static str| {
        let path = format!("/chats/{chat}/messages/{mid}/reactions/{e}");
        let token = u.token.clone();
        let app = &app;
        async move { app.call(method, &path, Some(&token), None).await }
    };
    // Everyone at once, each twice: exactly one per user.
    let all = others
        .iter()
        .chain([&owner])
        .flat_map(|u| [react(u, "🎉", "PUT"), react(u, "🎉", "PUT")]);
    for r in futures::future::join_all(all).await {
        assert_eq!(r.0, 204, "{}", r.1);
    }
    let seen = message_when(&app, &owner, chat, &m["id"], "9 reactions", |m| {
        m["reactions"][0]["count"] == 9
    })
    .await;
    assert_eq!(
        seen["reactions"],
        json!([{"emoji": "🎉", "count": 9, "me": true}])
    );
    assert_eq!(react(&others[0], "🎉", "DELETE").await.0, 204);
    let seen = message_when(&app, &others[0], chat, &m["id"], "8 reactions", |m| {
        m["reactions"][0]["count"] == 8
    })
    .await;
    assert_eq!(seen["reactions"][0]["me"], false, "me is per reader");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM message_reactions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(applied, 8);

    assert_eq!(
        code(&react(&owner, "not an emoji", "PUT").await),
        (400, "validation_failed")
    );
    let outsider = app.register("out").await;
    assert_eq!(
        code(&react(&outsider, "👍", "PUT").await),
        (403, "forbidden")
    );
    for i in 0..19 {
        assert_eq!(react(&owner, &format!("e{i}"), "PUT").await.0, 204);
    }
    message_when(&app, &owner, chat, &m["id"], "20 distinct", |m| {
        m["reactions"].as_array().unwrap().len() == 20
    })
    .await;
    assert_eq!(
        code(&react(&owner, "one_too_many", "PUT").await),
        (400, "validation_failed")
    );
    assert_eq!(
        react(&others[1], "e3", "PUT").await.0,
        204,
        "an existing emoji is still fine"
    );
}

#[tokio::test]
async fn pins_follow_roles_and_list() {
    let app = spawn_app().await;
    let (a, b, c) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
    );
    let direct = app.direct_chat(&a, &b).await;
    let m = sent(&app, &a, direct, json!({"content": "pin me"})).await;
    let pin = format!("/chats/{direct}/pins/{}", m["id"].as_str().unwrap());
    assert_eq!(
        app.call("PUT", &pin, Some(&b.token), None).await.0,
        204,
        "anyone in a direct chat"
    );
    assert_eq!(
        app.call("PUT", &pin, Some(&b.token), None).await.0,
        204,
        "idempotent"
    );
    let pins = format!("/chats/{direct}/pins");
    let listed = until("the pin", || async {
        let (_, body) = app.call("GET", &pins, Some(&a.token), None).await;
        body["messages"]
            .as_array()
            .filter(|l| !l.is_empty())
            .cloned()
    })
    .await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], m["id"]);
    assert_eq!(
        code(&app.call("GET", &pins, Some(&c.token), None).await),
        (403, "forbidden")
    );
    let missing = format!("/chats/{direct}/pins/{}", Uuid::new_v4());
    assert_eq!(
        code(&app.call("PUT", &missing, Some(&a.token), None).await),
        (404, "not_found")
    );
    assert_eq!(app.call("DELETE", &pin, Some(&a.token), None).await.0, 204);
    until("the unpin", || async {
        let (_, body) = app.call("GET", &pins, Some(&a.token), None).await;
        body["messages"]
            .as_array()
            .filter(|l| l.is_empty())
            .map(|_| ())
    })
    .await;

    let g = app.group_chat(&a, &[&b]).await;
    let gm = sent(&app, &b, g, json!({"content": "group"})).await;
    let gpin = format!("/chats/{g}/pins/{}", gm["id"].as_str().unwrap());
    assert_eq!(
        code(&app.call("PUT", &gpin, Some(&b.token), None).await),
        (403, "forbidden")
    );
    assert_eq!(
        app.call("PUT", &gpin, Some(&a.token), None).await.0,
        204,
        "the owner pins"
    );
}
