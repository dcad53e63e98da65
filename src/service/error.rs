//! The one error type of the use cases, in the domain's words. `api/` maps it to an
//! HTTP response (`error::ApiError`) and `gateway/` to an acknowledgement, each in one
//! place; the contract's stable `code` and the client-safe message are defined here.
//!
//! A database error is `Unavailable` when the database cannot be reached and
//! `Internal` otherwise: a constraint violation a client can cause is mapped by the use
//! case that knows the constraint (`constraint`), by name, never by class.

use crate::cache::membership::LookupError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input breaks a rule (400 `validation_failed`).
    #[error("{0}")]
    Invalid(String),
    /// The body is JSON but not an acceptable value of its kind: a malformed push
    /// subscription (422 `validation_failed`).
    #[error("{0}")]
    Unprocessable(String),
    /// No valid credentials (401 `unauthorized`).
    #[error("invalid or missing credentials")]
    Unauthenticated,
    /// These credentials were refused, and why (401 `unauthorized`).
    #[error("{0}")]
    BadCredentials(&'static str),
    /// The access token's session was revoked (401 `session_revoked`).
    #[error("the session of this token was revoked")]
    SessionRevoked,
    /// The caller may not do this (403 `forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// A block stands between the caller and the other user of a direct chat (403
    /// `blocked`).
    #[error("{0}")]
    Blocked(&'static str),
    /// The account is banned (403 `banned`): its logins, refreshes and tokens are
    /// refused until `until` (forever when `None`).
    #[error("{}", banned_message(until))]
    Banned {
        until: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// The message is older than `MESSAGE_EDIT_WINDOW_SECS` (403 `edit_window_closed`).
    #[error("the edit window of this message has closed")]
    EditWindowClosed,
    #[error("{0}")]
    NotFound(String),
    /// `GET /push/vapid-public-key` while Web Push is not configured (404
    /// `push_not_configured`).
    #[error("Web Push is not configured on this server")]
    PushNotConfigured,
    #[error("{0}")]
    Conflict(String),
    /// A group would pass `CHAT_MAX_MEMBERS` (422 `too_many_members`).
    #[error("a group has at most {max} members; this would make it {would}")]
    TooManyMembers { max: usize, would: usize },
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// A dependency (named) is unreachable; nothing was changed, the client may retry.
    #[error("{0} is unavailable, retry later")]
    Unavailable(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    /// The contract's stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) | Self::Unprocessable(_) => "validation_failed",
            Self::Unauthenticated | Self::BadCredentials(_) => "unauthorized",
            Self::SessionRevoked => "session_revoked",
            Self::Forbidden(_) => "forbidden",
            Self::EditWindowClosed => "edit_window_closed",
            Self::Blocked(_) => "blocked",
            Self::Banned { .. } => "banned",
            Self::NotFound(_) => "not_found",
            Self::PushNotConfigured => "push_not_configured",
            Self::Conflict(_) => "conflict",
            Self::TooManyMembers { .. } => "too_many_members",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The message safe to show a client (no internal detail).
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "internal server error".to_string(),
            other => other.to_string(),
        }
    }

    pub fn not_participant() -> Self {
        Self::Forbidden("you are not a participant of this chat".into())
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }
}

fn banned_message(until: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    match until {
        Some(t) => format!(
            "this account is banned until {}",
            crate::domain::time::format(t)
        ),
        None => "this account is banned".to_string(),
    }
}

/// The name of the constraint `e` violated, if it is a constraint violation.
pub fn constraint(e: &sqlx::Error) -> Option<&str> {
    match e {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}

/// A constraint a use case knows it can violate (by name), and the error it means.
pub type Violation = (&'static str, fn() -> ServiceError);

/// Maps a violation of one of `known` to its error; any other database error as
/// `From<sqlx::Error>` does.
pub fn on_constraint(e: sqlx::Error, known: &[Violation]) -> ServiceError {
    if let Some(name) = constraint(&e)
        && let Some((_, make)) = known.iter().find(|(k, _)| *k == name)
    {
        return make();
    }
    e.into()
}

/// `text` without NUL characters (PostgreSQL cannot store them in `text`).
pub fn no_nul(text: &str) -> ServiceResult<()> {
    if text.contains('\0') {
        return Err(ServiceError::Invalid(NUL_RULE.into()));
    }
    Ok(())
}

const NUL_RULE: &str = "text must not contain NUL characters";

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_outage(&e) {
            tracing::warn!(error = %e, "database unavailable");
            return Self::Unavailable("database");
        }
        // character_not_in_repertoire: a NUL character in client-supplied text that no
        // edge check caught. A property of the value, not of a constraint: the client's.
        if let sqlx::Error::Database(db) = &e
            && db.code().as_deref() == Some("22021")
        {
            return Self::Invalid(NUL_RULE.into());
        }
        Self::Internal(e.into())
    }
}

impl From<redis::RedisError> for ServiceError {
    fn from(e: redis::RedisError) -> Self {
        tracing::warn!(error = %e, "redis error");
        Self::Unavailable("redis")
    }
}

impl From<LookupError> for ServiceError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::Redis(e) => e.into(),
            LookupError::Db(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sqlx::error::{DatabaseError, ErrorKind};

    use super::*;

    /// A PostgreSQL error with a SQLSTATE and, for a violation, its constraint.
    #[derive(Debug)]
    struct Pg {
        code: &'static str,
        constraint: Option<&'static str>,
        kind: ErrorKind,
    }

    impl std::fmt::Display for Pg {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "pg error {}", self.code)
        }
    }

    impl std::error::Error for Pg {}

    impl DatabaseError for Pg {
        fn message(&self) -> &str {
            "pg error"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(self.code.into())
        }
        fn constraint(&self) -> Option<&str> {
            self.constraint
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            match self.kind {
                ErrorKind::UniqueViolation => ErrorKind::UniqueViolation,
                ErrorKind::ForeignKeyViolation => ErrorKind::ForeignKeyViolation,
                _ => ErrorKind::Other,
            }
        }
    }

    fn pg(code: &'static str, constraint: Option<&'static str>, kind: ErrorKind) -> sqlx::Error {
        sqlx::Error::Database(Box::new(Pg {
            code,
            constraint,
            kind,
        }))
    }

    const KNOWN: &[Violation] = &[("chat_participants_user_id_fkey", || {
        ServiceError::Invalid("unknown user".into())
    })];

    #[test]
    fn a_known_constraint_maps_to_its_error() {
        let e = pg(
            "23503",
            Some("chat_participants_user_id_fkey"),
            ErrorKind::ForeignKeyViolation,
        );
        let e = on_constraint(e, KNOWN);
        assert_eq!(e.code(), "validation_failed");
        assert_eq!(e.public_message(), "unknown user");
    }

    #[test]
    fn violations_no_use_case_expects_are_internal() {
        let unique = pg("23505", Some("users_email_key"), ErrorKind::UniqueViolation);
        assert_eq!(on_constraint(unique, KNOWN).code(), "internal");
        let fk = pg(
            "23503",
            Some("chats_created_by_fkey"),
            ErrorKind::ForeignKeyViolation,
        );
        assert_eq!(ServiceError::from(fk).code(), "internal");
        assert_eq!(
            on_constraint(sqlx::Error::RowNotFound, KNOWN).code(),
            "internal"
        );
    }

    #[test]
    fn outages_are_unavailable() {
        let e = ServiceError::from(pg("57P01", None, ErrorKind::Other));
        assert_eq!(e.code(), "unavailable");
        assert!(matches!(
            ServiceError::from(sqlx::Error::PoolTimedOut),
            ServiceError::Unavailable("database")
        ));
    }

    #[test]
    fn nul_characters_are_refused() {
        assert!(no_nul("plain").is_ok());
        let e = no_nul("a\0b").unwrap_err();
        assert_eq!(e.code(), "validation_failed");
        assert_eq!(e.public_message(), NUL_RULE);
        let stored = ServiceError::from(pg("22021", None, ErrorKind::Other));
        assert_eq!(stored.public_message(), NUL_RULE);
    }
}
