//! Argon2id password hashing, off the async runtime's worker threads.
//!
//! Each hash takes ~19 MiB and tens of milliseconds of CPU, so at most one per core
//! runs at a time: a burst of logins queues instead of growing memory (every
//! blocking thread would otherwise keep its own allocator arena) or starving the
//! rest of the process.

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};

pub const PASSWORD_RULE: &str = "password must be 8 to 128 characters";

fn permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2);
        tokio::sync::Semaphore::new(cores)
    })
}

/// Runs a hashing job on a blocking thread once a permit is free.
async fn bounded<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let _permit = permits().acquire().await?;
    Ok(tokio::task::spawn_blocking(job).await?)
}

pub fn valid_password(p: &str) -> bool {
    (8..=128).contains(&p.chars().count())
}

/// Hashes with Argon2id (default parameters: m=19 MiB, t=2, p=1).
pub async fn hash(password: String) -> anyhow::Result<String> {
    bounded(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
    .await?
}

/// Whether a stored hash is a bcrypt hash (`$2a$`, `$2b$`, `$2y$`), as the reference
/// NestJS backend stored them: verified as such, then replaced by an Argon2id hash.
pub fn is_legacy(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

/// Verifies (Argon2id, or bcrypt for hashes imported from the reference backend); a
/// malformed stored hash counts as a mismatch.
pub async fn verify(password: String, stored: String) -> anyhow::Result<bool> {
    if is_legacy(&stored) {
        return bounded(move || bcrypt::verify(password.as_bytes(), &stored).unwrap_or(false))
            .await;
    }
    bounded(move || {
        PasswordHash::new(&stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
}

/// A hash of a random password, verified against when the user does not exist so that
/// unknown users and wrong passwords take the same time.
pub async fn dummy_hash() -> anyhow::Result<String> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| hash(uuid::Uuid::new_v4().to_string()))
        .await
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), h.clone()).await.unwrap());
        assert!(!verify("wrong horse".into(), h).await.unwrap());
        assert!(!verify("x".into(), "not a hash".into()).await.unwrap());
    }

    #[tokio::test]
    async fn bcrypt_hashes_of_the_reference_backend_verify() {
        let h = bcrypt::hash_with_salt("secret1", 4, [7u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB);
        assert!(is_legacy(&h));
        assert!(verify("secret1".into(), h.clone()).await.unwrap());
        assert!(!verify("secret2".into(), h).await.unwrap());
        assert!(!is_legacy("$argon2id$v=19$..."));
    }

    #[test]
    fn password_rule() {
        assert!(valid_password("12345678"));
        assert!(!valid_password("1234567"));
        assert!(!valid_password(&"x".repeat(129)));
    }
}
