//! RFC 8292 VAPID: the application server's P-256 key pair (base64url, as browsers take
//! `applicationServerKey`), and the `Authorization: vapid t=<JWT>, k=<key>` header, an
//! ES256 JWT per push-service origin, cached until an hour before it expires.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::{SecretKey, elliptic_curve::sec1::ToEncodedPoint, pkcs8::EncodePrivateKey};
use secrecy::ExposeSecret;

use crate::config::VapidConfig;

/// A token's lifetime (RFC 8292 allows at most 24 hours).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// A cached token is replaced this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(3600);
/// Origins whose tokens are kept; past it the cache starts over (subscribers choose
/// endpoints, so their origins are not trusted to be few).
const MAX_ORIGINS: usize = 1024;

/// base64url, tolerating `=` padding (some tools print it).
fn decode(s: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(s.trim().trim_end_matches('='))
        .map_err(|_| "not base64url".to_string())
}

/// The 65 bytes of an uncompressed P-256 point given as base64url (a VAPID public key or
/// a subscription's `p256dh`).
pub fn public_key_bytes(b64: &str) -> Result<p256::PublicKey, String> {
    let bytes = decode(b64)?;
    if bytes.len() != 65 || bytes[0] != 4 {
        return Err(format!(
            "must be a 65-byte uncompressed P-256 point, got {} bytes",
            bytes.len()
        ));
    }
    p256::PublicKey::from_sec1_bytes(&bytes).map_err(|_| "not a point on P-256".to_string())
}

/// A VAPID private key: base64url of the 32-byte scalar.
pub fn private_key(b64: &str) -> Result<SecretKey, String> {
    let bytes = decode(b64)?;
    if bytes.len() != 32 {
        return Err(format!(
            "must be a 32-byte P-256 private key, got {} bytes",
            bytes.len()
        ));
    }
    SecretKey::from_slice(&bytes).map_err(|_| "not a valid P-256 private key".to_string())
}

/// The base64url uncompressed public point of `secret`.
pub fn public_key_of(secret: &SecretKey) -> String {
    URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes())
}

/// A fresh random P-256 secret key.
pub(crate) fn random_secret() -> SecretKey {
    loop {
        // Out of range for P-256 with probability ~2^-32: draw again.
        if let Ok(k) = SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
            return k;
        }
    }
}

/// A new key pair as (public, private), base64url: `courier push vapid-keys`.
pub fn generate() -> (String, String) {
    let secret = random_secret();
    (
        public_key_of(&secret),
        URL_SAFE_NO_PAD.encode(secret.to_bytes()),
    )
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    aud: &'a str,
    exp: u64,
    sub: &'a str,
}

/// Signs and caches the VAPID tokens.
pub struct Vapid {
    key: EncodingKey,
    public_key: String,
    subject: String,
    cache: Mutex<HashMap<String, (String, Instant)>>,
}

impl Vapid {
    pub fn new(cfg: &VapidConfig) -> anyhow::Result<Self> {
        let secret = private_key(cfg.private_key.expose_secret())
            .map_err(|r| anyhow::anyhow!("PUSH_VAPID_PRIVATE_KEY: {r}"))?;
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("PUSH_VAPID_PRIVATE_KEY: {e}"))?;
        Ok(Self {
            key: EncodingKey::from_ec_der(der.as_bytes()),
            public_key: public_key_of(&secret),
            subject: cfg.subject.clone(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The `Authorization` header for a push service at `origin` (`scheme://host[:port]`).
    pub fn authorization(&self, origin: &str) -> Result<String, String> {
        Ok(format!(
            "vapid t={}, k={}",
            self.token(origin)?,
            self.public_key
        ))
    }

    /// The JWT for `origin`: the cached one while it has over an hour left.
    pub fn token(&self, origin: &str) -> Result<String, String> {
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, refresh_at)) = cache.get(origin)
            && now < *refresh_at
        {
            return Ok(token.clone());
        }
        let exp = chrono::Utc::now().timestamp().max(0) as u64 + TOKEN_LIFETIME.as_secs();
        let claims = Claims {
            aud: origin,
            exp,
            sub: &self.subject,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.key)
            .map_err(|e| format!("VAPID signing: {e}"))?;
        if cache.len() >= MAX_ORIGINS {
            cache.retain(|_, (_, refresh_at)| now < *refresh_at);
            if cache.len() >= MAX_ORIGINS {
                cache.clear();
            }
        }
        cache.insert(
            origin.to_string(),
            (token.clone(), now + TOKEN_LIFETIME - REFRESH_MARGIN),
        );
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn vapid() -> (Vapid, String) {
        let (public, private) = generate();
        let cfg = VapidConfig {
            public_key: public.clone(),
            private_key: private.into(),
            subject: "mailto:ops@example.com".into(),
        };
        (Vapid::new(&cfg).unwrap(), public)
    }

    #[derive(serde::Deserialize)]
    struct Decoded {
        aud: String,
        exp: u64,
        sub: String,
    }

    fn verify(token: &str, public: &str, origin: &str) -> Decoded {
        let point = decode(public).unwrap();
        let key = DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(&point[1..33]),
            &URL_SAFE_NO_PAD.encode(&point[33..]),
        )
        .unwrap();
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&[origin]);
        v.set_required_spec_claims(&["exp", "aud", "sub"]);
        jsonwebtoken::decode::<Decoded>(token, &key, &v)
            .unwrap()
            .claims
    }

