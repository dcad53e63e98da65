//! Tests of the configuration as a whole: defaults, named errors, secrets kept out of
//! `Debug` and error text.

use secrecy::ExposeSecret;

use super::*;

/// A file under the temp dir, removed when dropped (the `_FILE` secrets and the FCM
/// service account in the tests of `secrets` and `push`).
pub(super) struct TempFile(std::path::PathBuf);

impl TempFile {
    pub(super) fn new(contents: impl AsRef<[u8]>) -> Self {
        let path =
            std::env::temp_dir().join(format!("courier-config-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    pub(super) fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

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
fn rabbit_uris_list_the_nodes_and_set_the_replicas() {
    let c = with_secret(&[
        (
            "RABBITMQ_URIS",
            " amqp://u:p@a:1/v, amqps://u:p@b:2/v ,amqp://u:p@c:3/v,",
        ),
        ("RABBITMQ_URI", "amqp://ignored:1/v"),
    ])
    .unwrap();
    let uris: Vec<_> = c.rabbitmq.uris.iter().map(|u| u.expose_secret()).collect();
    assert_eq!(
        uris,
        ["amqp://u:p@a:1/v", "amqps://u:p@b:2/v", "amqp://u:p@c:3/v"]
    );
    assert_eq!(c.rabbitmq.uri.expose_secret(), "amqp://u:p@a:1/v");
    assert_eq!(c.rabbitmq.quorum_replicas, Some(3));
    let two = [("RABBITMQ_URIS", "amqp://a:1/v,amqp://b:2/v")];
    assert_eq!(with_secret(&two).unwrap().rabbitmq.quorum_replicas, Some(2));
    let five = "amqp://a/v,amqp://b/v,amqp://c/v,amqp://d/v,amqp://e/v";
    let c = with_secret(&[("RABBITMQ_URIS", five)]).unwrap();
    assert_eq!(c.rabbitmq.quorum_replicas, Some(3));
    let c = with_secret(&[("RABBITMQ_URIS", five), ("RABBITMQ_QUORUM_REPLICAS", "5")]).unwrap();
    assert_eq!(c.rabbitmq.quorum_replicas, Some(5));
    // One URI: the broker's default, unless given.
    let c = with_secret(&[]).unwrap();
    assert_eq!(
        (c.rabbitmq.uris.len(), c.rabbitmq.quorum_replicas),
        (1, None)
    );
    let c = with_secret(&[("RABBITMQ_QUORUM_REPLICAS", "1")]).unwrap();
    assert_eq!(c.rabbitmq.quorum_replicas, Some(1));
    let e = with_secret(&[("RABBITMQ_QUORUM_REPLICAS", "0")]).unwrap_err();
    assert_eq!(e.var, "RABBITMQ_QUORUM_REPLICAS");
    let e = with_secret(&[("RABBITMQ_URIS", "amqp://a/v,http://u:hunter2@b/v")]).unwrap_err();
    assert_eq!(e.var, "RABBITMQ_URIS");
    assert!(!e.to_string().contains("hunter2"));
    let e = with_secret(&[("RABBITMQ_URIS", " , ")]).unwrap_err();
    assert_eq!(e.var, "RABBITMQ_URIS");
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

#[test]
fn pgbouncer_settings_prepared_statements_and_the_migration_url() {
    let c = with_secret(&[("DATABASE_URL", "postgres://u:p@bouncer:6432/d")]).unwrap();
    assert!(c.database_prepared_statements);
    assert!(c.database_migration_url.is_none());
    assert_eq!(
        c.migration_url().expose_secret(),
        "postgres://u:p@bouncer:6432/d"
    );
    let c = with_secret(&[
        ("DATABASE_URL", "postgres://u:p@bouncer:6432/d"),
        ("DATABASE_PREPARED_STATEMENTS", "false"),
        (
            "DATABASE_MIGRATION_URL",
            "postgresql://owner:hunter2-mig@db:5432/d",
        ),
    ])
    .unwrap();
    assert!(!c.database_prepared_statements);
    assert_eq!(
        c.migration_url().expose_secret(),
        "postgresql://owner:hunter2-mig@db:5432/d"
    );
    assert!(!format!("{c:?}").contains("hunter2"));
    // Blank is unset, as everywhere.
    let c = with_secret(&[("DATABASE_MIGRATION_URL", " ")]).unwrap();
    assert!(c.database_migration_url.is_none());
    assert_eq!(
        refused(&[("DATABASE_PREPARED_STATEMENTS", "no")]),
        "DATABASE_PREPARED_STATEMENTS"
    );
    let e = with_secret(&[("DATABASE_MIGRATION_URL", "postgres://u:hunter2@h:x/d")]).unwrap_err();
    assert_eq!(e.var, "DATABASE_MIGRATION_URL");
    assert!(!e.to_string().contains("hunter2"));
    assert_eq!(
        refused(&[("DATABASE_MIGRATION_URL", "mysql://u:p@h/d")]),
        "DATABASE_MIGRATION_URL"
    );
}

// Unit tests run in the package root.
const CA: &str = "tests/fixtures/test-ca.pem";
const KEY: &str = "tests/fixtures/rs256-test.key";

#[test]
fn redis_url_wins_over_the_parts_and_redis_tls_means_rediss() {
    let c = with_secret(&[("REDIS_HOST", "h"), ("REDIS_PORT", "7000")]).unwrap();
    assert_eq!(c.redis_url().expose_secret(), "redis://h:7000/0");
    assert!(!c.redis.tls);
    let c = with_secret(&[("REDIS_HOST", "h"), ("REDIS_TLS", "true")]).unwrap();
    assert_eq!(c.redis_url().expose_secret(), "rediss://h:6379/0");
    assert!(c.redis.tls);
    let url = "rediss://courier:hunter2-acl@cache.example:6380/3";
    let c = with_secret(&[
        ("REDIS_URL", url),
        ("REDIS_HOST", "h"),
        ("REDIS_TLS", "false"),
    ])
    .unwrap();
    assert_eq!(c.redis_url().expose_secret(), url);
    assert!(c.redis.tls);
    assert_eq!(c.redis_var(), "REDIS_URL");
    assert!(!format!("{c:?}").contains("hunter2"));
    let c = with_secret(&[("REDIS_URL", "redis://cache.example/1")]).unwrap();
    assert!(!c.redis.tls);
}

#[test]
fn bad_redis_urls_are_named_without_their_password() {
    for bad in [
        "http://u:hunter2@h:6379",
        "rediss://u:hunter2@h:6379/0#insecure",
        "rediss://u:hunter2@h:notaport/0",
    ] {
        let e = with_secret(&[("REDIS_URL", bad)]).unwrap_err();
        assert_eq!(e.var, "REDIS_URL", "{bad}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
    assert_eq!(refused(&[("REDIS_TLS", "yes please")]), "REDIS_TLS");
}

#[test]
fn redis_tls_files_are_read_checked_and_named() {
    let tls = [("REDIS_URL", "rediss://127.0.0.1:6380")];
    let c = with_secret(&[&tls[..], &[("REDIS_CA_CERT", CA)]].concat()).unwrap();
    assert!(c.redis.tls_files.ca.is_some() && c.redis.tls_files.client.is_none());
    let both = [("REDIS_CLIENT_CERT", CA), ("REDIS_CLIENT_KEY", KEY)];
    let c = with_secret(&[&tls[..], &both[..]].concat()).unwrap();
    assert!(c.redis.tls_files.client.is_some());
    // Debug shows which files are set, never the key.
    assert!(!format!("{c:?}").contains("PRIVATE KEY"));
    let fail = |pairs: &[(&str, &str)]| with_secret(&[&tls[..], pairs].concat()).unwrap_err();
    let e = fail(&[("REDIS_CA_CERT", "/nonexistent/ca.pem")]);
    assert_eq!(e.var, "REDIS_CA_CERT");
    assert!(e.reason.contains("/nonexistent/ca.pem"), "{e}");
    let e = fail(&[("REDIS_CA_CERT", KEY)]);
    assert_eq!(e.var, "REDIS_CA_CERT");
    assert!(e.reason.contains("no PEM certificate"), "{e}");
    let e = fail(&[("REDIS_CLIENT_CERT", CA), ("REDIS_CLIENT_KEY", CA)]);
    assert_eq!(e.var, "REDIS_CLIENT_KEY");
    assert_eq!(fail(&[("REDIS_CLIENT_CERT", CA)]).var, "REDIS_CLIENT_KEY");
    assert_eq!(fail(&[("REDIS_CLIENT_KEY", KEY)]).var, "REDIS_CLIENT_CERT");
    // Certificates without TLS would be silently unused: refused.
    assert_eq!(refused(&[("REDIS_CA_CERT", CA)]), "REDIS_CA_CERT");
    let plain = [("REDIS_URL", "redis://127.0.0.1"), ("REDIS_CA_CERT", CA)];
    assert_eq!(refused(&plain), "REDIS_CA_CERT");
}

#[test]
fn redis_sentinels_are_parsed_and_exclusive_with_url_and_cluster() {
    let c = with_secret(&[
        (
            "REDIS_SENTINELS",
            "10.0.0.1:26379, s2.example:26380,[::1]:26381",
        ),
        ("REDIS_SENTINEL_PASSWORD", "hunter2-sentinel"),
    ])
    .unwrap();
    let s = c.redis.sentinel.as_ref().unwrap();
    assert_eq!(s.master, "mymaster");
    assert_eq!(s.nodes[1], ("s2.example".to_string(), 26380));
    assert_eq!(s.nodes[2], ("::1".to_string(), 26381));
    assert_eq!(c.redis_var(), "REDIS_SENTINELS");
    assert!(!format!("{c:?}").contains("hunter2"));
    assert_eq!(
        refused(&[("REDIS_SENTINELS", "10.0.0.1")]),
        "REDIS_SENTINELS"
    );
    assert_eq!(refused(&[("REDIS_SENTINELS", "h:0")]), "REDIS_SENTINELS");
    let both = [("REDIS_SENTINELS", "h:26379"), ("REDIS_URL", "redis://h")];
    assert_eq!(refused(&both), "REDIS_SENTINELS");
    let e = with_secret(&[
        ("REDIS_CLUSTER_NODES", "h:7000"),
        ("REDIS_SENTINELS", "h:1"),
    ]);
    assert!(e.unwrap_err().reason.contains("at most one"));
}

#[test]
fn redis_cluster_nodes_are_parsed_and_need_database_0() {
    let c = with_secret(&[("REDIS_CLUSTER_NODES", "10.0.0.1:7000, r2.example:7001")]).unwrap();
    let nodes = c.redis.cluster.as_ref().unwrap();
    assert_eq!(nodes[1], ("r2.example".to_string(), 7001));
    assert_eq!(c.redis_var(), "REDIS_CLUSTER_NODES");
    assert_eq!(
        refused(&[("REDIS_CLUSTER_NODES", "h")]),
        "REDIS_CLUSTER_NODES"
    );
    let db = [("REDIS_CLUSTER_NODES", "h:7000"), ("REDIS_DB", "2")];
    assert_eq!(refused(&db), "REDIS_DB");
    let both = [
        ("REDIS_CLUSTER_NODES", "h:7000"),
        ("REDIS_URL", "redis://h"),
    ];
    assert_eq!(refused(&both), "REDIS_CLUSTER_NODES");
}
