//! Sessions: the device name a login records, and the `auth.revoked` push that tells
//! the gateways which sessions' connections to close.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// Longest device name kept, in characters.
pub const MAX_DEVICE_NAME: usize = 128;

/// The device name of a login: the `deviceName` field, else the `User-Agent`, trimmed,
/// control characters removed, at most `MAX_DEVICE_NAME` characters; "unknown" if empty.
pub fn device_name(field: Option<&str>, user_agent: Option<&str>) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_control())
            .collect::<String>()
            .trim()
            .chars()
            .take(MAX_DEVICE_NAME)
            .collect()
    };
    [field, user_agent]
        .into_iter()
        .flatten()
        .map(clean)
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Why sessions were revoked (the `reason` of `auth.revoked`).
pub mod reason {
    /// `DELETE /auth/sessions/:id`.
    pub const REVOKED: &str = "session_revoked";
    /// `POST /auth/logout`.
    pub const LOGOUT: &str = "logout";
    /// `POST /auth/logout-all`.
    pub const LOGOUT_ALL: &str = "logout_all";
    /// `POST /auth/password`.
    pub const PASSWORD_CHANGED: &str = "password_changed";
    /// `POST /admin/users/:id/ban`: the sessions' tokens then get 403 `banned`.
    pub const BANNED: &str = "banned";
    /// `DELETE /users/me`.
    pub const ACCOUNT_DELETED: &str = "account_deleted";
}

/// The `auth.revoked` push to a user's gateways: the sessions whose connections close.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Revoked {
    pub reason: String,
    pub sids: Vec<Uuid>,
}

impl Revoked {
    pub fn parse(data: &RawValue) -> Option<Self> {
        serde_json::from_str(data.get()).ok()
    }

    /// Whether a connection of session `sid` is to close (one without a session, from
    /// a token issued before sessions existed, lives until its token expires).
    pub fn covers(&self, sid: Option<Uuid>) -> bool {
        match sid {
            Some(sid) => self.sids.contains(&sid),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_name_prefers_the_field_then_the_user_agent() {
        assert_eq!(device_name(Some(" Phone "), Some("curl/8")), "Phone");
        assert_eq!(device_name(Some("  "), Some("curl/8")), "curl/8");
        assert_eq!(device_name(None, None), "unknown");
        assert_eq!(device_name(Some("a\u{0}b\nc"), None), "abc");
        let long = "é".repeat(200);
        assert_eq!(
            device_name(Some(&long), None).chars().count(),
            MAX_DEVICE_NAME
        );
    }

    #[test]
    fn revoked_covers_only_the_named_sessions() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let r = Revoked {
            reason: reason::LOGOUT.into(),
            sids: vec![a],
        };
        assert!(r.covers(Some(a)));
        assert!(!r.covers(Some(b)));
        assert!(!r.covers(None));
        let raw = serde_json::value::to_raw_value(&r).unwrap();
        assert_eq!(Revoked::parse(&raw), Some(r));
        assert_eq!(
            Revoked::parse(&serde_json::value::to_raw_value(&1).unwrap()),
            None
        );
    }
}
