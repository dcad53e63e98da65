//! Mentions and notifications against real services: `@username` and `@all` fill
//! `mentions` (participants only), each mentioned user but the sender gets one stored
//! notification and a live `notification.new`; edits notify a new mentionee once;
//! deletes drop unread notifications; listing, paging and marking read, with errors.

mod common;

use common::{TestApp, TestUser, probe::Probe, spawn_app};
use serde_json::{Value, json};
use uuid::Uuid;

async fn notifications(app: &TestApp, u: &TestUser, query: &str) -> Value {
    let (status, body) = app
        .call(
            "GET",
            &format!("/notifications{query}"),
            Some(&u.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn ids(page: &Value) -> Vec<String> {
    page["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

async fn newest(app: &TestApp, u: &TestUser, chat: Uuid) -> Value {
    let (status, body) = app
        .call(
            "GET",
            &format!("/chats/{chat}/messages?limit=1"),
            Some(&u.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["messages"][0].clone()
}

/// Waits for the worker to have applied `n` lifecycle commands in `chat`.
async fn wait_applied(app: &TestApp, chat: Uuid, n: i64) {
    for _ in 0..200 {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM applied_commands WHERE chat_id = $1")
                .bind(chat)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if done >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{n} commands never applied in {chat}");
}

#[tokio::test]
async fn mentions_notify_participants_once_live_and_stored() {
    let app = spawn_app().await;
    let (sam, ann, bea, out) = (
        app.register("sam").await,
        app.register("ann").await,
        app.register("bea").await,
        app.register("out").await,
    );
    let chat = app.group_chat(&sam, &[&ann, &bea]).await;
    let mut probe = Probe::new(&app, &[&ann, &bea, &sam]).await;
    let text = format!(
        "hey @{} and @{} (mail {}@example.com), @{} is not here",
        ann.username.to_uppercase(),
        sam.username,
        bea.username,
        out.username
    );
    let (status, body) = app.send(&sam, chat, &text, Uuid::new_v4()).await;
    assert_eq!(status, 202, "{body}");
    let (to, event) = probe.next("notification.new").await;
    assert_eq!(
        to, ann.id,
        "only ann is notified (sam is the sender, bea was an e-mail)"
    );
    let live: Value = serde_json::from_str(event.data.get()).unwrap();
    let n = &live["notification"];
    assert_eq!(n["type"], "mention");
    assert_eq!(
        (n["chatId"].as_str(), n["senderId"].as_str()),
        (Some(&*chat.to_string()), Some(&*sam.id.to_string()))
    );
    assert!(n["readAt"].is_null());
    assert!(event.offset.is_some(), "notifications are recoverable");

    let m = newest(&app, &sam, chat).await;
    assert_eq!(
        m["mentions"],
        json!([sam.id, ann.id]),
        "participants only, in participant order"
    );
    assert_eq!(n["messageId"], m["id"]);
    assert_eq!(
        n["excerpt"],
        json!(text.chars().take(100).collect::<String>())
    );

    let page = notifications(&app, &ann, "?unread=true").await;
    assert_eq!(ids(&page), vec![n["id"].as_str().unwrap().to_string()]);
    assert_eq!(page["notifications"][0], *n, "stored as announced");
    assert_eq!(page["hasMore"], false);
    assert!(ids(&notifications(&app, &sam, "").await).is_empty());
    assert!(ids(&notifications(&app, &bea, "").await).is_empty());

    // @all in a group: everyone but the sender; ann already has hers for the first message.
    let (status, _) = app.send(&sam, chat, "@all standup", Uuid::new_v4()).await;
    assert_eq!(status, 202);
    let (to, _) = probe.next("notification.new").await;
    let (to2, _) = probe.next("notification.new").await;
    let mut got = vec![to, to2];
    got.sort();
    let mut want = vec![ann.id, bea.id];
    want.sort();
    assert_eq!(got, want);
    let m = newest(&app, &sam, chat).await;
    assert_eq!(m["mentions"].as_array().unwrap().len(), 2);
    assert_eq!(
        ids(&notifications(&app, &ann, "?unread=true").await).len(),
        2
    );
}

#[tokio::test]
async fn edits_notify_new_mentionees_once_and_deletes_drop_unread() {
    let app = spawn_app().await;
    let (sam, ann, bea) = (
        app.register("sam").await,
        app.register("ann").await,
        app.register("bea").await,
    );
    let chat = app.group_chat(&sam, &[&ann, &bea]).await;
    let mut probe = Probe::new(&app, &[&ann, &bea]).await;
    app.send(&sam, chat, &format!("hi @{}", ann.username), Uuid::new_v4())
        .await;
    assert_eq!(probe.next("notification.new").await.0, ann.id);
    app.wait_messages(chat, 1).await;
    let id = newest(&app, &sam, chat).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let edit = |content: String| {
        let (app, path, token) = (
            &app,
            format!("/chats/{chat}/messages/{id}"),
            sam.token.clone(),
        );
        async move {
            let r = app
                .call(
                    "PATCH",
                    &path,
                    Some(&token),
                    Some(json!({ "content": content })),
                )
                .await;
            assert_eq!(r.0, 202, "{}", r.1);
        }
    };
    let applied_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM applied_commands WHERE chat_id = $1")
            .bind(chat)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    edit(format!("hi @{} and @{}", ann.username, bea.username)).await;
    let (to, _) = probe.next("notification.new").await;
    assert_eq!(to, bea.id, "only the new mentionee");
    wait_applied(&app, chat, applied_before + 1).await;
    assert_eq!(
        newest(&app, &sam, chat).await["mentions"],
        json!([ann.id, bea.id])
    );
    // Dropping bea and mentioning her again does not notify her a second time.
    edit(format!("hi @{}", ann.username)).await;
    edit(format!("hi @{} again", bea.username)).await;
    wait_applied(&app, chat, applied_before + 3).await;
    assert_eq!(newest(&app, &sam, chat).await["mentions"], json!([bea.id]));
    let bea_page = notifications(&app, &bea, "").await;
    assert_eq!(ids(&bea_page).len(), 1);

    // ann reads hers; the delete drops bea's unread one and keeps ann's read one.
    let r = app
        .call(
            "POST",
            "/notifications/read",
            Some(&ann.token),
            Some(json!({ "all": true })),
        )
        .await;
    assert_eq!(r.0, 204, "{}", r.1);
    assert!(ids(&notifications(&app, &ann, "?unread=true").await).is_empty());
    let r = app
        .call(
            "DELETE",
            &format!("/chats/{chat}/messages/{id}"),
            Some(&sam.token),
            None,
        )
        .await;
    assert_eq!(r.0, 202, "{}", r.1);
    wait_applied(&app, chat, applied_before + 4).await;
    assert!(ids(&notifications(&app, &bea, "").await).is_empty());
    let ann_page = notifications(&app, &ann, "").await;
    assert_eq!(ids(&ann_page).len(), 1);
    assert!(ann_page["notifications"][0]["readAt"].is_string());
    assert_eq!(newest(&app, &sam, chat).await["mentions"], json!([]));
}

#[tokio::test]
async fn notifications_page_mark_read_and_refuse_bad_input() {
    let app = spawn_app().await;
    let (sam, ann, other) = (
        app.register("sam").await,
        app.register("ann").await,
        app.register("other").await,
    );
    let chat = app.direct_chat(&sam, &ann).await;
    for i in 0..5 {
        app.send(
            &sam,
            chat,
            &format!("{i} @{}", ann.username),
            Uuid::new_v4(),
        )
        .await;
    }
    app.wait_messages(chat, 5).await;
    let first = notifications(&app, &ann, "?limit=2").await;
    assert_eq!((ids(&first).len(), &first["hasMore"]), (2, &json!(true)));
    let last = ids(&first)[1].clone();
    let second = notifications(&app, &ann, &format!("?limit=2&before={last}")).await;
    let third = notifications(&app, &ann, &format!("?limit=2&before={}", ids(&second)[1])).await;
    let all: Vec<String> = [ids(&first), ids(&second), ids(&third)].concat();
    assert_eq!(all.len(), 5, "no overlap, nothing skipped: {all:?}");
    assert_eq!(third["hasMore"], false);
    let mut sorted = all.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 5);
    assert_eq!(
        first["notifications"][0]["excerpt"]
            .as_str()
            .map(|e| e.starts_with('4')),
        Some(true),
        "newest first"
    );

    // Marking someone else's notification changes nothing; one's own two are read.
    let r = app
        .call(
            "POST",
            "/notifications/read",
            Some(&other.token),
            Some(json!({ "ids": [all[0]] })),
        )
        .await;
    assert_eq!(r.0, 204);
    assert_eq!(
        ids(&notifications(&app, &ann, "?unread=true").await).len(),
        5
    );
    let r = app
        .call(
            "POST",
            "/notifications/read",
            Some(&ann.token),
            Some(json!({ "ids": [all[0], all[1]] })),
        )
        .await;
    assert_eq!(r.0, 204);
    assert_eq!(
        ids(&notifications(&app, &ann, "?unread=true").await),
        all[2..].to_vec()
    );

    for (body, why) in [
        (json!({}), "neither"),
        (json!({ "ids": [], "all": null }), "empty ids"),
        (json!({ "ids": [all[0]], "all": true }), "both"),
        (json!({ "all": false }), "all false"),
        (json!({ "ids": ["nope"] }), "not uuids"),
    ] {
        let r = app
            .call("POST", "/notifications/read", Some(&ann.token), Some(body))
            .await;
        assert_eq!(r.0, 400, "{why}: {}", r.1);
        assert!(r.1["code"].is_string(), "{why}: error shape {}", r.1);
    }
    for query in [
        "?limit=0",
        "?limit=101",
        "?before=yesterday",
        &format!("?before={}", Uuid::new_v4()),
    ] {
        let r = app
            .call(
                "GET",
                &format!("/notifications{query}"),
                Some(&ann.token),
                None,
            )
            .await;
        assert_eq!(
            (r.0, r.1["code"].as_str()),
            (400, Some("validation_failed")),
            "{query}: {}",
            r.1
        );
    }
    let r = app.call("GET", "/notifications", None, None).await;
    assert_eq!(r.0, 401);
}
