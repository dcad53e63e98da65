//! Reads tests share: a chat's newest history page as a user sees it.

use serde_json::Value;
use uuid::Uuid;

use super::{TestApp, TestUser};

/// The newest page (default size) of `chat`'s history as `user` reads it.
pub async fn history(app: &TestApp, user: &TestUser, chat: Uuid) -> Vec<Value> {
    let (s, page) = app
        .call(
            "GET",
            &format!("/chats/{chat}/messages"),
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{page}");
    page["messages"].as_array().cloned().unwrap_or_default()
}
