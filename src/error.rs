//! The one error type of the HTTP surface, rendered in the contract's NestJS shape
//! (`statusCode`, `error`, `code`, `message`). 5xx responses never carry internals.

use axum::{
    Json,
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use validator::ValidationErrors;

use crate::service::ServiceError;

/// Seconds a client should wait before retrying after a 503.
pub const RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the edit window of this message has closed")]
    EditWindowClosed,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// A dependency (named) is unreachable; the client may retry.
    #[error("{0} is unavailable, retry later")]
    Unavailable(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The body of every 4xx/5xx response (NestJS shape plus a stable `code`).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "statusCode": 400,
    "error": "Bad Request",
    "code": "validation_failed",
    "message": "content must be 1 to 4000 characters"
}))]
pub struct ErrorBody<'a> {
    /// The HTTP status code, repeated.
    #[schema(minimum = 400, maximum = 599)]
    status_code: u16,
    /// The status code's reason phrase, e.g. "Bad Request".
    error: &'a str,
    /// Stable machine-readable code: validation_failed, invalid_json, unauthorized,
    /// forbidden, edit_window_closed, not_found, conflict, payload_too_large, unsupported_media_type,
    /// method_not_allowed, rate_limited, unavailable or internal.
    code: &'a str,
    /// A human-readable sentence (no internal detail for 5xx).
    message: String,
}

impl ApiError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::InvalidJson(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::EditWindowClosed => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code of the contract.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation_failed",
            Self::InvalidJson(_) => "invalid_json",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::EditWindowClosed => "edit_window_closed",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The message safe to show a client.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "internal server error".to_string(),
            other => other.to_string(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::Unauthorized("invalid or missing credentials".into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        match &self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            Self::Unavailable(dep) => tracing::warn!(dependency = dep, "dependency unavailable"),
            _ => {}
        }
        let body = ErrorBody {
            status_code: status.as_u16(),
            error: status.canonical_reason().unwrap_or("Error"),
            code: self.code(),
            message: self.public_message(),
        };
        let mut resp = (status, Json(body)).into_response();
        let retry_after = match self {
            Self::RateLimited { retry_after_secs } => Some(retry_after_secs),
            Self::Unavailable(_) => Some(RETRY_AFTER_SECS),
            _ => None,
        };
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(m) => Self::Validation(m),
            ServiceError::Unauthenticated => Self::unauthorized(),
            ServiceError::Forbidden(m) => Self::Forbidden(m),
            ServiceError::EditWindowClosed => Self::EditWindowClosed,
            ServiceError::NotFound(m) => Self::NotFound(m),
            ServiceError::Conflict(m) => Self::Conflict(m),
            ServiceError::RateLimited { retry_after_secs } => {
                Self::RateLimited { retry_after_secs }
            }
            ServiceError::Unavailable(d) => Self::Unavailable(d),
            ServiceError::Internal(e) => Self::Internal(e),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<crate::cache::membership::LookupError> for ApiError {
    fn from(e: crate::cache::membership::LookupError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        Self::Validation(crate::domain::validation_message(&e))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => Self::Validation(e.body_text()),
            JsonRejection::JsonSyntaxError(_) => {
                Self::InvalidJson("request body is not valid JSON".into())
            }
            JsonRejection::MissingJsonContentType(_) => {
                Self::UnsupportedMediaType("expected Content-Type: application/json".into())
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge(crate::http::BODY_LIMIT)
            }
            other => Self::InvalidJson(other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::Validation(format!("invalid path parameter: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::Validation(format!("invalid query: {}", r.body_text()))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let resp = ApiError::Internal(anyhow::anyhow!("password=hunter2")).into_response();
        assert_eq!(resp.status(), 500);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "internal");
        assert_eq!(v["statusCode"], 500);
        assert!(!String::from_utf8_lossy(&body).contains("hunter2"));
    }

    #[tokio::test]
    async fn unavailable_carries_retry_after() {
        let resp = ApiError::Unavailable("rabbitmq").into_response();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "Service Unavailable");
        assert_eq!(v["code"], "unavailable");
    }
}
