//! Sessions against a real database and Redis: listing, revoking one, logout,
//! logout-all, password change, the denylist (and its PostgreSQL fallback), and
//! tokens issued before sessions existed.

mod common;

use common::{PASSWORD, TestApp, spawn_app};
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};
use uuid::Uuid;

async fn sessions(app: &TestApp, token: &str) -> Vec<Value> {
    let (s, body) = app.call("GET", "/auth/sessions", Some(token), None).await;
    assert_eq!(s, 200, "{body}");
    body.as_array().unwrap().clone()
}

fn current(list: &[Value]) -> String {
    let cur: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(cur.len(), 1, "{list:?}");
    cur[0]["id"].as_str().unwrap().to_string()
}

async fn me_status(app: &TestApp, token: &str) -> (u16, Value) {
    app.call("GET", "/users/me", Some(token), None).await
}

#[tokio::test]
async fn sessions_are_listed_and_one_is_revoked() {
    let app = spawn_app().await;
    let u = app.register("sess").await;
    let (phone, phone_refresh) = app.login_device(&u, "Phone").await;
    let list = sessions(&app, &u.token).await;
    assert_eq!(
        list.len(),
        2,
        "register and login each opened one: {list:?}"
    );
    let phone_entry = list.iter().find(|s| s["deviceName"] == "Phone").unwrap();
    assert_eq!(phone_entry["current"], false);
    assert_eq!(phone_entry["ip"], "127.0.0.1");
    for key in ["id", "createdAt", "lastSeenAt"] {
        assert!(phone_entry[key].is_string(), "{key}: {phone_entry}");
    }
    let phone_id = phone_entry["id"].as_str().unwrap().to_string();
    assert_eq!(current(&sessions(&app, &phone).await), phone_id);

    // Another user's session is not found, nor is an unknown one.
    let other = app.register("other").await;
    let (s, body) = app
        .call(
            "DELETE",
            &format!("/auth/sessions/{phone_id}"),
            Some(&other.token),
            None,
        )
        .await;
    assert_eq!((s, body["code"].as_str()), (404, Some("not_found")));
    assert_eq!(me_status(&app, &phone).await.0, 200, "untouched");

    let (s, _) = app
        .call(
            "DELETE",
            &format!("/auth/sessions/{phone_id}"),
            Some(&u.token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, body) = me_status(&app, &phone).await;
    assert_eq!((s, body["code"].as_str()), (401, Some("session_revoked")));
    assert_eq!(
        me_status(&app, &u.token).await.0,
        200,
        "the other session stays"
    );
    let (s, body) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refreshToken": phone_refresh})),
        )
        .await;
    assert_eq!((s, body["code"].as_str()), (401, Some("unauthorized")));
    let list = sessions(&app, &u.token).await;
    assert_eq!(list.len(), 1);
    assert!(list.iter().all(|s| s["id"] != phone_id.as_str()));
}

#[tokio::test]
async fn refresh_keeps_the_session_and_moves_last_seen() {
    let app = spawn_app().await;
    let u = app.register("refresh").await;
    let before = sessions(&app, &u.token).await;
    let (s, r) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refreshToken": u.refresh})),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let after = sessions(&app, r["accessToken"].as_str().unwrap()).await;
    assert_eq!(after.len(), 1);
    assert_eq!(
        current(&after),
        current(&before),
        "rotation keeps the session"
    );
    assert!(after[0]["lastSeenAt"].as_str() >= before[0]["lastSeenAt"].as_str());
}

#[tokio::test]
async fn logout_and_logout_all() {
    let app = spawn_app().await;
    let u = app.register("logout").await;
    let (a, _) = app.login_device(&u, "A").await;
    let (b, b_refresh) = app.login_device(&u, "B").await;
    let (s, _) = app.call("POST", "/auth/logout", Some(&a), None).await;
    assert_eq!(s, 204);
    assert_eq!(me_status(&app, &a).await.1["code"], "session_revoked");
    assert_eq!(me_status(&app, &b).await.0, 200);
    assert_eq!(me_status(&app, &u.token).await.0, 200);

    let (s, _) = app.call("POST", "/auth/logout-all", Some(&b), None).await;
    assert_eq!(s, 204);
    for t in [&b, &u.token] {
        assert_eq!(me_status(&app, t).await.1["code"], "session_revoked");
    }
    let (s, _) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refreshToken": b_refresh})),
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = app.call("POST", "/auth/logout", None, None).await;
    assert_eq!(s, 401, "logout needs a token");
}

