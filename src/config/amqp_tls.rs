//! TLS to RabbitMQ: `RABBITMQ_CA_CERT`, `RABBITMQ_CLIENT_CERT` and `RABBITMQ_CLIENT_KEY`,
//! PEM files read and checked here, at start-up (lapin skips a CA it cannot parse).

use secrecy::SecretString;

use super::{ConfigError, Env};

/// The PEM texts for an `amqps://` connection (the key's text never goes to the log).
#[derive(Debug, Clone, Default)]
pub struct RabbitTls {
    /// `RABBITMQ_CA_CERT`: trusted in addition to the system roots.
    pub ca: Option<String>,
    /// `RABBITMQ_CLIENT_CERT` and `RABBITMQ_CLIENT_KEY`: authenticates with EXTERNAL.
    pub client: Option<ClientIdentity>,
}

#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub cert: String,
    pub key: SecretString,
}

impl RabbitTls {
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.client.is_some()
    }
}

/// Reads the three variables; `uri_is_tls` says whether the URI is `amqps://`.
pub(super) fn rabbit_tls<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    uri_is_tls: bool,
) -> Result<RabbitTls, ConfigError> {
    let ca = match env.raw("RABBITMQ_CA_CERT") {
        Some(path) => Some(certs(env, "RABBITMQ_CA_CERT", &path)?),
        None => None,
    };
    let client = match (
        env.raw("RABBITMQ_CLIENT_CERT"),
        env.raw("RABBITMQ_CLIENT_KEY"),
    ) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(env.bad(
                "RABBITMQ_CLIENT_KEY",
                "RABBITMQ_CLIENT_CERT is set: give its key too",
            ));
        }
        (None, Some(_)) => {
            return Err(env.bad(
                "RABBITMQ_CLIENT_CERT",
                "RABBITMQ_CLIENT_KEY is set: give its certificate too",
            ));
        }
        (Some(cert), Some(key)) => Some(ClientIdentity {
            cert: certs(env, "RABBITMQ_CLIENT_CERT", &cert)?,
            key: private_key(env, "RABBITMQ_CLIENT_KEY", &key)?,
        }),
    };
    let tls = RabbitTls { ca, client };
    if tls.is_set() && !uri_is_tls {
        let var = if tls.ca.is_some() {
            "RABBITMQ_CA_CERT"
        } else {
            "RABBITMQ_CLIENT_CERT"
        };
        return Err(env.bad(var, "needs RABBITMQ_URI=amqps://..."));
    }
    Ok(tls)
}

/// One or more PEM certificates, every one of them parsable (`crate::tls::read_certs`).
fn certs<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    var: &'static str,
    path: &str,
) -> Result<String, ConfigError> {
    crate::tls::read_certs(path)
        .and_then(|pem| text(path, pem))
        .map_err(|reason| env.bad(var, &reason))
}

/// A PEM private key (PKCS#8, RSA or SEC1; `crate::tls::read_key`); its text is never
/// quoted.
fn private_key<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    var: &'static str,
    path: &str,
) -> Result<SecretString, ConfigError> {
    crate::tls::read_key(path)
        .and_then(|pem| text(path, pem))
        .map(Into::into)
        .map_err(|reason| env.bad(var, &reason))
}

