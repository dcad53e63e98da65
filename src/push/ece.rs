//! RFC 8291 message encryption for Web Push: an ephemeral P-256 key agreed with the
//! subscription's `p256dh`, HKDF-SHA-256 keyed by its `auth` secret into the input key,
//! then one RFC 8188 `aes128gcm` record (`ece-native`) whose header carries the salt,
//! the record size 4096 and the ephemeral public key.

use hkdf::Hkdf;
use p256::{PublicKey, SecretKey, elliptic_curve::sec1::ToEncodedPoint};
use sha2::Sha256;

/// The record size of RFC 8291 Appendix A; one record holds the whole message.
pub const RECORD_SIZE: u32 = 4096;
/// The largest plaintext one record takes (RFC 8291 §4: 4096 − 86 header − 16 tag − 1).
pub const MAX_PLAINTEXT: usize = 3993;

/// `plaintext` encrypted for the user agent with key `ua_public` and secret `auth`, with
/// a fresh ephemeral key and salt.
pub fn encrypt(plaintext: &[u8], ua_public: &PublicKey, auth: &[u8]) -> Result<Vec<u8>, String> {
    let salt: [u8; 16] = rand::random();
    encrypt_with(
        plaintext,
        ua_public,
        auth,
        &super::vapid::random_secret(),
        salt,
    )
}

/// [`encrypt`] with a given ephemeral key and salt (RFC 8291 Appendix A checks it).
pub fn encrypt_with(
    plaintext: &[u8],
    ua_public: &PublicKey,
    auth: &[u8],
    as_secret: &SecretKey,
    salt: [u8; 16],
) -> Result<Vec<u8>, String> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(format!(
            "payload of {} bytes is over {MAX_PLAINTEXT}",
            plaintext.len()
        ));
    }
    if auth.len() != 16 {
        return Err("auth secret must be 16 bytes".into());
    }
    let as_public = as_secret.public_key().to_encoded_point(false);
    let ua_point = ua_public.to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua_public.as_affine());
    // RFC 8291 §3.4: IKM = HKDF(auth, ecdh_secret, "WebPush: info" || 0 || ua_public || as_public, 32).
    let mut info = Vec::with_capacity(14 + 65 + 65);
    info.extend_from_slice(b"WebPush: info\0");
    info.extend_from_slice(ua_point.as_bytes());
    info.extend_from_slice(as_public.as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), &shared.raw_secret_bytes()[..])
        .expand(&info, &mut ikm)
        .map_err(|e| format!("HKDF: {e}"))?;
    ece_native::encrypt(
        ikm,
        salt,
        as_public.as_bytes(),
        std::iter::once(plaintext.to_vec()),
        RECORD_SIZE,
    )
    .map_err(|e| format!("aes128gcm: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};

    fn d(s: &str) -> Vec<u8> {
        B64.decode(s).unwrap()
    }

    const UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const BODY: &str = concat!(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml",
        "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT",
        "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
    );
    const PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";

    #[test]
    fn rfc_8291_appendix_a() {
        let ua = PublicKey::from_sec1_bytes(&d(UA_PUBLIC)).unwrap();
        let as_secret = SecretKey::from_slice(&d(AS_PRIVATE)).unwrap();
        let salt: [u8; 16] = d(SALT).try_into().unwrap();
        let body = encrypt_with(PLAINTEXT, &ua, &d(AUTH), &as_secret, salt).unwrap();
        assert_eq!(B64.encode(&body), BODY);
    }

    #[test]
    fn a_fresh_encryption_decrypts_with_the_user_agents_key_and_has_the_rfc_layout() {
        let ua_secret = SecretKey::from_slice(&d(UA_PRIVATE)).unwrap();
        let auth = d(AUTH);
        let body = encrypt(PLAINTEXT, &ua_secret.public_key(), &auth).unwrap();
        // salt(16) || rs(4) = 4096 || idlen(1) = 65 || keyid(65) || record(len + 1 + 16)
        assert_eq!(&body[16..20], &RECORD_SIZE.to_be_bytes());
        assert_eq!(body[20], 65);
        assert_eq!(body[21], 4);
        assert_eq!(body.len(), 86 + PLAINTEXT.len() + 1 + 16);
        assert_ne!(&body[..16], &d(SALT)[..], "a fresh salt");
        let ua_auth = web_push_native::Auth::from(<[u8; 16]>::try_from(&auth[..]).unwrap());
        let plain = web_push_native::decrypt(body.clone(), &ua_secret, &ua_auth).unwrap();
        assert_eq!(plain, PLAINTEXT);
        // Another encryption of the same text differs (ephemeral key and salt).
        let again = encrypt(PLAINTEXT, &ua_secret.public_key(), &auth).unwrap();
        assert_ne!(again, body);
        // The wrong auth secret does not decrypt.
        let wrong = web_push_native::Auth::from([7u8; 16]);
        assert!(web_push_native::decrypt(body, &ua_secret, &wrong).is_err());
    }

    #[test]
    fn oversized_payloads_and_bad_auth_are_refused() {
        let ua = PublicKey::from_sec1_bytes(&d(UA_PUBLIC)).unwrap();
        let max = vec![b'x'; MAX_PLAINTEXT];
        let body = encrypt(&max, &ua, &d(AUTH)).unwrap();
        assert_eq!(
            body.len(),
            RECORD_SIZE as usize,
            "the whole message fits 4096 bytes"
        );
        assert!(encrypt(&[b'x'; MAX_PLAINTEXT + 1], &ua, &d(AUTH)).is_err());
        assert!(encrypt(PLAINTEXT, &ua, &[1u8; 15]).is_err());
    }
}
