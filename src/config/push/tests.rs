//! `PUSH_*` and `FCM_*`: defaults, both parts set, and every start-up refusal naming
//! its variable without printing a secret.

use std::{collections::HashMap, time::Duration};

use secrecy::ExposeSecret;

use crate::config::{Config, ConfigError, tests::TempFile};

const PUBLIC: &str =
    "BAVzzvvs2_LefVchwwF7_fcyV-WwYszPE4JfB8MDvpJjeMnfSTJ2uYM8Us29tsvDLGYnQjNTwd6LdVjHU47TZRo";
const PRIVATE: &str = "yOF_c1EyUg-zwxnExxsNMVZgpmCDLF4f-S0PT7EwtaA";
/// Another pair's public key.
const OTHER_PUBLIC: &str =
    "BDIqnbu2OnMw_6F6zDmha5pR7rlkFpC7Kh-Ep-y9JgIGjzK4TRp_GbxVbxXtFXL4NjoXloSmz3Pp5xn03ZSvShA";
const RSA_KEY: &str = include_str!("../../../tests/fixtures/rs256-test.key");

fn service_account(token_uri: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "courier-test",
        "private_key_id": "k1",
        "private_key": RSA_KEY,
        "client_email": "pusher@courier-test.iam.gserviceaccount.com",
        "token_uri": token_uri,
    })
    .to_string()
}

fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut map: HashMap<String, String> = HashMap::from([(
        "JWT_SECRET".to_string(),
        "0123456789abcdef0123456789abcdef".to_string(),
    )]);
    map.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_lookup(|k| map.get(k).cloned())
}

fn vapid_vars() -> Vec<(&'static str, &'static str)> {
    vec![
        ("PUSH_VAPID_PUBLIC_KEY", PUBLIC),
        ("PUSH_VAPID_PRIVATE_KEY", PRIVATE),
        ("PUSH_VAPID_SUBJECT", "mailto:ops@example.com"),
    ]
}

fn refused(pairs: &[(&str, &str)]) -> ConfigError {
    cfg(pairs).expect_err(&format!("{pairs:?} accepted"))
}

#[test]
fn defaults_leave_push_off() {
    let c = cfg(&[]).unwrap().push;
    assert!(c.vapid.is_none() && c.fcm.is_none());
    assert_eq!(c.delay, Duration::from_millis(3000));
    assert_eq!(c.coalesce, Duration::from_secs(30));
    assert_eq!(c.pusher_port, 3004);
    assert_eq!(c.queue, "chat.push");
    assert_eq!(c.prefetch, 5000);
    assert_eq!(c.ttl, Duration::from_secs(86400));
    assert!(!c.allow_http_endpoints);
}

#[test]
fn both_parts_and_the_timings_are_read() {
    let sa = TempFile::new(service_account("https://oauth2.example/token"));
    let path = sa.path();
    let mut vars = vapid_vars();
    vars.extend([
        ("FCM_PROJECT_ID", "courier-test"),
        ("FCM_SERVICE_ACCOUNT_FILE", path.as_str()),
        ("FCM_ENDPOINT", "http://127.0.0.1:9/"),
        ("PUSH_DELAY_MS", "10"),
        ("PUSH_COALESCE_SECS", "2"),
        ("PUSHER_PORT", "3999"),
        ("PUSH_QUEUE", "t.push"),
        ("PUSH_PREFETCH", "7"),
        ("PUSH_TTL_SECS", "60"),
        ("PUSH_ALLOW_HTTP_ENDPOINTS", "true"),
    ]);
    let c = cfg(&vars).unwrap();
    let p = &c.push;
    let v = p.vapid.as_ref().unwrap();
    assert_eq!(v.public_key, PUBLIC);
    assert_eq!(v.private_key.expose_secret(), PRIVATE);
    assert_eq!(v.subject, "mailto:ops@example.com");
    let f = p.fcm.as_ref().unwrap();
    assert_eq!(f.project_id, "courier-test");
    assert_eq!(f.endpoint, "http://127.0.0.1:9");
    assert_eq!(
        f.service_account.client_email,
        "pusher@courier-test.iam.gserviceaccount.com"
    );
    assert_eq!(f.service_account.token_uri, "https://oauth2.example/token");
    assert_eq!(
        (
            p.delay,
            p.coalesce,
            p.pusher_port,
            p.queue.as_str(),
            p.prefetch,
            p.ttl
        ),
        (
            Duration::from_millis(10),
            Duration::from_secs(2),
            3999,
            "t.push",
            7,
            Duration::from_secs(60)
        )
    );
    assert!(p.allow_http_endpoints);
    // Neither private key is printed.
    let printed = format!("{c:?}");
    assert!(!printed.contains(PRIVATE), "VAPID key printed");
    assert!(!printed.contains("BEGIN PRIVATE KEY"), "RSA key printed");
    // The default endpoint.
    let mut vars = vapid_vars();
    vars.extend([
        ("FCM_PROJECT_ID", "courier-test"),
        ("FCM_SERVICE_ACCOUNT_FILE", path.as_str()),
    ]);
    let f = cfg(&vars).unwrap().push.fcm.unwrap();
    assert_eq!(f.endpoint, "https://fcm.googleapis.com");
}

