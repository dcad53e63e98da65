//! The one place the Redis client is built from the configuration (`redis://` or
//! `rediss://`, with the CA and the client certificate), and the one-line causes of a
//! failed TLS connect. The connection manager, each of its reconnects and every
//! pub/sub connection use this client, so they all speak the same TLS.

use std::time::Duration;

use redis::{Client, ClientTlsConfig, RedisError, TlsCertificates};
use secrecy::ExposeSecret;

use crate::config::{Config, TlsFiles};

/// How long a pub/sub connection may take to connect and handshake.
pub const PUBSUB_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The Redis client of `config` (the crypto provider installed first).
pub fn client(config: &Config) -> anyhow::Result<Client> {
    crate::tls::install_crypto_provider();
    let url = config.redis_url();
    client_from(
        url.expose_secret(),
        &config.redis.tls_files,
        config.redis_var(),
    )
}

/// The client of `url` with the CA and client certificate of `files`; errors name `var`.
pub fn client_from(url: &str, files: &TlsFiles, var: &str) -> anyhow::Result<Client> {
    let built = if files.is_empty() {
        Client::open(url)
    } else {
        Client::build_with_tls(url, certificates(files))
    };
    // The error may quote the URL: name the variable and the kind only.
    built.map_err(|e| anyhow::anyhow!("{var}: cannot build the Redis client: {:?}", e.kind()))
}

/// The CA and client certificate of `files` as the Redis client takes them.
pub fn certificates(files: &TlsFiles) -> TlsCertificates {
    TlsCertificates {
        client_tls: files.client.as_ref().map(|(cert, key)| ClientTlsConfig {
            client_cert: cert.clone(),
            client_key: key.clone(),
        }),
        root_cert: files.ca.clone(),
    }
}

/// Why a TLS connect failed, in words an operator can act on; `None` when the error
/// is no TLS or certificate failure (refused, reset: Redis may still be starting).
pub fn tls_cause(e: &RedisError, tls: bool) -> Option<String> {
    if !tls {
        return None;
    }
    if e.is_timeout() {
        return Some("no TLS answer from the server in time (a plaintext port?)".into());
    }
    if let Some(r) = crate::tls::rustls_error(e) {
        return Some(describe(&format!("{r:?}"), &r.to_string()));
    }
    // redis may carry the rustls error as text only.
    let text = e.to_string();
    [
        "certificate",
        "TLS",
        "tls",
        "handshake",
        "corrupt message",
        "alert",
    ]
    .iter()
    .any(|w| text.contains(w))
    .then(|| describe(&text, &text))
}

/// The cause named by a rustls error's `Debug` (variant names) or its text.
fn describe(debug: &str, text: &str) -> String {
    let has = |words: &[&str]| words.iter().any(|w| debug.contains(w) || text.contains(w));
    if has(&["UnknownIssuer", "BadSignature", "UnknownRevocationStatus"]) {
        "server certificate untrusted: not signed by the CA (REDIS_CA_CERT or the system roots)"
            .into()
    } else if has(&["Expired", "expired"]) {
        "server certificate expired".into()
    } else if has(&["NotValidForName", "not valid for name", "is only valid for"]) {
        "server certificate not valid for the host name (not in its subjectAltName)".into()
    } else if has(&[
        "InvalidContentType",
        "corrupt message",
        "InvalidMessage",
        "InappropriateMessage",
    ]) {
        "no TLS answer from the server (a plaintext port?)".into()
    } else if has(&["AlertReceived", "alert"]) {
        format!(
            "the server refused the TLS handshake (client certificate required or untrusted?): {text}"
        )
    } else {
        format!("TLS failed: {text}")
    }
}
