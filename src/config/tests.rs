//! Tests of the configuration as a whole: defaults, named errors, secrets kept out of
//! `Debug` and error text.

use secrecy::ExposeSecret;

use super::*;

fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

const SECRET: (&str, &str) = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");

/// The configuration of a good `JWT_SECRET` and `pairs`.
fn with_secret(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    cfg(&[&[SECRET], pairs].concat())
}

/// The variable a good `JWT_SECRET` and `pairs` are refused for.
fn refused(pairs: &[(&str, &str)]) -> String {
    with_secret(pairs).unwrap_err().var.to_string()
}

#[test]
fn defaults_follow_the_contract() {
    let c = with_secret(&[]).unwrap();
    assert_eq!(c.rabbitmq.partition_count, 8);
    assert_eq!(c.rabbitmq.exchange, "chat.events");
    assert_eq!(
        c.rabbitmq.uri.expose_secret(),
        "amqp://guest:guest@127.0.0.1:5672/%2F"
    );
    assert_eq!(c.redis.key_prefix, "courier:");
    assert_eq!(c.port, 3000);
    assert_eq!(c.jwt_expiration, Duration::from_secs(3600));
    assert_eq!(c.worker_commit_linger, Duration::from_millis(1));
    let c = with_secret(&[("WORKER_COMMIT_LINGER_MS", "0")]).unwrap();
    assert!(c.worker_commit_linger.is_zero());
}

#[test]
fn heartbeat_defaults_to_socket_io_and_has_a_floor() {
    let c = with_secret(&[]).unwrap();
    assert_eq!(c.realtime.ping_interval, Duration::from_secs(25));
    assert_eq!(c.realtime.ping_timeout, Duration::from_secs(20));
    let c = with_secret(&[
        ("GATEWAY_PING_INTERVAL_MS", "300"),
        ("GATEWAY_PING_TIMEOUT_MS", "200"),
    ])
    .unwrap();
    assert_eq!(c.realtime.ping_interval, Duration::from_millis(300));
    assert_eq!(c.realtime.ping_timeout, Duration::from_millis(200));
    assert_eq!(
        refused(&[("GATEWAY_PING_TIMEOUT_MS", "99")]),
        "GATEWAY_PING_TIMEOUT_MS"
    );
}

#[test]
fn bad_variables_are_named() {
    assert_eq!(refused(&[("REDIS_PORT", "abc")]), "REDIS_PORT");
    let e = cfg(&[]).unwrap_err();
    assert_eq!(e.var, "JWT_SECRET");
    assert!(e.to_string().starts_with("configuration error: JWT_SECRET"));
    assert_eq!(
        refused(&[("RABBITMQ_CHAT_PARTITION_COUNT", "0")]),
        "RABBITMQ_CHAT_PARTITION_COUNT"
    );
}

#[test]
fn rabbit_uri_wins_and_parts_are_encoded() {
    let c = with_secret(&[
        ("RABBITMQ_URI", "amqp://u:p@h:1/v"),
        ("RABBITMQ_HOST", "ignored"),
    ])
    .unwrap();
    assert_eq!(c.rabbitmq.uri.expose_secret(), "amqp://u:p@h:1/v");
    let c = with_secret(&[("RABBITMQ_PASSWORD", "p@ss/w")]).unwrap();
    assert!(c.rabbitmq.uri.expose_secret().contains("guest:p%40ss%2Fw@"));
}

#[test]
fn secrets_are_not_printed() {
    let c = cfg(&[("JWT_SECRET", "super-secret-value-123-0123456789")]).unwrap();
    assert!(!format!("{c:?}").contains("super-secret-value-123"));
    // Every other secret, given directly (secrets::tests covers the `_FILE` forms).
    let c = with_secret(&[
        ("DATABASE_URL", "postgres://u:hunter2-db@h:5432/d"),
        ("REDIS_PASSWORD", "hunter2-redis"),
        ("RABBITMQ_PASSWORD", "hunter2-mq"),
        ("S3_BUCKET", "bucket"),
        ("S3_ACCESS_KEY_ID", "hunter2-s3-id"),
        ("S3_SECRET_ACCESS_KEY", "hunter2-s3-key"),
    ])
    .unwrap();
    assert!(c.uploads.s3.is_some() && c.redis.password.is_some());
    let c2 = with_secret(&[("RABBITMQ_URI", "amqp://u:hunter2-uri@h:1/v")]).unwrap();
    let private = include_str!("../../tests/fixtures/rs256-test.key");
    let public = include_str!("../../tests/fixtures/rs256-test.pub");
    let c3 = cfg(&[("JWT_PRIVATE_KEY", private), ("JWT_PUBLIC_KEY", public)]).unwrap();
    let key_line = private.lines().nth(1).unwrap();
    for printed in [format!("{c:?}"), format!("{c2:?}"), format!("{c3:?}")] {
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains(key_line), "the private key is printed");
    }
}

#[test]
fn weak_secrets_are_refused_unless_allowed() {
    let e = cfg(&[("JWT_SECRET", "short-secret")]).unwrap_err();
    assert_eq!(e.var, "JWT_SECRET");
    assert!(
        cfg(&[
            ("JWT_SECRET", "short-secret"),
            ("JWT_ALLOW_WEAK_SECRET", "true")
        ])
        .is_ok()
    );
    let e = cfg(&[
        ("JWT_SECRET", "short-secret"),
        ("JWT_ALLOW_WEAK_SECRET", "yes"),
    ])
    .unwrap_err();
    assert_eq!(e.var, "JWT_ALLOW_WEAK_SECRET");
}

#[test]
fn unusable_urls_and_keys_are_named_without_their_secrets() {
    let e = with_secret(&[("DATABASE_URL", "postgres://u:hunter2@host:notaport/db")]).unwrap_err();
    assert_eq!(e.var, "DATABASE_URL");
    assert!(!e.to_string().contains("hunter2"));
    assert_eq!(
        refused(&[("DATABASE_URL", "mysql://u:p@h/db")]),
        "DATABASE_URL"
    );
    let e = with_secret(&[("RABBITMQ_URI", "amqp://u:hunter2@host:notaport/v")]).unwrap_err();
    assert_eq!(e.var, "RABBITMQ_URI");
    assert!(!e.to_string().contains("hunter2"));
    let e = cfg(&[
        (
            "JWT_PRIVATE_KEY",
            "-----BEGIN PRIVATE KEY-----\\nnope\\n-----END PRIVATE KEY-----",
        ),
        ("JWT_PUBLIC_KEY", "nope"),
    ])
    .unwrap_err();
    assert_eq!(e.var, "JWT_PRIVATE_KEY");
    let private = include_str!("../../tests/fixtures/rs256-test.key");
    let e = cfg(&[("JWT_PRIVATE_KEY", private), ("JWT_PUBLIC_KEY", "nope")]).unwrap_err();
    assert_eq!(e.var, "JWT_PUBLIC_KEY");
    let public = include_str!("../../tests/fixtures/rs256-test.pub");
    assert!(cfg(&[("JWT_PRIVATE_KEY", private), ("JWT_PUBLIC_KEY", public)]).is_ok());
}
