//! The rules of a push subscription body (`POST /push/subscriptions`), checked once,
//! here: a browser's `PushSubscription.toJSON()` (type Web Push) or
//! `{"type": "fcm", "token"}`. A body that breaks one is refused with the first rule it
//! breaks, as a sentence; no I/O.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Longest Web Push endpoint URL, in characters.
pub const MAX_ENDPOINT: usize = 2048;
/// Longest FCM registration token, in characters.
pub const MAX_TOKEN: usize = 4096;
/// Bytes of an uncompressed SEC1 P-256 point (`0x04 || x || y`).
pub const P256DH_LEN: usize = 65;
/// Bytes of the Web Push auth secret.
pub const AUTH_LEN: usize = 16;

/// The transport of a subscription (`type` on the wire, `kind` in the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    WebPush,
    Fcm,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::WebPush => "webpush",
            Self::Fcm => "fcm",
        }
    }

    /// The kind stored as `s` (`None` for anything else).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "webpush" => Some(Self::WebPush),
            "fcm" => Some(Self::Fcm),
            _ => None,
        }
    }
}

/// A checked subscription: Web Push keys are re-encoded as base64url without padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    WebPush {
        endpoint: String,
        p256dh: String,
        auth: String,
        expiration_time: Option<DateTime<Utc>>,
    },
    Fcm {
        token: String,
    },
}

impl Checked {
    pub fn kind(&self) -> Kind {
        match self {
            Self::WebPush { .. } => Kind::WebPush,
            Self::Fcm { .. } => Kind::Fcm,
        }
    }
}

/// Checks a registration body; `allow_http` (`PUSH_ALLOW_HTTP_ENDPOINTS`) also takes
/// `http:` endpoints. `Err` is the first rule broken.
pub fn check(body: &Value, allow_http: bool) -> Result<Checked, String> {
    let Some(obj) = body.as_object() else {
        return Err("the body must be a JSON object".into());
    };
    let kind = match obj.get("type") {
        None => Kind::WebPush,
        Some(Value::String(t)) => {
            Kind::parse(t).ok_or_else(|| "type must be \"webpush\" or \"fcm\"".to_string())?
        }
        Some(_) => return Err("type must be \"webpush\" or \"fcm\"".into()),
    };
    match kind {
        Kind::Fcm => {
            let token = string(obj.get("token"), "token")?;
            check_token(token)?;
            Ok(Checked::Fcm {
                token: token.to_string(),
            })
        }
        Kind::WebPush => {
            let endpoint = string(obj.get("endpoint"), "endpoint")?;
            check_endpoint(endpoint, allow_http)?;
            let expiration_time = expiration(obj.get("expirationTime"))?;
            let Some(keys) = obj.get("keys").and_then(Value::as_object) else {
                return Err("keys must be an object with p256dh and auth".into());
            };
            let p256dh = check_p256dh(string(keys.get("p256dh"), "keys.p256dh")?)?;
            let auth = decode(string(keys.get("auth"), "keys.auth")?, "keys.auth")?;
            if auth.len() != AUTH_LEN {
                return Err(format!("keys.auth must decode to {AUTH_LEN} bytes"));
            }
            Ok(Checked::WebPush {
                endpoint: endpoint.to_string(),
                p256dh,
                auth: B64.encode(auth),
                expiration_time,
            })
        }
    }
}

fn string<'a>(v: Option<&'a Value>, name: &str) -> Result<&'a str, String> {
    v.and_then(Value::as_str)
        .ok_or_else(|| format!("{name} must be a string"))
}

