//! The chat-be compatibility profile (`API_COMPAT=chat-be`): the reference backend's
//! routes and shapes served over Courier's pipeline, against the real services.

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

/// Registers and signs in through the profile.
async fn account(app: &TestApp, name: &str) -> TestUser {
    let email = email(name);
    let body = json!({"email": email, "password": "secret1"});
    let (s, reg) = app
        .call("POST", "/auth/register", None, Some(body.clone()))
        .await;
    assert_eq!(s, 200, "{reg}");
    let (s, login) = app.call("POST", "/auth/login", None, Some(body)).await;
    assert_eq!(s, 200, "{login}");
    TestUser {
        id: login["data"]["user"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        username: email,
        token: login["data"]["accessToken"]["token"]
            .as_str()
            .unwrap()
            .into(),
        refresh: String::new(),
    }
}

fn assert_envelope(body: &Value, status: u16, path: &str) {
    assert_eq!(body["success"], true, "{body}");
    assert_eq!(body["statusCode"], status, "{body}");
    assert_eq!(body["message"], "success");
    assert_eq!(body["path"], path);
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn accounts_in_the_reference_shape() {
    let app = app().await;
    let email = email("Jane");
    let creds = json!({"email": email, "password": "secret1"});
    let (s, reg) = app
        .call("POST", "/auth/register", None, Some(creds.clone()))
        .await;
    assert_eq!(s, 200, "{reg}");
    assert_envelope(&reg, 200, "/auth/register");
    assert_eq!(reg["data"]["role"], "VISITOR");
    assert_eq!(reg["data"]["email"], email.to_lowercase());
    assert!(reg["data"]["createdAt"].is_string() && reg["data"]["updatedAt"].is_string());

    let (s, dup) = app
        .call("POST", "/auth/register", None, Some(creds.clone()))
        .await;
    assert_eq!(s, 409, "{dup}");
    assert_eq!(dup["success"], false);
    assert_eq!(dup["message"], "error.unique.email");
    assert_eq!(dup["errorCode"], "CONSTRAINT_ERROR");

    for bad in [
        json!({"email": "x@example.com", "password": "12345"}),
        json!({"email": "not-an-email", "password": "secret1"}),
        json!({"email": "y@example.com", "password": "secret1", "admin": true}),
    ] {
        let (s, b) = app.call("POST", "/auth/register", None, Some(bad)).await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(b["errorCode"], "VALIDATION_ERROR");
        assert_eq!(b["statusCode"], 422);
    }

    let (s, login) = app.call("POST", "/auth/login", None, Some(creds)).await;
    assert_eq!(s, 200, "{login}");
    let token = login["data"]["accessToken"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(login["data"]["accessToken"]["expiresIn"], 3600);
    assert_eq!(login["data"]["user"]["id"], reg["data"]["id"]);
    let wrong = json!({"email": email, "password": "secret2"});
    let (s, b) = app.call("POST", "/auth/login", None, Some(wrong)).await;
    assert_eq!((s, &b["success"]), (401, &json!(false)), "{b}");

    let (s, me) = app.call("GET", "/auth/me", Some(&token), None).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["data"]["id"], reg["data"]["id"]);
    let (s, users) = app.call("GET", "/users?take=1", Some(&token), None).await;
    assert_eq!(s, 200, "{users}");
    assert_eq!(users["meta"]["take"], 1);
    assert_eq!(users["data"].as_array().unwrap().len(), 1);
    let id = reg["data"]["id"].as_str().unwrap();
    let (s, one) = app
        .call("GET", &format!("/users/{id}"), Some(&token), None)
        .await;
    assert_eq!((s, &one["data"]["email"]), (200, &reg["data"]["email"]));
    let (s, none) = app
        .call(
            "GET",
            &format!("/users/{}", Uuid::new_v4()),
            Some(&token),
            None,
        )
        .await;
    assert_eq!((s, &none["success"]), (404, &json!(false)));
    let (s, b) = app.call("GET", "/auth/me", None, None).await;
    assert_eq!((s, &b["success"]), (401, &json!(false)));
    // Logout revokes the session (tests/compat_safety.rs has the rest).
    let (s, out) = app.call("POST", "/auth/logout", Some(&token), None).await;
    assert_eq!((s, &out["data"]["success"]), (200, &json!(true)), "{out}");
    let (s, b) = app.call("GET", "/auth/me", Some(&token), None).await;
    assert_eq!(
        (s, &b["errorCode"]),
        (401, &json!("session_revoked")),
        "{b}"
    );
}

#[tokio::test]
async fn chats_messages_and_events_in_the_reference_shape() {
    let app = app().await;
    let (a, b) = (account(&app, "ann").await, account(&app, "bob").await);
    let mut probe = Probe::new(&app, &[&a, &b]).await;
    let create = json!({"participantUserIds": [b.id]});
    let (s, chat) = app
        .call("POST", "/chats", Some(&a.token), Some(create.clone()))
        .await;
    assert_eq!(s, 201, "{chat}");
    assert_eq!(chat["data"]["isGroup"], false);
    assert!(chat["data"]["name"].is_null(), "{chat}");
    assert_eq!(chat["data"]["participants"].as_array().unwrap().len(), 2);
    let chat_id = chat["data"]["id"].as_str().unwrap().to_string();
    let (s, again) = app
        .call(
            "POST",
            "/chats",
            Some(&b.token),
            Some(json!({"participantUserIds": [a.id]})),
        )
        .await;
    assert_eq!((s, &again["data"]["id"]), (201, &chat["data"]["id"]));
    let (s, rooms) = app
        .call("GET", "/chats/room-ids", Some(&b.token), None)
        .await;
    assert_eq!((s, &rooms["data"]), (200, &json!([chat_id])));

    let path = format!("/chats/{chat_id}/messages");
    let (s, sent) = app
        .call(
            "POST",
            &path,
            Some(&a.token),
            Some(json!({"content": "one"})),
        )
        .await;
    assert_eq!(s, 202, "{sent}");
    assert_envelope(&sent, 202, &path);
    assert_eq!(sent["data"]["status"], "queued");
    assert!(
        sent["data"]["clientMessageId"]
            .as_str()
            .unwrap()
            .parse::<Uuid>()
            .is_ok()
    );
    assert!(sent["data"]["brokerMessageId"].is_string());
    let cid = Uuid::new_v4();
    let (s, sent) = app
        .call(
            "POST",
            &path,
            Some(&a.token),
            Some(json!({"content": "two", "clientMessageId": cid})),
        )
        .await;
    assert_eq!((s, &sent["data"]["clientMessageId"]), (202, &json!(cid)));
    let (s, bad) = app
        .call(
            "POST",
            &path,
            Some(&a.token),
            Some(json!({"content": "x", "extra": 1})),
        )
        .await;
    assert_eq!(
        (s, &bad["errorCode"]),
        (422, &json!("VALIDATION_ERROR")),
        "{bad}"
    );

    // The socket payload is produced once by the worker, in the reference shape.
    let (to, event) = probe.next(EVENT_NEW).await;
    assert_eq!(to, b.id);
    let payload: Value = serde_json::from_str(event.payload().get()).unwrap();
    assert_eq!(payload["chatId"], chat_id);
    let m = &payload["message"];
    assert_eq!(
        (&m["messageType"], &m["status"], &m["content"]),
        (&json!("TEXT"), &json!("SENT"), &json!("one"))
    );
    assert_eq!(m["createdAt"], m["sentAt"]);
    assert!(m["updatedAt"].is_string());
    app.wait_messages(chat_id.parse().unwrap(), 2).await;

    let (s, page) = app
        .call(
            "GET",
            &format!("{path}?take=1&order=DESC"),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["data"][0]["content"], "two");
    assert_eq!(page["data"][0]["messageType"], "TEXT");
    assert_eq!(
        page["meta"],
        json!({"page": 1, "take": 1, "itemCount": 2, "pageCount": 2,
                                     "hasPreviousPage": false, "hasNextPage": true})
    );
    let (s, page) = app
        .call(
            "GET",
            &format!("{path}?page=2&take=1"),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(
        (s, &page["data"][0]["sequence"]),
        (200, &json!(2)),
        "{page}"
    );
    let (s, page) = app
        .call(
            "GET",
            &format!("{path}?page=3&take=1&order=DESC"),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(
        (s, page["data"].as_array().unwrap().len()),
        (200, 0),
        "{page}"
    );
    let (s, page) = app
        .call("GET", &format!("{path}?take=51"), Some(&b.token), None)
        .await;
    assert_eq!(s, 422, "{page}");

    let (s, list) = app
        .call("GET", "/chats?order=DESC", Some(&a.token), None)
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["meta"]["itemCount"], 1);
    assert_eq!(list["data"][0]["lastMessage"]["content"], "two");
    assert_eq!(list["data"][0]["lastMessage"]["messageType"], "TEXT");

    // Courier's own routes the reference lacks stay reachable, in Courier's shapes.
    let (s, native) = app
        .call("GET", &format!("/chats/{chat_id}"), Some(&a.token), None)
        .await;
    assert_eq!((s, &native["type"]), (200, &json!("direct")), "{native}");
    let (s, _) = app
        .call(
            "POST",
            &format!("/chats/{chat_id}/read"),
            Some(&b.token),
            Some(json!({"sequence": 2})),
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .call(
            "POST",
            "/users/presence",
            Some(&a.token),
            Some(json!({"userIds": [b.id]})),
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn imported_bcrypt_hashes_sign_in_and_are_upgraded() {
    let app = app().await;
    let id = Uuid::new_v4();
    let hash = bcrypt::hash("legacy-pass", 4).unwrap();
    sqlx::query("INSERT INTO users (id, username, email, password_hash, legacy_role) VALUES ($1, $2, $3, $4, 'AGENT')")
        .bind(id)
        .bind(format!("old-{}", &id.simple().to_string()[..8]))
        .bind(format!("old-{id}@example.com"))
        .bind(&hash)
        .execute(&app.pool)
        .await
        .unwrap();
    let creds = json!({"email": format!("OLD-{id}@example.com"), "password": "legacy-pass"});
    let (s, login) = app
        .call("POST", "/auth/login", None, Some(creds.clone()))
        .await;
    assert_eq!(s, 200, "{login}");
    assert_eq!(login["data"]["user"]["role"], "AGENT");
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    let (s, again) = app.call("POST", "/auth/login", None, Some(creds)).await;
    assert_eq!(s, 200, "{again}");
}

#[tokio::test]
async fn the_variable_is_checked_and_off_by_default() {
    let base = [("JWT_SECRET", "0123456789abcdef0123456789abcdef")];
    let cfg = |extra: &[(&'static str, &'static str)]| {
        let vars: Vec<_> = base.iter().chain(extra).copied().collect();
        courier::config::Config::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    };
    let e = cfg(&[("API_COMPAT", "nestjs")]).unwrap_err();
    assert_eq!(e.var, "API_COMPAT");
    use courier::domain::compat::ApiCompat;
    assert_eq!(cfg(&[]).unwrap().api_compat, ApiCompat::Off);
    assert_eq!(
        cfg(&[("API_COMPAT", "chat-be")]).unwrap().api_compat,
        ApiCompat::ChatBe
    );

    // Without the variable, the same paths answer in Courier's own shapes.
    let app = common::spawn_app().await;
    let (s, b) = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"email": "a@b.co", "password": "secret1"})),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(b.get("success").is_none(), "{b}");
    assert_eq!(b["code"], "validation_failed");
}
