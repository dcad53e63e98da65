//! The chat-be profile (`API_COMPAT=chat-be`) and contract v3's safety parts: its
//! `POST /auth/logout` revokes the caller's session, and a blocker's copies of a
//! blocked sender's messages (live, history pages, the chat list's last-message
//! preview) carry `blockedSender` in the reference shape too.

mod common;

use common::{Mode, TestApp, TestUser, probe::Probe, spawn_with, test_config};
use courier::domain::events::EVENT_NEW;
use serde_json::{Value, json};
use uuid::Uuid;

async fn app() -> TestApp {
    spawn_with(Mode::AllInOne, test_config(&[("API_COMPAT", "chat-be")])).await
}

fn email(name: &str) -> String {
    format!(
        "{name}.{}@example.com",
        &Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Signs in through the profile: `(user id, access token)`.
async fn login(app: &TestApp, creds: &Value) -> (Uuid, String) {
    let (s, login) = app
        .call("POST", "/auth/login", None, Some(creds.clone()))
        .await;
    assert_eq!(s, 200, "{login}");
    (
        login["data"]["user"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        login["data"]["accessToken"]["token"]
            .as_str()
            .unwrap()
            .into(),
    )
}

/// Registers and signs in through the profile.
async fn account(app: &TestApp, name: &str) -> TestUser {
    let email = email(name);
    let creds = json!({"email": email, "password": "secret1"});
    let (s, reg) = app
        .call("POST", "/auth/register", None, Some(creds.clone()))
        .await;
    assert_eq!(s, 200, "{reg}");
    let (id, token) = login(app, &creds).await;
    TestUser {
        id,
        username: email,
        token,
        refresh: String::new(),
    }
}

#[tokio::test]
async fn the_profiles_logout_revokes_the_current_session_only() {
    let app = app().await;
    let creds = json!({"email": email("leaver"), "password": "secret1"});
    let (s, reg) = app
        .call("POST", "/auth/register", None, Some(creds.clone()))
        .await;
    assert_eq!(s, 200, "{reg}");
    let (_, phone) = login(&app, &creds).await;
    let (_, laptop) = login(&app, &creds).await;

    let (s, out) = app.call("POST", "/auth/logout", Some(&phone), None).await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["success"], true, "{out}");
    assert_eq!(
        out["data"],
        json!({"success": true}),
        "the reference's body"
    );
    assert_eq!(out["path"], "/auth/logout");

    // The profile's routes and Courier's own refuse the revoked session's token.
    let (s, me) = app.call("GET", "/auth/me", Some(&phone), None).await;
    assert_eq!((s, &me["success"]), (401, &json!(false)), "{me}");
    assert_eq!(me["errorCode"], "session_revoked", "{me}");
    let (s, me) = app.call("GET", "/users/me", Some(&phone), None).await;
    assert_eq!((s, &me["code"]), (401, &json!("session_revoked")), "{me}");
    let (s, again) = app.call("POST", "/auth/logout", Some(&phone), None).await;
    assert_eq!(s, 401, "{again}");

    // The other session goes on.
    let (s, me) = app.call("GET", "/auth/me", Some(&laptop), None).await;
    assert_eq!(s, 200, "{me}");
    let (s, list) = app.call("GET", "/auth/sessions", Some(&laptop), None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["current"], true);
    let (s, b) = app.call("POST", "/auth/logout", None, None).await;
    assert_eq!(
        (s, &b["success"]),
        (401, &json!(false)),
        "logout needs a token"
    );
}

#[tokio::test]
async fn a_blocked_senders_messages_are_flagged_in_the_reference_shape() {
    let app = app().await;
    let (a, b, c) = (
        account(&app, "ann").await,
        account(&app, "bob").await,
        account(&app, "cat").await,
    );
    let create = json!({"participantUserIds": [b.id, c.id], "name": "team", "isGroup": true});
    let (s, chat) = app
        .call("POST", "/chats", Some(&a.token), Some(create))
        .await;
    assert_eq!(s, 201, "{chat}");
    let group: Uuid = chat["data"]["id"].as_str().unwrap().parse().unwrap();
    // Courier's own block route, behind the profile.
    let (s, body) = app
        .call(
            "PUT",
            &format!("/users/{}/block", b.id),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(s, 204, "{body}");

    let mut probe = Probe::new(&app, &[&a, &c]).await;
    let path = format!("/chats/{group}/messages");
    for (who, text) in [(&b, "from bob"), (&c, "from cat")] {
        let (s, sent) = app
            .call(
                "POST",
                &path,
                Some(&who.token),
                Some(json!({"content": text})),
            )
            .await;
        assert_eq!(s, 202, "{sent}");
    }
    let mut live = Vec::new();
    while live.len() < 3 {
        let (to, e) = probe.next(EVENT_NEW).await;
        let p: Value = serde_json::from_str(e.data.get()).unwrap();
        assert_eq!(
            p["message"]["messageType"], "TEXT",
            "the reference shape: {p}"
        );
        assert_eq!(p["message"]["status"], "SENT");
        let m = &p["message"];
        live.push((to, m["content"].clone(), m.get("blockedSender").cloned()));
    }
    live.sort_by_key(|(to, content, _)| (*to, content.to_string()));
    let mut want = vec![
        (a.id, json!("from bob"), Some(json!(true))),
        (a.id, json!("from cat"), None),
        (c.id, json!("from bob"), None),
    ];
    want.sort_by_key(|(to, content, _)| (*to, content.to_string()));
    assert_eq!(
        live, want,
        "only the blocker's copy of bob's message is flagged"
    );

    app.wait_messages(group, 2).await;
    let flags = |page: &Value| {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                assert!(m["createdAt"].is_string() && m["messageType"] == "TEXT");
                (m["content"].clone(), m.get("blockedSender").cloned())
            })
            .collect::<Vec<_>>()
    };
    let (s, for_a) = app.call("GET", &path, Some(&a.token), None).await;
    assert_eq!(s, 200, "{for_a}");
    assert_eq!(
        flags(&for_a),
        vec![
            (json!("from bob"), Some(json!(true))),
            (json!("from cat"), None)
        ]
    );
    let (_, for_c) = app.call("GET", &path, Some(&c.token), None).await;
    assert_eq!(
        flags(&for_c),
        vec![(json!("from bob"), None), (json!("from cat"), None)]
    );

    // The chat list's last-message preview: bob's again, after cat's.
    let (s, _) = app
        .call(
            "POST",
            &path,
            Some(&b.token),
            Some(json!({"content": "last"})),
        )
        .await;
    assert_eq!(s, 202);
    app.wait_messages(group, 3).await;
    let preview = |list: &Value| {
        let last = &list["data"][0]["lastMessage"];
        assert_eq!(
            (&last["content"], &last["senderId"]),
            (&json!("last"), &json!(b.id))
        );
        last.get("blockedSender").cloned()
    };
    let (s, for_a) = app.call("GET", "/chats", Some(&a.token), None).await;
    assert_eq!(s, 200, "{for_a}");
    assert_eq!(preview(&for_a), Some(json!(true)), "{for_a}");
    let (_, for_c) = app.call("GET", "/chats", Some(&c.token), None).await;
    assert_eq!(preview(&for_c), None, "{for_c}");
}