/// An absolute `https:` URL with a host (`http:` too with `allow_http`), at most
/// `MAX_ENDPOINT` characters, without control characters.
pub fn check_endpoint(endpoint: &str, allow_http: bool) -> Result<(), String> {
    let rule = if allow_http {
        "endpoint must be an absolute http(s) URL"
    } else {
        "endpoint must be an absolute https URL"
    };
    if endpoint.chars().count() > MAX_ENDPOINT {
        return Err(format!(
            "endpoint must be at most {MAX_ENDPOINT} characters"
        ));
    }
    if endpoint.chars().any(char::is_control) || endpoint.contains(' ') {
        return Err(rule.into());
    }
    let url = url::Url::parse(endpoint).map_err(|_| rule.to_string())?;
    let scheme_ok = url.scheme() == "https" || (allow_http && url.scheme() == "http");
    if !scheme_ok || url.host_str().is_none_or(str::is_empty) {
        return Err(rule.into());
    }
    // The pusher POSTs to the endpoint: unless local endpoints are allowed (tests' own
    // receivers), one naming this host or a private network is refused, so a
    // subscription cannot point the pusher at internal services by address.
    if !allow_http && url.host().is_some_and(|h| internal(&h)) {
        return Err("endpoint must be a push service's public address".into());
    }
    Ok(())
}

/// `localhost`, or an IP literal that is loopback, private, link-local or unspecified.
fn internal(host: &url::Host<&str>) -> bool {
    use std::net::IpAddr;
    let ip = match host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            return d == "localhost" || d.ends_with(".localhost");
        }
        url::Host::Ipv4(v4) => IpAddr::V4(*v4),
        url::Host::Ipv6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(*v6), IpAddr::V4),
    };
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// 1 to `MAX_TOKEN` characters of `[A-Za-z0-9_:.-]`.
pub fn check_token(token: &str) -> Result<(), String> {
    let ok = !token.is_empty()
        && token.len() <= MAX_TOKEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "token must be 1 to {MAX_TOKEN} characters of A-Z, a-z, 0-9, _ : - ."
        ))
    }
}

/// base64url (trailing `=` padding tolerated) decoding to an uncompressed point on
/// P-256; returned re-encoded without padding.
pub fn check_p256dh(p256dh: &str) -> Result<String, String> {
    let bytes = decode(p256dh, "keys.p256dh")?;
    if bytes.len() != P256DH_LEN || bytes[0] != 0x04 {
        return Err(format!(
            "keys.p256dh must decode to a {P256DH_LEN}-byte uncompressed P-256 point"
        ));
    }
    p256::PublicKey::from_sec1_bytes(&bytes)
        .map_err(|_| "keys.p256dh is not a point on the P-256 curve".to_string())?;
    Ok(B64.encode(bytes))
}

/// base64url, with or without `=` padding (not standard base64's `+` and `/`).
fn decode(s: &str, name: &str) -> Result<Vec<u8>, String> {
    let trimmed = s
        .strip_suffix("==")
        .or_else(|| s.strip_suffix('='))
        .unwrap_or(s);
    B64.decode(trimmed)
        .map_err(|_| format!("{name} must be base64url"))
}

