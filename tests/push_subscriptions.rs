//! Push subscriptions against a real database and Redis: registering a browser's Web
//! Push subscription or an FCM token (once per endpoint), listing and deleting the
//! caller's own, refusing malformed ones with 422, the per-user limit, the sessions
//! they are registered under (logout and revocation delete them). (The chat setting
//! `muteMentions`: tests/chat_list.rs.)

mod common;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use common::{Mode, PASSWORD, TestApp, spawn_app, spawn_with, test_config};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{Value, json};
use uuid::Uuid;

/// A fresh uncompressed P-256 public key, as a browser makes one per subscription.
fn p256dh_bytes() -> Vec<u8> {
    loop {
        let scalar: [u8; 32] = rand::random();
        if let Ok(secret) = p256::SecretKey::from_slice(&scalar) {
            return secret
                .public_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec();
        }
    }
}

/// A browser's `PushSubscription.toJSON()` for `endpoint`, with fresh keys.
fn browser_subscription(endpoint: &str) -> Value {
    json!({
        "endpoint": endpoint,
        "expirationTime": null,
        "keys": {
            "p256dh": B64.encode(p256dh_bytes()),
            "auth": B64.encode(rand::random::<[u8; 16]>()),
        },
    })
}

fn endpoint() -> String {
    format!("https://push.example.net/send/{}", Uuid::new_v4())
}

async fn subscribe(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.call("POST", "/push/subscriptions", Some(token), Some(body))
        .await
}

async fn subscriptions(app: &TestApp, token: &str) -> Vec<Value> {
    let (s, body) = app
        .call("GET", "/push/subscriptions", Some(token), None)
        .await;
    assert_eq!(s, 200, "{body}");
    body.as_array().expect("a list").clone()
}

fn ids(list: &[Value]) -> Vec<&str> {
    list.iter().map(|s| s["id"].as_str().unwrap()).collect()
}

/// `DELETE /push/subscriptions/{id}`: the status and the error code (null if none).
async fn unsubscribe(app: &TestApp, token: &str, id: &Value) -> (u16, Value) {
    let path = format!("/push/subscriptions/{}", id.as_str().unwrap());
    let (s, body) = app.call("DELETE", &path, Some(token), None).await;
    (s, body["code"].clone())
}

