//! The audit log of admin actions (`audit_log`), written in the transaction of the
//! action it records; also the outbox of the `admin.*` integration events (rows not yet
//! published carry no `published_at`).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::moderation::AuditAction;

/// One recorded admin action.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: Uuid,
    /// `None`: an operator at the command line.
    pub actor_id: Option<Uuid>,
    pub action: AuditAction,
    pub target_id: Uuid,
    pub details: Value,
    pub at: DateTime<Utc>,
}

struct Row {
    id: Uuid,
    actor_id: Option<Uuid>,
    action: String,
    target_id: Uuid,
    details: Value,
    at: DateTime<Utc>,
}

impl TryFrom<Row> for AuditEntry {
    type Error = sqlx::Error;

    fn try_from(r: Row) -> Result<Self, Self::Error> {
        let action = AuditAction::parse(&r.action).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown audit action {:?}", r.action).into())
        })?;
        Ok(Self {
            id: r.id,
            actor_id: r.actor_id,
            action,
            target_id: r.target_id,
            details: r.details,
            at: r.at,
        })
    }
}

/// Records an action in the caller's transaction.
pub async fn record(
    conn: &mut PgConnection,
    actor: Option<Uuid>,
    action: AuditAction,
    target: Uuid,
    details: Value,
) -> Result<AuditEntry, sqlx::Error> {
    let id = Uuid::now_v7();
    let at = sqlx::query_scalar!(
        "INSERT INTO audit_log (id, actor_id, action, target_type, target_id, details)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING at",
        id,
        actor,
        action.as_str(),
        action.target_type(),
        target,
        details,
    )
    .fetch_one(conn)
    .await?;
    Ok(AuditEntry {
        id,
        actor_id: actor,
        action,
        target_id: target,
        details,
        at,
    })
}

/// Marks entries as published.
pub async fn mark_published(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE audit_log SET published_at = now() WHERE id = ANY($1) AND published_at IS NULL",
        ids,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Entries older than `grace_secs` still unpublished, oldest first, locked in `tx`
/// (other relays skip them until it ends).
pub async fn claim_unpublished(
    tx: &mut Transaction<'_, Postgres>,
    grace_secs: i32,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT id, actor_id, action, target_id, details, at FROM audit_log
         WHERE published_at IS NULL AND at < now() - make_interval(secs => $1)
         ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED",
        f64::from(grace_secs),
        limit,
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(AuditEntry::try_from).collect()
}

/// The entries about `target`, oldest first (for operators and tests).
pub async fn of_target(pool: &PgPool, target: Uuid) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT id, actor_id, action, target_id, details, at FROM audit_log
         WHERE target_id = $1 ORDER BY at, id",
        target,
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(AuditEntry::try_from).collect()
}
