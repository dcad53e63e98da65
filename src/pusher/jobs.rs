//! What arrives on the push queue: `message.created` integration events, and the
//! pusher's own jobs (a coalesced flush coming due, a retry); and what a notification
//! says.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{db::pusher::MemberState, domain::message::Message, domain::push::Payload};

/// A job the pusher queued for itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "camelCase")]
pub enum Job {
    /// Coalesced messages wait for one more push to `device`.
    #[serde(rename_all = "camelCase")]
    Flush {
        device: Uuid,
        user: Uuid,
        chat: Uuid,
    },
    /// A push the service asked to retry.
    #[serde(rename_all = "camelCase")]
    Retry {
        device: Uuid,
        user: Uuid,
        chat: Uuid,
        /// The message whose push this is (dedupe key).
        lead: Uuid,
        /// The last sequence the notification covers.
        seq: i64,
        payload: Payload,
        urgent: bool,
        attempt: u32,
        last_error: String,
    },
}

#[derive(Debug, Deserialize)]
pub struct Created {
    pub message: Message,
}

/// An integration event the push queue is bound to.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub data: serde_json::Value,
}

/// One delivery, parsed.
#[derive(Debug)]
pub enum Incoming {
    Job(Box<Job>),
    Created(Box<Message>),
    /// Another integration event (the queue only binds `message.created`).
    Other(String),
}

pub fn parse(body: &[u8]) -> Result<Incoming, serde_json::Error> {
    let v: serde_json::Value = serde_json::from_slice(body)?;
    if v.get("job").is_some() {
        return Ok(Incoming::Job(Box::new(serde_json::from_value(v)?)));
    }
    let e: Event = serde_json::from_value(v)?;
    if e.kind != "message.created" {
        return Ok(Incoming::Other(e.kind));
    }
    let c: Created = serde_json::from_value(e.data)?;
    Ok(Incoming::Created(Box::new(c.message)))
}

/// What shows for a message without text.
const ATTACHMENT_ONLY: &str = "📎 Attachment";

/// The notification a member gets for their latest unread message in a chat:
/// a group shows its title and "Sender: text", a direct chat the sender and the text.
pub fn notification(chat: Uuid, state: &MemberState) -> Option<(Payload, i64)> {
    let l = state.latest.as_ref()?;
    let text = if l.content.is_empty() && l.has_attachments {
        ATTACHMENT_ONLY.to_string()
    } else {
        l.content.clone()
    };
    let (title, body) = if state.group {
        let title = state.title.clone().unwrap_or_else(|| "Group".to_string());
        (title, format!("{}: {text}", l.sender_name))
    } else {
        (l.sender_name.clone(), text)
    };
    let payload = Payload::new(chat, l.id, &title, &body, state.unread, l.sent_at);
    Some((payload, l.sequence))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_and_events_are_told_apart() {
        let chat = Uuid::new_v4();
        let job = Job::Flush {
            device: Uuid::new_v4(),
            user: Uuid::new_v4(),
            chat,
        };
        let body = serde_json::to_vec(&job).unwrap();
        assert!(
            matches!(parse(&body).unwrap(), Incoming::Job(j) if matches!(*j, Job::Flush { chat: c, .. } if c == chat))
        );
        let m = Message {
            chat_id: chat,
            content: "hi".into(),
            ..Default::default()
        };
        let ev = serde_json::json!({"id": "x", "type": "message.created", "chatId": chat,
            "occurredAt": "2026-12-07T00:00:00.000Z", "data": {"message": m}});
        let body = serde_json::to_vec(&ev).unwrap();
        assert!(matches!(parse(&body).unwrap(), Incoming::Created(m) if m.content == "hi"));
        let other = serde_json::json!({"type": "chat.updated", "data": {}});
        assert!(
            matches!(parse(other.to_string().as_bytes()).unwrap(), Incoming::Other(k) if k == "chat.updated")
        );
        assert!(parse(b"{}").is_err());
    }
}
