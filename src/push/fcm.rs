//! FCM HTTP v1: an OAuth2 access token from the service account (an RS256 JWT assertion
//! posted to its `token_uri`, cached until a minute before it expires), then
//! `POST {FCM_ENDPOINT}/v1/projects/{project}/messages:send` with a notification, the
//! payload as string data, and Android and APNs collapse and priority settings.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest_tls::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{Outcome, SendOpts, Urgency, http};
use crate::{config::FcmConfig, domain::push::Payload};

/// The OAuth2 scope of FCM sends.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The assertion's lifetime (Google's maximum).
const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// A cached access token is replaced this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

pub(super) struct Fcm {
    send_url: String,
    token_uri: String,
    client_email: String,
    key: EncodingKey,
    /// The access token and when to fetch a new one; one fetch at a time.
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
}

#[derive(serde::Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

impl Fcm {
    pub(super) fn new(cfg: &FcmConfig) -> anyhow::Result<Self> {
        let sa = &cfg.service_account;
        let key = EncodingKey::from_rsa_pem(sa.private_key.expose_secret().as_bytes())
            .map_err(|_| anyhow::anyhow!("FCM_SERVICE_ACCOUNT_FILE: private_key is not RSA"))?;
        Ok(Self {
            send_url: format!(
                "{}/v1/projects/{}/messages:send",
                cfg.endpoint.trim_end_matches('/'),
                cfg.project_id
            ),
            token_uri: sa.token_uri.clone(),
            client_email: sa.client_email.clone(),
            key,
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The cached access token, or a new one from `token_uri`.
    async fn access_token(&self, client: &reqwest_tls::Client) -> Result<String, Outcome> {
        let mut cached = self.token.lock().await;
        if let Some((token, refresh_at)) = cached.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let iat = chrono::Utc::now().timestamp();
        let claims = Assertion {
            iss: &self.client_email,
            scope: SCOPE,
            aud: &self.token_uri,
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
        };
        let assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| Outcome::Failed {
                reason: format!("FCM assertion: {e}"),
            })?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let res = client
            .post(&self.token_uri)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| http::network_failure("FCM token", &e))?;
        let status = res.status();
        if !status.is_success() {
            if let Some(retry) = http::retryable(status, res.headers(), "FCM token") {
                return Err(retry);
            }
            let body = http::error_body(res).await;
            return Err(Outcome::Failed {
                reason: format!("FCM token: {status}: {}", http::short(&body, 200)),
            });
        }
        let text = http::error_body(res).await;
        let answer: TokenAnswer = serde_json::from_str(&text).map_err(|e| Outcome::Retry {
            after: None,
            reason: format!("FCM token: unreadable answer: {e}"),
        })?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let refresh_at = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN);
        *cached = Some((answer.access_token.clone(), refresh_at));
        Ok(answer.access_token)
    }

    /// Forgets the access token (the service refused it).
    async fn drop_token(&self, refused: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|(t, _)| t == refused) {
            *cached = None;
        }
    }

    pub(super) async fn send(
        &self,
        client: &reqwest_tls::Client,
        token: &str,
        p: &Payload,
        opts: &SendOpts,
    ) -> Outcome {
        let access = match self.access_token(client).await {
            Ok(t) => t,
            Err(outcome) => return outcome,
        };
        let body = message(token, p, opts);
        let res = match client
            .post(&self.send_url)
            .bearer_auth(&access)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return http::network_failure("FCM", &e),
        };
        let status = res.status();
        if status.is_success() {
            return Outcome::Sent;
        }
        if status == StatusCode::UNAUTHORIZED {
            self.drop_token(&access).await;
            return Outcome::Retry {
                after: None,
                reason: "FCM: 401 Unauthorized (access token dropped)".into(),
            };
        }
        if status == StatusCode::NOT_FOUND {
            return Outcome::Gone;
        }
        if let Some(retry) = http::retryable(status, res.headers(), "FCM") {
            return retry;
        }
        let text = http::error_body(res).await;
        if error_code(&text).as_deref() == Some("UNREGISTERED") {
            return Outcome::Gone;
        }
        Outcome::Failed {
            reason: format!("FCM: {status}: {}", http::short(&text, 200)),
        }
    }
}

