//! Users and the rules on their credentials.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use validator::ValidationError;

/// The public view of a user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    #[schema(pattern = "^[a-z0-9_.-]{3,32}$", example = "alice")]
    pub username: String,
    #[schema(required = true, max_length = 64, example = "Alice")]
    pub display_name: Option<String>,
    /// RFC 3339, UTC, with milliseconds.
    #[serde(with = "super::time")]
    pub created_at: DateTime<Utc>,
    /// A presigned GET of the avatar image, minted for this read or event (it expires
    /// after `ATTACHMENT_URL_TTL_SECS`); null without an avatar.
    #[schema(required = true)]
    pub avatar_url: Option<String>,
    /// At most 500 characters; null when unset.
    #[schema(required = true, max_length = 500)]
    pub bio: Option<String>,
    /// The avatar's upload (its bytes are at `storage::object_key`); `avatar_url` is
    /// minted from it per read. Never serialized.
    #[serde(skip)]
    pub avatar: Option<Uuid>,
}

/// Longest bio, in characters.
pub const MAX_BIO: usize = 500;
/// Largest avatar image, in bytes.
pub const AVATAR_MAX_BYTES: i64 = 5 * 1024 * 1024;
/// The content types an avatar upload may have.
pub const AVATAR_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/webp", "image/gif"];

pub const USERNAME_RULE: &str = "username must be 3 to 32 characters of a-z, 0-9, '_', '.', '-'";

/// `username`: 3–32 of `[a-z0-9_.-]`.
pub fn validate_username(name: &str) -> Result<(), ValidationError> {
    let ok = (3..=32).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new("username").with_message(USERNAME_RULE.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for good in ["abc", "alice_01", "a.b-c", &"x".repeat(32)] {
            assert!(validate_username(good).is_ok(), "{good}");
        }
        for bad in ["ab", "Alice", "al ice", "ålice", "a/b", &"x".repeat(33), ""] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }
}
