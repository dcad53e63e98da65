//! A user's notifications: listing them (newest first) and marking them read.

use serde::Serialize;
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult};
use crate::{
    db::{self, notifications::Before},
    domain::mention::Notification,
};

/// Most ids one `POST /notifications/read` takes.
pub const MAX_READ_IDS: usize = 500;

/// A page of notifications.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = NotificationPage)]
pub struct Page {
    /// Newest first.
    pub notifications: Vec<Notification>,
    /// Whether older ones exist (ask again with `before` = the last one's id).
    pub has_more: bool,
}

/// `before` is a notification's id (the last one of the previous page) or an RFC 3339 time.
fn parse_before(raw: Option<&str>) -> ServiceResult<Before> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(Before::Newest);
    };
    if let Ok(id) = Uuid::parse_str(raw) {
        return Ok(Before::Id(id));
    }
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| Before::Time(t.to_utc()))
        .map_err(|_| {
            ServiceError::Invalid("before must be a notification id or an RFC 3339 time".into())
        })
}

/// Lists `me`'s notifications, a page of `limit` (1–100, 50 unless asked) older than
/// `before` (see `parse_before`).
pub async fn list(
    ctx: &Ctx,
    me: Uuid,
    unread_only: bool,
    before: Option<&str>,
    limit: Option<i64>,
) -> ServiceResult<Page> {
    let before = parse_before(before)?;
    let limit = limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ServiceError::Invalid("limit must be 1 to 100".into()));
    }
    if let Before::Id(id) = before
        && !db::notifications::owns(&ctx.pool, me, id).await?
    {
        return Err(ServiceError::Invalid(
            "before names no notification of yours".into(),
        ));
    }
    let (notifications, has_more) =
        db::notifications::list(&ctx.pool, me, unread_only, before, limit).await?;
    Ok(Page {
        notifications,
        has_more,
    })
}

/// What to mark read.
#[derive(Debug, Clone)]
pub enum Which {
    Ids(Vec<Uuid>),
    All,
}

/// Marks `me`'s notifications read (ids of others' notifications change nothing).
pub async fn mark_read(ctx: &Ctx, me: Uuid, which: Which) -> ServiceResult<()> {
    match which {
        Which::Ids(ids) if ids.is_empty() || ids.len() > MAX_READ_IDS => {
            Err(ServiceError::Invalid(format!(
                "ids must hold 1 to {MAX_READ_IDS} notification ids"
            )))
        }
        Which::Ids(ids) => {
            db::notifications::mark_read(&ctx.pool, me, Some(&ids)).await?;
            Ok(())
        }
        Which::All => {
            db::notifications::mark_read(&ctx.pool, me, None).await?;
            Ok(())
        }
    }
}
