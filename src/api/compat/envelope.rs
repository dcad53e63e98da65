//! The reference backend's response envelope around every answer of the chat-be
//! profile's routes: `{success, statusCode, message, data, timestamp, path}` (paged
//! lists add `meta`), and its error shape: `{success: false, statusCode, message,
//! errorCode, timestamp, path}`, validation failures as 422 `VALIDATION_ERROR` and
//! conflicts as `CONSTRAINT_ERROR`. Handlers answer in plain JSON (errors as Courier's
//! `ApiError`); this layer rewrites the body once, so no handler knows the envelope.

use axum::{
    Json,
    body::{Body, to_bytes},
    extract::Request,
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::compat::{PageMeta, iso};

/// Largest body the envelope reads back (a page is at most 50 messages).
const ENVELOPE_LIMIT: usize = 8 * 1024 * 1024;

/// Marks a response whose body is `{data, meta}`: both go beside each other in the
/// envelope.
#[derive(Clone, Copy)]
struct Paged;

/// A paged answer: `data` (an array) and the reference backend's `meta`.
pub fn paged<T: Serialize>(data: Vec<T>, meta: PageMeta) -> Response {
    let mut resp = Json(json!({"data": data, "meta": meta})).into_response();
    resp.extensions_mut().insert(Paged);
    resp
}

/// Wraps the answer of a profile route in the envelope.
pub async fn envelope(req: Request, next: Next) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let resp = next.run(req).await;
    let (mut parts, body) = resp.into_parts();
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !json {
        return Response::from_parts(parts, body);
    }
    let bytes = match to_bytes(body, ENVELOPE_LIMIT).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "reading a response body for the envelope failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let paged = parts.extensions.remove::<Paged>().is_some();
    let (status, mut out) = if parts.status.is_success() {
        let mut out =
            json!({"success": true, "statusCode": parts.status.as_u16(), "message": "success"});
        if paged {
            out["data"] = body["data"].take();
            out["meta"] = body["meta"].take();
        } else {
            out["data"] = body;
        }
        (parts.status, out)
    } else {
        error(parts.status, &body)
    };
    out["timestamp"] = iso(&chrono::Utc::now()).into();
    out["path"] = path.into();
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    let bytes = serde_json::to_vec(&out).unwrap_or_default();
    Response::from_parts(parts, Body::from(bytes))
}

/// Courier's error body `{statusCode, error, code, message}` in the reference shape.
fn error(status: StatusCode, body: &Value) -> (StatusCode, Value) {
    let code = body["code"].as_str().unwrap_or_default();
    let message = body["message"].clone();
    match code {
        "validation_failed" | "invalid_json" => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"success": false, "statusCode": 422, "message": "Validation failed",
                   "errors": [message], "errorCode": "VALIDATION_ERROR"}),
        ),
        "conflict" => (
            status,
            json!({"success": false, "statusCode": status.as_u16(), "message": message,
                   "errorCode": "CONSTRAINT_ERROR"}),
        ),
        _ => (
            status,
            json!({"success": false, "statusCode": status.as_u16(), "message": message,
                   "errorCode": code}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_take_the_reference_shape() {
        let (s, v) = error(
            StatusCode::BAD_REQUEST,
            &json!({"statusCode": 400, "code": "validation_failed", "message": "x"}),
        );
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v["errorCode"], "VALIDATION_ERROR");
        assert_eq!(v["errors"][0], "x");
        let (s, v) = error(
            StatusCode::CONFLICT,
            &json!({"code": "conflict", "message": "error.unique.email"}),
        );
        assert_eq!(
            (s.as_u16(), &v["errorCode"]),
            (409, &json!("CONSTRAINT_ERROR"))
        );
        assert_eq!(v["message"], "error.unique.email");
        let (s, v) = error(
            StatusCode::NOT_FOUND,
            &json!({"code": "not_found", "message": "m"}),
        );
        assert_eq!((s.as_u16(), v["success"].clone()), (404, json!(false)));
    }
}
