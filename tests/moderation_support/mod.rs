//! What the moderation tests share: making an admin (as `courier admin grant` does),
//! the audit entries of a target, and a consumer of the `admin.*` integration events.

use std::time::Duration;

use courier::{
    db::audit::AuditEntry,
    domain::moderation::{AuditAction, GlobalRole},
    service::moderation::{RoleOutcome, set_role},
};
use futures::StreamExt;
use lapin::{Consumer, options::BasicAckOptions};
use serde_json::Value;
use uuid::Uuid;

use crate::common::{TestApp, TestUser};

/// Grants `u` the admin role, as the command line does.
pub async fn make_admin(app: &TestApp, u: &TestUser) {
    let out = set_role(&app.pool, &u.username, GlobalRole::Admin)
        .await
        .expect("grant");
    assert_eq!(out, RoleOutcome::Changed(u.id));
}

/// The audit entries about `target`, oldest first.
pub async fn audit(app: &TestApp, target: Uuid) -> Vec<AuditEntry> {
    courier::db::audit::of_target(&app.pool, target)
        .await
        .expect("audit")
}

/// The actions recorded about `target`, oldest first.
pub async fn actions(app: &TestApp, target: Uuid) -> Vec<AuditAction> {
    audit(app, target).await.iter().map(|e| e.action).collect()
}

/// A queue bound with `admin.*` to the app's integration exchange.
pub struct AdminEvents {
    _conn: lapin::Connection,
    consumer: Consumer,
    pub seen: Vec<(String, Value)>,
}

impl AdminEvents {
    pub async fn subscribe(app: &TestApp) -> Self {
        let (conn, consumer) = app.integration_events("admin.*", false).await;
        Self {
            _conn: conn,
            consumer,
            seen: Vec::new(),
        }
    }

    /// The first event of `action` about `target` (15 s at most: an event the action
    /// could not publish at once comes from the relay).
    pub async fn until(&mut self, action: AuditAction, target: Uuid) -> Value {
        let key = action.routing_key();
        loop {
            let found = self
                .seen
                .iter()
                .find(|(k, v)| *k == key && v["data"]["targetId"] == target.to_string());
            if let Some((_, v)) = found {
                return v.clone();
            }
            let d = tokio::time::timeout(Duration::from_secs(15), self.consumer.next())
                .await
                .unwrap_or_else(|_| panic!("no {key} within 15 s; got {:?}", self.seen))
                .expect("consumer open")
                .expect("delivery");
            d.acker.ack(BasicAckOptions::default()).await.unwrap();
            let body: Value = serde_json::from_slice(&d.data).unwrap();
            let id = d.properties.message_id().as_ref().map(|s| s.to_string());
            assert_eq!(body["id"].as_str(), id.as_deref(), "body id = message id");
            assert_eq!(body["type"], d.routing_key.as_str());
            self.seen.push((d.routing_key.to_string(), body));
        }
    }
}