/// lapin takes the PEM as text.
fn text(path: &str, pem: Vec<u8>) -> Result<String, String> {
    String::from_utf8(pem).map_err(|_| format!("cannot read {path}: not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use crate::config::{Config, ConfigError};

    /// A throwaway self-signed certificate and its key (only parsed here, never trusted).
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBjTCCATOgAwIBAgIUDsxIy/TMcTCbjrXilqgLout23t0wCgYIKoZIzj0EAwIw\nHDEaMBgGA1UEAwwRY291cmllci11bml0LXRlc3QwHhcNMjYxMjA3MDcwMTM3WhcN\nMzYxMjA0MDcwMTM3WjAcMRowGAYDVQQDDBFjb3VyaWVyLXVuaXQtdGVzdDBZMBMG\nByqGSM49AgEGCCqGSM49AwEHA0IABINiIPxsYxGpJKRAnlf6UZtZlYU2N41jvL8u\nEp7DpxYQI+rWiedT+DdD0jdcW++kEi2tOR9akN1xlPMqUWDk3JyjUzBRMB0GA1Ud\nDgQWBBRT8WxlnW2xqD3S6z7Y79bpVDAgUjAfBgNVHSMEGDAWgBRT8WxlnW2xqD3S\n6z7Y79bpVDAgUjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDO\nAdJJGKhbafklhl0LkwU7aZdlpIUUtlelgAB57iA+IwIgG76o7hShcCtqxgLJwjBc\nxdxLNpob/3xgoLO4O2JkwHk=\n-----END CERTIFICATE-----";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgt5Wd2Crf9aFjsfJb\n+KsuD7qbS7UuogPAADaqeguGB5GhRANCAASDYiD8bGMRqSSkQJ5X+lGbWZWFNjeN\nY7y/LhKew6cWECPq1onnU/g3Q9I3XFvvpBItrTkfWpDdcZTzKlFg5Nyc\n-----END PRIVATE KEY-----";

    fn file(text: &str) -> String {
        let p =
            std::env::temp_dir().join(format!("courier-amqp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn cfg(pairs: &[(&str, String)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        map.insert(
            "JWT_SECRET".into(),
            "0123456789abcdef0123456789abcdef".into(),
        );
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const AMQPS: (&str, &str) = ("RABBITMQ_URI", "amqps://mq.example:5671/v");

    fn amqps(pairs: &[(&str, String)]) -> Result<Config, ConfigError> {
        cfg(&[&[(AMQPS.0, AMQPS.1.to_string())], pairs].concat())
    }

    #[test]
    fn amqps_with_ca_and_client_certificate() {
        let c = amqps(&[
            ("RABBITMQ_CA_CERT", file(CERT)),
            ("RABBITMQ_CLIENT_CERT", file(CERT)),
            ("RABBITMQ_CLIENT_KEY", file(KEY)),
        ])
        .unwrap();
        assert_eq!(c.rabbitmq.tls.ca.as_deref(), Some(CERT));
        let client = c.rabbitmq.tls.client.as_ref().unwrap();
        assert_eq!(client.key.expose_secret(), KEY);
        assert!(
            !format!("{c:?}").contains("PRIVATE KEY"),
            "the key is printed"
        );
        assert!(!amqps(&[]).unwrap().rabbitmq.tls.is_set());
    }

    #[test]
    fn bad_tls_files_are_named() {
        let var = |pairs: &[(&str, String)]| amqps(pairs).unwrap_err().var;
        let garbage = file("not a certificate\n");
        assert_eq!(
            var(&[("RABBITMQ_CA_CERT", garbage.clone())]),
            "RABBITMQ_CA_CERT"
        );
        assert_eq!(var(&[("RABBITMQ_CA_CERT", file(KEY))]), "RABBITMQ_CA_CERT");
        assert_eq!(
            var(&[("RABBITMQ_CA_CERT", "/nonexistent/ca.pem".into())]),
            "RABBITMQ_CA_CERT"
        );
        assert_eq!(
            var(&[("RABBITMQ_CLIENT_CERT", file(CERT))]),
            "RABBITMQ_CLIENT_KEY"
        );
        assert_eq!(
            var(&[("RABBITMQ_CLIENT_KEY", file(KEY))]),
            "RABBITMQ_CLIENT_CERT"
        );
        let e = amqps(&[
            ("RABBITMQ_CLIENT_CERT", file(CERT)),
            ("RABBITMQ_CLIENT_KEY", garbage),
        ])
        .unwrap_err();
        assert_eq!(e.var, "RABBITMQ_CLIENT_KEY");
        let e = amqps(&[
            ("RABBITMQ_CLIENT_CERT", file(CERT)),
            ("RABBITMQ_CLIENT_KEY", file(CERT)),
        ])
        .unwrap_err();
        assert_eq!(e.var, "RABBITMQ_CLIENT_KEY");
        // TLS files without amqps:// are a mistake, not silently plaintext.
        let e = cfg(&[("RABBITMQ_CA_CERT", file(CERT))]).unwrap_err();
        assert_eq!(e.var, "RABBITMQ_CA_CERT");
        assert!(e.reason.contains("amqps://"), "{}", e.reason);
    }
}
