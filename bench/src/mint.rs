//! Users without Argon2: rows inserted into the run's own database with `psql
//! \copy`, and HS256 access tokens (`sub` = user id, `iss` = "courier", `iat`,
//! `exp`) signed with the `JWT_SECRET` the bench gave Courier. For the idle
//! scenario's 10,000 users, where registering would take minutes of server CPU.
//! The stored password hash is not a valid Argon2 string, so these users cannot log in.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::setup::{User, username};

/// An HS256 JWT for `user`, valid for `lifetime_secs`.
pub fn token(secret: &str, user: &str, lifetime_secs: u64) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims =
        serde_json::json!({"sub": user, "iss": "courier", "iat": now, "exp": now + lifetime_secs});
    let claims = B64.encode(serde_json::to_vec(&claims)?);
    let signing_input = format!("{header}.{claims}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).context("hmac key")?;
    mac.update(signing_input.as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    Ok(format!("{signing_input}.{sig}"))
}

/// Inserts `count` users into `database_url` and returns them with minted tokens.
pub fn users(
    database_url: &str,
    secret: &str,
    tag: &str,
    count: usize,
) -> anyhow::Result<Vec<User>> {
    let users: Vec<(String, String)> = (0..count)
        .map(|i| (uuid::Uuid::new_v4().to_string(), username(tag, i)))
        .collect();
    let mut child = Command::new("psql")
        .args([
            database_url,
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            "\\copy users (id, username, display_name, password_hash) from stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot run psql")?;
    {
        let mut stdin = std::io::BufWriter::new(child.stdin.take().context("psql stdin")?);
        for (id, name) in &users {
            writeln!(stdin, "{id}\t{name}\t{name}\tminted-by-bench-not-a-hash")?;
        }
        stdin.flush()?;
    }
    if !child.wait()?.success() {
        bail!("psql \\copy users failed");
    }
    users
        .into_iter()
        .map(|(id, _)| {
            Ok(User {
                token: token(secret, &id, 86_400)?,
                id,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_three_parts_and_the_claims() {
        let t = token("0123456789abcdef0123", "u1", 60).unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["sub"], "u1");
        assert_eq!(claims["iss"], "courier");
    }
}
