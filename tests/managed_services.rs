//! Keeps the "Managed services" examples of `docs/operations.md` true: every `env`
//! block there is fed to the configuration (its certificate paths pointed at the test
//! fixtures) and must be accepted and mean TLS to the service it configures.

use std::{collections::HashMap, path::PathBuf};

use courier::config::Config;
use secrecy::ExposeSecret;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `env` code blocks of the "## Managed services" section, as `NAME=value` maps.
fn examples() -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let start = text
        .find("## Managed services")
        .expect("a Managed services section");
    let section = &text[start + 3..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut blocks = Vec::new();
    let mut current: Option<HashMap<String, String>> = None;
    for line in section.lines() {
        match (line.trim(), current.as_mut()) {
            ("```env", None) => current = Some(HashMap::new()),
            ("```", Some(_)) => blocks.extend(current.take()),
            (l, Some(vars)) => {
                let (k, v) = l
                    .split_once('=')
                    .unwrap_or_else(|| panic!("not NAME=value: {l}"));
                vars.insert(k.to_string(), v.to_string());
            }
            _ => {}
        }
    }
    blocks
}

/// `/certs/<name>` → a fixture of the same kind (a key for `*key*`, else a certificate).
fn with_fixtures(value: &str) -> String {
    let fixtures = root().join("tests/fixtures");
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("/certs/") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(['&', ' ']).unwrap_or(tail.len());
        let file = if tail[..end].contains("key") {
            "rs256-test.key"
        } else {
            "test-ca.pem"
        };
        out.push_str(&fixtures.join(file).display().to_string());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_managed_service_example_is_accepted_and_means_tls() {
    let blocks = examples();
    assert!(
        blocks.len() >= 6,
        "expected the six service examples, found {blocks:?}"
    );
    for vars in blocks {
        let lookup = |k: &str| match k {
            "JWT_SECRET" => Some("0123456789abcdef0123456789abcdef".to_string()),
            _ => vars.get(k).map(|v| with_fixtures(v)),
        };
        let config = Config::from_lookup(lookup)
            .unwrap_or_else(|e| panic!("{:?} refused: {}: {}", vars.keys(), e.var, e.reason));
        if let Some(url) = vars.get("DATABASE_URL") {
            assert!(url.contains("sslmode=verify-"), "{url}");
            assert_eq!(config.database_url.expose_secret(), &with_fixtures(url));
        }
        if vars.contains_key("REDIS_URL") {
            assert!(config.redis_url().expose_secret().starts_with("rediss://"));
        }
        if vars.contains_key("RABBITMQ_URI") {
            assert!(config.rabbitmq.uri.expose_secret().starts_with("amqps://"));
            let client = vars.contains_key("RABBITMQ_CLIENT_CERT");
            assert_eq!(config.rabbitmq.tls.client.is_some(), client);
        }
    }
}
