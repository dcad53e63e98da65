//! The `_FILE` form of every secret in [`SECRET_VARS`]: it reaches the field `NAME`
//! feeds, together with `NAME` it is refused, and an unreadable file is named without
//! its contents.

use std::collections::HashMap;

use secrecy::ExposeSecret;

use super::{SECRET_VARS, strip_one_newline};
use crate::config::{Config, ConfigError, JwtKeyConfig, tests::TempFile};

const JWT_SECRET: &str = "0123456789abcdef0123456789abcdef";
const PRIVATE: &str = include_str!("../../../tests/fixtures/rs256-test.key");
const PUBLIC: &str = include_str!("../../../tests/fixtures/rs256-test.pub");

fn cfg(pairs: &[(&str, String)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

/// How one secret is checked: the other variables its field needs, the value written
/// to its file (unlike any default), what the field then holds, and the field.
struct Case {
    others: Vec<(&'static str, String)>,
    value: String,
    expected: String,
    field: fn(&Config) -> String,
}

fn s3(c: &Config) -> crate::config::S3Config {
    c.uploads.s3.clone().expect("S3 is configured")
}

fn case(name: &str) -> Case {
    let jwt = ("JWT_SECRET", JWT_SECRET.to_string());
    let with =
        |others: Vec<(&'static str, &str)>, value: &str, field: fn(&Config) -> String| Case {
            others: others
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect(),
            value: value.to_string(),
            expected: value.to_string(),
            field,
        };
    let hs256 = |c: &Config| match &c.jwt {
        JwtKeyConfig::Hs256(s) => s.expose_secret().to_string(),
        other => format!("{other:?}"),
    };
    let private = |c: &Config| match &c.jwt {
        JwtKeyConfig::Rs256 { private_pem, .. } => private_pem.expose_secret().to_string(),
        other => format!("{other:?}"),
    };
    let public = |c: &Config| match &c.jwt {
        JwtKeyConfig::Rs256 { public_pem, .. } => public_pem.clone(),
        other => format!("{other:?}"),
    };
    match name {
        "JWT_SECRET" => with(vec![], "hunter2-jwt-from-a-file-0123456789abcdef", hs256),
        "JWT_PRIVATE_KEY" => with(vec![("JWT_PUBLIC_KEY", PUBLIC)], PRIVATE, private),
        "JWT_PUBLIC_KEY" => with(vec![("JWT_PRIVATE_KEY", PRIVATE)], PUBLIC, public),
        "DATABASE_URL" => with(
            vec![(jwt.0, JWT_SECRET)],
            "postgres://courier:hunter2-db@db.example:5432/courier",
            |c| c.database_url.expose_secret().to_string(),
        ),
        "DATABASE_MIGRATION_URL" => with(
            vec![(jwt.0, JWT_SECRET)],
            "postgres://owner:hunter2-migrate@db.example:5432/courier",
            |c| c.migration_url().expose_secret().to_string(),
        ),
        "REDIS_PASSWORD" => with(vec![(jwt.0, JWT_SECRET)], "hunter2-redis", |c| {
            c.redis
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_string())
                .unwrap_or_default()
        }),
        "REDIS_URL" => with(
            vec![(jwt.0, JWT_SECRET)],
            "rediss://courier:hunter2-redis-url@cache.example:6380/2",
            |c| c.redis_url().expose_secret().to_string(),
        ),
        "REDIS_SENTINEL_PASSWORD" => with(
            vec![(jwt.0, JWT_SECRET), ("REDIS_SENTINELS", "127.0.0.1:26379")],
            "hunter2-sentinel",
            |c| {
                c.redis
                    .sentinel
                    .as_ref()
                    .and_then(|s| s.password.as_ref())
                    .map(|p| p.expose_secret().to_string())
                    .unwrap_or_default()
            },
        ),
        "RABBITMQ_PASSWORD" => Case {
            expected: "amqp://guest:hunter2-mq@127.0.0.1:5672/%2F".into(),
            ..with(vec![(jwt.0, JWT_SECRET)], "hunter2-mq", |c| {
                c.rabbitmq.uri.expose_secret().to_string()
            })
        },
        "RABBITMQ_URI" => with(
            vec![(jwt.0, JWT_SECRET)],
            "amqps://u:hunter2-uri@mq.example:5671/v",
            |c| c.rabbitmq.uri.expose_secret().to_string(),
        ),
        "RABBITMQ_URIS" => with(
            vec![(jwt.0, JWT_SECRET)],
            "amqp://u:hunter2-a@a:5672/v,amqp://u:hunter2-b@b:5672/v",
            |c| {
                let uris: Vec<_> = c.rabbitmq.uris.iter().map(|u| u.expose_secret()).collect();
                uris.join(",")
            },
        ),
        "S3_ACCESS_KEY_ID" => with(
            vec![
                (jwt.0, JWT_SECRET),
                ("S3_BUCKET", "bucket"),
                ("S3_SECRET_ACCESS_KEY", "k"),
            ],
            "AKIAHUNTER2FROMAFILE",
            |c| s3(c).access_key_id,
        ),
        "S3_SECRET_ACCESS_KEY" => with(
            vec![
                (jwt.0, JWT_SECRET),
                ("S3_BUCKET", "bucket"),
                ("S3_ACCESS_KEY_ID", "id"),
            ],
            "hunter2-s3-from-a-file",
            |c| s3(c).secret_access_key.expose_secret().to_string(),
        ),
        "PUSH_VAPID_PRIVATE_KEY" => with(
            vec![
                (jwt.0, JWT_SECRET),
                (
                    "PUSH_VAPID_PUBLIC_KEY",
                    "BAVzzvvs2_LefVchwwF7_fcyV-WwYszPE4JfB8MDvpJjeMnfSTJ2uYM8Us29tsvDLGYnQjNTwd6LdVjHU47TZRo",
                ),
                ("PUSH_VAPID_SUBJECT", "mailto:ops@example.com"),
            ],
            "yOF_c1EyUg-zwxnExxsNMVZgpmCDLF4f-S0PT7EwtaA",
            |c| {
                c.push
                    .vapid
                    .as_ref()
                    .map(|v| v.private_key.expose_secret().to_string())
                    .unwrap_or_default()
            },
        ),
        other => panic!("SECRET_VARS lists {other}: give it a check here"),
    }
}

#[test]
fn the_table_lists_every_secret_with_its_file_form() {
    for (name, file_var) in SECRET_VARS {
        assert_eq!(*file_var, format!("{name}_FILE"));
    }
    for name in [
        "JWT_SECRET",
        "JWT_PRIVATE_KEY",
        "JWT_PUBLIC_KEY",
        "DATABASE_URL",
        "DATABASE_MIGRATION_URL",
        "REDIS_PASSWORD",
        "REDIS_URL",
        "RABBITMQ_PASSWORD",
        "RABBITMQ_URI",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        "PUSH_VAPID_PRIVATE_KEY",
    ] {
        assert!(SECRET_VARS.iter().any(|(n, _)| *n == name), "{name}");
    }
}

#[test]
fn every_secret_accepts_a_file() {
    for (i, &(name, file_var)) in SECRET_VARS.iter().enumerate() {
        let case = case(name);
        // Without the file the field holds something else, so the check below can fail.
        if let Ok(c) = cfg(&case.others) {
            assert_ne!((case.field)(&c), case.expected, "{name} without its file");
        }
        let ending = if i % 2 == 0 { "\n" } else { "\r\n" };
        let file = TempFile::new(format!("{}{ending}", case.value).as_bytes());
        let mut pairs = case.others.clone();
        pairs.push((file_var, file.path()));
        if i % 2 == 1 {
            // A blank NAME (as `.env.example` leaves some) is not set.
            pairs.push((name, String::new()));
        }
        let c = cfg(&pairs).unwrap_or_else(|e| panic!("{file_var}: {e}"));
        assert_eq!((case.field)(&c), case.expected, "{file_var} feeds {name}");
        // A public key is no secret (and `Debug` hides it all the same).
        if name != "JWT_PUBLIC_KEY" {
            let printed = format!("{c:?}");
            for line in case.value.lines().filter(|l| !l.starts_with("-----")) {
                assert!(!printed.contains(line), "{name} from a file is printed");
            }
        }
    }
}

#[test]
fn both_set_is_refused() {
    for &(name, file_var) in SECRET_VARS {
        let case = case(name);
        let file = TempFile::new(case.value.as_bytes());
        let mut pairs = case.others.clone();
        pairs.push((name, "hunter2-direct".into()));
        pairs.push((file_var, file.path()));
        let e = cfg(&pairs).unwrap_err();
        assert_eq!(e.var, name);
        let text = e.to_string();
        assert!(text.contains(name) && text.contains(file_var), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}

#[test]
fn an_unreadable_file_is_named_without_its_contents() {
    let missing = std::env::temp_dir()
        .join(format!("courier-missing-{}", uuid::Uuid::new_v4().simple()))
        .display()
        .to_string();
    let not_utf8 = TempFile::new(b"hunter2-in-the-file\xff\n");
    let dir = std::env::temp_dir().display().to_string();
    for &(_, file_var) in SECRET_VARS {
        for path in [&missing, &not_utf8.path(), &dir] {
            let e = cfg(&[(file_var, path.clone())]).unwrap_err();
            assert_eq!(e.var, file_var);
            assert!(
                e.reason.starts_with(&format!("cannot read {path}: ")),
                "{e}"
            );
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }
}

#[test]
fn one_trailing_newline_is_stripped() {
    for (contents, value) in [
        ("s", "s"),
        ("s\n", "s"),
        ("s\r\n", "s"),
        ("s\n\n", "s\n"),
        ("s\r", "s\r"),
        (" s \n", " s "),
        ("", ""),
    ] {
        assert_eq!(strip_one_newline(contents.into()), value, "{contents:?}");
    }
}