#[test]
fn vapid_set_halfway_or_wrong_is_refused_naming_the_variable() {
    let with = |var: &'static str, value: &'static str| {
        let mut v = vapid_vars();
        v.retain(|(k, _)| *k != var);
        if !value.is_empty() {
            v.push((var, value));
        }
        refused(&v)
    };
    for (var, value, says) in [
        ("PUSH_VAPID_PUBLIC_KEY", "", "together"),
        ("PUSH_VAPID_PRIVATE_KEY", "", "together"),
        ("PUSH_VAPID_SUBJECT", "", "together"),
        ("PUSH_VAPID_PUBLIC_KEY", "not base64!", "base64url"),
        ("PUSH_VAPID_PUBLIC_KEY", PRIVATE, "65-byte"),
        ("PUSH_VAPID_PUBLIC_KEY", OTHER_PUBLIC, "does not match"),
        ("PUSH_VAPID_PRIVATE_KEY", "@@@", "base64url"),
        ("PUSH_VAPID_PRIVATE_KEY", PUBLIC, "32-byte"),
        (
            "PUSH_VAPID_PRIVATE_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "not a valid",
        ),
        ("PUSH_VAPID_SUBJECT", "ops@example.com", "mailto:"),
        ("PUSH_VAPID_SUBJECT", "http://example.com", "mailto:"),
        ("PUSH_VAPID_SUBJECT", "mailto:", "mailto:"),
    ] {
        let e = with(var, value);
        assert_eq!(e.var, var, "{var}={value:?}: {e}");
        assert!(e.reason.contains(says), "{var}={value:?}: {e}");
        assert!(!e.to_string().contains(PRIVATE), "{e}");
        assert!(!e.to_string().contains('\n'), "one line: {e}");
    }
    // https: subjects are fine too.
    let mut v = vapid_vars();
    v.retain(|(k, _)| *k != "PUSH_VAPID_SUBJECT");
    v.push(("PUSH_VAPID_SUBJECT", "https://courier.example/contact"));
    assert!(cfg(&v).unwrap().push.vapid.is_some());
}

#[test]
fn fcm_set_halfway_or_with_a_bad_file_is_refused() {
    let e = refused(&[("FCM_PROJECT_ID", "p")]);
    assert_eq!(e.var, "FCM_SERVICE_ACCOUNT_FILE");
    let sa = TempFile::new(service_account("https://oauth2.example/token"));
    let e = refused(&[("FCM_SERVICE_ACCOUNT_FILE", &sa.path())]);
    assert_eq!(e.var, "FCM_PROJECT_ID");
    let e = refused(&[
        ("FCM_PROJECT_ID", "has space"),
        ("FCM_SERVICE_ACCOUNT_FILE", &sa.path()),
    ]);
    assert_eq!(e.var, "FCM_PROJECT_ID");
    let e = refused(&[("FCM_ENDPOINT", "ftp://x")]);
    assert_eq!(e.var, "FCM_ENDPOINT");

    let missing = std::env::temp_dir().join("courier-no-such-sa.json");
    let not_json = TempFile::new("hunter2 is not json");
    let no_email = TempFile::new(
        service_account("https://o.example/t").replace("client_email", "client_mail"),
    );
    let not_rsa = TempFile::new(
        serde_json::json!({
            "client_email": "a@b", "token_uri": "https://o.example/t",
            "private_key": "-----BEGIN PRIVATE KEY-----\nhunter2\n-----END PRIVATE KEY-----\n",
        })
        .to_string(),
    );
    let bad_uri = TempFile::new(service_account("not a url"));
    for (path, says) in [
        (missing.display().to_string(), "cannot read"),
        (not_json.path(), "not a service-account JSON"),
        (no_email.path(), "has no client_email"),
        (not_rsa.path(), "not a PEM RSA private key"),
        (bad_uri.path(), "token_uri"),
    ] {
        let e = refused(&[
            ("FCM_PROJECT_ID", "courier-test"),
            ("FCM_SERVICE_ACCOUNT_FILE", &path),
        ]);
        assert_eq!(e.var, "FCM_SERVICE_ACCOUNT_FILE", "{e}");
        assert!(e.reason.contains(says), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(!e.to_string().contains("MII"), "key printed: {e}");
        assert!(!e.to_string().contains('\n'), "one line: {e}");
    }
}

#[test]
fn timings_are_bounded() {
    assert_eq!(refused(&[("PUSH_PREFETCH", "0")]).var, "PUSH_PREFETCH");
    assert_eq!(refused(&[("PUSH_PREFETCH", "70000")]).var, "PUSH_PREFETCH");
    assert_eq!(
        refused(&[("PUSH_TTL_SECS", "2419201")]).var,
        "PUSH_TTL_SECS"
    );
    assert_eq!(refused(&[("PUSH_DELAY_MS", "soon")]).var, "PUSH_DELAY_MS");
    assert_eq!(refused(&[("PUSH_QUEUE", "a b")]).var, "PUSH_QUEUE");
    assert_eq!(
        refused(&[("PUSH_ALLOW_HTTP_ENDPOINTS", "yes")]).var,
        "PUSH_ALLOW_HTTP_ENDPOINTS"
    );
    assert_eq!(
        cfg(&[("PUSH_TTL_SECS", "0")]).unwrap().push.ttl,
        Duration::ZERO
    );
}
