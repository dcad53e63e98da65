//! Chats and participants against a real database.

mod common;

use common::spawn_app;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn direct_chats_are_unique_per_pair() {
    let app = spawn_app().await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let body = json!({"type": "direct", "participantIds": [b.id]});
    let (s, chat) = app.call("POST", "/chats", Some(&a.token), Some(body)).await;
    assert_eq!(s, 201, "{chat}");
    assert_eq!(chat["type"], "direct");
    assert_eq!(chat["lastSequence"], 0);
    assert_eq!(chat["participants"].as_array().unwrap().len(), 2);
    // Either side asking again gets the same chat with 200.
    let (s, again) = app
        .call(
            "POST",
            "/chats",
            Some(&b.token),
            Some(json!({"type": "direct", "participantIds": [a.id]})),
        )
        .await;
    assert_eq!((s, &again["id"]), (200, &chat["id"]));

    for bad in [
        json!({"type": "direct", "participantIds": [a.id]}),
        json!({"type": "direct", "participantIds": []}),
        json!({"type": "direct", "participantIds": [b.id, Uuid::new_v4()]}),
        json!({"type": "direct", "participantIds": [Uuid::new_v4()]}),
        json!({"type": "channel", "participantIds": [b.id]}),
        json!({"type": "direct", "participantIds": ["not-a-uuid"]}),
    ] {
        let (s, err) = app
            .call("POST", "/chats", Some(&a.token), Some(bad.clone()))
            .await;
        assert_eq!(
            (s, err["code"].as_str()),
            (400, Some("validation_failed")),
            "{bad}"
        );
    }
    let chats: i64 = sqlx::query_scalar("SELECT count(*) FROM chats")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(chats, 1);
}

