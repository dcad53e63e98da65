//! Reports: any user reports a message they can see (in a chat they are in) or a user;
//! admins list them and resolve them. Reporting is rate-limited per user
//! (`RATE_LIMIT_REPORT_MAX` per `RATE_LIMIT_REPORT_WINDOW_SECS`).

use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult, audit, moderation::require_admin, require_member};
use crate::{
    db::{self, reports::Resolution},
    domain::moderation::{self as rules, Report, ReportStatus, ReportTarget},
};

/// Most reports one list returns; the default.
pub const MAX_LIMIT: i64 = 500;
pub const DEFAULT_LIMIT: i64 = 100;

/// A report to file.
pub struct NewReport {
    pub message_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub reason: String,
}

/// Files a report by `me`: exactly one of a message (in a chat `me` is in) or another
/// user, with a reason of 1 to 1000 characters.
pub async fn create(ctx: &Ctx, me: Uuid, new: NewReport) -> ServiceResult<Report> {
    let target = ReportTarget::of(new.message_id, new.user_id)
        .map_err(|m| ServiceError::Invalid(m.into()))?;
    let reason = rules::normalize_reason("reason", &new.reason).map_err(ServiceError::Invalid)?;
    match ctx
        .cache
        .hit(&format!("report:{me}"), ctx.limits.reports)
        .await
    {
        Ok(None) => {}
        Ok(Some(retry_after_secs)) => {
            metrics::counter!("courier_rate_limited_total").increment(1);
            return Err(ServiceError::RateLimited { retry_after_secs });
        }
        // The limit is protection, not a dependency.
        Err(e) => tracing::warn!(error = %e, "report rate limit check failed; allowing"),
    }
    let report = match target {
        ReportTarget::Message(id) => {
            let m = db::moderation::message(&ctx.pool, id)
                .await?
                .ok_or_else(|| ServiceError::NotFound("message not found".into()))?;
            require_member(&ctx.pool, m.chat_id, me).await?;
            let new = db::reports::NewReport {
                reporter_id: me,
                reason: &reason,
                user_id: m.sender_id,
                message: Some((id, m.chat_id, &m.content)),
            };
            db::reports::insert(&ctx.pool, new).await?
        }
        ReportTarget::User(id) => {
            if id == me {
                return Err(ServiceError::Invalid("you cannot report yourself".into()));
            }
            if db::users::find(&ctx.pool, id).await?.is_none() {
                return Err(ServiceError::NotFound("user not found".into()));
            }
            let new = db::reports::NewReport {
                reporter_id: me,
                reason: &reason,
                user_id: id,
                message: None,
            };
            db::reports::insert(&ctx.pool, new).await?
        }
    };
    metrics::counter!("courier_reports_total").increment(1);
    Ok(report)
}

/// Reports for `admin`, newest first: only those in `status` if given, before report
/// `before` if given, at most `limit` (default 100, at most 500).
pub async fn list(
    ctx: &Ctx,
    admin: Uuid,
    status: Option<&str>,
    before: Option<Uuid>,
    limit: Option<i64>,
) -> ServiceResult<Vec<Report>> {
    require_admin(ctx, admin).await?;
    let status = match status {
        None | Some("") => None,
        Some(s) => Some(
            ReportStatus::parse(s)
                .ok_or_else(|| ServiceError::Invalid("status must be open or resolved".into()))?,
        ),
    };
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ServiceError::Invalid(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    Ok(db::reports::list(&ctx.pool, status, before, limit).await?)
}

/// `admin` resolves report `id`, with an optional note: 404 for an unknown report, 409
/// for one already resolved.
pub async fn resolve(
    ctx: &Ctx,
    admin: Uuid,
    id: Uuid,
    note: Option<&str>,
) -> ServiceResult<Report> {
    require_admin(ctx, admin).await?;
    let note = rules::normalize_note(note).map_err(ServiceError::Invalid)?;
    match db::reports::resolve(&ctx.pool, admin, id, note.as_deref()).await? {
        Resolution::NotFound => Err(ServiceError::NotFound("report not found".into())),
        Resolution::AlreadyResolved => Err(ServiceError::Conflict(
            "the report is already resolved".into(),
        )),
        Resolution::Resolved(done) => {
            let (report, entry) = *done;
            audit::announce(&ctx.pool, &ctx.commands, &entry).await;
            Ok(report)
        }
    }
}
