//! `POST /reports` (any user) and the admin routes: `GET /admin/reports`,
//! `POST /admin/reports/:id/resolve`, `POST`/`DELETE /admin/users/:id/ban` and
//! `DELETE /admin/messages/:id`. Every admin route answers 403 `forbidden` to a caller
//! without the global role `admin`.

use axum::{
    Json,
    extract::{FromRequest, Request, State},
    http::{HeaderMap, StatusCode, header},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiJson, ApiPath, ApiQuery, AuthUser, request_id},
    responses::{AdminErrors, BadRequest, BodyErrors, RateLimited, ServerErrors, Unauthorized},
};
use crate::{
    domain::moderation::{Report, ReportStatus},
    error::{ApiResult, ErrorBody},
    service::{
        lifecycle::CommandAccepted,
        moderation::{self, Ban},
        reports,
    },
};

/// `POST /reports`: exactly one of `messageId` and `userId`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportBody {
    /// A message in a chat the caller is in.
    message_id: Option<Uuid>,
    /// Another user.
    user_id: Option<Uuid>,
    /// 1 to 1000 characters (trimmed).
    #[schema(min_length = 1, max_length = 1000, example = "spam")]
    reason: String,
}

/// A filed report.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportCreated {
    id: Uuid,
    /// Always `open`.
    status: ReportStatus,
    /// RFC 3339, UTC, with milliseconds.
    #[serde(with = "crate::domain::time")]
    created_at: DateTime<Utc>,
}

/// Reports a message or a user to the admins. Rate-limited per user
/// (`RATE_LIMIT_REPORT_MAX` per `RATE_LIMIT_REPORT_WINDOW_SECS`).
#[utoipa::path(post, path = "/reports", operation_id = "createReport", tag = "moderation",
    security(("bearer" = [])), request_body = ReportBody,
    responses(
        (status = 201, description = "Filed", body = ReportCreated),
        (status = 403, description = "`forbidden`: the message is in a chat the caller is not in", body = ErrorBody),
        (status = 404, description = "`not_found`: no such message or user", body = ErrorBody),
        BadRequest, Unauthorized, BodyErrors, RateLimited, ServerErrors,
    ))]
pub async fn create_report(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<ReportBody>,
) -> ApiResult<(StatusCode, Json<ReportCreated>)> {
    let new = reports::NewReport {
        message_id: body.message_id,
        user_id: body.user_id,
        reason: body.reason,
    };
    let r = reports::create(&state.ctx, me, new).await?;
    let created = ReportCreated {
        id: r.id,
        status: r.status,
        created_at: r.created_at,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportsQuery {
    /// `open` or `resolved`; every report when absent.
    status: Option<String>,
    /// The `id` of the last report of the previous page: the reports filed before it.
    before: Option<Uuid>,
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReportList {
    /// Newest first.
    reports: Vec<Report>,
}

/// Lists reports, newest first (admins only).
#[utoipa::path(get, path = "/admin/reports", operation_id = "listReports", tag = "moderation",
    security(("bearer" = [])), params(ReportsQuery),
    responses(
        (status = 200, description = "The reports", body = ReportList),
        BadRequest, AdminErrors,
    ))]
pub async fn list_reports(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiQuery(q): ApiQuery<ReportsQuery>,
) -> ApiResult<Json<ReportList>> {
    let list = reports::list(&state.ctx, me, q.status.as_deref(), q.before, q.limit).await?;
    Ok(Json(ReportList { reports: list }))
}

/// `POST /admin/reports/:id/resolve`: the body is optional.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct ResolveBody {
    /// What was done, for the other admins (at most 1000 characters).
    #[schema(max_length = 1000)]
    note: Option<String>,
}

/// Whether a request has a body: a `Content-Length` above 0 or a chunked one.
fn has_body(headers: &HeaderMap) -> bool {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

/// Resolves an open report (admins only); answers the report as it is now.
#[utoipa::path(post, path = "/admin/reports/{reportId}/resolve", operation_id = "resolveReport",
    tag = "moderation", security(("bearer" = [])),
    params(("reportId" = Uuid, Path)), request_body(content = Option<ResolveBody>),
    responses(
        (status = 200, description = "Resolved", body = Report),
        (status = 404, description = "`not_found`: no such report", body = ErrorBody),
        (status = 409, description = "`conflict`: the report is already resolved", body = ErrorBody),
        BadRequest, BodyErrors, AdminErrors,
    ))]
pub async fn resolve_report(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    request: Request,
) -> ApiResult<Json<Report>> {
    let body = if has_body(request.headers()) {
        let ApiJson(b) = ApiJson::<ResolveBody>::from_request(request, &state).await?;
        b
    } else {
        ResolveBody::default()
    };
    let r = reports::resolve(&state.ctx, me, id, body.note.as_deref()).await?;
    Ok(Json(r))
}

/// `POST /admin/users/:id/ban`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct BanBody {
    /// Why (1 to 1000 characters); shown to admins and in the audit log.
    #[schema(min_length = 1, max_length = 1000, example = "spam")]
    reason: String,
    /// RFC 3339; when the ban ends (in the future). Absent or null: never.
    #[serde(default)]
    until: Option<DateTime<Utc>>,
}

/// Bans a user (admins only): every session is revoked at once (their sockets get
/// `auth.revoked` `{"reason": "banned"}` and close), and logins, refreshes and tokens
/// get 403 `banned` until `until`. Banning a banned user replaces the ban.
#[utoipa::path(post, path = "/admin/users/{userId}/ban", operation_id = "banUser",
    tag = "moderation", security(("bearer" = [])),
    params(("userId" = Uuid, Path)), request_body = BanBody,
    responses(
        (status = 204, description = "Banned"),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        (status = 400, description = "`validation_failed`: a rule of the input, `until` not in the future, or the caller's own id; `invalid_json`", body = ErrorBody),
        BodyErrors, AdminErrors,
    ))]
pub async fn ban(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(user): ApiPath<Uuid>,
    ApiJson(body): ApiJson<BanBody>,
) -> ApiResult<StatusCode> {
    let ban = Ban {
        reason: body.reason,
        until: body.until,
    };
    moderation::ban(&state.ctx, me, user, ban).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a user's ban (admins only; 204 also when there was none). Their sessions stay
/// revoked: they sign in again.
#[utoipa::path(delete, path = "/admin/users/{userId}/ban", operation_id = "unbanUser",
    tag = "moderation", security(("bearer" = [])),
    params(("userId" = Uuid, Path)),
    responses(
        (status = 204, description = "Not banned"),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        BadRequest, AdminErrors,
    ))]
pub async fn unban(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(user): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    moderation::unban(&state.ctx, me, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes any message as a moderator (admins only): applied in chat order like every
/// delete; the tombstone and the `chat.message.deleted` event carry
/// `"deletedBy": "moderator"`.
#[utoipa::path(delete, path = "/admin/messages/{messageId}", operation_id = "moderateMessage",
    tag = "moderation", security(("bearer" = [])),
    params(("messageId" = Uuid, Path)),
    responses(
        (status = 202, description = "Accepted; applied in chat order", body = CommandAccepted),
        (status = 404, description = "`not_found`: no such message, or it was deleted", body = ErrorBody),
        BadRequest, AdminErrors,
    ))]
pub async fn delete_message(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<CommandAccepted>)> {
    let accepted = moderation::delete_message(&state.ctx, me, id, &request_id(&headers)).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}
