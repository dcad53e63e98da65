//! What the worker publishes to a gateway instance through Redis.
//!
//! One notification per gateway per worker batch: for each message, the users that
//! have sockets on that gateway. The gateway emits `chat.message.saved` to the
//! sender's sockets and `chat.message.new` to everyone else's.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::message::Message;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub message: Message,
    /// Users with at least one socket on the receiving gateway (sender included if so).
    pub users: Vec<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayNotification {
    pub deliveries: Vec<Delivery>,
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

/// The Socket.IO room that holds every local socket of a user.
pub fn user_room(user: Uuid) -> String {
    format!("user:{user}")
}
