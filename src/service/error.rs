//! The one error type of the use cases, in the domain's words. `api/` maps it to an
//! HTTP response and `gateway/` to an acknowledgement, each in one place.

use crate::cache::membership::LookupError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input breaks a rule (400 `validation_failed`).
    #[error("{0}")]
    Invalid(String),
    #[error("invalid or missing credentials")]
    Unauthenticated,
    /// The caller may not do this (403 `forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// The message is older than `MESSAGE_EDIT_WINDOW_SECS` (403 `edit_window_closed`).
    #[error("the edit window of this message has closed")]
    EditWindowClosed,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
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
            Self::Invalid(_) => "validation_failed",
            Self::Unauthenticated => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::EditWindowClosed => "edit_window_closed",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
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

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_outage(&e) {
            tracing::warn!(error = %e, "database unavailable");
            return Self::Unavailable("database");
        }
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return Self::Conflict("resource already exists".into());
            }
            if db.is_foreign_key_violation() || db.is_check_violation() {
                return Self::Invalid("request refers to something invalid".into());
            }
            // character_not_in_repertoire: a NUL character in a client-supplied field.
            if db.code().as_deref() == Some("22021") {
                return Self::Invalid("text must not contain NUL characters".into());
            }
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
