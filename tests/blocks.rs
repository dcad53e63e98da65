//! Blocking: the routes, 403 `blocked` on direct chats and their sends (nothing queued),
//! the cache's invalidation, and `blockedSender` in a group's history.

mod common;

use std::time::Duration;

use common::{Mode, TestApp, TestUser, probe::Probe, spawn_app, spawn_with, test_config};
use courier::domain::events::{EVENT_NEW, EVENT_UPDATED};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use uuid::Uuid;

async fn block(app: &TestApp, who: &TestUser, whom: Uuid, method: &str) -> (u16, Value) {
    app.call(
        method,
        &format!("/users/{whom}/block"),
        Some(&who.token),
        None,
    )
    .await
}

fn ids(v: &Value) -> Vec<Uuid> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|u| u["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn block_routes_are_idempotent_and_checked() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let (a, b, c) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
    );
    let (s, body) = block(&app, &a, a.id, "PUT").await;
    assert_eq!((s, body["code"].as_str()), (400, Some("validation_failed")));
    let (s, body) = block(&app, &a, Uuid::new_v4(), "PUT").await;
    assert_eq!((s, body["code"].as_str()), (404, Some("not_found")));
    for _ in 0..2 {
        assert_eq!(block(&app, &a, b.id, "PUT").await.0, 204);
    }
    assert_eq!(block(&app, &a, c.id, "PUT").await.0, 204);
    let (s, list) = app
        .call("GET", "/users/me/blocks", Some(&a.token), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(ids(&list), vec![c.id, b.id], "most recent first");
    assert_eq!(list[0]["username"], json!(c.username));
    for _ in 0..2 {
        assert_eq!(block(&app, &a, c.id, "DELETE").await.0, 204);
    }
    let (_, list) = app
        .call("GET", "/users/me/blocks", Some(&a.token), None)
        .await;
    assert_eq!(ids(&list), vec![b.id]);
    let (_, list) = app
        .call("GET", "/users/me/blocks", Some(&b.token), None)
        .await;
    assert_eq!(ids(&list), Vec::<Uuid>::new(), "blocks are one user's own");
}

#[tokio::test]
async fn a_block_refuses_direct_chats_both_ways() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    assert_eq!(block(&app, &a, b.id, "PUT").await.0, 204);
    for (from, to) in [(&b, &a), (&a, &b)] {
        let (s, body) = app
            .call(
                "POST",
                "/chats",
                Some(&from.token),
                Some(json!({"type": "direct", "participantIds": [to.id]})),
            )
            .await;
        assert_eq!((s, body["code"].as_str()), (403, Some("blocked")), "{body}");
    }
    let chats: i64 = sqlx::query_scalar("SELECT count(*) FROM chats")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(chats, 0, "no chat was created");
    assert_eq!(block(&app, &a, b.id, "DELETE").await.0, 204);
    app.direct_chat(&b, &a).await;
}

#[tokio::test]
async fn blocked_sends_are_refused_and_nothing_is_queued() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    let queue = app.topology().route(chat);
    // Warm every cache the send path reads before the block changes them.
    assert_eq!(app.send(&b, chat, "before", Uuid::new_v4()).await.0, 202);
    let depth = app.queue_depth(&queue).await;

    assert_eq!(block(&app, &a, b.id, "PUT").await.0, 204);
    for sender in [&b, &a] {
        let (s, body) = app.send(sender, chat, "refused", Uuid::new_v4()).await;
        assert_eq!((s, body["code"].as_str()), (403, Some("blocked")), "{body}");
    }
    assert_eq!(app.queue_depth(&queue).await, depth, "nothing queued");

    // PostgreSQL is the source of truth: the block holds with the cache emptied.
    let client = redis::Client::open(app.config.redis_url().expose_secret()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", app.config.redis.key_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let (s, body) = app.send(&b, chat, "refused", Uuid::new_v4()).await;
    assert_eq!((s, body["code"].as_str()), (403, Some("blocked")), "{body}");
    assert_eq!(app.queue_depth(&queue).await, depth, "nothing queued");

    assert_eq!(block(&app, &a, b.id, "DELETE").await.0, 204);
    assert_eq!(app.send(&b, chat, "after", Uuid::new_v4()).await.0, 202);
    assert_eq!(app.queue_depth(&queue).await, depth + 1);
}

#[tokio::test]
async fn a_blockers_group_history_flags_the_blocked_sender() {
    let app = spawn_app().await;
    let (a, b, c) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
    );
    let group = app.group_chat(&a, &[&b, &c]).await;
    assert_eq!(block(&app, &a, b.id, "PUT").await.0, 204);
    assert_eq!(app.send(&b, group, "from b", Uuid::new_v4()).await.0, 202);
    assert_eq!(app.send(&c, group, "from c", Uuid::new_v4()).await.0, 202);
    app.wait_messages(group, 2).await;
    let path = format!("/chats/{group}/messages");
    let flags = |v: &Value| {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["content"].as_str().unwrap().to_string(),
                    m.get("blockedSender").cloned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (_, for_a) = app.call("GET", &path, Some(&a.token), None).await;
    assert_eq!(
        flags(&for_a),
        vec![
            ("from b".into(), Some(json!(true))),
            ("from c".into(), None)
        ]
    );
    let (_, for_c) = app.call("GET", &path, Some(&c.token), None).await;
    assert_eq!(
        flags(&for_c),
        vec![("from b".into(), None), ("from c".into(), None)]
    );
}