#[tokio::test]
async fn password_change_revokes_the_other_sessions() {
    let app = spawn_app().await;
    let u = app.register("pw").await;
    let (other, _) = app.login_device(&u, "Other").await;
    let change = |current: &str, new: &str| json!({"currentPassword": current, "newPassword": new});
    let (s, body) = app
        .call(
            "POST",
            "/auth/password",
            Some(&u.token),
            Some(change("wrong-password", "another-pass-1")),
        )
        .await;
    assert_eq!((s, body["code"].as_str()), (401, Some("unauthorized")));
    let (s, body) = app
        .call(
            "POST",
            "/auth/password",
            Some(&u.token),
            Some(change(PASSWORD, "short")),
        )
        .await;
    assert_eq!((s, body["code"].as_str()), (400, Some("validation_failed")));
    assert_eq!(me_status(&app, &other).await.0, 200, "nothing changed yet");

    let (s, _) = app
        .call(
            "POST",
            "/auth/password",
            Some(&u.token),
            Some(change(PASSWORD, "another-pass-1")),
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(
        me_status(&app, &u.token).await.0,
        200,
        "the caller's session stays"
    );
    assert_eq!(me_status(&app, &other).await.1["code"], "session_revoked");
    let (s, _) = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"username": u.username, "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, 401, "the old password is gone");
    let (s, _) = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"username": u.username, "password": "another-pass-1"})),
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn revocations_reach_every_process_and_survive_a_lost_subscription() {
    use courier::service::revocation::revoked_reason;
    let app = spawn_app().await;
    let u = app.register("near").await;
    let (early, _) = app.login_device(&u, "Early").await;
    let (s, _) = app.call("POST", "/auth/logout", Some(&early), None).await;
    assert_eq!(s, 204);
    let sid_of = |token: &str| {
        let payload = token.split('.').nth(1).unwrap();
        let raw =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap();
        serde_json::from_slice::<Value>(&raw).unwrap()["sid"]
            .as_str()
            .unwrap()
            .parse::<uuid::Uuid>()
            .unwrap()
    };
    // The test's cache plays another process; not synced yet, it asks PostgreSQL.
    let near = app.cache.near.clone();
    assert!(!near.synced());
    let reason = revoked_reason(&app.pool, &app.cache, sid_of(&early))
        .await
        .unwrap();
    assert_eq!(reason.as_deref(), Some("logout"));
    // Synced, it loaded what was revoked before it started...
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(courier::cache::near::run(
        app.cache.clone(),
        app.pool.clone(),
        std::time::Duration::from_secs(960),
        stop.clone(),
    ));
    common::poll::until("the near cache synced", || async {
        near.synced().then_some(())
    })
    .await;
    assert_eq!(near.revoked(sid_of(&early)), Some(Some("logout".into())));
    // ...and hears what is revoked afterwards.
    let (late, _) = app.login_device(&u, "Late").await;
    assert_eq!(near.revoked(sid_of(&late)), Some(None));
    let (s, _) = app.call("POST", "/auth/logout", Some(&late), None).await;
    assert_eq!(s, 204);
    common::poll::until("the revocation announced", || async {
        near.revoked(sid_of(&late)).flatten()
    })
    .await;
    assert_eq!(me_status(&app, &late).await.1["code"], "session_revoked");
    assert_eq!(me_status(&app, &u.token).await.0, 200);
    stop.cancel();
}

#[tokio::test]
async fn a_token_without_sid_stays_valid_until_it_expires() {
    let app = spawn_app().await;
    let u = app.register("legacy").await;
    let secret = match &app.config.jwt {
        courier::config::JwtKeyConfig::Hs256(s) => {
            secrecy::ExposeSecret::expose_secret(s).to_string()
        }
        _ => unreachable!("tests use HS256"),
    };
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": u.id, "iss": "courier", "iat": now, "exp": now + 300});
    let old = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    assert_eq!(me_status(&app, &old).await.0, 200);
    let list = sessions(&app, &old).await;
    assert!(list.iter().all(|s| s["current"] == false));
    let (s, _) = app.call("POST", "/auth/logout", Some(&old), None).await;
    assert_eq!(s, 204, "nothing to revoke");
    let (s, _) = app.call("POST", "/auth/logout-all", Some(&old), None).await;
    assert_eq!(s, 204);
    assert_eq!(me_status(&app, &u.token).await.1["code"], "session_revoked");
    assert_eq!(me_status(&app, &old).await.0, 200, "valid until it expires");
}

#[tokio::test]
async fn an_unknown_session_id_is_not_found() {
    let app = spawn_app().await;
    let u = app.register("unknown").await;
    let path = format!("/auth/sessions/{}", Uuid::new_v4());
    let (s, body) = app.call("DELETE", &path, Some(&u.token), None).await;
    assert_eq!((s, body["code"].as_str()), (404, Some("not_found")));
    let (s, body) = app
        .call("DELETE", "/auth/sessions/nope", Some(&u.token), None)
        .await;
    assert_eq!((s, body["code"].as_str()), (400, Some("validation_failed")));
}

#[tokio::test]
async fn the_chat_be_login_opens_a_session_too() {
    use common::{Mode, spawn_with, test_config};
    let app = spawn_with(Mode::AllInOne, test_config(&[("API_COMPAT", "chat-be")])).await;
    let email = format!(
        "c.{}@example.com",
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let body = json!({"email": email, "password": "secret1"});
    let (s, reg) = app
        .call("POST", "/auth/register", None, Some(body.clone()))
        .await;
    assert_eq!(s, 200, "{reg}");
    let login = app
        .http
        .post(format!("{}/auth/login", app.addr))
        .header("user-agent", "chat-be-app/1.0")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let login: Value = login.json().await.unwrap();
    let token = login["data"]["accessToken"]["token"].as_str().unwrap();
    // Courier's own routes the profile lacks still answer under it.
    let list = sessions(&app, token).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["deviceName"], "chat-be-app/1.0");
    assert_eq!(list[0]["current"], true);
    let id = list[0]["id"].as_str().unwrap();
    let (s, _) = app
        .call("DELETE", &format!("/auth/sessions/{id}"), Some(token), None)
        .await;
    assert_eq!(s, 204);
    let (s, body) = app.call("GET", "/auth/me", Some(token), None).await;
    assert_eq!(s, 401, "{body}");
}
