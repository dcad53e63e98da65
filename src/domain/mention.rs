//! Mentions and notifications: which participants a message's `@username` and `@all`
//! name, and the notification each mentioned user gets. No I/O.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::message::{Message, excerpt};

/// The only notification type so far.
pub const TYPE_MENTION: &str = "mention";

/// A mention notification, as `GET /notifications` and `notification.new` show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: Uuid,
    /// Always "mention".
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    #[schema(example = "mention")]
    pub kind: String,
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub sender_id: Uuid,
    /// The first 100 characters of the message when it mentioned the user.
    pub excerpt: String,
    #[serde(with = "super::time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "super::time::option")]
    #[schema(required = true)]
    pub read_at: Option<DateTime<Utc>>,
}

/// The payload of `notification.new`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = NotificationNewEvent)]
pub struct NotificationEvent<'a> {
    pub notification: &'a Notification,
}

/// The id of the notification `message` gives `user`: derived from both, so the same
/// mention can never notify twice (redeliveries, edits that re-add it).
pub fn notification_id(message: Uuid, user: Uuid) -> Uuid {
    Uuid::new_v5(&message, user.as_bytes())
}

/// What a text names: the lowercased usernames after `@`, and whether `@all` is among them.
#[derive(Debug, Default, PartialEq)]
pub struct Named {
    pub usernames: Vec<String>,
    pub all: bool,
}

fn username_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Finds `@name` tokens: an `@` at the start or after a character that cannot be part
/// of a username (so `bob@example.com` names nobody), then 3 to 32 username
/// characters; a trailing `.` or `-` ends the sentence, not the name.
pub fn parse(content: &str) -> Named {
    let mut named = Named::default();
    let mut prev: Option<char> = None;
    for (i, c) in content.char_indices() {
        let at_start = prev.is_none_or(|p| !username_char(p) && p != '@');
        prev = Some(c);
        if c != '@' || !at_start {
            continue;
        }
        let rest = &content[i + 1..];
        let len = rest.find(|c: char| !username_char(c)).unwrap_or(rest.len());
        let name = rest[..len]
            .trim_end_matches(['.', '-'])
            .to_ascii_lowercase();
        if (3..=32).contains(&name.len()) {
            if name == "all" {
                named.all = true;
            } else if !named.usernames.contains(&name) {
                named.usernames.push(name);
            }
        }
    }
    named
}

/// The participants `content` mentions, in participant order: each named participant,
/// and with `@all` in a group every participant but the sender. A participant named
/// "all" is mentioned by `@all` in a direct chat.
pub fn resolve(
    content: &str,
    group: bool,
    sender: Uuid,
    participants: &[(Uuid, String)],
) -> Vec<Uuid> {
    if !content.contains('@') {
        return Vec::new();
    }
    let named = parse(content);
    participants
        .iter()
        .filter(|(id, name)| {
            named.usernames.iter().any(|n| n == name)
                || (named.all && group && *id != sender)
                || (named.all && !group && name == "all")
        })
        .map(|(id, _)| *id)
        .collect()
}

/// The notifications a new message gives the users it mentions (as stored with it).
pub fn notifications(m: &Message) -> impl Iterator<Item = (Uuid, Notification)> + '_ {
    notified(&m.mentions, m.sender_id).map(|user| {
        let n = Notification {
            id: notification_id(m.id, user),
            kind: TYPE_MENTION.into(),
            chat_id: m.chat_id,
            message_id: m.id,
            sender_id: m.sender_id,
            excerpt: excerpt(&m.content),
            created_at: m.sent_at,
            read_at: None,
        };
        (user, n)
    })
}

/// Who gets a notification for `mentions`: everyone mentioned but the sender.
pub fn notified(mentions: &[Uuid], sender: Uuid) -> impl Iterator<Item = Uuid> + '_ {
    mentions.iter().copied().filter(move |u| *u != sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        parse(s).usernames
    }

    #[test]
    fn finds_usernames_and_all() {
        assert_eq!(names("hi @bob and @Alice."), vec!["bob", "alice"]);
        assert_eq!(names("@bob, @bob!"), vec!["bob"]);
        assert!(parse("ping @all now").all);
        assert_eq!(names("mail bob@example.com"), Vec::<String>::new());
        assert_eq!(names("@@bob @ab @x.y-z"), vec!["x.y-z"]);
        assert_eq!(names("(@carol) @dave-"), vec!["carol", "dave"]);
        assert_eq!(names(&format!("@{}", "a".repeat(33))), Vec::<String>::new());
    }

    #[test]
    fn resolves_only_participants() {
        let (s, a, b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ps = vec![(s, "sam".to_string()), (a, "ann".into()), (b, "bea".into())];
        assert_eq!(resolve("hey @ann @zed", true, s, &ps), vec![a]);
        assert_eq!(resolve("@all", true, s, &ps), vec![a, b]);
        assert_eq!(resolve("@all", false, s, &ps), Vec::<Uuid>::new());
        assert_eq!(resolve("@sam note to self", true, s, &ps), vec![s]);
        assert_eq!(notified(&[s, a], s).collect::<Vec<_>>(), vec![a]);
    }

    #[test]
    fn notification_ids_are_stable_per_message_and_user() {
        let (m, u) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(notification_id(m, u), notification_id(m, u));
        assert_ne!(notification_id(m, u), notification_id(u, m));
    }
}
