//! The message lifecycle and chat changes: the commands carried through a chat's
//! partition beside sends, who may do what, and the effects the worker announces.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    chat::{ChatType, Role},
    message::{Rejection, SendCommand, normalize_content},
    moderation::DeletedBy,
};

/// Most distinct reactions on one message.
pub const MAX_REACTIONS: i64 = 20;
pub const EMOJI_RULE: &str = "emoji must be one emoji or a shortcode of 1 to 32 of [a-z0-9_+-]";

/// A lifecycle command: who does what in which chat. `commandId` is the broker message
/// id, by which a redelivery is recognised.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleCommand {
    pub command_id: Uuid,
    pub chat_id: Uuid,
    pub actor_id: Uuid,
    #[serde(flatten)]
    pub op: Op,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Op {
    Edit {
        message_id: Uuid,
        content: String,
    },
    Delete {
        message_id: Uuid,
    },
    /// A moderator's delete (`DELETE /admin/messages/:id`): the actor is a global admin,
    /// not necessarily a participant.
    ModeratorDelete {
        message_id: Uuid,
    },
    React {
        message_id: Uuid,
        emoji: String,
        add: bool,
    },
    Pin {
        message_id: Uuid,
        pinned: bool,
    },
    /// A chat change the API committed (created, renamed, participants or roles):
    /// announce `chat.updated` to the participants and `chat.removed` to `removed`.
    ChatChanged {
        removed: Vec<Uuid>,
        /// Users who became participants (for the integration events).
        #[serde(default)]
        added: Vec<Uuid>,
    },
}

impl Op {
    /// The message the operation is about, if any.
    pub fn message_id(&self) -> Option<Uuid> {
        match self {
            Op::Edit { message_id, .. }
            | Op::Delete { message_id }
            | Op::ModeratorDelete { message_id }
            | Op::React { message_id, .. }
            | Op::Pin { message_id, .. } => Some(*message_id),
            Op::ChatChanged { .. } => None,
        }
    }
}

impl LifecycleCommand {
    /// The announcement of a chat change by `actor` (`added`: new participants,
    /// `removed`: users no longer in it).
    pub fn chat_changed(chat: Uuid, actor: Uuid, added: Vec<Uuid>, removed: Vec<Uuid>) -> Self {
        Self {
            command_id: Uuid::now_v7(),
            chat_id: chat,
            actor_id: actor,
            op: Op::ChatChanged { removed, added },
        }
    }
}

/// Anything a partition carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Send(SendCommand),
    Lifecycle(LifecycleCommand),
}

impl Command {
    /// Parses a queue payload: a lifecycle command names its `kind`, a send does not.
    /// The rules are checked again (the queue is not trusted).
    pub fn parse(body: &[u8]) -> Result<Self, Rejection> {
        #[derive(Deserialize)]
        struct Peek {
            kind: Option<serde::de::IgnoredAny>,
        }
        let peek: Peek =
            serde_json::from_slice(body).map_err(|e| Rejection::Malformed(e.to_string()))?;
        if peek.kind.is_none() {
            return SendCommand::parse(body).map(Command::Send);
        }
        let cmd: LifecycleCommand =
            serde_json::from_slice(body).map_err(|e| Rejection::Malformed(e.to_string()))?;
        match &cmd.op {
            Op::Edit { content, .. } => match normalize_content(content) {
                Ok(c) if c == *content => {}
                _ => return Err(Rejection::Malformed("content is not normalized".into())),
            },
            Op::React { emoji, .. } if validate_emoji(emoji).is_err() => {
                return Err(Rejection::Malformed(EMOJI_RULE.into()));
            }
            _ => {}
        }
        Ok(Command::Lifecycle(cmd))
    }
}

/// One emoji (with its variation and skin-tone modifiers) or a shortcode `[a-z0-9_+-]{1,32}`.
pub fn validate_emoji(e: &str) -> Result<(), &'static str> {
    let shortcode = (1..=32).contains(&e.len())
        && e.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_+-".contains(&b));
    if shortcode || emojis::get(e).is_some() {
        Ok(())
    } else {
        Err(EMOJI_RULE)
    }
}

