//! Operations: rate limits (Redis), Prometheus metrics, security headers, request ids.

mod common;

use common::{Mode, spawn_app, spawn_with, test_config};
use serde_json::json;
use uuid::Uuid;

/// Limits count in fixed windows aligned on the epoch: a test whose hits straddle a
/// window's end would see the count restart. Rather than wait for a fresh window, a
/// window length is chosen (an hour or a little more) whose current window has at
/// least ten minutes left.
fn roomy_window() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (3600..)
        .find(|w| w - now % w >= 600)
        .expect("some window length")
}

#[tokio::test]
async fn sends_are_rate_limited_per_user() {
    let window = roomy_window();
    let config = test_config(&[
        ("RATE_LIMIT_SEND_MAX", "3"),
        ("RATE_LIMIT_SEND_WINDOW_SECS", &window.to_string()),
    ]);
    let app = spawn_with(Mode::AllInOne, config).await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
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
    assert!((1..=window).contains(&retry));
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "rate_limited");
    assert_eq!(
        app.send(&b, chat, "b is not limited", Uuid::new_v4())
            .await
            .0,
        202
    );
    app.wait_messages(chat, 4).await;
}

#[tokio::test]
async fn auth_attempts_are_rate_limited_per_username() {
    let window = roomy_window().to_string();
    let config = test_config(&[
        ("RATE_LIMIT_AUTH_USERNAME_MAX", "3"),
        ("RATE_LIMIT_AUTH_USERNAME_WINDOW_SECS", &window),
    ]);
    let app = spawn_with(Mode::ApiOnly, config).await;
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
    let window = roomy_window().to_string();
    let limits = [
        ("RATE_LIMIT_AUTH_IP_MAX", "3"),
        ("RATE_LIMIT_AUTH_IP_WINDOW_SECS", window.as_str()),
    ];
    // The test client (127.0.0.1) is a trusted proxy: each forwarded client has its own bucket.
    let mut trusted = limits.to_vec();
    trusted.push(("TRUSTED_PROXIES", "127.0.0.1/32, ::1"));
    let app = spawn_with(Mode::ApiOnly, test_config(&trusted)).await;
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
    drop(app);

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
}

#[tokio::test]
async fn a_stranger_cannot_lock_a_user_out() {
    let window = roomy_window().to_string();
    let config = test_config(&[
        ("RATE_LIMIT_AUTH_USERNAME_MAX", "2"),
        ("RATE_LIMIT_AUTH_USERNAME_WINDOW_SECS", &window),
        ("TRUSTED_PROXIES", "127.0.0.1/32, ::1"),
    ]);
    let app = spawn_with(Mode::ApiOnly, config).await;
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
}

#[tokio::test]
async fn connections_over_the_cap_wait_for_a_free_slot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut app = spawn_with(
        Mode::AllInOne,
        test_config(&[("HTTP_MAX_CONNECTIONS", "2")]),
    )
    .await;
    // The readiness check's pooled keep-alive connection would hold a slot: drop it.
    app.http = reqwest::Client::new();
    let host = app.addr.trim_start_matches("http://").to_string();
    let port: u16 = host.rsplit_once(':').unwrap().1.parse().unwrap();
    // Two idle connections hold both slots: both accepted (no longer in the listener's
    // accept queue) before the third comes.
    let mut first = tokio::net::TcpStream::connect(&host).await.unwrap();
    let _second = tokio::net::TcpStream::connect(&host).await.unwrap();
    first.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    common::poll::until("both connections accepted", || async {
        (accept_queue(port) == 0).then_some(())
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/healthz", app.addr);
    let waiting = tokio::spawn(async move { http.get(url).send().await.map(|r| r.status()) });
    // The barrier: the kernel holds the third connection in the accept queue, which a
    // server that kept accepting would have emptied.
    common::poll::until("the third connection in the accept queue", || async {
        (accept_queue(port) == 1).then_some(())
    })
    .await;
    // A request on a held connection is served meanwhile; the third still waits.
    first.write_all(b"Host: x\r\n\r\n").await.unwrap();
    let mut head = [0u8; 12];
    first.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert_eq!(
        accept_queue(port),
        1,
        "the third connection is not accepted"
    );
    assert!(
        !waiting.is_finished(),
        "a third connection waits while two are held"
    );
    drop(first);
    let status = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
        .await
        .expect("served once a slot is free")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}

/// Connections waiting in the accept queue of the listener on 127.0.0.1:`port` (Linux:
/// for a listening socket, `/proc/net/tcp` reports that queue as `rx_queue`).
fn accept_queue(port: u16) -> u32 {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 4 && f[1] == local && f[3] == "0A")
        .and_then(|f| f[4].split_once(':'))
        .and_then(|(_, rx)| u32::from_str_radix(rx, 16).ok())
        .expect("the listener in /proc/net/tcp")
}
