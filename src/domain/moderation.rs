//! Moderation: the global role, reports, bans and the audit log's actions, with their
//! input rules.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user's global role (`users.role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GlobalRole {
    User,
    Admin,
}

impl GlobalRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

/// Who deleted a tombstoned message, when it was not its sender or a group's manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeletedBy {
    /// An admin, with `DELETE /admin/messages/:id`.
    Moderator,
}

impl DeletedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Moderator => "moderator",
        }
    }
}

/// A report's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    Open,
    Resolved,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "resolved" => Some(Self::Resolved),
            _ => None,
        }
    }
}

/// A report as admins read it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub id: Uuid,
    pub status: ReportStatus,
    /// Why the reporter reported it (1 to 1000 characters).
    pub reason: String,
    /// Who reported it.
    pub reporter_id: Uuid,
    /// The reported message; `null` for a report of a user.
    #[schema(required = true)]
    pub message_id: Option<Uuid>,
    /// The reported message's chat; `null` for a report of a user.
    #[schema(required = true)]
    pub chat_id: Option<Uuid>,
    /// The reported message's content when it was reported (kept if it is edited or
    /// deleted later); `null` for a report of a user.
    #[schema(required = true)]
    pub message_content: Option<String>,
    /// The reported user: the one reported, or the reported message's sender.
    pub user_id: Uuid,
    /// RFC 3339, UTC, with milliseconds.
    #[serde(with = "super::time")]
    pub created_at: DateTime<Utc>,
    /// When an admin resolved it; `null` while open.
    #[serde(with = "super::time::option")]
    #[schema(required = true)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// The admin who resolved it; `null` while open.
    #[schema(required = true)]
    pub resolved_by: Option<Uuid>,
    /// The resolving admin's note, if any.
    #[schema(required = true)]
    pub resolution_note: Option<String>,
}

/// Longest report reason, ban reason or resolution note, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// A reason (of a report or a ban) after trimming: 1 to 1000 characters, no NUL.
pub fn normalize_reason(field: &str, raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    let n = trimmed.chars().count();
    if n == 0 || n > MAX_REASON_CHARS {
        return Err(format!(
            "{field} must be 1 to {MAX_REASON_CHARS} characters"
        ));
    }
    if trimmed.contains('\0') {
        return Err(format!("{field} must not contain NUL characters"));
    }
    Ok(trimmed.to_string())
}

/// An optional note after trimming: `None` when blank, at most 1000 characters.
pub fn normalize_note(raw: Option<&str>) -> Result<Option<String>, String> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(n) => normalize_reason("note", n).map(Some),
    }
}

/// What a report names: exactly one of a message or a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportTarget {
    Message(Uuid),
    User(Uuid),
}

impl ReportTarget {
    pub fn of(message_id: Option<Uuid>, user_id: Option<Uuid>) -> Result<Self, &'static str> {
        match (message_id, user_id) {
            (Some(m), None) => Ok(Self::Message(m)),
            (None, Some(u)) => Ok(Self::User(u)),
            _ => Err("exactly one of messageId and userId is required"),
        }
    }
}

/// A ban's end: `None` (forever) or an instant still to come.
pub fn check_ban_end(
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, &'static str> {
    match until {
        Some(t) if t <= now => Err("until must be in the future"),
        other => Ok(other),
    }
}

/// The audit log's actions; each is published as `admin.<action>` (one word, so that a
/// binding of `admin.*` receives them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// `courier admin grant`.
    GrantAdmin,
    /// `courier admin revoke`.
    RevokeAdmin,
    /// `POST /admin/users/:id/ban`.
    BanUser,
    /// `DELETE /admin/users/:id/ban`.
    UnbanUser,
    /// `POST /admin/reports/:id/resolve`.
    ResolveReport,
    /// `DELETE /admin/messages/:id`.
    DeleteMessage,
}

impl AuditAction {
    pub const ALL: [Self; 6] = [
        Self::GrantAdmin,
        Self::RevokeAdmin,
        Self::BanUser,
        Self::UnbanUser,
        Self::ResolveReport,
        Self::DeleteMessage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::GrantAdmin => "grant_admin",
            Self::RevokeAdmin => "revoke_admin",
            Self::BanUser => "ban_user",
            Self::UnbanUser => "unban_user",
            Self::ResolveReport => "resolve_report",
            Self::DeleteMessage => "delete_message",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The routing key on the integration exchange.
    pub fn routing_key(self) -> String {
        format!("admin.{}", self.as_str())
    }

    /// What the action is done to: `user`, `report` or `message`.
    pub fn target_type(self) -> &'static str {
        match self {
            Self::GrantAdmin | Self::RevokeAdmin | Self::BanUser | Self::UnbanUser => "user",
            Self::ResolveReport => "report",
            Self::DeleteMessage => "message",
        }
    }
}

/// The `auth.revoked` reason of a ban's revocation.
pub const REVOKED_BANNED: &str = "banned";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_trimmed_and_bounded() {
        assert_eq!(normalize_reason("reason", "  spam ").unwrap(), "spam");
        for bad in ["", "   ", &"x".repeat(1001), "a\0b"] {
            assert!(normalize_reason("reason", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            normalize_reason("reason", "").unwrap_err(),
            "reason must be 1 to 1000 characters"
        );
        assert!(normalize_reason("reason", &"é".repeat(1000)).is_ok());
        assert_eq!(normalize_note(Some("  ")).unwrap(), None);
        assert_eq!(normalize_note(None).unwrap(), None);
        assert_eq!(normalize_note(Some(" ok ")).unwrap().as_deref(), Some("ok"));
    }

    #[test]
    fn a_report_names_exactly_one_target() {
        let (m, u) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(
            ReportTarget::of(Some(m), None),
            Ok(ReportTarget::Message(m))
        );
        assert_eq!(ReportTarget::of(None, Some(u)), Ok(ReportTarget::User(u)));
        assert!(ReportTarget::of(Some(m), Some(u)).is_err());
        assert!(ReportTarget::of(None, None).is_err());
    }

    #[test]
    fn a_ban_ends_in_the_future_or_never() {
        let now = Utc::now();
        assert_eq!(check_ban_end(None, now), Ok(None));
        let later = now + chrono::Duration::hours(1);
        assert_eq!(check_ban_end(Some(later), now), Ok(Some(later)));
        assert!(check_ban_end(Some(now), now).is_err());
    }

    #[test]
    fn actions_are_one_word_routing_keys_and_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
            let key = a.routing_key();
            assert_eq!(key.split('.').count(), 2, "{key} must match admin.*");
            let json = serde_json::to_value(a).unwrap();
            assert_eq!(json, a.as_str());
        }
        assert_eq!(AuditAction::BanUser.routing_key(), "admin.ban_user");
        assert_eq!(ReportStatus::parse("open"), Some(ReportStatus::Open));
        assert_eq!(ReportStatus::parse("closed"), None);
        assert_eq!(
            serde_json::to_value(DeletedBy::Moderator).unwrap(),
            "moderator"
        );
    }
}
