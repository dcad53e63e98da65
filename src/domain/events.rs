//! Server → client events: their names, the offsets that make them recoverable, and
//! what a publisher hands the cache to deliver (`Outgoing`).
//!
//! Every recoverable event gets one id from a global clock, its `offset`, and is
//! appended under it to a group's timeline or to its recipients' own streams. What the
//! notification channel carries to a gateway is in [`super::gateway_push`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

pub use super::gateway_push::{Delivery, Push};
pub use super::offset::Offset;
use super::{compat::ApiCompat, message::Message};

pub const EVENT_NEW: &str = "chat.message.new";
pub const EVENT_SAVED: &str = "chat.message.saved";
pub const EVENT_STATUS: &str = "chat.message.status";
pub const EVENT_TYPING: &str = "chat.typing";
pub const EVENT_PRESENCE: &str = "presence.update";
pub const EVENT_RECOVERED: &str = "session.recovered";
/// A session was revoked: its connections get `{reason}` and are closed.
pub const EVENT_REVOKED: &str = "auth.revoked";
pub const EVENT_UPDATED: &str = "chat.message.updated";
pub const EVENT_DELETED: &str = "chat.message.deleted";
pub const EVENT_REACTION: &str = "chat.reaction.updated";
pub const EVENT_PINS: &str = "chat.pins.updated";
pub const EVENT_CHAT_UPDATED: &str = "chat.updated";
pub const EVENT_CHAT_REMOVED: &str = "chat.removed";
pub const EVENT_NOTIFICATION: &str = "notification.new";
pub const EVENT_CHAT_SETTINGS: &str = "chat.settings";
/// A user changed their profile: `{user}`, to everyone who shares a chat with them.
pub const EVENT_USER_UPDATED: &str = "user.updated";

/// One event as a gateway handles it: from a push or read back from a stream.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: Arc<str>,
    /// The payload, without `offset`.
    pub data: Arc<RawValue>,
    /// For message events: the chat and sequence they carry (delivery receipts).
    pub chat: Option<Uuid>,
    pub sequence: i64,
    /// `None` for ephemeral events (typing, presence).
    pub offset: Option<Offset>,
    /// A membership change of the recipient this (per-user) event carries.
    pub membership: Option<Membership>,
}

impl Event {
    /// The payload as the client gets it: with `"offset"` first when recoverable.
    pub fn payload(&self) -> Box<RawValue> {
        match self.offset {
            None => (*self.data).to_owned(),
            Some(offset) => with_offset(&self.data, offset),
        }
    }

    /// Message events are deduplicated by sequence, the other chat events by the
    /// chat's version: each kind has its own "highest emitted" per chat.
    pub fn is_message(&self) -> bool {
        &*self.name == EVENT_NEW || &*self.name == EVENT_SAVED
    }

    /// Whether receiving it advances the recipient's delivered mark.
    pub fn is_new_message(&self) -> bool {
        &*self.name == EVENT_NEW && self.chat.is_some()
    }
}

/// `{"a":1}` → `{"offset":"<o>","a":1}`; a payload that is not an object is wrapped.
pub fn with_offset(data: &RawValue, offset: Offset) -> Box<RawValue> {
    let raw = data.get().trim_start();
    let json = match raw.strip_prefix('{') {
        Some(rest) if rest.trim_start().starts_with('}') => format!("{{\"offset\":\"{offset}\"}}"),
        Some(rest) => format!("{{\"offset\":\"{offset}\",{rest}"),
        None => format!("{{\"offset\":\"{offset}\",\"data\":{raw}}}"),
    };
    RawValue::from_string(json).unwrap_or_else(|_| data.to_owned())
}

/// An event to publish: the payload once, the recipients with the event name each gets.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    pub data: String,
    pub chat: Option<Uuid>,
    pub sequence: i64,
    /// Recipients through their own streams, with the event name each gets.
    pub targets: Vec<(Uuid, &'static str)>,
    /// Also every member of the group `chat`, through the chat's timeline (appended once).
    pub group: Option<GroupTarget>,
    /// What this event means for its per-user `targets`' membership of `chat`.
    pub membership: Option<Membership>,
}

/// Delivery to the members of a group chat through its timeline.
#[derive(Debug, Clone)]
pub struct GroupTarget {
    /// The event name members get.
    pub name: &'static str,
    /// Members who do not get it this way: the sender (who gets `chat.message.saved`),
    /// members who get a copy of their own through `targets`.
    pub except: Vec<Uuid>,
}

/// A membership change carried by a per-user event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// The recipient just joined the group (`chat.updated`): follow its timeline.
    Joined,
    /// The recipient left or was removed (`chat.removed`): nothing more of it.
    Left,
}

impl Membership {
    /// Its code on the wire between worker and gateways (0 when none).
    pub fn code(m: Option<Self>) -> u8 {
        match m {
            None => 0,
            Some(Self::Joined) => 1,
            Some(Self::Left) => 2,
        }
    }

    /// The membership a wire code stands for.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Joined),
            2 => Some(Self::Left),
            _ => None,
        }
    }
}

impl Outgoing {
    /// `chat.message.saved` for the sender, `chat.message.new` for everyone else (a
    /// hook, which posted it, has no stream).
    pub fn message(message: &Message, audience: &[Uuid]) -> serde_json::Result<Self> {
        Self::message_in(message, audience, ApiCompat::Off)
    }

