//! Chats, participants and their roles.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum ChatType {
    Direct,
    Group,
}

#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn can_manage(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// Who creates and deletes a chat's incoming webhooks: any participant of a direct
/// chat, an owner or admin of a group.
pub fn may_manage_hooks(kind: ChatType, role: Role) -> bool {
    kind == ChatType::Direct || role.can_manage()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub user_id: Uuid,
    pub role: Role,
    /// RFC 3339, UTC, with milliseconds.
    #[serde(with = "super::time")]
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: ChatType,
    /// The group's title; null for direct chats.
    #[schema(required = true, max_length = 128)]
    pub title: Option<String>,
    pub participants: Vec<Participant>,
    /// RFC 3339, UTC, with milliseconds.
    #[serde(with = "super::time")]
    pub created_at: DateTime<Utc>,
    /// Sequence of the chat's newest message (0 while it has none).
    #[schema(minimum = 0)]
    pub last_sequence: i64,
}

/// A user's own settings of a chat (`PUT /chats/:id/settings`, event `chat.settings`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatSettings {
    /// Notifications are muted until this time (RFC 3339, UTC, with milliseconds);
    /// null when not muted. A past time is not muted either.
    #[serde(with = "super::time::option")]
    #[schema(required = true)]
    pub muted_until: Option<DateTime<Utc>>,
    /// Left out of the chat list unless `archived=true` is asked; a new message
    /// un-archives the chat unless it is muted.
    pub archived: bool,
    /// While muted, mentions of the user still send a push notification unless this
    /// is true.
    #[serde(default)]
    #[schema(required = true)]
    pub mute_mentions: bool,
}

impl ChatSettings {
    /// Whether the chat is muted at `now`.
    pub fn muted_at(&self, now: DateTime<Utc>) -> bool {
        self.muted_until.is_some_and(|t| t > now)
    }

    /// Whether a message sent at `now` may push to the user: always while the chat is
    /// not muted; while it is, only a mention of the user, unless mentions are muted too.
    pub fn pushes(&self, now: DateTime<Utc>, mentioned: bool) -> bool {
        !self.muted_at(now) || (mentioned && !self.mute_mentions)
    }
}

/// The unique key of the direct chat between two users, whatever their order.
pub fn direct_key(a: Uuid, b: Uuid) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

/// Whether `actor` (with `actor_role`) may remove `target` from a group.
pub fn may_remove(actor: Uuid, actor_role: Role, target: Uuid, target_role: Role) -> bool {
    if actor == target {
        return true;
    }
    match actor_role {
        Role::Owner => true,
        Role::Admin => target_role == Role::Member,
        Role::Member => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_key_is_symmetric() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(direct_key(a, b), direct_key(b, a));
        assert_ne!(direct_key(a, b), direct_key(a, Uuid::new_v4()));
    }

    #[test]
    fn removal_rules() {
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(may_remove(me, Role::Member, me, Role::Member));
        assert!(!may_remove(me, Role::Member, other, Role::Member));
        assert!(may_remove(me, Role::Admin, other, Role::Member));
        assert!(!may_remove(me, Role::Admin, other, Role::Owner));
        assert!(may_remove(me, Role::Owner, other, Role::Admin));
    }

    #[test]
    fn chat_json_uses_contract_names() {
        let c = Chat {
            id: Uuid::nil(),
            kind: ChatType::Group,
            title: None,
            participants: vec![],
            created_at: Utc::now(),
            last_sequence: 0,
        };
        let v = serde_json::to_value(c).unwrap();
        assert_eq!(v["type"], "group");
        assert_eq!(v["lastSequence"], 0);
        assert!(v["title"].is_null());
    }

    #[test]
    fn settings_json_and_mute() {
        let now = Utc::now();
        let s = ChatSettings {
            muted_until: Some(now + chrono::Duration::minutes(1)),
            archived: true,
            mute_mentions: false,
        };
        let v = serde_json::to_value(s).unwrap();
        assert_eq!(v["archived"], true);
        assert_eq!(v["muteMentions"], false);
        assert!(v["mutedUntil"].as_str().unwrap().ends_with('Z'));
        assert!(s.muted_at(now));
        assert!(!s.muted_at(now + chrono::Duration::minutes(2)));
        let none = serde_json::to_value(ChatSettings::default()).unwrap();
        assert!(none["mutedUntil"].is_null());
        assert!(!ChatSettings::default().muted_at(now));
        assert_eq!(none["muteMentions"], false);
        let old: ChatSettings =
            serde_json::from_value(serde_json::json!({"mutedUntil": null, "archived": false}))
                .unwrap();
        assert_eq!(old, ChatSettings::default());
    }

    #[test]
    fn mentions_push_through_a_mute_unless_muted_too() {
        let now = Utc::now();
        let open = ChatSettings::default();
        assert!(open.pushes(now, false) && open.pushes(now, true));
        let muted = ChatSettings {
            muted_until: Some(now + chrono::Duration::hours(1)),
            ..Default::default()
        };
        assert!(!muted.pushes(now, false));
        assert!(muted.pushes(now, true));
        let silent = ChatSettings {
            mute_mentions: true,
            ..muted
        };
        assert!(!silent.pushes(now, true));
        assert!(silent.pushes(now + chrono::Duration::hours(2), false));
    }
}
