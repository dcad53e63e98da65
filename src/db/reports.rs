//! Reports of messages and users, and their resolution (with its audit entry in the
//! same transaction).

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{self, AuditEntry};
use crate::domain::moderation::{AuditAction, Report, ReportStatus};

struct Row {
    id: Uuid,
    status: String,
    reason: String,
    reporter_id: Uuid,
    message_id: Option<Uuid>,
    chat_id: Option<Uuid>,
    message_content: Option<String>,
    user_id: Uuid,
    created_at: chrono::DateTime<chrono::Utc>,
    resolved_at: Option<chrono::DateTime<chrono::Utc>>,
    resolved_by: Option<Uuid>,
    resolution_note: Option<String>,
}

impl From<Row> for Report {
    fn from(r: Row) -> Self {
        Report {
            id: r.id,
            status: ReportStatus::parse(&r.status).unwrap_or(ReportStatus::Open),
            reason: r.reason,
            reporter_id: r.reporter_id,
            message_id: r.message_id,
            chat_id: r.chat_id,
            message_content: r.message_content,
            user_id: r.user_id,
            created_at: r.created_at,
            resolved_at: r.resolved_at,
            resolved_by: r.resolved_by,
            resolution_note: r.resolution_note,
        }
    }
}

/// A report to store.
pub struct NewReport<'a> {
    pub reporter_id: Uuid,
    pub reason: &'a str,
    pub user_id: Uuid,
    /// The message, its chat and its content now (a message report).
    pub message: Option<(Uuid, Uuid, &'a str)>,
}

pub async fn insert(pool: &PgPool, new: NewReport<'_>) -> Result<Report, sqlx::Error> {
    let (message_id, chat_id, content) = match new.message {
        Some((m, c, content)) => (Some(m), Some(c), Some(content)),
        None => (None, None, None),
    };
    let row = sqlx::query_as!(
        Row,
        "INSERT INTO reports (id, reporter_id, message_id, chat_id, message_content, user_id,
                              reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, status, reason, reporter_id, message_id, chat_id, message_content,
                   user_id, created_at, resolved_at, resolved_by, resolution_note",
        Uuid::now_v7(),
        new.reporter_id,
        message_id,
        chat_id,
        content,
        new.user_id,
        new.reason,
    )
    .fetch_one(pool)
    .await?;
    Ok(row.into())
}

/// Reports, newest first, only those in `status` if given, at most `limit`, created
/// before report `before` if given.
pub async fn list(
    pool: &PgPool,
    status: Option<ReportStatus>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Report>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT id, status, reason, reporter_id, message_id, chat_id, message_content, user_id,
                created_at, resolved_at, resolved_by, resolution_note
         FROM reports r
         WHERE ($1::text IS NULL OR r.status = $1)
           AND ($2::uuid IS NULL OR (r.created_at, r.id) <
                (SELECT b.created_at, b.id FROM reports b WHERE b.id = $2))
         ORDER BY r.created_at DESC, r.id DESC LIMIT $3",
        status.map(ReportStatus::as_str),
        before,
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Report::from).collect())
}

/// What resolving a report did.
#[derive(Debug)]
pub enum Resolution {
    NotFound,
    AlreadyResolved,
    Resolved(Box<(Report, AuditEntry)>),
}

/// Resolves report `id` by `admin` with an optional note.
pub async fn resolve(
    pool: &PgPool,
    admin: Uuid,
    id: Uuid,
    note: Option<&str>,
) -> Result<Resolution, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let status = sqlx::query_scalar!("SELECT status FROM reports WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *tx)
        .await?;
    match status.as_deref() {
        None => return Ok(Resolution::NotFound),
        Some("resolved") => return Ok(Resolution::AlreadyResolved),
        Some(_) => {}
    }
    let row = sqlx::query_as!(
        Row,
        "UPDATE reports SET status = 'resolved', resolved_at = now(), resolved_by = $2,
                            resolution_note = $3
         WHERE id = $1
         RETURNING id, status, reason, reporter_id, message_id, chat_id, message_content,
                   user_id, created_at, resolved_at, resolved_by, resolution_note",
        id,
        admin,
        note,
    )
    .fetch_one(&mut *tx)
    .await?;
    let details = json!({
        "note": note,
        "messageId": row.message_id,
        "userId": row.user_id,
    });
    let entry = audit::record(
        &mut tx,
        Some(admin),
        AuditAction::ResolveReport,
        id,
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(Resolution::Resolved(Box::new((row.into(), entry))))
}
