//! The error answers the routes share, as `IntoResponses` sets for `#[utoipa::path]`:
//! `responses((status = 200, ...), ChatErrors, BodyErrors)`. Each status is in one set
//! only, so sets combine without overlap; a route lists inline only an answer of its
//! own (a 409, a 401 with its reason).

use utoipa::IntoResponses;

use crate::error::ErrorBody;

/// 500 and 503: every route.
#[derive(IntoResponses)]
pub enum ServerErrors {
    #[response(status = 500, description = "`internal`")]
    Internal(ErrorBody<'static>),
    #[response(
        status = 503,
        description = "`unavailable`: a dependency is down",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))
    )]
    Unavailable(ErrorBody<'static>),
}

/// 400: the input breaks a rule.
#[derive(IntoResponses)]
pub enum BadRequest {
    #[response(
        status = 400,
        description = "`validation_failed` (a rule of the input, a path or query parameter) or `invalid_json`"
    )]
    Invalid(ErrorBody<'static>),
}

/// 401: a route behind the bearer token.
#[derive(IntoResponses)]
pub enum Unauthorized {
    #[response(
        status = 401,
        description = "`unauthorized`: missing, malformed or expired access token; `session_revoked`: its session was revoked"
    )]
    Unauthorized(ErrorBody<'static>),
}

/// 413 and 415: a route that reads a JSON body.
#[derive(IntoResponses)]
pub enum BodyErrors {
    #[response(status = 413, description = "`payload_too_large`: body over 64 KiB")]
    PayloadTooLarge(ErrorBody<'static>),
    #[response(
        status = 415,
        description = "`unsupported_media_type`: not `Content-Type: application/json`"
    )]
    UnsupportedMediaType(ErrorBody<'static>),
}

/// 429: a rate-limited route.
#[derive(IntoResponses)]
pub enum RateLimited {
    #[response(
        status = 429,
        description = "`rate_limited`: too many requests",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))
    )]
    RateLimited(ErrorBody<'static>),
}

/// Registration, sign-in and refresh: 400, 413, 415, 429, 500, 503 (each adds its
/// own 401 or 409).
#[derive(IntoResponses)]
pub enum AuthErrors {
    #[response(status = 400, description = "`validation_failed` or `invalid_json`")]
    Invalid(ErrorBody<'static>),
    #[response(status = 413, description = "`payload_too_large`: body over 64 KiB")]
    PayloadTooLarge(ErrorBody<'static>),
    #[response(
        status = 415,
        description = "`unsupported_media_type`: not `Content-Type: application/json`"
    )]
    UnsupportedMediaType(ErrorBody<'static>),
    #[response(
        status = 429,
        description = "`rate_limited`: too many attempts from this address or for this username",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))
    )]
    RateLimited(ErrorBody<'static>),
    #[response(status = 500, description = "`internal`")]
    Internal(ErrorBody<'static>),
    #[response(
        status = 503,
        description = "`unavailable`: a dependency is down",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))
    )]
    Unavailable(ErrorBody<'static>),
}

/// A route on one chat (or something in it) of the caller's: 400, 401, 403, 404, 500,
/// 503.
#[derive(IntoResponses)]
pub enum ChatErrors {
    #[response(
        status = 400,
        description = "`validation_failed` (a rule of the input, a path or query parameter) or `invalid_json`"
    )]
    Invalid(ErrorBody<'static>),
    #[response(
        status = 401,
        description = "`unauthorized`: missing, malformed or expired access token; `session_revoked`: its session was revoked"
    )]
    Unauthorized(ErrorBody<'static>),
    #[response(
        status = 403,
        description = "`forbidden`: the caller is not a participant of the chat, or lacks the role"
    )]
    Forbidden(ErrorBody<'static>),
    #[response(
        status = 404,
        description = "`not_found`: no such chat (or message, participant, hook in it)"
    )]
    NotFound(ErrorBody<'static>),
    #[response(status = 500, description = "`internal`")]
    Internal(ErrorBody<'static>),
    #[response(
        status = 503,
        description = "`unavailable`: a dependency is down",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))
    )]
    Unavailable(ErrorBody<'static>),
}

/// An admin route (`/admin/...`): 401, 403, 500, 503.
#[derive(IntoResponses)]
pub enum AdminErrors {
    #[response(
        status = 401,
        description = "`unauthorized`: missing, malformed or expired access token; `session_revoked`: its session was revoked"
    )]
    Unauthorized(ErrorBody<'static>),
    #[response(
        status = 403,
        description = "`forbidden`: the caller does not have the global role `admin`"
    )]
    Forbidden(ErrorBody<'static>),
    #[response(status = 500, description = "`internal`")]
    Internal(ErrorBody<'static>),
    #[response(
        status = 503,
        description = "`unavailable`: a dependency is down",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))
    )]
    Unavailable(ErrorBody<'static>),
}
