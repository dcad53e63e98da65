//! Token signing keys: `JWT_SECRET` (HS256) or the `JWT_PRIVATE_KEY`/`JWT_PUBLIC_KEY`
//! RS256 pair.

use std::fmt;

use secrecy::SecretString;

use super::{ConfigError, Env};

/// How access tokens are signed.
#[derive(Clone)]
pub enum JwtKeyConfig {
    Hs256(SecretString),
    Rs256 {
        private_pem: SecretString,
        public_pem: String,
    },
}

impl fmt::Debug for JwtKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hs256(_) => f.write_str("Hs256([REDACTED])"),
            Self::Rs256 { .. } => f.write_str("Rs256([REDACTED])"),
        }
    }
}

/// The shortest HS256 secret accepted without `JWT_ALLOW_WEAK_SECRET=true`.
pub const MIN_SECRET_BYTES: usize = 32;

pub(super) fn jwt_keys<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<JwtKeyConfig, ConfigError> {
    match (env.raw("JWT_PRIVATE_KEY"), env.raw("JWT_PUBLIC_KEY")) {
        (Some(private), Some(public)) => {
            // PEM passed through env files often has literal "\n".
            let (private, public) = (private.replace("\\n", "\n"), public.replace("\\n", "\n"));
            if jsonwebtoken::EncodingKey::from_rsa_pem(private.as_bytes()).is_err() {
                return Err(env.bad("JWT_PRIVATE_KEY", "not an RSA private key in PEM"));
            }
            if jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).is_err() {
                return Err(env.bad("JWT_PUBLIC_KEY", "not an RSA public key in PEM"));
            }
            Ok(JwtKeyConfig::Rs256 {
                private_pem: private.into(),
                public_pem: public,
            })
        }
        (Some(_), None) => Err(env.bad("JWT_PUBLIC_KEY", "required with JWT_PRIVATE_KEY")),
        (None, Some(_)) => Err(env.bad("JWT_PRIVATE_KEY", "required with JWT_PUBLIC_KEY")),
        (None, None) => match env.raw("JWT_SECRET") {
            Some(s) if s.len() < MIN_SECRET_BYTES => {
                if env.parse("JWT_ALLOW_WEAK_SECRET", false)? {
                    tracing::warn!(
                        "JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes (allowed by JWT_ALLOW_WEAK_SECRET): for development only"
                    );
                    Ok(JwtKeyConfig::Hs256(s.into()))
                } else {
                    Err(env.bad(
                        "JWT_SECRET",
                        "shorter than 32 bytes: anyone could guess it and forge tokens; use a long random secret (JWT_ALLOW_WEAK_SECRET=true allows it for development)",
                    ))
                }
            }
            Some(s) => Ok(JwtKeyConfig::Hs256(s.into())),
            None => Err(env.bad(
                "JWT_SECRET",
                "missing (or set JWT_PRIVATE_KEY and JWT_PUBLIC_KEY)",
            )),
        },
    }
}
