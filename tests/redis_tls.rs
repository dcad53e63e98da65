//! Redis over TLS against a real `redis-server` TLS port started per test, with a
//! throwaway PKI: the whole app over mutual TLS with an ACL user (send → worker → push
//! on the gateway channel), a Redis restart it recovers from, and each start-up
//! failure (wrong CA, expired, wrong host name, plaintext port, no client certificate)
//! as one line naming the variable and the cause.

mod common;
#[path = "redis_tls/server.rs"]
mod server;

use std::time::{Duration, Instant};

use common::{Mode, probe::Probe, spawn_with, test_config};
use courier::{cache::Cache, domain::events::EVENT_NEW};
use server::{ACL_PASSWORD, Pki, RedisTls};
use uuid::Uuid;

fn tls_vars(pki: &Pki, url: String) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_URL", url),
        ("REDIS_CA_CERT", pki.path("ca.pem")),
        ("REDIS_CLIENT_CERT", pki.path("client.pem")),
        ("REDIS_CLIENT_KEY", pki.path("client.key")),
    ]
}

fn config(vars: &[(&'static str, String)]) -> courier::config::Config {
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    test_config(&pairs)
}

fn acl_url(port: u16) -> String {
    format!("rediss://courier:{ACL_PASSWORD}@127.0.0.1:{port}/0")
}

#[tokio::test]
async fn the_app_runs_over_mutual_tls_and_recovers_from_a_redis_restart() {
    let pki = Pki::new();
    let mut redis = RedisTls::start(&pki, "server.pem");
    let app = spawn_with(Mode::AllInOne, config(&tls_vars(&pki, acl_url(redis.port)))).await;
    let (a, b) = (app.register("tls_a").await, app.register("tls_b").await);
    let chat = app.direct_chat(&a, &b).await;

    // Send → worker → push on the gateway's channel, every hop over TLS.
    let mut probe = Probe::new(&app, &[&b]).await;
    let (status, body) = app.send(&a, chat, "over tls", Uuid::new_v4()).await;
    assert_eq!(status, 202, "{body}");
    let (to, event) = probe.next(EVENT_NEW).await;
    assert_eq!(to, b.id);
    assert!(
        event.data.get().contains("over tls"),
        "{}",
        event.data.get()
    );

    // Messages sent right before and after a restart: each persisted once, and the
    // worker's pushes flow again over a new TLS connection.
    let before = 3;
    for i in 0..before {
        let (s, _) = app
            .send(&a, chat, &format!("before {i}"), Uuid::new_v4())
            .await;
        assert_eq!(s, 202);
    }
    redis.down();
    redis.up();
    let total = 1 + before + 1;
    // The app's connection manager reconnects over TLS (the first command after the
    // restart may see the old, closed session).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !app.cache.ping().await {
        assert!(
            Instant::now() < deadline,
            "no TLS reconnect after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The restarted Redis is empty: the probe registers again.
    let mut probe = Probe::new(&app, &[&b]).await;
    let (s, _) = app.send(&a, chat, "after restart", Uuid::new_v4()).await;
    assert_eq!(s, 202);
    let (_, event) = probe
        .next_where(|e| &*e.name == EVENT_NEW && e.data.get().contains("after restart"))
        .await;
    assert_eq!(event.chat, Some(chat));
    app.wait_messages(chat, total).await;
    let sequences = app.sequences(chat).await;
    assert_eq!(
        sequences,
        (1..=total).collect::<Vec<i64>>(),
        "0 lost, 0 duplicated"
    );
    assert!(
        app.cache.ping().await,
        "the app's own connection reconnected"
    );
}

/// `Cache::connect` with `vars` fails within 10 s (well before its 30 s patience) with
/// one line naming `REDIS_URL` and containing `cause`.
async fn fails_with(vars: &[(&'static str, String)], cause: &str) {
    let config = config(vars);
    let started = Instant::now();
    let e = match Cache::connect(&config, Duration::from_secs(30)).await {
        Ok(_) => panic!("connected, expected {cause:?}"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}: {e}",
        started.elapsed()
    );
    assert!(!e.contains('\n'), "one line: {e}");
    assert!(e.starts_with("REDIS_URL: "), "names the variable: {e}");
    assert!(e.contains(cause), "{cause:?} in {e}");
    assert!(!e.contains(ACL_PASSWORD), "no secret: {e}");
}

#[tokio::test]
async fn each_tls_failure_is_one_line_naming_the_variable_and_cause() {
    let pki = Pki::new();
    let good = RedisTls::start(&pki, "server.pem");
    let expired = RedisTls::start(&pki, "expired.pem");
    let with = |url: String, ca: &str| {
        let mut v = tls_vars(&pki, url);
        v[1].1 = pki.path(ca);
        v
    };

    // The control: the same settings connect.
    let ok = config(&with(acl_url(good.port), "ca.pem"));
    assert!(
        Cache::connect(&ok, Duration::from_secs(5))
            .await
            .unwrap()
            .ping()
            .await
    );

    fails_with(&with(acl_url(good.port), "other-ca.pem"), "untrusted").await;
    fails_with(&with(acl_url(expired.port), "ca.pem"), "expired").await;
    let by_name = format!("rediss://courier:{ACL_PASSWORD}@localhost:{}/0", good.port);
    fails_with(&with(by_name, "ca.pem"), "not valid for the host name").await;
    // The shared Redis on 6379 speaks plaintext.
    let plaintext = "rediss://127.0.0.1:6379/0".to_string();
    fails_with(&with(plaintext, "ca.pem"), "no TLS answer").await;
    // Mutual TLS: without a client certificate the server ends the handshake.
    let no_client = vec![
        ("REDIS_URL", acl_url(good.port)),
        ("REDIS_CA_CERT", pki.path("ca.pem")),
    ];
    let config = config(&no_client);
    let e = Cache::connect(&config, Duration::from_secs(3))
        .await
        .err()
        .expect("refused");
    let e = format!("{e:#}");
    assert!(e.starts_with("REDIS_URL: ") && !e.contains('\n'), "{e}");
}
