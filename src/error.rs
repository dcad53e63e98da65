//! The one error type of the HTTP surface, rendered in the contract's NestJS shape
//! (`statusCode`, `error`, `code`, `message`): a use case's `ServiceError` (its code and
//! message as the service defines them, its status from `status_of`), or one of the few
//! errors only HTTP has. 5xx responses never carry internals.

use axum::{
    Json,
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::service::ServiceError;

/// Seconds a client should wait before retrying after a 503.
pub const RETRY_AFTER_SECS: u64 = 1;

/// A use case's error, or one only HTTP has (the request itself is malformed or
/// unroutable). The service's errors keep their code and message; this layer adds
/// only their status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("{0}")]
    InvalidJson(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MethodNotAllowed(String),
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
    /// session_revoked, forbidden, blocked, banned, edit_window_closed, not_found,
    /// push_not_configured, conflict, payload_too_large, unsupported_media_type,
    /// method_not_allowed, rate_limited, unavailable or internal.
    code: &'a str,
    /// A human-readable sentence (no internal detail for 5xx).
    message: String,
}

/// The HTTP status of a use case's error.
fn status_of(e: &ServiceError) -> StatusCode {
    match e {
        ServiceError::Invalid(_) => StatusCode::BAD_REQUEST,
        ServiceError::Unprocessable(_) | ServiceError::TooManyMembers { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ServiceError::Unauthenticated
        | ServiceError::BadCredentials(_)
        | ServiceError::SessionRevoked => StatusCode::UNAUTHORIZED,
        ServiceError::Forbidden(_)
        | ServiceError::EditWindowClosed
        | ServiceError::Blocked(_)
        | ServiceError::Banned { .. } => StatusCode::FORBIDDEN,
        ServiceError::NotFound(_) | ServiceError::PushNotConfigured => StatusCode::NOT_FOUND,
        ServiceError::Conflict(_) => StatusCode::CONFLICT,
        ServiceError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Service(e) => status_of(e),
            Self::InvalidJson(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The stable machine-readable code of the contract.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Service(e) => e.code(),
            Self::InvalidJson(_) => "invalid_json",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::MethodNotAllowed(_) => "method_not_allowed",
        }
    }

    /// The message safe to show a client.
    pub fn public_message(&self) -> String {
        match self {
            Self::Service(e) => e.public_message(),
            other => other.to_string(),
        }
    }

    pub fn unauthorized() -> Self {
        ServiceError::Unauthenticated.into()
    }

    /// 400 `validation_failed`.
    pub fn invalid(message: impl Into<String>) -> Self {
        ServiceError::Invalid(message.into()).into()
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        ServiceError::NotFound(message.into()).into()
    }

    /// 429 `rate_limited`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        ServiceError::RateLimited { retry_after_secs }.into()
    }

    /// 503 `unavailable` (the dependency is named in the message).
    pub fn unavailable(dependency: &'static str) -> Self {
        ServiceError::Unavailable(dependency).into()
    }

    /// 500 `internal` (the cause is logged, never shown).
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        ServiceError::Internal(cause.into()).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        match &self {
            Self::Service(ServiceError::Internal(cause)) => {
                tracing::error!(error = ?cause, "request failed")
            }
            Self::Service(ServiceError::Unavailable(dep)) => {
                tracing::warn!(dependency = dep, "dependency unavailable")
            }
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
            Self::Service(ServiceError::RateLimited { retry_after_secs }) => Some(retry_after_secs),
            Self::Service(ServiceError::Unavailable(_)) => Some(RETRY_AFTER_SECS),
            _ => None,
        };
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// A cause with no better name: 500 `internal`.
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => Self::invalid(e.body_text()),
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
        Self::invalid(format!("invalid path parameter: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::invalid(format!("invalid query: {}", r.body_text()))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let resp = ApiError::internal(anyhow::anyhow!("password=hunter2")).into_response();
        assert_eq!(resp.status(), 500);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "internal");
        assert_eq!(v["statusCode"], 500);
        assert!(!String::from_utf8_lossy(&body).contains("hunter2"));
    }

    #[tokio::test]
    async fn unavailable_carries_retry_after() {
        let resp = ApiError::unavailable("rabbitmq").into_response();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "Service Unavailable");
        assert_eq!(v["code"], "unavailable");
    }

    #[test]
    fn every_service_error_keeps_its_status_and_code() {
        let cases: Vec<(ServiceError, u16, &str)> = vec![
            (ServiceError::Invalid("x".into()), 400, "validation_failed"),
            (ServiceError::Unauthenticated, 401, "unauthorized"),
            (ServiceError::SessionRevoked, 401, "session_revoked"),
            (ServiceError::BadCredentials("x"), 401, "unauthorized"),
            (ServiceError::Forbidden("x".into()), 403, "forbidden"),
            (ServiceError::EditWindowClosed, 403, "edit_window_closed"),
            (ServiceError::Blocked("x"), 403, "blocked"),
            (ServiceError::Banned { until: None }, 403, "banned"),
            (ServiceError::NotFound("x".into()), 404, "not_found"),
            (
                ServiceError::Unprocessable("x".into()),
                422,
                "validation_failed",
            ),
            (ServiceError::PushNotConfigured, 404, "push_not_configured"),
            (ServiceError::Conflict("x".into()), 409, "conflict"),
            (
                ServiceError::TooManyMembers { max: 2, would: 3 },
                422,
                "too_many_members",
            ),
            (
                ServiceError::RateLimited {
                    retry_after_secs: 3,
                },
                429,
                "rate_limited",
            ),
            (ServiceError::Unavailable("redis"), 503, "unavailable"),
            (
                ServiceError::internal(anyhow::anyhow!("x")),
                500,
                "internal",
            ),
        ];
        for (e, status, code) in cases {
            let message = e.public_message();
            let api = ApiError::from(e);
            assert_eq!(api.status_code().as_u16(), status, "{code}");
            assert_eq!(api.code(), code);
            assert_eq!(api.public_message(), message);
        }
        let http_only = [
            (ApiError::InvalidJson("x".into()), 400, "invalid_json"),
            (ApiError::PayloadTooLarge(1), 413, "payload_too_large"),
            (
                ApiError::UnsupportedMediaType("x".into()),
                415,
                "unsupported_media_type",
            ),
            (
                ApiError::MethodNotAllowed("x".into()),
                405,
                "method_not_allowed",
            ),
        ];
        for (e, status, code) in http_only {
            assert_eq!(e.status_code().as_u16(), status, "{code}");
            assert_eq!(e.code(), code);
        }
    }

    #[tokio::test]
    async fn rate_limited_carries_its_retry_after() {
        let resp = ApiError::rate_limited(7).into_response();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "7");
    }
}
