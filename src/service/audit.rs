//! The `admin.*` integration events: each audit entry is published to the integration
//! exchange (`RABBITMQ_INTEGRATION_EXCHANGE`, routing key `admin.<action>`) with
//! publisher confirms right after the action committed, and marked published. What
//! could not be published then (broker down, the process died, an operator's command
//! line that has no broker) the API's relay publishes a few seconds later: at least
//! once, with a stable `id` (`audit:<entry id>`, also the AMQP `message_id`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::commands::Commands;
use crate::{
    db::audit::{self, AuditEntry},
    mq::publish,
};

/// How often the relay looks for unpublished entries.
const RELAY_EVERY: Duration = Duration::from_secs(2);
/// How old an unpublished entry must be before the relay takes it over.
const RELAY_GRACE_SECS: i32 = 3;
/// Most entries one relay round publishes.
const RELAY_BATCH: i64 = 100;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(with = "crate::domain::time")]
    occurred_at: DateTime<Utc>,
    data: Data<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    audit_id: Uuid,
    /// `null`: an operator at the command line.
    actor_id: Option<Uuid>,
    action: &'static str,
    target_type: &'static str,
    target_id: Uuid,
    details: &'a Value,
}

/// The event of an entry: its id, routing key and JSON body.
pub fn event(e: &AuditEntry) -> serde_json::Result<(String, String, Vec<u8>)> {
    let id = format!("audit:{}", e.id);
    let key = e.action.routing_key();
    let body = serde_json::to_vec(&Envelope {
        id: id.clone(),
        kind: key.clone(),
        occurred_at: e.at,
        data: Data {
            audit_id: e.id,
            actor_id: e.actor_id,
            action: e.action.as_str(),
            target_type: e.action.target_type(),
            target_id: e.target_id,
            details: &e.details,
        },
    })?;
    Ok((id, key, body))
}

/// Publishes one entry and waits for the broker's confirm.
async fn publish_one(commands: &Commands, e: &AuditEntry) -> anyhow::Result<()> {
    let session = commands
        .link
        .current()
        .ok_or_else(|| anyhow::anyhow!("rabbitmq link is down"))?;
    let (id, key, body) = event(e)?;
    let props = publish::json_properties(&id, Default::default()).with_type(key.as_str().into());
    publish::publish_broadcast(
        &session.publish,
        &commands.topology.integrations,
        &key,
        &body,
        props,
        commands.confirm_timeout,
    )
    .await?;
    metrics::counter!("courier_admin_events_total").increment(1);
    Ok(())
}

/// Publishes an action's entry now and marks it published. A failure is not the
/// caller's: the action is committed, and the relay publishes the entry later.
pub async fn announce(pool: &PgPool, commands: &Commands, e: &AuditEntry) {
    if let Err(err) = publish_one(commands, e).await {
        tracing::warn!(error = %err, action = e.action.as_str(), "admin event left to the relay");
        return;
    }
    let marked = match pool.acquire().await {
        Ok(mut conn) => audit::mark_published(&mut conn, &[e.id]).await,
        Err(err) => Err(err),
    };
    if let Err(err) = marked {
        // Published; the relay publishes it again (same id) once the database is back.
        tracing::warn!(error = %err, "published admin event not marked");
    }
}

/// Publishes what was left unpublished, every `RELAY_EVERY` until `stop` (every API
/// instance may run it: entries are claimed with `SKIP LOCKED`).
pub async fn relay(pool: PgPool, commands: Commands, stop: CancellationToken) {
    let mut tick = tokio::time::interval(RELAY_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if commands.link.current().is_none() {
            continue;
        }
        if let Err(e) = relay_once(&pool, &commands).await {
            tracing::warn!(error = %e, "admin event relay round failed");
        }
    }
}

async fn relay_once(pool: &PgPool, commands: &Commands) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let entries = audit::claim_unpublished(&mut tx, RELAY_GRACE_SECS, RELAY_BATCH).await?;
    if entries.is_empty() {
        return Ok(());
    }
    let mut done = Vec::with_capacity(entries.len());
    let mut failed = None;
    for e in &entries {
        match publish_one(commands, e).await {
            Ok(()) => done.push(e.id),
            Err(err) => {
                failed = Some(err);
                break;
            }
        }
    }
    audit::mark_published(&mut tx, &done).await?;
    tx.commit().await?;
    metrics::counter!("courier_admin_events_relayed_total").increment(done.len() as u64);
    match failed {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::moderation::AuditAction;

    #[test]
    fn an_entry_becomes_an_admin_event_with_a_stable_id() {
        let e = AuditEntry {
            id: Uuid::now_v7(),
            actor_id: None,
            action: AuditAction::GrantAdmin,
            target_id: Uuid::new_v4(),
            details: serde_json::json!({"username": "alice"}),
            at: Utc::now(),
        };
        let (id, key, body) = event(&e).unwrap();
        assert_eq!(id, format!("audit:{}", e.id));
        assert_eq!(key, "admin.grant_admin");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["id"], id);
        assert_eq!(v["type"], "admin.grant_admin");
        assert_eq!(v["data"]["actorId"], Value::Null);
        assert_eq!(v["data"]["action"], "grant_admin");
        assert_eq!(v["data"]["targetType"], "user");
        assert_eq!(v["data"]["targetId"], e.target_id.to_string());
        assert_eq!(v["data"]["details"]["username"], "alice");
        assert_eq!(event(&e).unwrap(), (id, key, body), "the same every time");
    }
}