#[tokio::test]
async fn an_edit_of_a_blocked_senders_message_is_flagged_for_the_blocker() {
    let app = spawn_app().await;
    let (a, b, c) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
    );
    let group = app.group_chat(&a, &[&b, &c]).await;
    assert_eq!(block(&app, &a, b.id, "PUT").await.0, 204);
    let mut probe = Probe::new(&app, &[&a, &b, &c]).await;
    assert_eq!(app.send(&b, group, "from b", Uuid::new_v4()).await.0, 202);
    let (_, e) = probe.next(EVENT_NEW).await;
    let sent: Value = serde_json::from_str(e.data.get()).unwrap();
    let id = sent["message"]["id"].as_str().unwrap().to_string();
    let (s, body) = app
        .call(
            "PATCH",
            &format!("/chats/{group}/messages/{id}"),
            Some(&b.token),
            Some(json!({"content": "edited by b"})),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let mut flags = Vec::new();
    while flags.len() < 3 {
        let (to, e) = probe.next(EVENT_UPDATED).await;
        let p: Value = serde_json::from_str(e.data.get()).unwrap();
        assert_eq!(p["message"]["content"], "edited by b");
        flags.push((to, p["message"].get("blockedSender").cloned()));
    }
    flags.sort_by_key(|(to, _)| *to);
    let mut want = vec![(a.id, Some(json!(true))), (b.id, None), (c.id, None)];
    want.sort_by_key(|(to, _)| *to);
    assert_eq!(flags, want, "only the blocker's copy is flagged");

    // The chat list's last message too.
    let last = |list: &Value| {
        let chats = list["chats"].as_array().unwrap();
        let chat = chats.iter().find(|c| c["id"] == json!(group)).unwrap();
        assert_eq!(chat["lastMessage"]["content"], "edited by b");
        chat["lastMessage"].get("blockedSender").cloned()
    };
    let (_, for_a) = app.call("GET", "/chats", Some(&a.token), None).await;
    assert_eq!(last(&for_a), Some(json!(true)), "{for_a}");
    let (_, for_a) = app
        .call("GET", "/chats?limit=5", Some(&a.token), None)
        .await;
    assert_eq!(last(&for_a), Some(json!(true)), "{for_a}");
    let (_, for_c) = app
        .call("GET", "/chats?limit=5", Some(&c.token), None)
        .await;
    assert_eq!(last(&for_c), None, "{for_c}");
}

#[tokio::test]
async fn the_send_check_answers_blocks_from_memory_once_cached() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let (a, b, c) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
    );
    let chat = app.direct_chat(&a, &b).await;
    let group = app.group_chat(&a, &[&b, &c]).await;
    // The first sends fill the chats' shapes and the sender's blocks in the process.
    assert_eq!(app.send(&b, chat, "warm", Uuid::new_v4()).await.0, 202);
    assert_eq!(app.send(&b, group, "warm", Uuid::new_v4()).await.0, 202);

    // A block written behind the service's back (no announcement, no cache
    // invalidation) is not seen: the send check read neither PostgreSQL nor Redis.
    sqlx::query("INSERT INTO user_blocks (blocker_id, blocked_id) VALUES ($1, $2)")
        .bind(a.id)
        .bind(b.id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        app.send(&b, chat, "unseen", Uuid::new_v4()).await.0,
        202,
        "answered from memory"
    );
    sqlx::query("DELETE FROM user_blocks WHERE blocker_id = $1")
        .bind(a.id)
        .execute(&app.pool)
        .await
        .unwrap();

    // Through the service, the change is announced and seen at once.
    assert_eq!(block(&app, &a, b.id, "PUT").await.0, 204);
    assert_eq!(app.send(&b, chat, "no", Uuid::new_v4()).await.0, 403);
    assert_eq!(
        app.send(&b, group, "groups go on", Uuid::new_v4()).await.0,
        202
    );
    assert_eq!(block(&app, &a, b.id, "DELETE").await.0, 204);
    assert_eq!(app.send(&b, chat, "again", Uuid::new_v4()).await.0, 202);
}

#[tokio::test]
async fn block_changes_reach_the_other_processes() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    // The test's own cache plays a second process, with its own near cache.
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(courier::cache::near::run(
        app.cache.clone(),
        app.pool.clone(),
        Duration::from_secs(960),
        stop.clone(),
    ));
    let near = app.cache.near.clone();
    common::poll::until("the near cache synced", || async {
        near.synced().then_some(())
    })
    .await;
    let filled = courier::service::blocks::relations(&app.cache, &app.pool, b.id)
        .await
        .unwrap();
    assert!(filled.blockers.is_empty());
    assert!(near.blocks(b.id).is_some(), "kept near");
    assert_eq!(block(&app, &a, b.id, "PUT").await.0, 204);
    common::poll::until("the block announced", || async {
        near.blocks(b.id).is_none().then_some(())
    })
    .await;
    let now = courier::service::blocks::relations(&app.cache, &app.pool, b.id)
        .await
        .unwrap();
    assert!(now.blockers.contains(&a.id));
    stop.cancel();
}
