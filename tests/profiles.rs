//! Profiles against the real services (S3 stand-in included): `PATCH /users/me` with its
//! rules (an avatar must be the caller's own image upload of at most 5 MB, in storage;
//! nothing half-written), and `avatarUrl` and `bio` on every read of a `User`. User
//! search: tests/user_search.rs.

mod common;

use common::{Mode, PASSWORD, TestApp, TestUser, spawn_with, spawn_with_s3, test_config};
use serde_json::{Value, json};
use uuid::Uuid;

/// Announces an upload; uploads `bytes` when given. Returns its id.
async fn upload(
    app: &TestApp,
    user: &TestUser,
    ct: &str,
    size: usize,
    bytes: Option<&[u8]>,
) -> Uuid {
    let (s, ticket) = app
        .call(
            "POST",
            "/uploads",
            Some(&user.token),
            Some(json!({"fileName": "f", "contentType": ct, "size": size})),
        )
        .await;
    assert_eq!(s, 201, "{ticket}");
    if let Some(bytes) = bytes {
        let mut req = reqwest::Client::new().put(ticket["uploadUrl"].as_str().unwrap());
        for (k, v) in ticket["headers"].as_object().unwrap() {
            req = req.header(k.as_str(), v.as_str().unwrap());
        }
        let put = req.body(bytes.to_vec()).send().await.expect("upload");
        assert_eq!(put.status(), 200);
    }
    ticket["id"].as_str().unwrap().parse().unwrap()
}

async fn patch(app: &TestApp, user: &TestUser, body: Value) -> (u16, Value) {
    app.call("PATCH", "/users/me", Some(&user.token), Some(body))
        .await
}

fn refused(r: &(u16, Value), what: &str) {
    assert_eq!(r.0, 400, "{what}: {}", r.1);
    assert_eq!(r.1["code"], "validation_failed", "{what}: {}", r.1);
}

async fn download(url: &Value) -> Vec<u8> {
    let res = reqwest::get(url.as_str().expect("an avatarUrl"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn profile_changes_are_checked_applied_whole_and_read_everywhere() {
    let app = spawn_with_s3(Mode::ApiOnly, &[]).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let (s, me) = app.call("GET", "/users/me", Some(&alice.token), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        (&me["avatarUrl"], &me["bio"]),
        (&Value::Null, &Value::Null),
        "{me}"
    );

    let png = [0x89, b'P', b'N', b'G', 13, 10, 26, 10, 1, 2, 3];
    let bobs = upload(&app, &bob, "image/png", png.len(), Some(&png)).await;
    let text = upload(&app, &alice, "text/plain", 3, Some(b"abc")).await;
    let missing = upload(&app, &alice, "image/png", 10, None).await;
    let huge = upload(&app, &alice, "image/jpeg", 5 * 1024 * 1024 + 1, None).await;
    for (body, what) in [
        (json!({"bio": "x".repeat(501)}), "bio over 500"),
        (
            json!({"displayName": "x".repeat(65)}),
            "displayName over 64",
        ),
        (json!({"bio": "a\u{0}b"}), "NUL"),
        (json!({"avatarUploadId": bobs}), "another user's upload"),
        (json!({"avatarUploadId": Uuid::new_v4()}), "unknown upload"),
        (json!({"avatarUploadId": text}), "not an image"),
        (json!({"avatarUploadId": missing}), "not uploaded"),
        (json!({"avatarUploadId": huge}), "over 5 MB"),
        (json!({"avatarUploadId": "nope"}), "not a uuid"),
        (json!({"nickname": "x"}), "unknown field"),
    ] {
        refused(&patch(&app, &alice, body).await, what);
    }
    // Nothing half-written: valid fields beside a refused avatar are not applied.
    let r = patch(
        &app,
        &alice,
        json!({"displayName": "A", "bio": "b", "avatarUploadId": bobs}),
    )
    .await;
    refused(&r, "one bad field");
    let (_, now) = app.call("GET", "/users/me", Some(&alice.token), None).await;
    assert_eq!(now, me, "unchanged");

    let own = upload(&app, &alice, "image/png", png.len(), Some(&png)).await;
    let (s, changed) = patch(
        &app,
        &alice,
        json!({"displayName": "  Alice A ", "bio": "hello there", "avatarUploadId": own}),
    )
    .await;
    assert_eq!(s, 200, "{changed}");
    assert_eq!(changed["displayName"], "Alice A");
    assert_eq!(changed["bio"], "hello there");
    assert_eq!(changed["username"], json!(alice.username));
    assert_eq!(download(&changed["avatarUrl"]).await, png);

    // Every read of the user carries it: lookups, blocks, login, refresh.
    let (_, seen) = app
        .call(
            "GET",
            &format!("/users/{}", alice.id),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(
        (&seen["bio"], &seen["displayName"]),
        (&json!("hello there"), &json!("Alice A"))
    );
    assert_eq!(download(&seen["avatarUrl"]).await, png);
    let (s, _) = app
        .call(
            "PUT",
            &format!("/users/{}/block", alice.id),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, blocks) = app
        .call("GET", "/users/me/blocks", Some(&bob.token), None)
        .await;
    assert_eq!(download(&blocks[0]["avatarUrl"]).await, png);
    let (s, login) = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"username": alice.username, "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, 200, "{login}");
    assert_eq!(download(&login["user"]["avatarUrl"]).await, png);
    let (_, refreshed) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refreshToken": alice.refresh})),
        )
        .await;
    assert_eq!(refreshed["user"]["bio"], "hello there", "{refreshed}");

    // null clears one field; the others stay. {} changes nothing.
    let (s, cleared) = patch(&app, &alice, json!({"bio": null})).await;
    assert_eq!(s, 200);
    assert_eq!(cleared["bio"], Value::Null);
    assert_eq!(cleared["displayName"], "Alice A");
    assert!(cleared["avatarUrl"].is_string());
    let (_, cleared) = patch(
        &app,
        &alice,
        json!({"avatarUploadId": null, "displayName": " "}),
    )
    .await;
    assert_eq!(
        (&cleared["avatarUrl"], &cleared["displayName"]),
        (&Value::Null, &Value::Null)
    );
    let (s, same) = patch(&app, &alice, json!({})).await;
    assert_eq!((s, &same), (200, &cleared));
}

#[tokio::test]
async fn without_storage_an_avatar_is_refused_and_the_rest_works() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let alice = app.register("alice").await;
    let r = patch(
        &app,
        &alice,
        json!({"avatarUploadId": Uuid::new_v4(), "bio": "b"}),
    )
    .await;
    refused(&r, "no upload can exist");
    let (s, me) = patch(&app, &alice, json!({"bio": "b", "avatarUploadId": null})).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!((&me["bio"], &me["avatarUrl"]), (&json!("b"), &Value::Null));
}