    #[test]
    fn the_token_verifies_with_the_public_key_and_names_the_origin() {
        let (v, public) = vapid();
        let origin = "https://push.example.net";
        let header = v.authorization(origin).unwrap();
        let (t, k) = header
            .strip_prefix("vapid t=")
            .and_then(|r| r.split_once(", k="))
            .unwrap();
        assert_eq!(k, public);
        let claims = verify(t, &public, origin);
        assert_eq!(claims.aud, origin);
        assert_eq!(claims.sub, "mailto:ops@example.com");
        let now = chrono::Utc::now().timestamp() as u64;
        assert!(claims.exp > now + 11 * 3600 && claims.exp <= now + 12 * 3600 + 5);
        // Another key does not verify it.
        let (_, other) = vapid();
        let point = decode(&other).unwrap();
        let key = DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(&point[1..33]),
            &URL_SAFE_NO_PAD.encode(&point[33..]),
        )
        .unwrap();
        let mut val = Validation::new(Algorithm::ES256);
        val.set_audience(&[origin]);
        assert!(jsonwebtoken::decode::<Decoded>(t, &key, &val).is_err());
    }

    #[test]
    fn tokens_are_cached_per_origin_until_an_hour_before_expiry() {
        let (v, _) = vapid();
        let a = v.token("https://a.example").unwrap();
        let b = v.token("https://b.example:8443").unwrap();
        assert_ne!(a, b);
        // ES256 here is deterministic (RFC 6979): mark the cached token to see it reused.
        let set = |token: &str, refresh_at: Instant| {
            *v.cache
                .lock()
                .unwrap()
                .get_mut("https://a.example")
                .unwrap() = (token.to_string(), refresh_at);
        };
        set("cached", Instant::now() + Duration::from_secs(60));
        assert_eq!(v.token("https://a.example").unwrap(), "cached");
        // A token within the hour before its expiry is replaced by a new one.
        set("cached", Instant::now());
        let fresh = v.token("https://a.example").unwrap();
        assert_ne!(fresh, "cached");
        assert_eq!(fresh.split('.').count(), 3, "a signed JWT: {fresh}");
        let refresh_at = v.cache.lock().unwrap()["https://a.example"].1;
        assert!(refresh_at > Instant::now() + Duration::from_secs(10 * 3600));
    }

    #[test]
    fn keys_are_checked() {
        let (public, private) = generate();
        assert_eq!(public.len(), 87);
        assert_eq!(private.len(), 43);
        let secret = private_key(&private).unwrap();
        assert_eq!(public_key_of(&secret), public);
        assert!(public_key_bytes(&public).is_ok());
        assert!(public_key_bytes(&format!("{public}=")).is_ok());
        assert!(
            public_key_bytes("not base64!")
                .unwrap_err()
                .contains("base64url")
        );
        assert!(public_key_bytes(&private).unwrap_err().contains("65-byte"));
        // 65 bytes, but not on the curve.
        let mut off = vec![4u8];
        off.extend([1u8; 64]);
        let off = URL_SAFE_NO_PAD.encode(off);
        assert!(public_key_bytes(&off).unwrap_err().contains("point"));
        assert!(private_key(&public).unwrap_err().contains("32-byte"));
        assert!(private_key(&URL_SAFE_NO_PAD.encode([0u8; 32])).is_err());
        assert!(private_key(&URL_SAFE_NO_PAD.encode([0xffu8; 32])).is_err());
    }
}
