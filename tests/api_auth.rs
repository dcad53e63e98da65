//! Auth and users against a real database: happy paths and every error code.

mod common;

use common::{PASSWORD, spawn_app};
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn register_login_refresh_and_me() {
    let app = spawn_app().await;
    let name = format!("alice_{}", &Uuid::new_v4().simple().to_string()[..6]);
    let (s, body) = app
        .call(
            "POST",
            "/auth/register",
            None,
            Some(json!({"username": name, "password": PASSWORD, "displayName": "Alice"})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["user"]["username"], name.as_str());
    assert_eq!(body["user"]["displayName"], "Alice");
    assert_eq!(body["expiresIn"], 3600);
    assert!(body["user"]["createdAt"].as_str().unwrap().ends_with('Z'));
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE username = $1")
        .bind(&name)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "Argon2id, not plain");

    let (s, login) = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"username": name, "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, 200);
    let token = login["accessToken"].as_str().unwrap();
    let (s, me) = app.call("GET", "/users/me", Some(token), None).await;
    assert_eq!((s, &me["username"]), (200, &json!(name)));
    let id = me["id"].as_str().unwrap();
    let (s, other) = app
        .call("GET", &format!("/users/{id}"), Some(token), None)
        .await;
    assert_eq!((s, &other["id"]), (200, &json!(id)));
    let (s, err) = app
        .call(
            "GET",
            &format!("/users/{}", Uuid::new_v4()),
            Some(token),
            None,
        )
        .await;
    assert_eq!((s, err["code"].as_str()), (404, Some("not_found")));

    let (s, refreshed) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refreshToken": login["refreshToken"]})),
        )
        .await;
    assert_eq!(s, 200);
    assert_ne!(refreshed["refreshToken"], login["refreshToken"]);
    let (s, _) = app
        .call(
            "GET",
            "/users/me",
            Some(refreshed["accessToken"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn reused_refresh_token_revokes_the_family() {
    let app = spawn_app().await;
    let u = app.register("bob").await;
    let (s, first) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refreshToken": u.refresh})),
        )
        .await;
    assert_eq!(s, 200);
    // Replaying the old token is theft: refused, and the rotated one dies with it.
    let (s, err) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refreshToken": u.refresh})),
        )
        .await;
    assert_eq!((s, err["code"].as_str()), (401, Some("unauthorized")));
    let (s, _) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refreshToken": first["refreshToken"]})),
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refreshToken": "garbage"})),
        )
        .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn concurrent_reuses_of_one_refresh_token_let_one_through_and_revoke_the_family() {
    let app = spawn_app().await;
    let u = app.register("carol").await;
    let body = json!({"refreshToken": u.refresh});
    let results = futures::future::join_all(
        (0..16).map(|_| app.call("POST", "/auth/refresh", None, Some(body.clone()))),
    )
    .await;
    let winners: Vec<&serde_json::Value> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "the first use wins, every other is a reuse"
    );
    assert_eq!(results.iter().filter(|(s, _)| *s == 401).count(), 15);
    // The reuses revoked the family after the winner committed: its new token too.
    let (s, _) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refreshToken": winners[0]["refreshToken"]})),
        )
        .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn expired_refresh_tokens_are_purged() {
    let app = spawn_app().await;
    let u = app.register("dave").await;
    sqlx::query(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 minute' WHERE user_id = $1",
    )
    .bind(u.id)
    .execute(&app.pool)
    .await
    .unwrap();
    let (_, login) = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"username": u.username, "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        courier::db::tokens::purge_expired(&app.pool).await.unwrap(),
        1,
        "only the expired token"
    );
    let (s, _) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refreshToken": login["refreshToken"]})),
        )
        .await;
    assert_eq!(s, 200, "the live token survived the purge");
}