#[tokio::test]
async fn a_device_registers_once_and_each_user_sees_only_their_own() {
    let app = spawn_app().await;
    let (a, b) = (app.register("pa").await, app.register("pb").await);
    let web = endpoint();
    let (s, first) = subscribe(&app, &a.token, browser_subscription(&web)).await;
    assert_eq!(s, 201, "{first}");
    assert_eq!(first["type"], "webpush");
    assert!(first["id"].is_string() && first["createdAt"].is_string());
    assert_eq!(first.as_object().unwrap().len(), 3, "{first}");

    // Again, with new keys and an explicit type: the same subscription, updated.
    let mut again = browser_subscription(&web);
    again["type"] = json!("webpush");
    again["expirationTime"] = json!(4_102_444_800_000i64);
    let (s, second) = subscribe(&app, &a.token, again.clone()).await;
    assert_eq!(s, 200, "{second}");
    assert_eq!(
        (&second["id"], &second["createdAt"]),
        (&first["id"], &first["createdAt"])
    );
    let id: Uuid = first["id"].as_str().unwrap().parse().unwrap();
    let (p256dh, expires): (String, i64) = sqlx::query_as(
        "SELECT p256dh, (extract(epoch FROM expiration_time) * 1000)::bigint
         FROM push_subscriptions WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(p256dh, again["keys"]["p256dh"]);
    assert_eq!(expires, 4_102_444_800_000);

    let token = "cXk:APA91bH-x_y.z0123456789";
    let (s, fcm) = subscribe(&app, &a.token, json!({"type": "fcm", "token": token})).await;
    assert_eq!((s, &fcm["type"]), (201, &json!("fcm")), "{fcm}");
    let (s, _) = subscribe(&app, &b.token, browser_subscription(&endpoint())).await;
    assert_eq!(s, 201);

    let mine = subscriptions(&app, &a.token).await;
    assert_eq!(
        ids(&mine),
        [fcm["id"].as_str().unwrap(), first["id"].as_str().unwrap()]
    );
    assert_eq!(mine[0]["token"], token);
    assert!(mine[0].get("endpoint").is_none(), "{}", mine[0]);
    assert_eq!(mine[1]["endpoint"], web.as_str());
    assert!(mine[1].get("token").is_none(), "{}", mine[1]);
    for s in &mine {
        assert_eq!(s["current"], true, "registered under this session: {s}");
        assert!(s["updatedAt"].as_str().unwrap() >= s["createdAt"].as_str().unwrap());
    }
    let theirs = subscriptions(&app, &b.token).await;
    assert_eq!(theirs.len(), 1);

    // A browser endpoint belongs to whoever registered it last.
    let (s, moved) = subscribe(&app, &b.token, browser_subscription(&web)).await;
    assert_eq!((s, &moved["id"]), (200, &first["id"]));
    assert_eq!(
        ids(&subscriptions(&app, &a.token).await),
        [fcm["id"].as_str().unwrap()]
    );
    assert_eq!(subscriptions(&app, &b.token).await.len(), 2);

    assert_eq!(
        unsubscribe(&app, &a.token, &first["id"]).await,
        (404, json!("not_found")),
        "b's now"
    );
    assert_eq!(
        unsubscribe(&app, &a.token, &fcm["id"]).await,
        (204, Value::Null)
    );
    assert!(subscriptions(&app, &a.token).await.is_empty());
    assert_eq!(unsubscribe(&app, &a.token, &fcm["id"]).await.0, 404, "gone");
    let unknown = json!(Uuid::new_v4());
    assert_eq!(unsubscribe(&app, &a.token, &unknown).await.0, 404);
    let (s, err) = app
        .call("DELETE", "/push/subscriptions/nope", Some(&a.token), None)
        .await;
    assert_eq!((s, err["code"].as_str()), (400, Some("validation_failed")));
    assert_eq!(
        app.call("GET", "/push/subscriptions", None, None).await.0,
        401
    );
}

#[tokio::test]
async fn malformed_subscriptions_are_422_and_nothing_is_stored() {
    let app = spawn_app().await;
    let u = app.register("bad").await;
    let good = browser_subscription(&endpoint());
    let with = |path: &[&str], v: Value| {
        let mut b = good.clone();
        let mut at = &mut b;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = v;
        b
    };
    let mut off_curve = p256dh_bytes();
    off_curve[64] ^= 1;
    let mut compressed = p256dh_bytes();
    compressed.truncate(33);
    compressed[0] = 0x02;
    let cases = [
        with(&["keys", "p256dh"], json!("not base64!")),
        with(
            &["keys", "p256dh"],
            json!(B64.encode(&p256dh_bytes()[..64])),
        ),
        with(&["keys", "p256dh"], json!(B64.encode(&compressed))),
        with(&["keys", "p256dh"], json!(B64.encode(&off_curve))),
        with(&["keys", "auth"], json!(B64.encode([7u8; 15]))),
        with(&["keys", "auth"], json!("a+b/c==")),
        with(&["keys"], json!(null)),
        with(&["endpoint"], json!("http://127.0.0.1:9000/push")),
        with(&["endpoint"], json!("/relative")),
        with(
            &["endpoint"],
            json!(format!("https://x.example/{}", "a".repeat(2048))),
        ),
        with(&["expirationTime"], json!("soon")),
        with(&["type"], json!("apns")),
        json!({"type": "fcm", "token": "has spaces"}),
        json!({"type": "fcm", "token": ""}),
        json!({"type": "fcm", "token": "x".repeat(4097)}),
        json!({"type": "fcm"}),
        json!(["not", "an", "object"]),
    ];
    for body in cases {
        let (s, err) = subscribe(&app, &u.token, body.clone()).await;
        assert_eq!(
            (s, err["code"].as_str(), err["statusCode"].as_u64()),
            (422, Some("validation_failed"), Some(422)),
            "{body} → {err}"
        );
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (s, err) = app
        .raw(
            "POST",
            "/push/subscriptions",
            Some(&u.token),
            "application/json",
            b"{".to_vec(),
        )
        .await;
    assert_eq!((s, err["code"].as_str()), (400, Some("invalid_json")));
    assert!(subscriptions(&app, &u.token).await.is_empty());
    // The padded forms a browser may give are fine.
    let padded = with(
        &["keys", "auth"],
        json!(base64::engine::general_purpose::URL_SAFE.encode([7u8; 16])),
    );
    assert_eq!(subscribe(&app, &u.token, padded).await.0, 201);
}

#[tokio::test]
async fn the_vapid_key_needs_web_push_configured() {
    let app = spawn_app().await;
    let u = app.register("vapid").await;
    let (s, err) = app
        .call("GET", "/push/vapid-public-key", Some(&u.token), None)
        .await;
    assert_eq!(
        (s, err["code"].as_str()),
        (404, Some("push_not_configured")),
        "{err}"
    );
    assert_eq!(
        app.call("GET", "/push/vapid-public-key", None, None)
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn revoking_a_session_deletes_the_subscriptions_registered_under_it() {
    let app = spawn_app().await;
    let u = app.register("rev").await;
    let (phone, _) = app.login_device(&u, "Phone").await;
    let (laptop, _) = app.login_device(&u, "Laptop").await;
    let mut ids_by_session = Vec::new();
    for token in [&u.token, &phone, &laptop] {
        let (s, body) = subscribe(&app, token, browser_subscription(&endpoint())).await;
        assert_eq!(s, 201, "{body}");
        ids_by_session.push(body["id"].as_str().unwrap().to_string());
    }
    let (s, fcm) = subscribe(&app, &phone, json!({"type": "fcm", "token": "phone-token"})).await;
    assert_eq!(s, 201);
    let listed = subscriptions(&app, &phone).await;
    assert_eq!(listed.len(), 4);
    let current: Vec<&str> = listed
        .iter()
        .filter(|s| s["current"] == true)
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        current,
        [fcm["id"].as_str().unwrap(), ids_by_session[1].as_str()]
    );

    // Logging out the phone deletes its two; the others stay.
    assert_eq!(
        app.call("POST", "/auth/logout", Some(&phone), None).await.0,
        204
    );
    let left = subscriptions(&app, &u.token).await;
    let mut left_ids = ids(&left);
    left_ids.sort();
    let mut expected = [ids_by_session[0].as_str(), ids_by_session[2].as_str()];
    expected.sort();
    assert_eq!(left_ids, expected);
    // Its tokens register nothing any more.
    let (s, err) = subscribe(&app, &phone, browser_subscription(&endpoint())).await;
    assert_eq!((s, err["code"].as_str()), (401, Some("session_revoked")));

    // Revoking the laptop's session from another device deletes the laptop's.
    let laptop_session: Uuid =
        sqlx::query_scalar("SELECT id FROM sessions WHERE user_id = $1 AND device_name = 'Laptop'")
            .bind(u.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let (s, _) = app
        .call(
            "DELETE",
            &format!("/auth/sessions/{laptop_session}"),
            Some(&u.token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(
        ids(&subscriptions(&app, &u.token).await),
        [ids_by_session[0].as_str()]
    );

    // logout-all takes the last one.
    assert_eq!(
        app.call("POST", "/auth/logout-all", Some(&u.token), None)
            .await
            .0,
        204
    );
    assert_eq!(stored(&app, u.id).await, 0);
}

/// How many subscriptions of `user` are stored.
async fn stored(app: &TestApp, user: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM push_subscriptions WHERE user_id = $1")
        .bind(user)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn deleting_the_account_deletes_every_subscription() {
    let app = spawn_app().await;
    let u = app.register("gone").await;
    assert_eq!(
        subscribe(&app, &u.token, browser_subscription(&endpoint()))
            .await
            .0,
        201
    );
    // As if its session had been purged since: registered under none.
    sqlx::query("UPDATE push_subscriptions SET session_id = NULL WHERE user_id = $1")
        .bind(u.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let body = json!({"password": PASSWORD});
    let (s, err) = app
        .call("DELETE", "/users/me", Some(&u.token), Some(body))
        .await;
    assert_eq!(s, 204, "{err}");
    assert_eq!(stored(&app, u.id).await, 0);
}

#[tokio::test]
async fn a_user_keeps_twenty_and_registrations_are_rate_limited() {
    let app = spawn_with(
        Mode::ApiOnly,
        test_config(&[("RATE_LIMIT_PUSH_SUBSCRIPTION_MAX", "22")]),
    )
    .await;
    let u = app.register("many").await;
    let mut first = None;
    for i in 0..21 {
        let body = json!({"type": "fcm", "token": format!("token-{i}")});
        let (s, r) = subscribe(&app, &u.token, body).await;
        assert_eq!(s, 201, "{r}");
        first.get_or_insert(r["id"].as_str().unwrap().to_string());
    }
    let listed = subscriptions(&app, &u.token).await;
    assert_eq!(listed.len(), 20);
    let first = first.unwrap();
    assert!(
        !ids(&listed).contains(&first.as_str()),
        "the oldest was replaced"
    );
    // Registering one again updates it: nothing more is replaced.
    let (s, _) = subscribe(&app, &u.token, json!({"type": "fcm", "token": "token-1"})).await;
    assert_eq!(s, 200);
    assert_eq!(stored(&app, u.id).await, 20);
    let (s, err) = subscribe(&app, &u.token, json!({"type": "fcm", "token": "token-x"})).await;
    assert_eq!(
        (s, err["code"].as_str()),
        (429, Some("rate_limited")),
        "{err}"
    );
}
