//! The `pid` of Socket.IO connection state recovery (socket.io-client ≥ 4.6): sent in
//! the CONNECT answer, sent back by the client with its last offset when it reconnects,
//! and answered again when the offset is recovered (`socket.recovered` is then true).
//!
//! Stateless, so that any gateway, restarted or not, knows a pid it never saw: a random
//! part and a MAC (HMAC-SHA256, truncated to 128 bits) binding it to the user, keyed
//! from the token signing key. Another user's pid, or a forged one, does not verify.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::Sha256;
use uuid::Uuid;

use crate::config::JwtKeyConfig;

type HmacSha256 = Hmac<Sha256>;

/// Random bytes of a pid (16 characters in base64url).
const NONCE: usize = 12;
/// MAC bytes of a pid (22 characters in base64url).
const TAG: usize = 16;
/// What the key is derived for (a key for pids only, unlike any other use of the secret).
const LABEL: &[u8] = b"courier socket.io pid v1";

/// The key pids are minted and checked with.
#[derive(Clone)]
pub struct PidKey([u8; 32]);

impl std::fmt::Debug for PidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PidKey([REDACTED])")
    }
}

impl PidKey {
    /// Derived from the token signing secret (`JWT_SECRET`, or the RS256 private key),
    /// which every gateway of a deployment shares.
    pub fn new(jwt: &JwtKeyConfig) -> Self {
        let material = match jwt {
            JwtKeyConfig::Hs256(secret) => secret.expose_secret().as_bytes(),
            JwtKeyConfig::Rs256 { private_pem, .. } => private_pem.expose_secret().as_bytes(),
        };
        Self::from_material(material)
    }

    fn from_material(material: &[u8]) -> Self {
        let mut mac = Self::hmac(material);
        mac.update(LABEL);
        Self(mac.finalize().into_bytes().into())
    }

    fn hmac(key: &[u8]) -> HmacSha256 {
        // HMAC takes a key of any length.
        match HmacSha256::new_from_slice(key) {
            Ok(m) => m,
            Err(e) => unreachable!("HMAC accepts any key length: {e}"),
        }
    }

    fn tag(&self, user: Uuid, nonce: &[u8]) -> HmacSha256 {
        let mut mac = Self::hmac(&self.0);
        mac.update(user.as_bytes());
        mac.update(nonce);
        mac
    }

    /// A new pid for `user`.
    pub fn mint(&self, user: Uuid) -> String {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        let tag = self.tag(user, &nonce).finalize().into_bytes();
        let mut raw = [0u8; NONCE + TAG];
        raw[..NONCE].copy_from_slice(&nonce);
        raw[NONCE..].copy_from_slice(&tag[..TAG]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `pid` was minted for `user` with this key (compared in constant time).
    pub fn verify(&self, user: Uuid, pid: &str) -> bool {
        let mut raw = [0u8; NONCE + TAG];
        match URL_SAFE_NO_PAD.decode_slice(pid.as_bytes(), &mut raw) {
            Ok(n) if n == NONCE + TAG => {}
            _ => return false,
        }
        self.tag(user, &raw[..NONCE])
            .verify_truncated_left(&raw[NONCE..])
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> PidKey {
        PidKey::new(&JwtKeyConfig::Hs256(secret.to_string().into()))
    }

    #[test]
    fn a_minted_pid_verifies_for_its_user_only() {
        let k = key("0123456789abcdef0123456789abcdef");
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let pid = k.mint(alice);
        assert_eq!(pid.len(), 38, "{pid}");
        assert!(k.verify(alice, &pid));
        assert!(!k.verify(bob, &pid), "another user's pid is not theirs");
        // Any other gateway with the same secret (a restart, another instance) knows it.
        assert!(key("0123456789abcdef0123456789abcdef").verify(alice, &pid));
        assert!(!key("another-secret-0123456789abcdef-x").verify(alice, &pid));
    }

    #[test]
    fn pids_are_fresh() {
        let k = key("0123456789abcdef0123456789abcdef");
        let user = Uuid::new_v4();
        assert_ne!(k.mint(user), k.mint(user));
    }

    #[test]
    fn forged_or_malformed_pids_do_not_verify() {
        let k = key("0123456789abcdef0123456789abcdef");
        let user = Uuid::new_v4();
        let pid = k.mint(user);
        // One character changed, in the random part and in the MAC.
        for at in [0, pid.len() - 2] {
            let mut forged: Vec<char> = pid.chars().collect();
            forged[at] = if forged[at] == 'A' { 'B' } else { 'A' };
            let forged: String = forged.into_iter().collect();
            assert!(!k.verify(user, &forged), "{forged}");
        }
        for bad in [
            "",
            "x",
            "not a pid",
            &pid[..pid.len() - 1],
            &format!("{pid}A"),
        ] {
            assert!(!k.verify(user, bad), "{bad:?}");
        }
        // A socket.io server's own pid (base64id, 20 characters).
        assert!(!k.verify(user, "aGVsbG8td29ybGQtMTIz"));
    }

    #[test]
    fn the_key_is_derived_from_either_kind_of_signing_key() {
        let rs = PidKey::new(&JwtKeyConfig::Rs256 {
            private_pem: "-----BEGIN PRIVATE KEY-----x".to_string().into(),
            public_pem: String::new(),
        });
        let hs = key("-----BEGIN PRIVATE KEY-----x");
        let user = Uuid::new_v4();
        assert!(rs.verify(user, &hs.mint(user)), "same material, same key");
        assert!(format!("{rs:?}").contains("REDACTED"));
    }
}