#[tokio::test]
async fn registration_is_validated() {
    let app = spawn_app().await;
    let cases = [
        json!({"username": "ab", "password": PASSWORD}),
        json!({"username": "Upper", "password": PASSWORD}),
        json!({"username": "has space", "password": PASSWORD}),
        json!({"username": "x".repeat(33), "password": PASSWORD}),
        json!({"username": "valid_name", "password": "short"}),
        json!({"username": "valid_name", "password": "x".repeat(129)}),
        json!({"username": "valid_name", "password": PASSWORD, "displayName": "d".repeat(65)}),
        json!({"username": 42, "password": PASSWORD}),
        json!({"password": PASSWORD}),
    ];
    for body in cases {
        let (s, err) = app
            .call("POST", "/auth/register", None, Some(body.clone()))
            .await;
        assert_eq!(s, 400, "{body}");
        assert_eq!(err["code"], "validation_failed", "{body}");
        assert_eq!(err["statusCode"], 400);
        assert_eq!(err["error"], "Bad Request");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing was written");

    let u = app.register("carol").await;
    let (s, err) = app
        .call(
            "POST",
            "/auth/register",
            None,
            Some(json!({"username": u.username, "password": PASSWORD})),
        )
        .await;
    assert_eq!((s, err["code"].as_str()), (409, Some("conflict")));

    let (s, err) = app
        .raw(
            "POST",
            "/auth/register",
            None,
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!((s, err["code"].as_str()), (400, Some("invalid_json")));
    let (s, err) = app
        .raw("POST", "/auth/register", None, "text/plain", b"{}".to_vec())
        .await;
    assert_eq!(
        (s, err["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let big = format!(
        r#"{{"username":"x","password":"{}"}}"#,
        "p".repeat(70 * 1024)
    );
    let (s, err) = app
        .raw(
            "POST",
            "/auth/register",
            None,
            "application/json",
            big.into_bytes(),
        )
        .await;
    assert_eq!((s, err["code"].as_str()), (413, Some("payload_too_large")));
}

#[tokio::test]
async fn login_failures_look_the_same() {
    let app = spawn_app().await;
    let u = app.register("dave").await;
    let (s1, e1) = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"username": u.username, "password": "wrong-password"})),
        )
        .await;
    let (s2, e2) = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"username": "nobody_here", "password": "wrong-password"})),
        )
        .await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(e1, e2, "same body for unknown user and wrong password");
    assert_eq!(e1["code"], "unauthorized");
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let app = spawn_app().await;
    let u = app.register("erin").await;
    let now = chrono::Utc::now().timestamp();
    let claims =
        |exp: i64, iss: &str| json!({"sub": u.id, "iss": iss, "iat": now - 10, "exp": exp});
    let secret = "test-secret-foreign-0123456789";
    let forged = encode(
        &Header::default(),
        &claims(now + 600, "courier"),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let own = match &app.config.jwt {
        courier::config::JwtKeyConfig::Hs256(s) => {
            secrecy::ExposeSecret::expose_secret(s).to_string()
        }
        _ => unreachable!("tests use HS256"),
    };
    let own_key = EncodingKey::from_secret(own.as_bytes());
    let expired = encode(&Header::default(), &claims(now - 120, "courier"), &own_key).unwrap();
    let wrong_iss = encode(&Header::default(), &claims(now + 600, "evil"), &own_key).unwrap();
    use base64::Engine;
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&claims(now + 600, "courier").to_string())
    );
    for token in [
        forged.as_str(),
        expired.as_str(),
        wrong_iss.as_str(),
        none.as_str(),
        "garbage",
    ] {
        let (s, err) = app.call("GET", "/users/me", Some(token), None).await;
        assert_eq!(
            (s, err["code"].as_str()),
            (401, Some("unauthorized")),
            "{token}"
        );
    }
    let (s, _) = app.call("GET", "/chats", None, None).await;
    assert_eq!(s, 401);
    let (s, _) = app.call("GET", "/users/me", Some(&u.token), None).await;
    assert_eq!(s, 200, "the real token still works");
}

#[tokio::test]
async fn health_and_unknown_routes() {
    let app = spawn_app().await;
    assert_eq!(app.call("GET", "/healthz", None, None).await.0, 200);
    assert_eq!(app.call("GET", "/readyz", None, None).await.0, 200);
    let (s, err) = app.call("GET", "/nope", None, None).await;
    assert_eq!((s, err["code"].as_str()), (404, Some("not_found")));
    let (s, err) = app.call("DELETE", "/auth/login", None, None).await;
    assert_eq!((s, err["statusCode"].as_u64()), (405, Some(405)));
}

#[tokio::test]
async fn rs256_keys_sign_and_verify_and_refuse_algorithm_confusion() {
    let private = include_str!("fixtures/rs256-test.key");
    let public = include_str!("fixtures/rs256-test.pub");
    let config = common::test_config(&[("JWT_PRIVATE_KEY", private), ("JWT_PUBLIC_KEY", public)]);
    let app = common::spawn_with(common::Mode::ApiOnly, config).await;
    let u = app.register("rsa").await;
    let header = jsonwebtoken::decode_header(&u.token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let (s, _) = app.call("GET", "/users/me", Some(&u.token), None).await;
    assert_eq!(s, 200);
    // The public key used as an HMAC secret must not pass.
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": u.id, "iss": "courier", "exp": now + 600});
    let confused = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    let (s, _) = app.call("GET", "/users/me", Some(&confused), None).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let config = common::test_config(&[("CORS_ORIGINS", "https://app.example.com")]);
    let app = common::spawn_with(common::Mode::AllInOne, config).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/chats", app.addr))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let evil = preflight("https://evil.example.com").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    let handshake = app
        .http
        .get(format!("{}/socket.io/?EIO=4&transport=polling", app.addr))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        handshake.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
}
