//! Profiles and user search against the real services: `PATCH /users/me` with its
//! rules (an avatar must be the caller's own image upload of at most 5 MB, in storage;
//! nothing half-written), `avatarUrl` and `bio` on every read of a `User`, and
//! `GET /users/search` ranking, paging, block exclusion, validation and rate limit.

mod common;

use common::{Mode, PASSWORD, TestApp, TestUser, spawn_with, test_config};
use serde_json::{Value, json};
use uuid::Uuid;

fn endpoint() -> String {
    std::env::var("S3_TEST_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9090".into())
}

/// An API whose uploads go to a fresh bucket of the S3 stand-in.
async fn s3_app() -> TestApp {
    let bucket = format!(
        "courier-prof-{}",
        &Uuid::new_v4().simple().to_string()[..12]
    );
    let created = reqwest::Client::new()
        .put(format!("{}/{bucket}", endpoint()))
        .send()
        .await
        .expect("S3 server reachable (scripts/services.sh starts moto_server)");
    assert!(created.status().is_success(), "{}", created.status());
    let cfg = test_config(&[
        ("S3_ENDPOINT", &endpoint()),
        ("S3_BUCKET", &bucket),
        ("S3_REGION", "us-east-1"),
        ("S3_ACCESS_KEY_ID", "test"),
        ("S3_SECRET_ACCESS_KEY", "test-secret"),
    ]);
    spawn_with(Mode::ApiOnly, cfg).await
}

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
    let app = s3_app().await;
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

/// Registers `username` (exactly) with a display name.
async fn register_as(app: &TestApp, username: &str, display: Option<&str>) -> TestUser {
    let (s, body) = app
        .call(
            "POST",
            "/auth/register",
            None,
            Some(json!({"username": username, "password": PASSWORD, "displayName": display})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    TestUser {
        id: body["user"]["id"].as_str().unwrap().parse().unwrap(),
        username: username.into(),
        token: body["accessToken"].as_str().unwrap().into(),
        refresh: body["refreshToken"].as_str().unwrap().into(),
    }
}

async fn search(app: &TestApp, who: &TestUser, query: &str) -> (u16, Value) {
    app.call(
        "GET",
        &format!("/users/search?{query}"),
        Some(&who.token),
        None,
    )
    .await
}

fn names(page: &Value) -> Vec<String> {
    page["users"]
        .as_array()
        .unwrap_or_else(|| panic!("users: {page}"))
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn search_ranks_pages_and_hides_the_caller_and_blockers() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let me = register_as(&app, "maximilian_me", None).await;
    for (name, display) in [
        ("maxi_milian", None),
        ("maximilian_z", None),
        ("zz1", Some("Maximilian K")),
        ("maximillian_x", None),
        ("maximilian", None),
        ("maximilian_k", None),
        ("maksimilian", None),
        ("bob", Some("Bob")),
    ] {
        register_as(&app, name, display).await;
    }
    let blocker = register_as(&app, "maximilian_blk", None).await;
    let blocked = register_as(&app, "maximilian_q", None).await;
    for (who, whom) in [(&blocker, &me), (&me, &blocked)] {
        let (s, _) = app
            .call(
                "PUT",
                &format!("/users/{}/block", whom.id),
                Some(&who.token),
                None,
            )
            .await;
        assert_eq!(s, 204);
    }

    // Exact, username prefixes, display name prefix, then trigram matches by
    // similarity; never the caller nor the blocker; the user the caller blocked is in.
    let expected = [
        "maximilian",
        "maximilian_k",
        "maximilian_q",
        "maximilian_z",
        "zz1",
        "maximillian_x",
        "maxi_milian",
    ];
    let (s, all) = search(&app, &me, "q=Maximilian").await;
    assert_eq!(s, 200, "{all}");
    assert_eq!(names(&all), expected);
    assert_eq!(all["nextCursor"], Value::Null);
    assert_eq!(all["users"][4]["displayName"], "Maximilian K");
    assert!(all["users"][0].get("avatarUrl").is_some() && all["users"][0].get("bio").is_some());

    // Pages of 2: the same order, each user once, a cursor until the last page.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let query = match &cursor {
            None => "q=maximilian&limit=2".to_string(),
            Some(c) => format!("q=maximilian&limit=2&cursor={c}"),
        };
        let (s, body) = search(&app, &me, &query).await;
        assert_eq!(s, 200, "{body}");
        walked.extend(names(&body));
        cursor = body["nextCursor"].as_str().map(String::from);
        if cursor.is_none() {
            assert_eq!(page, 3, "7 users in pages of 2");
            break;
        }
    }
    assert_eq!(walked, expected);

    // A typo finds by trigram; a prefix of a display name finds by it.
    let (_, typo) = search(&app, &me, "q=maximillian").await;
    assert_eq!(names(&typo)[0], "maximillian_x", "{typo}");
    assert!(names(&typo).contains(&"maximilian_k".to_string()), "{typo}");
    let (_, bob) = search(&app, &me, "q=bo").await;
    assert_eq!(names(&bob), ["bob"]);
    // LIKE's wildcards are literal.
    let (_, none) = search(&app, &me, "q=%25").await;
    assert_eq!(names(&none), Vec::<String>::new());

    // The blocker is found again once the block is lifted.
    let (s, _) = app
        .call(
            "DELETE",
            &format!("/users/{}/block", me.id),
            Some(&blocker.token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, after) = search(&app, &me, "q=maximilian_b").await;
    assert_eq!(names(&after)[0], "maximilian_blk", "{after}");

    // Validation.
    let first = search(&app, &me, "q=maximilian&limit=2").await.1;
    let cursor = first["nextCursor"].as_str().unwrap();
    for query in [
        String::new(),
        "q=".into(),
        "q=%20%20".into(),
        format!("q={}", "a".repeat(65)),
        "q=a%00b".into(),
        "q=max&limit=0".into(),
        "q=max&limit=51".into(),
        "q=max&limit=x".into(),
        "q=max&cursor=nope".into(),
        format!("q=maxi&cursor={cursor}"),
    ] {
        refused(&search(&app, &me, &query).await, &query);
    }
    let (s, fifty) = search(&app, &me, &format!("q={}&limit=50", "a".repeat(64))).await;
    assert_eq!((s, names(&fifty).len()), (200, 0));
}

#[tokio::test]
async fn search_is_rate_limited_per_user() {
    let cfg = test_config(&[
        ("RATE_LIMIT_USER_SEARCH_MAX", "3"),
        ("RATE_LIMIT_USER_SEARCH_WINDOW_SECS", "60"),
    ]);
    let app = spawn_with(Mode::ApiOnly, cfg).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let get = |who: &TestUser| {
        app.http
            .get(format!("{}/users/search?q=bob", app.addr))
            .bearer_auth(&who.token)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(get(&alice).await.unwrap().status(), 200);
    }
    let over = get(&alice).await.unwrap();
    assert_eq!(over.status(), 429);
    let retry: u64 = over.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    let body: Value = over.json().await.unwrap();
    assert_eq!(
        (body["code"].as_str(), body["statusCode"].as_u64()),
        (Some("rate_limited"), Some(429))
    );
    assert_eq!(
        get(&bob).await.unwrap().status(),
        200,
        "the limit is per user"
    );
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
