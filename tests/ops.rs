//! Operations: rate limits (Redis), Prometheus metrics, security headers, request ids.

mod common;

use common::{Mode, spawn_app, spawn_with, test_config};
use serde_json::json;
use uuid::Uuid;

/// Limits count in fixed windows aligned on the epoch: a test whose hits straddle a
/// window's end would see the count restart. Waits, if needed, until at least 30 s of
/// the current window are left.
async fn fresh_window(window_secs: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let left = window_secs - now % window_secs;
    if left < 30 {
        tokio::time::sleep(std::time::Duration::from_secs(left + 1)).await;
    }
}

#[tokio::test]
async fn sends_are_rate_limited_per_user() {
    let config = test_config(&[
        ("RATE_LIMIT_SEND_MAX", "3"),
        ("RATE_LIMIT_SEND_WINDOW_SECS", "3600"),
    ]);
    let app = spawn_with(Mode::AllInOne, config).await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    fresh_window(3600).await;
    for _ in 0..3 {
        assert_eq!(app.send(&a, chat, "ok", Uuid::new_v4()).await.0, 202);
    }
    let resp = app
        .http
        .post(format!("{}/chats/{chat}/messages", app.addr))
        .bearer_auth(&a.token)
        .json(&json!({"content": "too many", "clientMessageId": Uuid::new_v4()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry));
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "rate_limited");
    assert_eq!(
        app.send(&b, chat, "b is not limited", Uuid::new_v4())
            .await
            .0,
        202
    );
    app.wait_messages(chat, 4).await;
    app.teardown().await;
}

#[tokio::test]
async fn auth_attempts_are_rate_limited_per_username() {
    let config = test_config(&[
        ("RATE_LIMIT_AUTH_USERNAME_MAX", "3"),
        ("RATE_LIMIT_AUTH_USERNAME_WINDOW_SECS", "3600"),
    ]);
    let app = spawn_with(Mode::ApiOnly, config).await;
    fresh_window(3600).await;
    let u = app.register("victim").await; // attempt 1
    let wrong = json!({"username": u.username, "password": "wrong-password"});
    for _ in 0..2 {
        assert_eq!(
            app.call("POST", "/auth/login", None, Some(wrong.clone()))
                .await
                .0,
            401
        );
    }
    let (s, err) = app.call("POST", "/auth/login", None, Some(wrong)).await;
    assert_eq!((s, err["code"].as_str()), (429, Some("rate_limited")));
    // Another username is not affected.
    let other = app.register("bystander").await;
    assert!(!other.token.is_empty());
    app.teardown().await;
}