    /// Same, with the payload in a deployment's wire shape (`API_COMPAT`), serialized
    /// once for all recipients.
    pub fn message_in(
        message: &Message,
        audience: &[Uuid],
        shape: ApiCompat,
    ) -> serde_json::Result<Self> {
        let data = match shape {
            ApiCompat::Off => serde_json::to_string(&MessageEvent {
                chat_id: message.chat_id,
                message,
            })?,
            ApiCompat::ChatBe => super::compat::message_event(message)?,
        };
        let mut targets: Vec<(Uuid, &'static str)> = audience
            .iter()
            .filter(|u| **u != message.sender_id)
            .map(|u| (*u, EVENT_NEW))
            .collect();
        if message.bot.is_none() {
            targets.push((message.sender_id, EVENT_SAVED));
        }
        Ok(Self {
            data,
            chat: Some(message.chat_id),
            sequence: message.sequence,
            targets,
            ..Self::default()
        })
    }

    /// A chat event at `version` of the chat's timeline, to the given users.
    pub fn chat_event<T: Serialize>(
        name: &'static str,
        chat: Uuid,
        version: i64,
        payload: &T,
        users: impl IntoIterator<Item = Uuid>,
    ) -> serde_json::Result<Self> {
        Ok(Self {
            chat: Some(chat),
            sequence: version,
            ..Self::to_users(name, payload, users)?
        })
    }

    /// A chat event at `version` of a group's timeline, once for every member but
    /// `except` (who get their own copies, or nothing).
    pub fn to_group<T: Serialize>(
        name: &'static str,
        chat: Uuid,
        version: i64,
        payload: &T,
        except: Vec<Uuid>,
    ) -> serde_json::Result<Self> {
        Ok(Self {
            group: Some(GroupTarget { name, except }),
            ..Self::chat_event(name, chat, version, payload, [])?
        })
    }

    /// Any other event, to the given users.
    pub fn to_users<T: Serialize>(
        name: &'static str,
        payload: &T,
        users: impl IntoIterator<Item = Uuid>,
    ) -> serde_json::Result<Self> {
        Ok(Self {
            data: serde_json::to_string(payload)?,
            targets: users.into_iter().map(|u| (u, name)).collect(),
            ..Self::default()
        })
    }
}

/// The payload `{chatId, message}` of `chat.message.new`, `chat.message.saved` and
/// `chat.message.updated`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ChatMessageEvent)]
#[serde(rename_all = "camelCase")]
pub struct MessageEvent<'a> {
    pub chat_id: Uuid,
    pub message: &'a Message,
}

/// The payload of `chat.message.status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusEvent {
    pub chat_id: Uuid,
    pub user_id: Uuid,
    /// `delivered` or `read`.
    pub status: &'static str,
    pub sequence: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_order_numerically() {
        let a: Offset = "1700000000000-9".parse().unwrap();
        let b: Offset = "1700000000000-10".parse().unwrap();
        let c: Offset = "1700000000001-0".parse().unwrap();
        assert!(a < b && b < c);
        assert_eq!(b.to_string(), "1700000000000-10");
        assert_eq!(Offset::parse_or_zero(""), Some(Offset::ZERO));
        assert!("x-1".parse::<Offset>().is_err());
        assert!("12".parse::<Offset>().is_err());
    }

    #[test]
    fn offset_goes_first_in_the_payload() {
        let o = Offset::new(5, 1);
        let raw = RawValue::from_string(r#"{"chatId":"x"}"#.into()).unwrap();
        assert_eq!(
            with_offset(&raw, o).get(),
            r#"{"offset":"5-1","chatId":"x"}"#
        );
        let empty = RawValue::from_string("{ }".into()).unwrap();
        assert_eq!(with_offset(&empty, o).get(), r#"{"offset":"5-1"}"#);
        let v: serde_json::Value = serde_json::from_str(with_offset(&raw, o).get()).unwrap();
        assert_eq!(v["offset"], "5-1");
    }

    #[test]
    fn pushes_decode_into_events() {
        let chat = Uuid::new_v4();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let json = format!(
            r#"{{"d":[{{"k":1}},{{"k":2}}],"c":["{chat}",""],"s":[7,0],
               "t":[[0,"{a}","10-0","chat.message.new"],[1,"{b}","","chat.typing"]]}}"#
        );
        let events: Vec<(Uuid, Event)> = serde_json::from_str::<Push>(&json)
            .unwrap()
            .into_deliveries()
            .into_iter()
            .filter_map(|d| match d {
                Delivery::User(u, e) => Some((u, e)),
                Delivery::Group { .. } => None,
            })
            .collect();
        assert_eq!(events.len(), 2);
        let (u, e) = &events[0];
        assert_eq!(*u, a);
        assert!(e.is_new_message());
        assert_eq!((e.chat, e.sequence), (Some(chat), 7));
        assert_eq!(e.offset, Some(Offset::new(10, 0)));
        assert_eq!(events[1].1.offset, None);
        assert_eq!(events[1].1.payload().get(), r#"{"k":2}"#);
    }

    #[test]
    fn message_events_name_the_sender_apart() {
        let (s, r) = (Uuid::new_v4(), Uuid::new_v4());
        let m = Message {
            id: Uuid::nil(),
            chat_id: Uuid::nil(),
            sender_id: s,
            client_message_id: Uuid::nil(),
            content: "x".into(),
            message_type: "text".into(),
            status: "sent".into(),
            delivered_count: 0,
            read_count: 0,
            sequence: 3,
            sent_at: chrono::Utc::now(),
            ..Message::default()
        };
        let out = Outgoing::message(&m, &[s, r]).unwrap();
        assert_eq!(out.targets, vec![(r, EVENT_NEW), (s, EVENT_SAVED)]);
        assert_eq!(out.sequence, 3);
    }
}
