//! Incoming webhooks against real services: who may create, list and delete them; the
//! token is shown once and stored hashed; a post goes through the pipeline as the
//! hook (`bot`, `senderId` = hook id) with its own rate limit; bad or deleted → 401.

mod common;

use common::{Mode, TestApp, TestUser, probe::Probe, spawn_with, test_config};
use serde_json::{Value, json};
use uuid::Uuid;

fn code(r: &(u16, Value)) -> (u16, &str) {
    (r.0, r.1["code"].as_str().unwrap_or(""))
}

async fn create(app: &TestApp, u: &TestUser, chat: Uuid, name: &str) -> (u16, Value) {
    app.call(
        "POST",
        &format!("/chats/{chat}/hooks"),
        Some(&u.token),
        Some(json!({ "name": name })),
    )
    .await
}

async fn post(app: &TestApp, url: &str, body: Value) -> (u16, Value) {
    app.call("POST", url, None, Some(body)).await
}

#[tokio::test]
async fn hooks_post_as_bots_through_the_pipeline() {
    let app = spawn_with(
        Mode::AllInOne,
        test_config(&[
            ("RATE_LIMIT_HOOK_MAX", "3"),
            ("RATE_LIMIT_HOOK_WINDOW_SECS", "600"),
        ]),
    )
    .await;
    let (owner, member, out) = (
        app.register("own").await,
        app.register("mem").await,
        app.register("out").await,
    );
    let chat = app.group_chat(&owner, &[&member]).await;

    assert_eq!(
        code(&create(&app, &member, chat, "ci").await),
        (403, "forbidden")
    );
    assert_eq!(
        code(&create(&app, &out, chat, "ci").await),
        (403, "forbidden")
    );
    assert_eq!(
        code(&create(&app, &owner, Uuid::new_v4(), "ci").await),
        (404, "not_found")
    );
    assert_eq!(
        code(&create(&app, &owner, chat, "  ").await),
        (400, "validation_failed")
    );
    assert_eq!(
        code(&create(&app, &owner, chat, &"x".repeat(65)).await),
        (400, "validation_failed")
    );
    let (status, hook) = create(&app, &owner, chat, " CI bot ").await;
    assert_eq!(status, 201, "{hook}");
    assert_eq!(hook["name"], "CI bot");
    let hook_id: Uuid = hook["id"].as_str().unwrap().parse().unwrap();
    let url = hook["url"].as_str().unwrap().to_string();
    let token = url.rsplit('/').next().unwrap().to_string();
    assert_eq!(url, format!("/hooks/{hook_id}/{token}"));
    assert!(token.len() >= 43, "at least 256 bits");

    // Stored hashed; listed without the token, to any participant.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM chat_hooks WHERE id = $1")
        .bind(hook_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_ne!(stored, token.as_bytes());
    assert_eq!(stored.len(), 32);
    let (status, list) = app
        .call(
            "GET",
            &format!("/chats/{chat}/hooks"),
            Some(&member.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["hooks"][0]["id"], hook["id"]);
    assert!(
        !list.to_string().contains(&token),
        "the token is shown once"
    );
    assert_eq!(
        code(
            &app.call(
                "GET",
                &format!("/chats/{chat}/hooks"),
                Some(&out.token),
                None
            )
            .await
        ),
        (403, "forbidden")
    );

    // A post is a message from the hook, delivered like any other.
    let mut probe = Probe::new(&app, &[&owner, &member]).await;
    let cid = Uuid::new_v4();
    let r = post(
        &app,
        &url,
        json!({ "content": " build green ", "clientMessageId": cid }),
    )
    .await;
    assert_eq!(r.0, 202, "{}", r.1);
    assert_eq!(r.1["clientMessageId"], json!(cid));
    let (_, event) = probe.next("chat.message.new").await;
    let live: Value = serde_json::from_str(event.data.get()).unwrap();
    assert_eq!(
        live["message"]["bot"],
        json!({ "hookId": hook_id, "name": "CI bot" })
    );
    assert_eq!(live["message"]["senderId"], json!(hook_id));
    assert_eq!(live["message"]["content"], "build green");
    // The same clientMessageId again is the same message.
    let r = post(
        &app,
        &url,
        json!({ "content": "build green", "clientMessageId": cid }),
    )
    .await;
    assert_eq!(r.0, 202, "{}", r.1);
    let r = post(&app, &url, json!({ "content": "second" })).await;
    assert_eq!(r.0, 202, "{}", r.1);
    app.wait_messages(chat, 2).await;
    let (_, page) = app
        .call(
            "GET",
            &format!("/chats/{chat}/messages"),
            Some(&owner.token),
            None,
        )
        .await;
    let msgs = page["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{page}");
    assert!(msgs.iter().all(|m| m["bot"]["hookId"] == json!(hook_id)));

    // Its own limit (3 here), whatever its creator does.
    assert_eq!(
        code(&post(&app, &url, json!({ "content": "4th" })).await),
        (429, "rate_limited")
    );
    let r = app
        .send(&owner, chat, "people still talk", Uuid::new_v4())
        .await;
    assert_eq!(r.0, 202);

    // Bad input and bad credentials.
    let other = create(&app, &owner, chat, "other").await.1["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        code(&post(&app, &other, json!({ "content": "" })).await),
        (400, "validation_failed")
    );
    assert_eq!(code(&post(&app, &other, json!({ "nope": 1 })).await).0, 400);
    let wrong = format!("/hooks/{hook_id}/{}", "A".repeat(43));
    assert_eq!(
        code(&post(&app, &wrong, json!({ "content": "x" })).await),
        (401, "unauthorized")
    );
    let junk = format!("/hooks/not-a-uuid/{token}");
    assert_eq!(
        code(&post(&app, &junk, json!({ "content": "x" })).await),
        (401, "unauthorized")
    );
    let unknown = format!("/hooks/{}/{token}", Uuid::new_v4());
    assert_eq!(
        code(&post(&app, &unknown, json!({ "content": "x" })).await),
        (401, "unauthorized")
    );

    // Deleting: managers only; then the URL is dead.
    let del = format!("/chats/{chat}/hooks/{hook_id}");
    assert_eq!(
        code(&app.call("DELETE", &del, Some(&member.token), None).await),
        (403, "forbidden")
    );
    assert_eq!(
        app.call("DELETE", &del, Some(&owner.token), None).await.0,
        204
    );
    assert_eq!(
        code(&app.call("DELETE", &del, Some(&owner.token), None).await),
        (404, "not_found")
    );
    assert_eq!(
        code(&post(&app, &url, json!({ "content": "x" })).await),
        (401, "unauthorized")
    );
}

#[tokio::test]
async fn any_participant_of_a_direct_chat_manages_hooks() {
    let app = spawn_with(Mode::AllInOne, test_config(&[])).await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    let (status, hook) = create(&app, &b, chat, "alerts").await;
    assert_eq!(status, 201, "{hook}");
    let r = app
        .call(
            "DELETE",
            &format!("/chats/{chat}/hooks/{}", hook["id"].as_str().unwrap()),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(r.0, 204, "{}", r.1);
}