#[tokio::test]
async fn groups_roles_and_participants() {
    let app = spawn_app().await;
    let (owner, m1, m2, outsider) = (
        app.register("o").await,
        app.register("m1").await,
        app.register("m2").await,
        app.register("x").await,
    );
    let (s, chat) = app
        .call(
            "POST",
            "/chats",
            Some(&owner.token),
            Some(json!({"type": "group", "title": "Team", "participantIds": [m1.id]})),
        )
        .await;
    assert_eq!(s, 201, "{chat}");
    assert_eq!(chat["title"], "Team");
    let id = chat["id"].as_str().unwrap().to_string();
    let role_of = |chat: &serde_json::Value, u: Uuid| {
        chat["participants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["userId"] == json!(u))
            .map(|p| p["role"].clone())
    };
    assert_eq!(role_of(&chat, owner.id), Some(json!("owner")));
    assert_eq!(role_of(&chat, m1.id), Some(json!("member")));

    let (s, _) = app
        .call(
            "POST",
            "/chats",
            Some(&owner.token),
            Some(json!({"type": "group", "participantIds": []})),
        )
        .await;
    assert_eq!(s, 400, "a group needs a title");
    let (s, _) = app
        .call(
            "POST",
            "/chats",
            Some(&owner.token),
            Some(json!({"type": "group", "title": "T", "participantIds": [Uuid::new_v4()]})),
        )
        .await;
    assert_eq!(s, 400, "unknown user ids");

    // Members cannot add; the owner can; unknown chat 404; outsiders 403.
    let add = json!({"userIds": [m2.id]});
    let (s, err) = app
        .call(
            "POST",
            &format!("/chats/{id}/participants"),
            Some(&m1.token),
            Some(add.clone()),
        )
        .await;
    assert_eq!((s, err["code"].as_str()), (403, Some("forbidden")));
    let (s, err) = app
        .call(
            "POST",
            &format!("/chats/{id}/participants"),
            Some(&outsider.token),
            Some(add.clone()),
        )
        .await;
    assert_eq!((s, err["code"].as_str()), (403, Some("forbidden")));
    let (s, err) = app
        .call(
            "POST",
            &format!("/chats/{}/participants", Uuid::new_v4()),
            Some(&owner.token),
            Some(add.clone()),
        )
        .await;
    assert_eq!((s, err["code"].as_str()), (404, Some("not_found")));
    let (s, chat) = app
        .call(
            "POST",
            &format!("/chats/{id}/participants"),
            Some(&owner.token),
            Some(add),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(role_of(&chat, m2.id), Some(json!("member")));

    let (s, _) = app
        .call("GET", &format!("/chats/{id}"), Some(&m2.token), None)
        .await;
    assert_eq!(s, 200);
    let (s, err) = app
        .call("GET", &format!("/chats/{id}"), Some(&outsider.token), None)
        .await;
    assert_eq!((s, err["code"].as_str()), (403, Some("forbidden")));
    let (s, _) = app
        .call(
            "GET",
            &format!("/chats/{}", Uuid::new_v4()),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, err) = app
        .call("GET", "/chats/not-a-uuid", Some(&owner.token), None)
        .await;
    assert_eq!((s, err["code"].as_str()), (400, Some("validation_failed")));

    // Removal: a member may not remove another, may leave; the owner may remove.
    let (s, _) = app
        .call(
            "DELETE",
            &format!("/chats/{id}/participants/{}", m2.id),
            Some(&m1.token),
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .call(
            "DELETE",
            &format!("/chats/{id}/participants/{}", m1.id),
            Some(&m1.token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .call(
            "DELETE",
            &format!("/chats/{id}/participants/{}", m2.id),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .call(
            "DELETE",
            &format!("/chats/{id}/participants/{}", m2.id),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(s, 404, "no longer a participant");
    let (s, _) = app
        .call("GET", &format!("/chats/{id}"), Some(&m1.token), None)
        .await;
    assert_eq!(s, 403, "left the group");

    // Direct chats have fixed participants.
    let direct = app.direct_chat(&owner, &outsider).await;
    let (s, _) = app
        .call(
            "POST",
            &format!("/chats/{direct}/participants"),
            Some(&owner.token),
            Some(json!({"userIds": [m1.id]})),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn list_is_most_recent_first_with_unread_counts() {
    let app = spawn_app().await;
    let (a, b, c) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
    );
    let ab = app.direct_chat(&a, &b).await;
    let ac = app.direct_chat(&a, &c).await;
    for i in 0..3 {
        let (s, _) = app.send(&b, ab, &format!("m{i}"), Uuid::new_v4()).await;
        assert_eq!(s, 202);
    }
    app.wait_messages(ab, 3).await;
    let (s, list) = app.call("GET", "/chats", Some(&a.token), None).await;
    assert_eq!(s, 200);
    let chats = list["chats"].as_array().unwrap();
    assert_eq!(chats.len(), 2);
    assert_eq!(chats[0]["id"], json!(ab), "active chat first");
    assert_eq!(chats[0]["unreadCount"], 3);
    assert_eq!(chats[0]["lastSequence"], 3);
    assert_eq!(chats[1]["id"], json!(ac));
    assert_eq!(chats[1]["unreadCount"], 0);
    let (_, blist) = app.call("GET", "/chats", Some(&b.token), None).await;
    assert_eq!(
        blist["chats"][0]["unreadCount"], 0,
        "own messages are not unread"
    );

    let (s, _) = app
        .call(
            "POST",
            &format!("/chats/{ab}/read"),
            Some(&a.token),
            Some(json!({"sequence": 2})),
        )
        .await;
    assert_eq!(s, 204);
    let (_, list) = app.call("GET", "/chats", Some(&a.token), None).await;
    assert_eq!(list["chats"][0]["unreadCount"], 1);
    // Never backwards.
    let (s, _) = app
        .call(
            "POST",
            &format!("/chats/{ab}/read"),
            Some(&a.token),
            Some(json!({"sequence": 1})),
        )
        .await;
    assert_eq!(s, 204);
    let (_, list) = app.call("GET", "/chats", Some(&a.token), None).await;
    assert_eq!(list["chats"][0]["unreadCount"], 1);
    for (bad, code) in [
        (json!({"sequence": 99}), 400),
        (json!({"sequence": -1}), 400),
        (json!({"sequence": "x"}), 400),
    ] {
        let (s, _) = app
            .call(
                "POST",
                &format!("/chats/{ab}/read"),
                Some(&a.token),
                Some(bad),
            )
            .await;
        assert_eq!(s, code);
    }
    let (s, _) = app
        .call(
            "POST",
            &format!("/chats/{ab}/read"),
            Some(&c.token),
            Some(json!({"sequence": 1})),
        )
        .await;
    assert_eq!(s, 403);
}
