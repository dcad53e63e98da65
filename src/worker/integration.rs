//! Integration events: what each commit changed, published by the worker to the topic
//! exchange `RABBITMQ_INTEGRATION_EXCHANGE` before the deliveries are acked (at least
//! once). Each event's `id` (also the AMQP `message_id`) is stable: a redelivered
//! command re-publishes the same ids, so consumers drop what they have seen.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::{chat::Chat, message::Message};

pub const MESSAGE_CREATED: &str = "message.created";
pub const MESSAGE_UPDATED: &str = "message.updated";
pub const MESSAGE_DELETED: &str = "message.deleted";
pub const REACTION_UPDATED: &str = "reaction.updated";
pub const CHAT_UPDATED: &str = "chat.updated";
pub const MEMBER_ADDED: &str = "member.added";
pub const MEMBER_REMOVED: &str = "member.removed";

/// One event to publish.
#[derive(Debug, Clone)]
pub struct Integration {
    pub id: String,
    pub key: &'static str,
    pub body: Vec<u8>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    chat_id: Uuid,
    /// The chat's version for lifecycle events; the message's sequence for
    /// `message.created`.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<i64>,
    #[serde(with = "crate::domain::time")]
    occurred_at: DateTime<Utc>,
    data: Value,
}

fn event(
    id: String,
    key: &'static str,
    chat: Uuid,
    version: Option<i64>,
    at: DateTime<Utc>,
    data: Value,
) -> serde_json::Result<Integration> {
    let body = serde_json::to_vec(&Envelope {
        id: &id,
        kind: key,
        chat_id: chat,
        version,
        occurred_at: at,
        data,
    })?;
    Ok(Integration { id, key, body })
}

/// `message.created` for a persisted send.
pub fn created(m: &Message) -> serde_json::Result<Integration> {
    event(
        format!("message:{}:created", m.id),
        MESSAGE_CREATED,
        m.chat_id,
        None,
        m.sent_at,
        json!({ "message": m }),
    )
}

/// The integration events of one applied effect: the chat at one of its versions. Each
/// event's id is `chat:{chat}:v{version}:{type}` (and `:{user}` for member events).
pub struct AtVersion {
    chat: Uuid,
    version: i64,
    at: DateTime<Utc>,
}

impl AtVersion {
    pub fn new(chat: Uuid, version: i64) -> Self {
        Self {
            chat,
            version,
            at: Utc::now(),
        }
    }

    fn id(&self, key: &str) -> String {
        format!("chat:{}:v{}:{key}", self.chat, self.version)
    }

    fn stamped(
        &self,
        id: String,
        key: &'static str,
        data: Value,
    ) -> serde_json::Result<Integration> {
        event(id, key, self.chat, Some(self.version), self.at, data)
    }

    /// The one event of type `key`.
    pub fn one(&self, key: &'static str, data: Value) -> serde_json::Result<Integration> {
        self.stamped(self.id(key), key, data)
    }

    /// A change of the chat: `chat.updated` with its details (if it still exists), then
    /// `member.added` and `member.removed` for each user.
    pub fn chat(
        &self,
        details: Option<&Chat>,
        added: &[Uuid],
        removed: &[Uuid],
    ) -> serde_json::Result<Vec<Integration>> {
        let mut out = Vec::with_capacity(1 + added.len() + removed.len());
        if let Some(c) = details {
            out.push(self.one(CHAT_UPDATED, json!({ "change": "details", "chat": c }))?);
        }
        for (key, users) in [(MEMBER_ADDED, added), (MEMBER_REMOVED, removed)] {
            for u in users {
                let id = format!("{}:{u}", self.id(key));
                out.push(self.stamped(id, key, json!({ "userId": u }))?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct_per_event() {
        let chat = Uuid::new_v4();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let first = AtVersion::new(chat, 7).chat(None, &[b], &[a]).unwrap();
        let again = AtVersion::new(chat, 7).chat(None, &[b], &[a]).unwrap();
        let ids: Vec<_> = first.iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids, again.iter().map(|e| e.id.clone()).collect::<Vec<_>>());
        assert_eq!(first.len(), 2);
        assert_ne!(ids[0], ids[1]);
        assert_eq!(first[0].key, MEMBER_ADDED);
        let v: Value = serde_json::from_slice(&first[1].body).unwrap();
        assert_eq!(v["type"], "member.removed");
        assert_eq!(v["data"]["userId"], a.to_string());
        assert_eq!(v["version"], 7);
    }
}
