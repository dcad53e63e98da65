//! The chat list (`GET /chats` paged by cursor) and per-user chat settings (mute,
//! archive), against real services.

mod common;

use common::{TestApp, TestUser, probe::Probe, spawn_app};
use courier::domain::events::{EVENT_CHAT_SETTINGS, EVENT_NEW};
use serde_json::{Value, json};
use uuid::Uuid;

async fn list(app: &TestApp, user: &TestUser, query: &str) -> Value {
    let (s, body) = app
        .call("GET", &format!("/chats{query}"), Some(&user.token), None)
        .await;
    assert_eq!(s, 200, "{query}: {body}");
    body
}

fn ids(page: &Value) -> Vec<String> {
    page["chats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every page of a walk with `limit`, concatenated; `between` runs after each page.
async fn walk(app: &TestApp, user: &TestUser, limit: u32, extra: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut query = format!("?limit={limit}{extra}");
    loop {
        let page = list(app, user, &query).await;
        let got = ids(&page);
        assert!(got.len() <= limit as usize);
        seen.extend(got);
        match page["nextCursor"].as_str() {
            Some(c) => query = format!("?limit={limit}&cursor={c}{extra}"),
            None => return seen,
        }
    }
}

/// `n` direct chats of `a`, with distinct activity times and one tie, oldest first.
async fn chats_of(app: &TestApp, a: &TestUser, n: usize) -> Vec<Uuid> {
    let mut chats = Vec::new();
    for i in 0..n {
        let other = app.register(&format!("p{i}")).await;
        let chat = app.direct_chat(a, &other).await;
        // Created (so active) n - i minutes ago, chats 2 and 3 at the same time: as a
        // chat without messages is.
        let minutes = if i == 3 { n - 2 } else { n - i } as i32;
        sqlx::query(
            "UPDATE chats SET created_at = date_trunc('minute', now()) - make_interval(mins => $2)
             WHERE id = $1",
        )
        .bind(chat)
        .bind(minutes)
        .execute(&app.pool)
        .await
        .unwrap();
        chats.push(chat);
    }
    chats
}

#[tokio::test]
async fn pages_walk_every_chat_once_in_the_unpaged_order() {
    let app = spawn_app().await;
    let a = app.register("a").await;
    chats_of(&app, &a, 7).await;
    let all = list(&app, &a, "").await;
    assert!(all["nextCursor"].is_null(), "v1: every chat, no cursor");
    let order = ids(&all);
    assert_eq!(order.len(), 7);
    assert!(all["chats"][0]["lastMessage"].is_null());
    assert_eq!(
        all["chats"][0]["settings"],
        json!({"mutedUntil": null, "archived": false, "muteMentions": false})
    );
    for limit in [1, 3, 7, 200] {
        assert_eq!(walk(&app, &a, limit, "").await, order, "limit {limit}");
    }
    let first = list(&app, &a, "?limit=3").await;
    let cursor = first["nextCursor"].as_str().unwrap().to_string();
    // A cursor alone pages by the default limit.
    let rest = list(&app, &a, &format!("?cursor={cursor}")).await;
    assert_eq!(ids(&rest), order[3..].to_vec());
    assert!(rest["nextCursor"].is_null());
    for bad in [
        "?limit=0".to_string(),
        "?limit=201".into(),
        "?limit=x".into(),
        "?cursor=garbage".into(),
        "?archived=maybe".into(),
        format!("?cursor={cursor}&archived=true"),
    ] {
        let (s, err) = app
            .call("GET", &format!("/chats{bad}"), Some(&a.token), None)
            .await;
        assert_eq!(
            (s, err["code"].as_str()),
            (400, Some("validation_failed")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_chat_active_during_the_walk_keeps_its_place() {
    let app = spawn_app().await;
    let a = app.register("a").await;
    chats_of(&app, &a, 6).await;
    let order = ids(&list(&app, &a, "").await);
    let first = list(&app, &a, "?limit=2").await;
    assert_eq!(ids(&first), order[..2].to_vec());
    // The last chat of the list, not yet walked, gets a message (from the other side).
    let last: Uuid = order[5].parse().unwrap();
    let (s, _) = app.send(&a, last, "late", Uuid::new_v4()).await;
    assert_eq!(s, 202);
    app.wait_messages(last, 1).await;
    assert_eq!(ids(&list(&app, &a, "").await)[0], order[5], "now first");
    let mut seen = ids(&first);
    let mut cursor = first["nextCursor"].as_str().unwrap().to_string();
    loop {
        let page = list(&app, &a, &format!("?limit=2&cursor={cursor}")).await;
        if let Some(c) = page["chats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == order[5])
        {
            assert_eq!(c["lastMessage"]["content"], "late", "current last message");
            assert_eq!(c["lastSequence"], 1);
        }
        seen.extend(ids(&page));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, order, "the walk keeps the order of its first page");
}

async fn put_settings(app: &TestApp, user: &TestUser, chat: Uuid, body: Value) -> (u16, Value) {
    app.call(
        "PUT",
        &format!("/chats/{chat}/settings"),
        Some(&user.token),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn settings_are_per_user_and_archive_hides_a_chat() {
    let app = spawn_app().await;
    let (a, b, x) = (
        app.register("a").await,
        app.register("b").await,
        app.register("x").await,
    );
    let ab = app.direct_chat(&a, &b).await;
    let (s, body) = put_settings(&app, &a, ab, json!({"archived": true})).await;
    assert_eq!(
        (s, &body),
        (
            200,
            &json!({"mutedUntil": null, "archived": true, "muteMentions": false})
        )
    );
    assert!(
        ids(&list(&app, &a, "").await).is_empty(),
        "archived: left out"
    );
    assert!(ids(&list(&app, &a, "?limit=10").await).is_empty());
    let archived = list(&app, &a, "?archived=true").await;
    assert_eq!(ids(&archived), vec![ab.to_string()]);
    assert_eq!(archived["chats"][0]["settings"]["archived"], true);
    assert_eq!(
        walk(&app, &a, 1, "&archived=true").await,
        vec![ab.to_string()]
    );
    assert_eq!(
        ids(&list(&app, &b, "").await),
        vec![ab.to_string()],
        "b's own"
    );

    let until = "2999-01-02T03:04:05.678Z";
    let (s, body) = put_settings(&app, &a, ab, json!({"mutedUntil": until})).await;
    assert_eq!(
        (s, &body),
        (
            200,
            &json!({"mutedUntil": until, "archived": true, "muteMentions": false})
        )
    );
    let (s, body) = put_settings(
        &app,
        &a,
        ab,
        json!({"mutedUntil": null, "archived": false, "muteMentions": false}),
    )
    .await;
    assert_eq!(
        (s, &body),
        (
            200,
            &json!({"mutedUntil": null, "archived": false, "muteMentions": false})
        )
    );
    let (s, body) = put_settings(&app, &a, ab, json!({})).await;
    assert_eq!(
        (s, &body),
        (
            200,
            &json!({"mutedUntil": null, "archived": false, "muteMentions": false})
        )
    );

    let (s, err) = put_settings(&app, &x, ab, json!({"archived": true})).await;
    assert_eq!((s, err["code"].as_str()), (403, Some("forbidden")));
    let (s, _) = put_settings(&app, &a, Uuid::new_v4(), json!({"archived": true})).await;
    assert_eq!(s, 404);
    for bad in [
        json!({"archived": "yes"}),
        json!({"mutedUntil": "tomorrow"}),
        json!({"muted": true}),
    ] {
        let (s, err) = put_settings(&app, &a, ab, bad.clone()).await;
        assert_eq!(
            (s, err["code"].as_str()),
            (400, Some("validation_failed")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_new_message_unarchives_unless_muted() {
    let app = spawn_app().await;
    let (a, b, c) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
    );
    let ab = app.direct_chat(&a, &b).await;
    let ac = app.direct_chat(&a, &c).await;
    put_settings(&app, &a, ab, json!({"archived": true})).await;
    let muted = json!({"archived": true, "mutedUntil": "2999-01-01T00:00:00.000Z"});
    put_settings(&app, &a, ac, muted).await;
    // Muted in the past is not muted.
    put_settings(
        &app,
        &b,
        ab,
        json!({"archived": true, "mutedUntil": "2000-01-01T00:00:00Z"}),
    )
    .await;
    let mut probe = Probe::new(&app, &[&a, &b, &c]).await;
    app.send(&b, ab, "hi", Uuid::new_v4()).await;
    app.send(&c, ac, "hi", Uuid::new_v4()).await;
    app.wait_messages(ab, 1).await;
    app.wait_messages(ac, 1).await;
    assert_eq!(ids(&list(&app, &a, "").await), vec![ab.to_string()]);
    assert_eq!(
        ids(&list(&app, &a, "?archived=true").await),
        vec![ac.to_string()]
    );
    assert_eq!(ids(&list(&app, &b, "").await), vec![ab.to_string()]);

    // The worker announces each un-archive as `chat.settings`, as the PUT does; the
    // muted chat stays archived and announces nothing. A marker sent into each chat
    // after its first message was persisted comes after anything that message
    // announced (a chat's events keep their order).
    app.send(&b, ab, "marker", Uuid::new_v4()).await;
    app.send(&c, ac, "marker", Uuid::new_v4()).await;
    let mut settings = Vec::new();
    let mut markers = 0;
    while markers < 2 {
        let (to, e) = probe.next_where(|_| true).await;
        let payload: Value = serde_json::from_str(e.data.get()).unwrap();
        if &*e.name == EVENT_NEW && to == a.id && payload["message"]["content"] == "marker" {
            markers += 1;
        }
        if &*e.name == EVENT_CHAT_SETTINGS {
            assert!(
                e.offset.is_some(),
                "chat.settings is recoverable, as the PUT's"
            );
            settings.push((to, payload));
        }
    }
    settings.sort_by_key(|(to, _)| (*to != a.id, *to));
    let unarchived = |until: Value| json!({"chatId": ab, "settings": {"mutedUntil": until, "archived": false, "muteMentions": false}});
    assert_eq!(
        settings,
        vec![
            (a.id, unarchived(Value::Null)),
            (b.id, unarchived(json!("2000-01-01T00:00:00.000Z"))),
        ],
        "one chat.settings to each member whose chat was un-archived, none for the muted chat"
    );
}

#[tokio::test]
async fn mute_mentions_is_a_setting_of_its_own() {
    let app = spawn_app().await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let ab = app.direct_chat(&a, &b).await;
    let (s, body) = put_settings(&app, &a, ab, json!({"muteMentions": true})).await;
    assert_eq!(
        (s, body),
        (
            200,
            json!({"mutedUntil": null, "archived": false, "muteMentions": true})
        )
    );
    let until = "2999-01-01T00:00:00.000Z";
    let (s, body) = put_settings(&app, &a, ab, json!({"mutedUntil": until})).await;
    assert_eq!(
        (s, body),
        (
            200,
            json!({"mutedUntil": until, "archived": false, "muteMentions": true})
        ),
        "left out: unchanged"
    );
    assert_eq!(
        list(&app, &a, "").await["chats"][0]["settings"]["muteMentions"],
        true
    );
    let theirs = list(&app, &b, "?limit=5").await;
    assert_eq!(
        theirs["chats"][0]["settings"]["muteMentions"], false,
        "a's own"
    );
    let (s, body) = put_settings(&app, &a, ab, json!({"muteMentions": false})).await;
    assert_eq!((s, &body["muteMentions"]), (200, &json!(false)));
    let (s, err) = put_settings(&app, &a, ab, json!({"muteMentions": "yes"})).await;
    assert_eq!((s, err["code"].as_str()), (400, Some("validation_failed")));
}