/// Only the sender edits, within the window.
pub fn may_edit(
    actor: Uuid,
    sender: Uuid,
    sent_at: DateTime<Utc>,
    window: std::time::Duration,
    now: DateTime<Utc>,
) -> Result<(), EditDenied> {
    if actor != sender {
        return Err(EditDenied::NotSender);
    }
    let window = Duration::from_std(window).unwrap_or(Duration::MAX);
    match sent_at.checked_add_signed(window) {
        Some(end) if end < now => Err(EditDenied::WindowClosed),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditDenied {
    NotSender,
    WindowClosed,
}

/// The sender deletes; so does an owner or admin of a group.
pub fn may_delete(actor: Uuid, sender: Uuid, kind: ChatType, role: Role) -> bool {
    actor == sender || (kind == ChatType::Group && role.can_manage())
}

/// Any participant of a direct chat pins; an owner or admin of a group.
pub fn may_pin(kind: ChatType, role: Role) -> bool {
    kind == ChatType::Direct || role.can_manage()
}

/// What an applied command changed, as announced. Stored with the command, so a
/// redelivery is announced again rather than applied again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Effect {
    Updated {
        message_id: Uuid,
        /// Users the edit mentioned for the first time (they got a notification).
        #[serde(default)]
        notified: Vec<Uuid>,
    },
    Deleted {
        message_id: Uuid,
        sequence: i64,
        /// Set when a moderator deleted it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deleted_by: Option<DeletedBy>,
    },
    Reaction {
        message_id: Uuid,
        emoji: String,
        user_id: Uuid,
        added: bool,
        count: i64,
    },
    Pins {
        message_id: Uuid,
        pinned: bool,
        user_id: Uuid,
    },
    Chat {
        removed: Vec<Uuid>,
        #[serde(default)]
        added: Vec<Uuid>,
    },
}

/// The effects of one command, each with its place in the chat's version order.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Applied {
    pub effects: Vec<(i64, Effect)>,
}

/// `chat.message.deleted`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ChatMessageDeletedEvent)]
pub struct Deleted {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub sequence: i64,
    /// `"moderator"` when an admin deleted it (`DELETE /admin/messages/:id`); absent
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<DeletedBy>,
}

/// `chat.reaction.updated`: `count` is the emoji's count after the change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ChatReactionUpdatedEvent)]
pub struct ReactionUpdated {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub emoji: String,
    pub user_id: Uuid,
    pub added: bool,
    pub count: i64,
}

/// `chat.pins.updated`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ChatPinsUpdatedEvent)]
pub struct PinsUpdated {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub pinned: bool,
    pub user_id: Uuid,
}

/// `chat.updated`: the chat after a creation, rename, or participant or role change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ChatUpdatedEvent)]
pub struct ChatUpdated {
    pub chat: super::chat::Chat,
}

/// `chat.removed`: to a participant who was removed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ChatRemovedEvent)]
pub struct ChatRemoved {
    pub chat_id: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emojis_and_shortcodes() {
        for ok in [
            "👍",
            "❤️",
            "👍🏽",
            "🇫🇷",
            "thumbs_up",
            "+1",
            "a",
            &"x".repeat(32),
        ] {
            assert!(validate_emoji(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "👍👍",
            "Thumbs",
            "a b",
            "a/b",
            &"x".repeat(33),
            "<script>",
        ] {
            assert!(validate_emoji(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn edit_rules() {
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        let now = Utc::now();
        let day = std::time::Duration::from_secs(86400);
        assert_eq!(may_edit(me, me, now, day, now), Ok(()));
        assert_eq!(
            may_edit(other, me, now, day, now),
            Err(EditDenied::NotSender)
        );
        let old = now - Duration::seconds(86401);
        assert_eq!(
            may_edit(me, me, old, day, now),
            Err(EditDenied::WindowClosed)
        );
    }

    #[test]
    fn delete_and_pin_rules() {
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(may_delete(me, me, ChatType::Direct, Role::Member));
        assert!(!may_delete(me, other, ChatType::Direct, Role::Member));
        assert!(may_delete(me, other, ChatType::Group, Role::Admin));
        assert!(!may_delete(me, other, ChatType::Group, Role::Member));
        assert!(may_pin(ChatType::Direct, Role::Member));
        assert!(!may_pin(ChatType::Group, Role::Member));
        assert!(may_pin(ChatType::Group, Role::Owner));
    }

    #[test]
    fn commands_parse_by_kind() {
        let cmd = LifecycleCommand {
            command_id: Uuid::new_v4(),
            chat_id: Uuid::new_v4(),
            actor_id: Uuid::new_v4(),
            op: Op::React {
                message_id: Uuid::new_v4(),
                emoji: "👍".into(),
                add: true,
            },
        };
        let bytes = serde_json::to_vec(&cmd).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["kind"], "react");
        assert!(v["messageId"].is_string());
        assert_eq!(Command::parse(&bytes), Ok(Command::Lifecycle(cmd.clone())));
        let mut bad = v.clone();
        bad["emoji"] = "no way".into();
        assert!(Command::parse(&serde_json::to_vec(&bad).unwrap()).is_err());
        let mut edit = v;
        edit["kind"] = "edit".into();
        edit["content"] = " padded ".into();
        assert!(Command::parse(&serde_json::to_vec(&edit).unwrap()).is_err());
        assert!(matches!(
            Command::parse(br#"{"kind":"nope"}"#),
            Err(Rejection::Malformed(_))
        ));
    }
}
