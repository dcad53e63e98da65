//! Chat management against real services: rename and roles with every permission and
//! error code; `chat.updated` / `chat.removed` reach the participants' gateways; a
//! removed participant is refused at once; a Redis failure leaves nothing half-done;
//! a redelivered lifecycle command is applied once and announced with the same version.

mod common;

use common::{Mode, TestUser, probe::Probe, spawn_app, spawn_with, test_config};
use courier::domain::{
    events::Event,
    lifecycle::{LifecycleCommand, Op},
};
use serde_json::{Value, json};
use uuid::Uuid;

fn code(r: &(u16, Value)) -> (u16, &str) {
    (r.0, r.1["code"].as_str().unwrap_or(""))
}

fn data(e: &Event) -> Value {
    serde_json::from_str(e.data.get()).unwrap()
}

#[tokio::test]
async fn rename_and_roles_follow_the_rules() {
    let app = spawn_app().await;
    let (owner, b, c, out) = (
        app.register("own").await,
        app.register("b").await,
        app.register("c").await,
        app.register("out").await,
    );
    let chat = app.group_chat(&owner, &[&b, &c]).await;
    let path = format!("/chats/{chat}");
    let rename = |u: &TestUser, title: Value| {
        let (token, path, app) = (u.token.clone(), path.clone(), &app);
        async move {
            app.call(
                "PATCH",
                &path,
                Some(&token),
                Some(json!({ "title": title })),
            )
            .await
        }
    };
    let r = rename(&owner, json!("  renamed  ")).await;
    assert_eq!((r.0, &r.1["title"]), (200, &json!("renamed")), "{}", r.1);
    assert_eq!(code(&rename(&b, json!("nope")).await), (403, "forbidden"));
    assert_eq!(code(&rename(&out, json!("nope")).await), (403, "forbidden"));
    assert_eq!(
        code(&rename(&owner, json!("")).await),
        (400, "validation_failed")
    );
    assert_eq!(
        code(&rename(&owner, json!("x".repeat(129))).await),
        (400, "validation_failed")
    );
    let r = app
        .call(
            "PATCH",
            &format!("/chats/{}", Uuid::new_v4()),
            Some(&owner.token),
            Some(json!({"title": "x"})),
        )
        .await;
    assert_eq!(code(&r), (404, "not_found"));
    let direct = app.direct_chat(&owner, &b).await;
    let r = app
        .call(
            "PATCH",
            &format!("/chats/{direct}"),
            Some(&owner.token),
            Some(json!({"title": "x"})),
        )
        .await;
    assert_eq!(code(&r), (400, "validation_failed"));

    let role = |actor: &TestUser, target: Uuid, role: &str| {
        let (token, app) = (actor.token.clone(), &app);
        let path = format!("/chats/{chat}/participants/{target}");
        let body = json!({ "role": role });
        async move { app.call("PATCH", &path, Some(&token), Some(body)).await }
    };
    let r = role(&owner, b.id, "admin").await;
    assert_eq!(r.0, 200, "{}", r.1);
    let b_role = r.1["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["userId"] == json!(b.id))
        .unwrap()["role"]
        .clone();
    assert_eq!(b_role, "admin");
    assert_eq!(
        code(&role(&b, c.id, "admin").await),
        (403, "forbidden"),
        "admins do not grant roles"
    );
    assert_eq!(
        code(&role(&owner, c.id, "owner").await),
        (400, "validation_failed")
    );
    assert_eq!(code(&role(&owner, c.id, "king").await).0, 400);
    assert_eq!(
        code(&role(&owner, out.id, "admin").await),
        (404, "not_found")
    );
    assert_eq!(
        code(&role(&owner, owner.id, "member").await),
        (403, "forbidden")
    );
    assert_eq!(role(&owner, b.id, "member").await.0, 200);
}

#[tokio::test]
async fn changes_are_announced_and_a_removed_member_is_refused_at_once() {
    let app = spawn_app().await;
    let (owner, b, c, d) = (
        app.register("own").await,
        app.register("b").await,
        app.register("c").await,
        app.register("d").await,
    );
    let mut probe = Probe::new(&app, &[&b, &c, &d]).await;
    let chat = app.group_chat(&owner, &[&b, &c]).await;
    let (_, created) = probe.next("chat.updated").await;
    assert_eq!(data(&created)["chat"]["id"], json!(chat));

    // c sends (the membership cache is warm), then is removed: refused at once.
    assert_eq!(app.send(&c, chat, "hello", Uuid::new_v4()).await.0, 202);
    app.wait_messages(chat, 1).await;
    let remove = format!("/chats/{chat}/participants/{}", c.id);
    assert_eq!(
        app.call("DELETE", &remove, Some(&owner.token), None)
            .await
            .0,
        204
    );
    assert_eq!(
        code(&app.send(&c, chat, "still here?", Uuid::new_v4()).await),
        (403, "forbidden")
    );
    let read = format!("/chats/{chat}/read");
    let r = app
        .call("POST", &read, Some(&c.token), Some(json!({"sequence": 1})))
        .await;
    assert_eq!(code(&r), (403, "forbidden"));
    let (user, removed) = probe.next("chat.removed").await;
    assert_eq!((user, data(&removed)), (c.id, json!({"chatId": chat})));

    // d is added: told live, with the chat.
    let add = format!("/chats/{chat}/participants");
    let r = app
        .call(
            "POST",
            &add,
            Some(&owner.token),
            Some(json!({"userIds": [d.id]})),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    loop {
        let (user, e) = probe.next("chat.updated").await;
        let ids: Vec<Value> = data(&e)["chat"]["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["userId"].clone())
            .collect();
        if user == d.id && ids.contains(&json!(d.id)) {
            assert!(!ids.contains(&json!(c.id)));
            break;
        }
    }
}

#[tokio::test]
async fn a_redis_failure_before_the_commit_changes_nothing() {
    let app = spawn_app().await;
    let (owner, b) = (app.register("own").await, app.register("b").await);
    let chat = app.group_chat(&owner, &[&b]).await;
    // The generation counter cannot be bumped: the change must not commit.
    let mut conn = app
        .cache
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let gen_key = app.cache.keys.members_gen(chat);
    redis::cmd("SET")
        .arg(&gen_key)
        .arg("not-a-number")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let remove = format!("/chats/{chat}/participants/{}", b.id);
    let r = app.call("DELETE", &remove, Some(&owner.token), None).await;
    assert_eq!(code(&r), (503, "unavailable"), "{}", r.1);
    let still: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM chat_participants WHERE chat_id = $1 AND user_id = $2",
    )
    .bind(chat)
    .bind(b.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(still, 1, "nothing half-done");
    let announced: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chat_outbox WHERE command->'removed' ? $1")
            .bind(b.id.to_string())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        announced, 0,
        "no announcement of a change that did not happen"
    );
    redis::cmd("DEL")
        .arg(&gen_key)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        app.call("DELETE", &remove, Some(&owner.token), None)
            .await
            .0,
        204
    );
    assert_eq!(
        code(&app.send(&b, chat, "gone", Uuid::new_v4()).await),
        (403, "forbidden")
    );
}

#[tokio::test]
async fn a_redelivered_command_is_applied_once_and_announced_alike() {
    let app = spawn_app().await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    assert_eq!(app.send(&a, chat, "hi", Uuid::new_v4()).await.0, 202);
    app.wait_messages(chat, 1).await;
    let message: Uuid = sqlx::query_scalar("SELECT id FROM messages WHERE chat_id = $1")
        .bind(chat)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut probe = Probe::new(&app, &[&b]).await;
    let cmd = LifecycleCommand {
        command_id: Uuid::now_v7(),
        chat_id: chat,
        actor_id: b.id,
        op: Op::React {
            message_id: message,
            emoji: "👍".into(),
            add: true,
        },
    };
    let body = serde_json::to_vec(&cmd).unwrap();
    app.publish(chat, &body, cmd.command_id).await;
    app.publish(chat, &body, cmd.command_id).await;
    let (_, first) = probe.next("chat.reaction.updated").await;
    let (_, second) = probe.next("chat.reaction.updated").await;
    assert_eq!(data(&first), data(&second));
    assert_eq!(data(&first)["count"], 1);
    assert_eq!(
        first.sequence, second.sequence,
        "the same version: gateways drop the repeat"
    );
    assert_eq!((first.chat, first.sequence > 0), (Some(chat), true));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM message_reactions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn a_group_never_passes_chat_max_members() {
    let app = spawn_with(Mode::AllInOne, test_config(&[("CHAT_MAX_MEMBERS", "3")])).await;
    let owner = app.register("own").await;
    let mut others = Vec::new();
    for i in 0..4 {
        others.push(app.register(&format!("m{i}")).await);
    }
    let ids = |us: &[TestUser]| us.iter().map(|u| u.id).collect::<Vec<_>>();
    let create = |members: Vec<Uuid>| {
        let (token, app) = (owner.token.clone(), &app);
        async move {
            let body = json!({ "type": "group", "title": "g", "participantIds": members });
            app.call("POST", "/chats", Some(&token), Some(body)).await
        }
    };
    // The owner and three others: four members, one too many; nothing is created.
    let before = app.call("GET", "/chats", Some(&owner.token), None).await;
    let r = create(ids(&others[..3])).await;
    assert_eq!(code(&r), (422, "too_many_members"), "{}", r.1);
    let after = app.call("GET", "/chats", Some(&owner.token), None).await;
    assert_eq!(before.1["chats"], after.1["chats"]);
    // The owner listed among the participants is counted once.
    let mut with_owner = ids(&others[..2]);
    with_owner.push(owner.id);
    let r = create(with_owner).await;
    assert_eq!(r.0, 201, "{}", r.1);
    let chat = r.1["id"].as_str().unwrap().to_string();
    let path = format!("/chats/{chat}/participants");
    // A fourth member is refused, and the group keeps its three.
    let add = json!({ "userIds": [others[3].id] });
    let r = app
        .call("POST", &path, Some(&owner.token), Some(add.clone()))
        .await;
    assert_eq!(code(&r), (422, "too_many_members"), "{}", r.1);
    let got = app
        .call("GET", &format!("/chats/{chat}"), Some(&owner.token), None)
        .await;
    assert_eq!(got.1["participants"].as_array().unwrap().len(), 3);
    // After someone leaves, there is room again.
    let leave = format!("/chats/{chat}/participants/{}", others[0].id);
    assert_eq!(
        app.call("DELETE", &leave, Some(&owner.token), None).await.0,
        204
    );
    let r = app.call("POST", &path, Some(&owner.token), Some(add)).await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["participants"].as_array().unwrap().len(), 3);
}