/// The `errorCode` of an FCM error answer's `FcmError` detail.
fn error_code(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    v["error"]["details"]
        .as_array()?
        .iter()
        .find_map(|d| d["errorCode"].as_str().map(String::from))
}

/// The `messages:send` body (FCM data values must be strings).
pub(super) fn message(token: &str, p: &Payload, opts: &SendOpts) -> Value {
    let ttl = opts.ttl.as_secs();
    let high = opts.urgency == Urgency::High;
    let expiration = if ttl == 0 {
        0
    } else {
        // From the message, not from this attempt: a retry expires when the first would.
        p.sent_at.timestamp().max(0) as u64 + ttl
    };
    json!({
        "message": {
            "token": token,
            "notification": { "title": p.title, "body": p.body },
            "data": {
                "chatId": p.chat_id.to_string(),
                "messageId": p.message_id.to_string(),
                "title": p.title,
                "body": p.body,
                "unread": p.unread.to_string(),
                "sentAt": crate::domain::time::format(&p.sent_at),
            },
            "android": {
                "collapse_key": opts.collapse_key,
                "priority": if high { "high" } else { "normal" },
                "ttl": format!("{ttl}s"),
                "notification": { "tag": opts.collapse_key },
            },
            "apns": {
                "headers": {
                    "apns-collapse-id": opts.collapse_key,
                    "apns-priority": if high { "10" } else { "5" },
                    "apns-expiration": expiration.to_string(),
                },
                "payload": { "aps": { "badge": p.unread, "thread-id": opts.collapse_key } },
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    #[test]
    fn the_message_has_string_data_and_collapse_settings() {
        let chat = uuid::Uuid::now_v7();
        let at = DateTime::<Utc>::from_timestamp_millis(1_767_323_045_678).unwrap();
        let p = Payload::new(chat, uuid::Uuid::now_v7(), "Team", "hello", 4, at);
        let opts = SendOpts {
            ttl: Duration::from_secs(600),
            urgency: Urgency::High,
            topic: chat.simple().to_string(),
            collapse_key: chat.to_string(),
        };
        let m = &message("tok", &p, &opts)["message"];
        assert_eq!(m["token"], "tok");
        assert_eq!(m["data"]["unread"], "4");
        assert_eq!(m["data"]["sentAt"], "2026-01-02T03:04:05.678Z");
        assert!(
            m["data"]
                .as_object()
                .unwrap()
                .values()
                .all(Value::is_string)
        );
        assert_eq!(m["android"]["priority"], "high");
        assert_eq!(m["android"]["ttl"], "600s");
        assert_eq!(m["android"]["collapse_key"], chat.to_string());
        assert_eq!(m["apns"]["headers"]["apns-priority"], "10");
        assert_eq!(m["apns"]["payload"]["aps"]["badge"], 4);
        let exp: i64 = m["apns"]["headers"]["apns-expiration"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(exp, p.sent_at.timestamp() + 600);
        let normal = SendOpts {
            urgency: Urgency::Normal,
            ..opts
        };
        let m = &message("tok", &p, &normal)["message"];
        assert_eq!(m["android"]["priority"], "normal");
        assert_eq!(m["apns"]["headers"]["apns-priority"], "5");
    }

    #[test]
    fn unregistered_is_found_in_the_details() {
        let body = r#"{"error":{"code":404,"status":"NOT_FOUND","details":[
            {"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#;
        assert_eq!(error_code(body).as_deref(), Some("UNREGISTERED"));
        assert_eq!(error_code(r#"{"error":{"code":400}}"#), None);
        assert_eq!(error_code("not json"), None);
    }
}
