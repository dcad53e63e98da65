//! Web Push delivery: RFC 8030 `POST` to the subscription's endpoint with `TTL`,
//! `Urgency` and `Topic`, the body encrypted by RFC 8291 (`aes128gcm`), authorised by
//! RFC 8292 VAPID.
//!
//! Crates compared for the encryption:
//! - `web-push`: complete (builder, VAPID, its own hyper/isahc clients), but its
//!   encryption is the `ece` crate on OpenSSL, and `scripts/test.sh` refuses
//!   `openssl-sys` (Courier keeps one TLS and crypto stack: rustls and RustCrypto/ring).
//! - `web-push-native`: RustCrypto (p256, aes-gcm, hkdf), no OpenSSL. With default
//!   features off it offers `encrypt` and a builder; VAPID needs its `jwt-simple`
//!   feature (a second JWT library, though `jsonwebtoken` already signs ES256 here).
//!   Its `encrypt` draws the ephemeral key and salt itself and keeps the function that
//!   takes them private, so RFC 8291's Appendix A vector cannot be run on it.
//! - hand-rolled p256 + aes-gcm + hkdf: full control, but the RFC 8188 record layer
//!   (key and nonce schedule, padding delimiter, header) is the part easiest to get
//!   subtly wrong.
//!
//! Chosen: `ece-native`, the RFC 8188 `aes128gcm` record layer `web-push-native` itself
//! is built on (same author, RustCrypto), under the RFC 8291 key derivation written out
//! in [`super::ece`] (one ECDH and one HKDF, 20 lines) so the exact bytes sent are
//! checked against RFC 8291 Appendix A. `web-push-native`'s own `decrypt` is used by
//! the tests as an independent receiver. VAPID is `jsonwebtoken` (ES256) in
//! [`super::vapid`]; HTTP is the existing `reqwest` on rustls.

use reqwest_tls::{StatusCode, Url};

use super::{Outcome, SendOpts, ece, http, vapid::Vapid};
use crate::{config::VapidConfig, domain::push::Payload};

pub(super) struct WebPush {
    vapid: Vapid,
    allow_http: bool,
}

/// RFC 8030 §5.4: a topic is at most 32 characters of the URL-safe base64 alphabet.
fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= 32
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `scheme://host[:port]` of `url`: the VAPID `aud`.
pub(super) fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

impl WebPush {
    pub(super) fn new(cfg: &VapidConfig, allow_http: bool) -> anyhow::Result<Self> {
        Ok(Self {
            vapid: Vapid::new(cfg)?,
            allow_http,
        })
    }

    pub(super) async fn send(
        &self,
        client: &reqwest_tls::Client,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        p: &Payload,
        opts: &SendOpts,
    ) -> Outcome {
        let failed = |reason: String| Outcome::Failed { reason };
        let url = match Url::parse(endpoint) {
            Ok(u) if u.scheme() == "https" || (self.allow_http && u.scheme() == "http") => u,
            Ok(u) if u.scheme() == "http" => {
                return failed("Web Push endpoint is http:// (PUSH_ALLOW_HTTP_ENDPOINTS)".into());
            }
            _ => return failed("Web Push endpoint is not an https URL".into()),
        };
        let ua_public = match super::vapid::public_key_bytes(p256dh) {
            Ok(k) => k,
            Err(r) => return failed(format!("p256dh {r}")),
        };
        let auth = match base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            auth.trim().trim_end_matches('='),
        ) {
            Ok(a) if a.len() == 16 => a,
            _ => return failed("auth must be 16 bytes of base64url".into()),
        };
        let body = match ece::encrypt(&p.to_json(), &ua_public, &auth) {
            Ok(b) => b,
            Err(r) => return failed(r),
        };
        let authorization = match self.vapid.authorization(&origin(&url)) {
            Ok(a) => a,
            Err(r) => return failed(r),
        };
        let mut req = client
            .post(url)
            .header("TTL", opts.ttl.as_secs().to_string())
            .header("Urgency", opts.urgency.as_str())
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("Authorization", authorization)
            .body(body);
        if valid_topic(&opts.topic) {
            req = req.header("Topic", opts.topic.as_str());
        } else {
            tracing::warn!(topic = %opts.topic, "push topic is not ≤ 32 base64url characters; not sent");
        }
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) => return http::network_failure("Web Push", &e),
        };
        classify(res).await
    }
}

/// RFC 8030 §6.2 and §8: 2xx delivered, 404/410 gone, 429/5xx later, other 4xx refused.
async fn classify(res: reqwest_tls::Response) -> Outcome {
    let status = res.status();
    if status.is_success() {
        return Outcome::Sent;
    }
    if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
        return Outcome::Gone;
    }
    if let Some(retry) = http::retryable(status, res.headers(), "Web Push") {
        return retry;
    }
    let body = http::error_body(res).await;
    Outcome::Failed {
        reason: format!("Web Push: {status}: {}", http::short(&body, 200)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_checked_and_origins_keep_only_non_default_ports() {
        assert!(valid_topic(&uuid::Uuid::now_v7().simple().to_string()));
        assert!(!valid_topic(&uuid::Uuid::now_v7().to_string()), "36 chars");
        assert!(!valid_topic("a.b") && !valid_topic(""));
        for (url, want) in [
            (
                "https://fcm.googleapis.com/fcm/send/abc",
                "https://fcm.googleapis.com",
            ),
            ("https://push.example:443/x", "https://push.example"),
            ("https://push.example:8443/x?y", "https://push.example:8443"),
            ("http://127.0.0.1:9000/p/1", "http://127.0.0.1:9000"),
        ] {
            assert_eq!(origin(&Url::parse(url).unwrap()), want);
        }
    }
}
