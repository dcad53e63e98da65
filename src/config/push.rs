//! Push notifications (`PUSH_*`, `FCM_*`, `PUSHER_PORT`): the VAPID key pair and subject
//! for Web Push, the FCM project and service account, and the pusher's timing. Each part
//! is off while its variables are unset; a part set halfway, or a key, subject or
//! service-account file that does not check out, stops the process with one line naming
//! the variable.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{ConfigError, Env};

/// `FCM_ENDPOINT` when unset.
pub const DEFAULT_FCM_ENDPOINT: &str = "https://fcm.googleapis.com";
/// The longest `PUSH_TTL_SECS` (28 days: FCM's and most push services' maximum).
const MAX_TTL_SECS: u64 = 2_419_200;

/// Push settings. [`crate::push::Sender::new`] takes it.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Web Push; `None` when the `PUSH_VAPID_*` variables are unset.
    pub vapid: Option<VapidConfig>,
    /// FCM HTTP v1; `None` when `FCM_PROJECT_ID` and `FCM_SERVICE_ACCOUNT_FILE` are unset.
    pub fcm: Option<FcmConfig>,
    /// `PUSH_DELAY_MS` (3000): how long after a message is sent its push waits.
    pub delay: Duration,
    /// `PUSH_COALESCE_SECS` (30): at most one push per chat per device in this window.
    pub coalesce: Duration,
    /// `PUSHER_PORT` (3004): the pusher's `/healthz` and `/readyz`.
    pub pusher_port: u16,
    /// `PUSH_QUEUE` (`chat.push`): the pusher's queue on the integration exchange.
    pub queue: String,
    /// `PUSH_PREFETCH` (5000): unacknowledged deliveries of the pusher's consumer.
    pub prefetch: u16,
    /// `PUSH_TTL_SECS` (86400): how long a push service keeps an undelivered notification.
    pub ttl: Duration,
    /// `PUSH_ALLOW_HTTP_ENDPOINTS` (false): accept `http://` Web Push endpoints (tests).
    pub allow_http_endpoints: bool,
}

/// The application server's VAPID identity (RFC 8292).
#[derive(Debug, Clone)]
pub struct VapidConfig {
    /// `PUSH_VAPID_PUBLIC_KEY`: base64url (no padding) uncompressed P-256 point, 65 bytes.
    pub public_key: String,
    /// `PUSH_VAPID_PRIVATE_KEY`: base64url 32-byte P-256 scalar.
    pub private_key: SecretString,
    /// `PUSH_VAPID_SUBJECT`: `mailto:` or `https:` contact.
    pub subject: String,
}

/// FCM HTTP v1 with a Google service account.
#[derive(Debug, Clone)]
pub struct FcmConfig {
    /// `FCM_PROJECT_ID`.
    pub project_id: String,
    /// `FCM_ENDPOINT` (`https://fcm.googleapis.com`), without a trailing `/`.
    pub endpoint: String,
    /// The service account read from `FCM_SERVICE_ACCOUNT_FILE`.
    pub service_account: ServiceAccount,
}

/// The fields of a Google service-account JSON file that FCM needs.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub client_email: String,
    /// PEM RSA private key (PKCS#8, as Google issues it, or PKCS#1).
    pub private_key: SecretString,
    /// Where the OAuth2 assertion is posted, respected as given.
    pub token_uri: String,
}

impl PushConfig {
    /// Whether a push service (Web Push or FCM) is configured: the pusher runs then.
    pub fn configured(&self) -> bool {
        self.vapid.is_some() || self.fcm.is_some()
    }
}

pub(super) fn from_env<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<PushConfig, ConfigError> {
    let ttl = env.parse("PUSH_TTL_SECS", 86_400u64)?;
    if ttl > MAX_TTL_SECS {
        return Err(env.bad(
            "PUSH_TTL_SECS",
            &format!("at most {MAX_TTL_SECS} (28 days)"),
        ));
    }
    Ok(PushConfig {
        vapid: vapid(env)?,
        fcm: fcm(env)?,
        delay: Duration::from_millis(env.parse("PUSH_DELAY_MS", 3000)?),
        coalesce: Duration::from_secs(env.parse("PUSH_COALESCE_SECS", 30)?),
        pusher_port: env.parse("PUSHER_PORT", 3004)?,
        queue: env.name("PUSH_QUEUE", "chat.push")?,
        prefetch: env.at_least("PUSH_PREFETCH", 5000, 1)?,
        ttl: Duration::from_secs(ttl),
        allow_http_endpoints: env.parse("PUSH_ALLOW_HTTP_ENDPOINTS", false)?,
    })
}

