//! Messages: the persisted record, the command carried through the broker, and content rules.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const MAX_CONTENT_CHARS: usize = 4000;
pub const CONTENT_RULE: &str = "content must be 1 to 4000 characters";
pub const CONTENT_NUL_RULE: &str = "content must not contain NUL characters";

/// The message a reply answers, with the first 100 characters of its current content.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplyTo {
    pub id: Uuid,
    pub sender_id: Uuid,
    /// The first 100 characters ("" once the original is deleted).
    pub excerpt: String,
}

/// Where a forwarded message came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForwardedFrom {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub sender_id: Uuid,
}

/// One emoji's reactions on a message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Reaction {
    pub emoji: String,
    pub count: i64,
    /// Whether the reading (or receiving) user is among them.
    pub me: bool,
}

/// The incoming webhook a message was posted through.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bot {
    pub hook_id: Uuid,
    pub name: String,
}

/// How long an excerpt of a replied-to message is, in characters.
pub const EXCERPT_CHARS: usize = 100;

/// The first `EXCERPT_CHARS` characters of a content.
pub fn excerpt(content: &str) -> String {
    content.chars().take(EXCERPT_CHARS).collect()
}

/// A persisted message, as the contract shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub sender_id: Uuid,
    pub client_message_id: Uuid,
    /// Up to 4000 characters; "" on a tombstone and on a message with only attachments.
    #[schema(max_length = 4000, example = "Hello")]
    pub content: String,
    /// Always "text".
    #[schema(example = "text")]
    pub message_type: String,
    /// The sender's view: `read` once every other participant read it, else
    /// `delivered` once every other participant received it, else `sent`.
    #[schema(example = "sent")]
    pub status: String,
    /// How many of the other participants received it.
    pub delivered_count: i64,
    /// How many of the other participants read it.
    pub read_count: i64,
    /// Position in the chat: 1, 2, 3, ... without gaps.
    #[schema(minimum = 1)]
    pub sequence: i64,
    /// RFC 3339, UTC, with milliseconds.
    #[serde(with = "super::time")]
    pub sent_at: DateTime<Utc>,
    /// When the content was last edited.
    #[serde(with = "super::time::option")]
    #[schema(required = true)]
    pub edited_at: Option<DateTime<Utc>>,
    /// Set on a tombstone: the content is "" and reactions, attachments, mentions empty.
    #[serde(with = "super::time::option")]
    #[schema(required = true)]
    pub deleted_at: Option<DateTime<Utc>>,
    /// `"moderator"` on a tombstone an admin made (`DELETE /admin/messages/:id`); absent
    /// otherwise (a delete by the sender or a group's owner or admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<super::moderation::DeletedBy>,
    #[schema(required = true)]
    pub reply_to: Option<ReplyTo>,
    #[schema(required = true)]
    pub forwarded_from: Option<ForwardedFrom>,
    /// Per emoji, oldest first; `me` for the reading user.
    pub reactions: Vec<Reaction>,
    /// Mentioned participants: `@username`, and everyone else for `@all` in a group.
    pub mentions: Vec<Uuid>,
    /// Set when an incoming webhook posted it (`senderId` is then the hook's id).
    #[schema(required = true)]
    pub bot: Option<Bot>,
    /// Files, in the order the send listed them; each `url` minted for this read.
    pub attachments: Vec<super::attachment::Attachment>,
    /// `true` for a user who blocked the sender (the UI may fold the message); absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blocked_sender: bool,
}

/// Trims and checks message content; returns the content to store.
pub fn normalize_content(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    let n = trimmed.chars().count();
    if n == 0 || n > MAX_CONTENT_CHARS {
        return Err(CONTENT_RULE);
    }
    if trimmed.contains('\0') {
        return Err(CONTENT_NUL_RULE);
    }
    Ok(trimmed.to_string())
}

/// What the API publishes to a partition queue and the worker consumes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SendCommand {
    pub broker_message_id: Uuid,
    pub chat_id: Uuid,
    pub sender_id: Uuid,
    pub client_message_id: Uuid,
    pub content: String,
    #[serde(with = "super::time")]
    pub accepted_at: DateTime<Utc>,
    /// The message answered (same chat), with its excerpt when the send was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyTo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_from: Option<ForwardedFrom>,
    /// Set when an incoming webhook posts: the sender is the hook, not a participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<Bot>,
    /// Checked uploads (`url` empty); `content` may then be "".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<super::attachment::Attachment>,
}

