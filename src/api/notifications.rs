//! `GET /notifications` and `POST /notifications/read`: thin over the use cases.

use super::responses::{BadRequest, BodyErrors, ServerErrors, Unauthorized};
use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiJson, ApiQuery, AuthUser},
};
use crate::{
    error::ApiResult,
    service::{
        ServiceError,
        notifications::{self as uc, Page, Which},
    },
};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only unread ones.
    unread: Option<bool>,
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// Older than this notification (its id) or this RFC 3339 time.
    before: Option<String>,
}

/// `{"ids": [...]}` or `{"all": true}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = MarkNotificationsReadBody)]
pub struct ReadBody {
    /// 1–500 notification ids.
    ids: Option<Vec<Uuid>>,
    all: Option<bool>,
}

/// The caller's notifications (mentions), newest first.
#[utoipa::path(get, path = "/notifications", operation_id = "listNotifications",
    tag = "notifications", security(("bearer" = [])), params(ListQuery),
    responses(
        (status = 200, description = "A page, newest first", body = Page),
        BadRequest, Unauthorized, ServerErrors,
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page>> {
    let unread = q.unread.unwrap_or(false);
    let page = uc::list(&state.ctx, me, unread, q.before.as_deref(), q.limit).await?;
    Ok(Json(page))
}

/// Marks notifications read: the given ones, or all.
#[utoipa::path(post, path = "/notifications/read", operation_id = "markNotificationsRead",
    tag = "notifications", security(("bearer" = [])), request_body = ReadBody,
    responses(
        (status = 204, description = "Marked"),
        BadRequest, Unauthorized, ServerErrors, BodyErrors,
    ))]
pub async fn mark_read(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<ReadBody>,
) -> ApiResult<StatusCode> {
    let which = match (body.ids, body.all) {
        (Some(ids), None | Some(false)) => Which::Ids(ids),
        (None, Some(true)) => Which::All,
        _ => {
            return Err(ServiceError::Invalid(
                "give either ids (a list) or all: true".into(),
            ))?;
        }
    };
    uc::mark_read(&state.ctx, me, which).await?;
    Ok(StatusCode::NO_CONTENT)
}