#[tokio::test]
async fn metrics_headers_and_request_ids() {
    let app = spawn_app().await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    assert_eq!(app.send(&a, chat, "counted", Uuid::new_v4()).await.0, 202);
    app.wait_messages(chat, 1).await;

    let resp = app
        .http
        .get(format!("{}/users/me", app.addr))
        .bearer_auth(&a.token)
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-me-123");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let generated = app
        .http
        .get(format!("{}/healthz", app.addr))
        .send()
        .await
        .unwrap();
    assert!(Uuid::parse_str(generated.headers()["x-request-id"].to_str().unwrap()).is_ok());

    // Not on the public port: on the metrics listener only.
    let public = app
        .http
        .get(format!("{}/metrics", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let text = app
        .http
        .get(format!("{}/metrics", app.metrics))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        r#"courier_http_requests_total{route="/auth/register",method="POST",status="201"}"#,
        "courier_http_request_duration_seconds_bucket",
        r#"courier_publish_total{exchange=""#,
        "courier_worker_batch_size",
        "courier_worker_persist_seconds",
        r#"courier_worker_messages_total{outcome="persisted"}"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    app.teardown().await;
}

/// Logs in as `username` with `password`, as the client `xff` (`X-Forwarded-For`).
async fn login_from(app: &common::TestApp, username: &str, password: &str, xff: &str) -> u16 {
    app.http
        .post(format!("{}/auth/login", app.addr))
        .header("x-forwarded-for", xff)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn forwarded_clients_are_believed_only_from_trusted_proxies() {
    let limits = [
        ("RATE_LIMIT_AUTH_IP_MAX", "3"),
        ("RATE_LIMIT_AUTH_IP_WINDOW_SECS", "3600"),
    ];
    // The test client (127.0.0.1) is a trusted proxy: each forwarded client has its own bucket.
    let mut trusted = limits.to_vec();
    trusted.push(("TRUSTED_PROXIES", "127.0.0.1/32, ::1"));
    let app = spawn_with(Mode::ApiOnly, test_config(&trusted)).await;
    fresh_window(3600).await;
    for _ in 0..3 {
        assert_eq!(
            login_from(&app, "nobody_x", "wrong-password", "203.0.113.1").await,
            401
        );
    }
    assert_eq!(
        login_from(&app, "nobody_x", "wrong-password", "203.0.113.1").await,
        429
    );
    assert_eq!(
        login_from(&app, "nobody_x", "wrong-password", "203.0.113.2").await,
        401,
        "another client behind the proxy has its own limit"
    );
    app.teardown().await;

    // Untrusted: a spoofed header changes nothing, the peer is the client.
    let app = spawn_with(Mode::ApiOnly, test_config(&limits)).await;
    for i in 0..3 {
        let spoof = format!("198.51.100.{i}");
        assert_eq!(
            login_from(&app, "nobody_y", "wrong-password", &spoof).await,
            401
        );
    }
    assert_eq!(
        login_from(&app, "nobody_y", "wrong-password", "198.51.100.99").await,
        429
    );
    app.teardown().await;
}

#[tokio::test]
async fn a_stranger_cannot_lock_a_user_out() {
    let config = test_config(&[
        ("RATE_LIMIT_AUTH_USERNAME_MAX", "2"),
        ("RATE_LIMIT_AUTH_USERNAME_WINDOW_SECS", "3600"),
        ("TRUSTED_PROXIES", "127.0.0.1/32, ::1"),
    ]);
    let app = spawn_with(Mode::ApiOnly, config).await;
    fresh_window(3600).await;
    let victim = app.register("victim").await;
    for _ in 0..2 {
        assert_eq!(
            login_from(&app, &victim.username, "guess", "203.0.113.66").await,
            401
        );
    }
    assert_eq!(
        login_from(&app, &victim.username, "guess", "203.0.113.66").await,
        429,
        "the stranger is limited"
    );
    assert_eq!(
        login_from(&app, &victim.username, common::PASSWORD, "192.0.2.10").await,
        200,
        "the owner, from elsewhere, is not"
    );
    app.teardown().await;
}

#[tokio::test]
async fn a_slow_request_head_is_cut_off_while_others_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let host = app.addr.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&host).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    // Meanwhile a normal request is answered at once.
    let (s, _) = app.call("GET", "/healthz", None, None).await;
    assert_eq!(s, 200);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // The half-sent head is closed after the header read timeout (10 s).
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(std::time::Duration::from_secs(20), slow.read(&mut buf))
        .await
        .expect("closed within 20 s")
        .unwrap_or(0);
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(9),
        "not before the timeout: {waited:?}"
    );
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        n == 0 || answer.starts_with("HTTP/1.1 408"),
        "closed, or told 408: {answer:?}"
    );
    app.teardown().await;
}

#[tokio::test]
async fn connections_over_the_cap_wait_for_a_free_slot() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_with(
        Mode::AllInOne,
        test_config(&[("HTTP_MAX_CONNECTIONS", "2")]),
    )
    .await;
    let host = app.addr.trim_start_matches("http://").to_string();
    // Two idle connections hold both slots.
    let mut first = tokio::net::TcpStream::connect(&host).await.unwrap();
    let _second = tokio::net::TcpStream::connect(&host).await.unwrap();
    first.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/healthz", app.addr);
    let waiting = tokio::spawn(async move { http.get(url).send().await.map(|r| r.status()) });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection waits while two are held"
    );
    drop(first);
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("served once a slot is free")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    app.teardown().await;
}
