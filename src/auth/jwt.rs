//! Access tokens: JWT, HS256 or RS256, `sub` = user id, `iss` = `courier`, `exp`, and
//! `sid` = the session (tokens issued before sessions existed have none; they stay
//! valid until they expire).
//!
//! Only the configured algorithm is accepted, so `alg: none` and algorithm
//! confusion (an RS256 public key used as an HS256 secret) are refused.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::JwtKeyConfig;

pub const ISSUER: &str = "courier";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: Uuid,
    pub iss: String,
    #[serde(default)]
    pub iat: i64,
    pub exp: i64,
    /// The session (`None` in tokens issued before sessions existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
}

#[derive(Clone)]
pub struct JwtKeys {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("invalid JWT key configuration: {0}")]
    Config(String),
    #[error("invalid token")]
    Invalid,
}

impl JwtKeys {
    pub fn new(config: &JwtKeyConfig, lifetime: Duration) -> Result<Self, JwtError> {
        let cfg_err = |e: jsonwebtoken::errors::Error| JwtError::Config(e.to_string());
        let (algorithm, encoding, decoding) = match config {
            JwtKeyConfig::Hs256(secret) => {
                let s = secret.expose_secret().as_bytes();
                (
                    Algorithm::HS256,
                    EncodingKey::from_secret(s),
                    DecodingKey::from_secret(s),
                )
            }
            JwtKeyConfig::Rs256 {
                private_pem,
                public_pem,
            } => (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(private_pem.expose_secret().as_bytes())
                    .map_err(cfg_err)?,
                DecodingKey::from_rsa_pem(public_pem.as_bytes()).map_err(cfg_err)?,
            ),
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 5;
        Ok(Self {
            algorithm,
            encoding,
            decoding,
            validation,
            lifetime,
        })
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Issues an access token for a user's session.
    pub fn issue(&self, user: Uuid, sid: Option<Uuid>) -> Result<String, JwtError> {
        let now = chrono::Utc::now().timestamp();
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            sub: user,
            iss: ISSUER.into(),
            iat: now,
            exp: now + lifetime,
            sid,
        };
        encode(&Header::new(self.algorithm), &claims, &self.encoding).map_err(|e| {
            tracing::error!(error = %e, "failed to sign a token");
            JwtError::Invalid
        })
    }

    /// Verifies signature, algorithm, issuer and expiry; returns the user id.
    pub fn verify(&self, token: &str) -> Result<Uuid, JwtError> {
        self.verify_claims(token).map(|c| c.sub)
    }

    /// Same, returning the claims (the gateway needs `exp`).
    pub fn verify_claims(&self, token: &str) -> Result<Claims, JwtError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| JwtError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};

    fn keys(secret: &str) -> JwtKeys {
        JwtKeys::new(
            &JwtKeyConfig::Hs256(secret.to_string().into()),
            Duration::from_secs(60),
        )
        .unwrap()
    }

    fn forge(header: &str, claims: &serde_json::Value, sig: &str) -> String {
        format!(
            "{}.{}.{sig}",
            B64.encode(header),
            B64.encode(claims.to_string())
        )
    }

    #[test]
    fn sid_round_trips_and_old_tokens_have_none() {
        let k = keys("0123456789abcdef0123");
        let sid = Uuid::new_v4();
        let claims = k
            .verify_claims(&k.issue(Uuid::new_v4(), Some(sid)).unwrap())
            .unwrap();
        assert_eq!(claims.sid, Some(sid));
        let enc = EncodingKey::from_secret(b"0123456789abcdef0123");
        let old = serde_json::json!({"sub": Uuid::new_v4(), "iss": "courier", "exp": chrono::Utc::now().timestamp() + 60});
        let token = encode(&Header::default(), &old, &enc).unwrap();
        assert_eq!(k.verify_claims(&token).unwrap().sid, None);
    }

    #[test]
    fn round_trip() {
        let k = keys("0123456789abcdef0123");
        let user = Uuid::new_v4();
        assert_eq!(k.verify(&k.issue(user, None).unwrap()).unwrap(), user);
    }

    #[test]
    fn foreign_secret_garbage_and_none_are_refused() {
        let k = keys("0123456789abcdef0123");
        let other = keys("another-secret-0123456");
        assert!(
            k.verify(&other.issue(Uuid::new_v4(), None).unwrap())
                .is_err()
        );
        assert!(k.verify("garbage").is_err());
        assert!(k.verify("").is_err());
        let claims =
            serde_json::json!({"sub": Uuid::new_v4(), "iss": "courier", "exp": 9999999999i64});
        assert!(
            k.verify(&forge(r#"{"alg":"none","typ":"JWT"}"#, &claims, ""))
                .is_err()
        );
    }

    #[test]
    fn expired_and_wrong_issuer_are_refused() {
        let secret = "0123456789abcdef0123";
        let k = keys(secret);
        let enc = EncodingKey::from_secret(secret.as_bytes());
        let now = chrono::Utc::now().timestamp();
        let expired = Claims {
            sub: Uuid::new_v4(),
            iss: ISSUER.into(),
            iat: now - 600,
            exp: now - 300,
            sid: None,
        };
        assert!(
            k.verify(&encode(&Header::default(), &expired, &enc).unwrap())
                .is_err()
        );
        let foreign = Claims {
            iss: "someone".into(),
            exp: now + 300,
            ..expired
        };
        assert!(
            k.verify(&encode(&Header::default(), &foreign, &enc).unwrap())
                .is_err()
        );
    }
}
