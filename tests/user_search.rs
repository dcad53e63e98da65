//! `GET /users/search` against the real services: ranking (exact, username prefix,
//! display name prefix, trigram), keyset paging, typo matches, the caller and blockers
//! left out, validation, and the per-user rate limit.

mod common;

use common::{Mode, PASSWORD, TestApp, TestUser, spawn_with, test_config};
use serde_json::{Value, json};

fn refused(r: &(u16, Value), what: &str) {
    assert_eq!(r.0, 400, "{what}: {}", r.1);
    assert_eq!(r.1["code"], "validation_failed", "{what}: {}", r.1);
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