/// Why a command from the queue can never be persisted (it goes to the DLQ at once).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed payload: {0}")]
    Malformed(String),
    #[error("chat does not exist")]
    ChatGone,
    #[error("sender is not a participant of the chat")]
    NotParticipant,
    #[error("no such message in the chat")]
    MessageGone,
    #[error("the actor may not do this")]
    Forbidden,
    /// The sender (or actor) was banned before the worker persisted the command; the
    /// ban's reason travels with the dead letter.
    #[error("sender is banned: {0}")]
    Banned(String),
}

impl Rejection {
    /// Short stable reason for DLQ headers.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::ChatGone => "chat_gone",
            Self::NotParticipant => "not_participant",
            Self::MessageGone => "message_gone",
            Self::Forbidden => "forbidden",
            Self::Banned(_) => "banned",
        }
    }

    /// The ban's reason, for a command dropped because its sender is banned.
    pub fn ban_reason(&self) -> Option<&str> {
        match self {
            Self::Banned(reason) => Some(reason),
            _ => None,
        }
    }
}

impl SendCommand {
    /// Parses a queue payload and re-checks the content rules (the queue is not trusted).
    pub fn parse(body: &[u8]) -> Result<Self, Rejection> {
        let cmd: SendCommand =
            serde_json::from_slice(body).map_err(|e| Rejection::Malformed(e.to_string()))?;
        if cmd.attachments.len() > super::attachment::MAX_ATTACHMENTS {
            return Err(Rejection::Malformed("too many attachments".into()));
        }
        if cmd.content.is_empty() && !cmd.attachments.is_empty() {
            return Ok(cmd);
        }
        let content =
            normalize_content(&cmd.content).map_err(|e| Rejection::Malformed(e.into()))?;
        if content != cmd.content {
            return Err(Rejection::Malformed("content is not normalized".into()));
        }
        Ok(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_trimmed_and_bounded() {
        assert_eq!(normalize_content("  hi \n").unwrap(), "hi");
        assert!(normalize_content("   ").is_err());
        assert!(normalize_content("").is_err());
        assert!(
            normalize_content(&"é".repeat(4000)).is_ok(),
            "counts characters, not bytes"
        );
        assert!(normalize_content(&"a".repeat(4001)).is_err());
        assert_eq!(normalize_content("a\0b"), Err(CONTENT_NUL_RULE));
    }

    #[test]
    fn commands_round_trip_and_reject_garbage() {
        let cmd = SendCommand {
            broker_message_id: Uuid::new_v4(),
            chat_id: Uuid::new_v4(),
            sender_id: Uuid::new_v4(),
            client_message_id: Uuid::new_v4(),
            content: "hello".into(),
            accepted_at: Utc::now(),
            reply_to: None,
            forwarded_from: None,
            bot: None,
            attachments: Vec::new(),
        };
        let bytes = serde_json::to_vec(&cmd).unwrap();
        assert_eq!(
            SendCommand::parse(&bytes).unwrap().client_message_id,
            cmd.client_message_id
        );
        assert!(matches!(
            SendCommand::parse(b"{nope"),
            Err(Rejection::Malformed(_))
        ));
        let mut bad = serde_json::to_value(&cmd).unwrap();
        bad["content"] = "".into();
        let err = SendCommand::parse(&serde_json::to_vec(&bad).unwrap()).unwrap_err();
        assert_eq!(err.reason(), "malformed");
    }

    #[test]
    fn sent_at_has_milliseconds() {
        let m = Message {
            id: Uuid::nil(),
            chat_id: Uuid::nil(),
            sender_id: Uuid::nil(),
            client_message_id: Uuid::nil(),
            content: "x".into(),
            message_type: "text".into(),
            status: "sent".into(),
            delivered_count: 0,
            read_count: 0,
            sequence: 1,
            sent_at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678901Z")
                .unwrap()
                .into(),
            ..Message::default()
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["sentAt"], "2026-01-02T03:04:05.678Z");
        assert_eq!(v["clientMessageId"], Uuid::nil().to_string());
        for empty in ["editedAt", "deletedAt", "replyTo", "forwardedFrom"] {
            assert!(v[empty].is_null(), "{empty} present and null");
        }
        assert_eq!(v["reactions"], serde_json::json!([]));
        assert_eq!(v["mentions"], serde_json::json!([]));
        assert_eq!(v["attachments"], serde_json::json!([]));
    }
}
