//! What the worker (and a read mark) publishes to a gateway instance through Redis.
//!
//! One notification per gateway: for each message, the users that have sockets on
//! that gateway. The gateway emits `chat.message.saved` to the sender's sockets and
//! `chat.message.new` to everyone else's; status changes go to the users listed.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::message::Message;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub message: Message,
    /// Users with at least one socket on the receiving gateway (sender included if so).
    pub users: Vec<Uuid>,
    /// When the API accepted the send (ms since epoch), for end-to-end latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at_ms: Option<i64>,
    /// The API request that sent it, for log correlation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The payload of `chat.message.status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusEvent {
    pub chat_id: Uuid,
    pub user_id: Uuid,
    /// `delivered` or `read`.
    pub status: String,
    pub sequence: i64,
}

impl StatusEvent {
    pub fn read(chat_id: Uuid, user_id: Uuid, sequence: i64) -> Self {
        Self {
            chat_id,
            user_id,
            status: "read".into(),
            sequence,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusDelivery {
    pub event: StatusEvent,
    pub users: Vec<Uuid>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayNotification {
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
    #[serde(default)]
    pub statuses: Vec<StatusDelivery>,
}

/// The event payload `{chatId, message}` of `chat.message.new` / `chat.message.saved`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEvent<'a> {
    pub chat_id: Uuid,
    pub message: &'a Message,
}

pub const EVENT_NEW: &str = "chat.message.new";
pub const EVENT_SAVED: &str = "chat.message.saved";
pub const EVENT_STATUS: &str = "chat.message.status";

/// The Socket.IO room that holds every local socket of a user.
pub fn user_room(user: Uuid) -> String {
    format!("user:{user}")
}