/// `expirationTime`: absent, null, or milliseconds since the epoch.
fn expiration(v: Option<&Value>) -> Result<Option<DateTime<Utc>>, String> {
    const RULE: &str = "expirationTime must be null or milliseconds since the epoch";
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let ms = match n.as_i64() {
                Some(ms) => ms,
                None => n
                    .as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 1e15)
                    .map(|f| f.trunc() as i64)
                    .ok_or(RULE)?,
            };
            DateTime::from_timestamp_millis(ms)
                .map(Some)
                .ok_or(RULE.into())
        }
        Some(_) => Err(RULE.into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A valid public key (of a fixed test scalar), uncompressed.
    fn point() -> Vec<u8> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    fn browser(p256dh: &str, auth: &str) -> Value {
        json!({
            "endpoint": "https://fcm.googleapis.com/fcm/send/abc:def",
            "expirationTime": null,
            "keys": {"p256dh": p256dh, "auth": auth},
        })
    }

    #[test]
    fn a_browser_subscription_is_accepted_and_its_keys_unpadded() {
        let p = B64.encode(point());
        let auth = base64::engine::general_purpose::URL_SAFE.encode([9u8; 16]);
        assert!(auth.ends_with("=="));
        let c = check(&browser(&format!("{p}="), &auth), false).unwrap();
        assert_eq!(c.kind(), Kind::WebPush);
        let Checked::WebPush {
            p256dh,
            auth: a,
            expiration_time,
            ..
        } = c
        else {
            panic!("web push");
        };
        assert_eq!(p256dh, p);
        assert_eq!(a, B64.encode([9u8; 16]));
        assert_eq!(expiration_time, None);
        let mut typed = browser(&p, &a);
        typed["type"] = json!("webpush");
        typed["expirationTime"] = json!(1_767_225_600_000i64);
        let Checked::WebPush {
            expiration_time, ..
        } = check(&typed, false).unwrap()
        else {
            panic!("web push");
        };
        assert_eq!(
            expiration_time.map(|t| t.timestamp_millis()),
            Some(1_767_225_600_000)
        );
    }

    #[test]
    fn malformed_web_push_bodies_are_refused_with_their_rule() {
        let p = B64.encode(point());
        let a = B64.encode([1u8; 16]);
        let mut off_curve = point();
        off_curve[64] ^= 1;
        let mut compressed = point();
        compressed[0] = 0x02;
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "JSON object"),
            (json!({"type": "apns", "token": "x"}), "type must be"),
            (json!({"type": 1}), "type must be"),
            (
                json!({"keys": {"p256dh": p, "auth": a}}),
                "endpoint must be a string",
            ),
            (browser("not base64!", &a), "keys.p256dh must be base64url"),
            (browser(&B64.encode([4u8; 33]), &a), "65-byte"),
            (browser(&B64.encode(&compressed), &a), "65-byte"),
            (browser(&B64.encode(&off_curve), &a), "not a point"),
            (browser(&p, &B64.encode([1u8; 15])), "16 bytes"),
            (browser(&p, "+/+/"), "keys.auth must be base64url"),
            (json!({"endpoint": "https://x.example/1"}), "keys must be"),
        ];
        for (body, rule) in cases {
            let e = check(&body, false).unwrap_err();
            assert!(e.contains(rule), "{body}: {e}");
        }
        let mut bad_exp = browser(&p, &a);
        bad_exp["expirationTime"] = json!("tomorrow");
        assert!(
            check(&bad_exp, false)
                .unwrap_err()
                .contains("expirationTime")
        );
    }

    #[test]
    fn endpoints_are_absolute_https_urls_unless_http_is_allowed() {
        assert!(check_endpoint("https://push.example.net/v1/abc", false).is_ok());
        for bad in [
            "http://127.0.0.1:9000/push",
            "ftp://push.example.net/x",
            "/relative/path",
            "https://",
            "https://push.example.net/a b",
            "https://push.example.net/\u{0}",
            "mailto:someone@example.net",
        ] {
            assert!(check_endpoint(bad, false).is_err(), "{bad}");
        }
        for internal in [
            "https://127.0.0.1/push",
            "https://localhost:8443/push",
            "https://10.1.2.3/push",
            "https://192.168.0.9/push",
            "https://169.254.169.254/latest",
            "https://[::1]/push",
            "https://[fd00::1]/push",
            "https://[::ffff:10.0.0.1]/push",
        ] {
            let e = check_endpoint(internal, false).unwrap_err();
            assert!(e.contains("public address"), "{internal}: {e}");
        }
        assert!(check_endpoint("https://8.8.8.8/push", false).is_ok());
        assert!(check_endpoint("http://127.0.0.1:9000/push", true).is_ok());
        assert!(check_endpoint("ftp://push.example.net/x", true).is_err());
        let long = format!("https://push.example.net/{}", "a".repeat(MAX_ENDPOINT));
        assert!(check_endpoint(&long, false).unwrap_err().contains("2048"));
    }

    #[test]
    fn fcm_tokens_have_their_alphabet_and_length() {
        let ok = json!({"type": "fcm", "token": "dGVzdA:APA91b-x_y.z"});
        assert_eq!(
            check(&ok, false).unwrap(),
            Checked::Fcm {
                token: "dGVzdA:APA91b-x_y.z".into()
            }
        );
        for bad in ["", "has space", "slash/", "é", &"a".repeat(MAX_TOKEN + 1)] {
            let body = json!({"type": "fcm", "token": bad});
            assert!(check(&body, false).unwrap_err().contains("token"), "{bad}");
        }
        assert!(check(&json!({"type": "fcm"}), false).is_err());
        assert!(check_token(&"a".repeat(MAX_TOKEN)).is_ok());
    }
}