fn vapid<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<Option<VapidConfig>, ConfigError> {
    let public = env.raw("PUSH_VAPID_PUBLIC_KEY");
    let private = env.secret_opt("PUSH_VAPID_PRIVATE_KEY");
    let subject = env.raw("PUSH_VAPID_SUBJECT");
    let (public, private, subject) = match (public, private, subject) {
        (None, None, None) => return Ok(None),
        (Some(p), Some(k), Some(s)) => (p.trim().to_string(), k, s.trim().to_string()),
        (p, k, _) => {
            let missing = match (p, k) {
                (None, _) => "PUSH_VAPID_PUBLIC_KEY",
                (_, None) => "PUSH_VAPID_PRIVATE_KEY",
                _ => "PUSH_VAPID_SUBJECT",
            };
            return Err(env.bad(
                missing,
                "Web Push needs PUSH_VAPID_PUBLIC_KEY, PUSH_VAPID_PRIVATE_KEY and PUSH_VAPID_SUBJECT together",
            ));
        }
    };
    crate::push::vapid::public_key_bytes(&public)
        .map_err(|r| env.bad("PUSH_VAPID_PUBLIC_KEY", &r))?;
    let secret = crate::push::vapid::private_key(private.expose_secret())
        .map_err(|r| env.bad("PUSH_VAPID_PRIVATE_KEY", &r))?;
    if crate::push::vapid::public_key_of(&secret) != public.trim_end_matches('=') {
        return Err(env.bad(
            "PUSH_VAPID_PUBLIC_KEY",
            "does not match PUSH_VAPID_PRIVATE_KEY (`courier push vapid-keys` prints a pair)",
        ));
    }
    check_subject(&subject).map_err(|r| env.bad("PUSH_VAPID_SUBJECT", r))?;
    Ok(Some(VapidConfig {
        public_key: public.trim_end_matches('=').to_string(),
        private_key: private,
        subject,
    }))
}

/// RFC 8292 §2.1: a `mailto:` address or an `https:` URL.
fn check_subject(subject: &str) -> Result<(), &'static str> {
    let ok = match subject.split_once(':') {
        Some(("mailto", rest)) => rest.contains('@') && !rest.contains(char::is_whitespace),
        Some(("https", _)) => reqwest_tls::Url::parse(subject).is_ok_and(|u| u.host().is_some()),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err("must be a mailto: address or an https: URL (RFC 8292)")
    }
}

fn fcm<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<Option<FcmConfig>, ConfigError> {
    let endpoint = env.string("FCM_ENDPOINT", DEFAULT_FCM_ENDPOINT);
    check_http_url(&endpoint).map_err(|r| env.bad("FCM_ENDPOINT", &r))?;
    let (project_id, file) = match (
        env.raw("FCM_PROJECT_ID"),
        env.raw("FCM_SERVICE_ACCOUNT_FILE"),
    ) {
        (None, None) => return Ok(None),
        (Some(p), Some(f)) => (p.trim().to_string(), f),
        (None, Some(_)) => {
            return Err(env.bad(
                "FCM_PROJECT_ID",
                "FCM needs it with FCM_SERVICE_ACCOUNT_FILE",
            ));
        }
        (Some(_), None) => {
            return Err(env.bad(
                "FCM_SERVICE_ACCOUNT_FILE",
                "FCM needs it with FCM_PROJECT_ID",
            ));
        }
    };
    if project_id.is_empty()
        || !project_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || c == ':')
    {
        return Err(env.bad("FCM_PROJECT_ID", "not a Firebase project id"));
    }
    let service_account =
        service_account(&file).map_err(|r| env.bad("FCM_SERVICE_ACCOUNT_FILE", &r))?;
    Ok(Some(FcmConfig {
        project_id,
        endpoint: endpoint.trim_end_matches('/').to_string(),
        service_account,
    }))
}

fn check_http_url(url: &str) -> Result<(), String> {
    match reqwest_tls::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(format!("not an http(s) URL: {url:?}")),
    }
}

/// Reads and checks the service-account file (its contents are never printed).
fn service_account(path: &str) -> Result<ServiceAccount, String> {
    #[derive(serde::Deserialize)]
    struct File {
        client_email: Option<String>,
        private_key: Option<SecretString>,
        token_uri: Option<String>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let file: File = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{path} is not a service-account JSON file (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let missing = |field: &str| format!("{path} has no {field}");
    let client_email = file
        .client_email
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| missing("client_email"))?;
    let private_key = file
        .private_key
        .filter(|s| !s.expose_secret().trim().is_empty())
        .ok_or_else(|| missing("private_key"))?;
    let token_uri = file
        .token_uri
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| missing("token_uri"))?;
    jsonwebtoken::EncodingKey::from_rsa_pem(private_key.expose_secret().as_bytes())
        .map_err(|_| format!("{path}: private_key is not a PEM RSA private key"))?;
    check_http_url(&token_uri).map_err(|r| format!("{path}: token_uri is {r}"))?;
    Ok(ServiceAccount {
        client_email,
        private_key,
        token_uri,
    })
}

#[cfg(test)]
mod tests;
