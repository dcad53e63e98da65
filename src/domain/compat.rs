//! The chat-be compatibility profile (`API_COMPAT=chat-be`): the reference NestJS
//! backend's shapes of Courier's records (uppercase enums, `createdAt`/`updatedAt`,
//! e-mail accounts). Pure functions: the API adapters and the worker both use them.

use serde_json::{Value, json};

use super::message::Message;

/// Which wire surface a deployment serves (`API_COMPAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiCompat {
    /// Courier's own API (`API_COMPAT` unset or empty).
    #[default]
    Off,
    /// The reference backend's routes and shapes (`API_COMPAT=chat-be`).
    ChatBe,
}

impl ApiCompat {
    /// Parses `API_COMPAT`: "" or "chat-be" (case-insensitive).
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "" => Ok(Self::Off),
            "chat-be" => Ok(Self::ChatBe),
            other => Err(format!("must be empty or \"chat-be\", not {other:?}")),
        }
    }
}

/// RFC 3339 with milliseconds, as the reference backend's `toISOString()`.
pub use super::time::format as iso;

/// `TEXT`, `ATTACHMENT` (files and no text) or `MIXED` (both).
pub fn message_type(m: &Message) -> &'static str {
    match (m.attachments.is_empty(), m.content.is_empty()) {
        (true, _) => "TEXT",
        (false, true) => "ATTACHMENT",
        (false, false) => "MIXED",
    }
}

/// A message in the reference shape: Courier's Message v2 with `messageType` and
/// `status` uppercase, and `createdAt` (= `sentAt`) and `updatedAt` (the last edit or
/// deletion, else `sentAt`) added. Courier's other fields stay, as extras.
pub fn message(m: &Message) -> serde_json::Result<Value> {
    let mut v = serde_json::to_value(m)?;
    if let Value::Object(o) = &mut v {
        let updated = m.deleted_at.or(m.edited_at).unwrap_or(m.sent_at);
        o.insert("createdAt".into(), iso(&m.sent_at).into());
        o.insert("updatedAt".into(), iso(&updated).into());
        o.insert("messageType".into(), message_type(m).into());
        o.insert("status".into(), m.status.to_ascii_uppercase().into());
    }
    Ok(v)
}

/// The payload `{chatId, message}` of `chat.message.new` and `chat.message.saved` in
/// the reference shape, serialized once for all recipients.
pub fn message_event(m: &Message) -> serde_json::Result<String> {
    serde_json::to_string(&json!({"chatId": m.chat_id, "message": message(m)?}))
}

/// The reference backend's page metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageMeta {
    pub page: i64,
    pub take: i64,
    pub item_count: i64,
    pub page_count: i64,
    pub has_previous_page: bool,
    pub has_next_page: bool,
}

impl PageMeta {
    pub fn new(page: i64, take: i64, item_count: i64) -> Self {
        let page_count = (item_count + take - 1) / take.max(1);
        Self {
            page,
            take,
            item_count,
            page_count,
            has_previous_page: page > 1,
            has_next_page: page < page_count,
        }
    }
}

/// A page request: `page` ≥ 1 (default 1), `take` 1–50 (default 10), `order`
/// `ASC` (default) or `DESC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageOptions {
    pub page: i64,
    pub take: i64,
    pub descending: bool,
}

impl PageOptions {
    pub fn parse(
        page: Option<i64>,
        take: Option<i64>,
        order: Option<&str>,
    ) -> Result<Self, String> {
        let page = page.unwrap_or(1);
        let take = take.unwrap_or(10);
        if page < 1 {
            return Err("page must not be less than 1".into());
        }
        if !(1..=50).contains(&take) {
            return Err("take must be 1 to 50".into());
        }
        let descending = match order.unwrap_or("ASC") {
            "ASC" => false,
            "DESC" => true,
            _ => return Err("order must be one of the following values: ASC, DESC".into()),
        };
        Ok(Self {
            page,
            take,
            descending,
        })
    }

    /// Rows before the page.
    pub fn skip(&self) -> i64 {
        (self.page - 1).saturating_mul(self.take)
    }
}

/// A username for an account that signs in with `email`: the local part, lower-cased,
/// other characters than `[a-z0-9_.-]` as `_`, 3 to 20 characters (`suffix`, when
/// given, is appended after a `-` to make it unique).
pub fn username_from_email(email: &str, suffix: Option<&str>) -> String {
    let local = email.split('@').next().unwrap_or_default();
    let mut name: String = local
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '.' | '-' => c,
            _ => '_',
        })
        .take(20)
        .collect();
    while name.len() < 3 {
        name.push('_');
    }
    match suffix {
        Some(s) => format!("{name}-{s}"),
        None => name,
    }
}

/// A plausible e-mail: trimmed, lower-cased, one `@` with text on both sides, a dot in
/// the domain, no spaces, at most 254 characters.
pub fn normalize_email(raw: &str) -> Option<String> {
    let e = raw.trim().to_ascii_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use uuid::Uuid;

    #[test]
    fn parses_the_variable() {
        assert_eq!(ApiCompat::parse(""), Ok(ApiCompat::Off));
        assert_eq!(ApiCompat::parse("chat-be"), Ok(ApiCompat::ChatBe));
        assert_eq!(ApiCompat::parse(" Chat-BE "), Ok(ApiCompat::ChatBe));
        assert!(ApiCompat::parse("nest").is_err());
    }

    #[test]
    fn messages_take_the_reference_shape() {
        let m = Message {
            id: Uuid::nil(),
            content: "hi".into(),
            message_type: "text".into(),
            status: "sent".into(),
            sequence: 4,
            sent_at: Utc::now(),
            ..Message::default()
        };
        let v = message(&m).unwrap();
        assert_eq!(v["messageType"], "TEXT");
        assert_eq!(v["status"], "SENT");
        assert_eq!(v["createdAt"], v["sentAt"]);
        assert_eq!(v["updatedAt"], v["sentAt"]);
        assert_eq!(v["sequence"], 4);
        let e: Value = serde_json::from_str(&message_event(&m).unwrap()).unwrap();
        assert_eq!(e["message"]["messageType"], "TEXT");
    }

    #[test]
    fn page_meta_counts_pages() {
        let m = PageMeta::new(2, 10, 25);
        assert_eq!(
            (m.page_count, m.has_previous_page, m.has_next_page),
            (3, true, true)
        );
        let m = PageMeta::new(1, 10, 0);
        assert_eq!(
            (m.page_count, m.has_previous_page, m.has_next_page),
            (0, false, false)
        );
        assert!(PageOptions::parse(Some(0), None, None).is_err());
        assert!(PageOptions::parse(None, Some(51), None).is_err());
        assert!(PageOptions::parse(None, None, Some("asc")).is_err());
        assert_eq!(
            PageOptions::parse(Some(3), Some(5), Some("DESC"))
                .unwrap()
                .skip(),
            10
        );
    }

    #[test]
    fn usernames_and_emails() {
        assert_eq!(username_from_email("Jane.Doe+x@ex.com", None), "jane.doe_x");
        assert_eq!(username_from_email("a@b.co", Some("1f")), "a__-1f");
        assert_eq!(
            username_from_email(&format!("{}@b.co", "x".repeat(40)), None).len(),
            20
        );
        assert_eq!(normalize_email(" A@B.co "), Some("a@b.co".into()));
        for bad in ["a", "@b.co", "a@b", "a b@c.de", "a@b.c@d.e"] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }
}
