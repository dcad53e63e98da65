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
}

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
