//! What a push notification carries (contract v3, "Push"): `{chatId, messageId, title,
//! body, unread, sentAt}`, at most [`MAX_PAYLOAD_BYTES`] of JSON. [`Payload::new`]
//! shortens a long title and body on character boundaries, ending them with "…".

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The most bytes the serialised payload may take (Web Push services accept ~4 KB of
/// ciphertext; FCM 4 KB of data).
pub const MAX_PAYLOAD_BYTES: usize = 3000;
/// What a shortened title may take of the budget (the body gets the rest).
const TITLE_BUDGET_BYTES: usize = 500;
/// Ends a shortened title or body.
pub const ELLIPSIS: char = '…';

/// A notification's content, the Web Push body and FCM data as the contract names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    /// The chat's title or the sender's name.
    pub title: String,
    /// The message excerpt.
    pub body: String,
    /// The recipient's unread count in the chat.
    pub unread: i64,
    #[serde(with = "crate::domain::time")]
    pub sent_at: DateTime<Utc>,
}

impl Payload {
    /// The payload, with `title` and `body` shortened if its JSON would exceed
    /// [`MAX_PAYLOAD_BYTES`]: first a title over its share, then the body.
    pub fn new(
        chat_id: Uuid,
        message_id: Uuid,
        title: &str,
        body: &str,
        unread: i64,
        sent_at: DateTime<Utc>,
    ) -> Self {
        let mut p = Payload {
            chat_id,
            message_id,
            title: title.to_string(),
            body: body.to_string(),
            unread,
            sent_at,
        };
        if p.json_len() <= MAX_PAYLOAD_BYTES {
            return p;
        }
        if json_str_len(title) > TITLE_BUDGET_BYTES {
            p.title = longest_fitting(title, |t| json_str_len(t) <= TITLE_BUDGET_BYTES);
        }
        let fixed = {
            let mut empty = p.clone();
            empty.body.clear();
            empty.json_len() - 2
        };
        p.body = longest_fitting(body, |b| fixed + json_str_len(b) <= MAX_PAYLOAD_BYTES);
        p
    }

    /// The JSON the push carries (Web Push: the plaintext before encryption).
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings, numbers and UUIDs always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn json_len(&self) -> usize {
        self.to_json().len()
    }
}

/// The length of `s` as a JSON string literal, quotes included.
fn json_str_len(s: &str) -> usize {
    serde_json::to_string(s).map_or(usize::MAX, |j| j.len())
}

/// `s` itself if it `fits`, otherwise the longest prefix of whole characters (trailing
/// white space dropped) followed by "…" that does; "" if not even "…" fits.
fn longest_fitting(s: &str, fits: impl Fn(&str) -> bool) -> String {
    if fits(s) {
        return s.to_string();
    }
    let ends: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
    if ends.is_empty() {
        return String::new();
    }
    let cut = |keep: usize| format!("{}{ELLIPSIS}", s[..ends[keep]].trim_end());
    // `keep` characters kept, 0..len; the JSON grows with `keep`, so bisect.
    let (mut lo, mut hi) = (0usize, ends.len());
    if !fits(&cut(0)) {
        return String::new();
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if fits(&cut(mid)) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    cut(lo)
}

#[cfg(test)]
mod tests {

    use super::*;
    use proptest::prelude::*;

    fn at() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(1_767_323_045_678).unwrap()
    }

    fn payload(title: &str, body: &str) -> Payload {
        Payload::new(Uuid::now_v7(), Uuid::now_v7(), title, body, 3, at())
    }

    #[test]
    fn serialises_to_the_contracts_camel_case_json() {
        let chat = Uuid::parse_str("0190a7e2-0000-7000-8000-000000000001").unwrap();
        let msg = Uuid::parse_str("0190a7e2-0000-7000-8000-000000000002").unwrap();
        let p = Payload::new(chat, msg, "Team", "hi \"all\"", 20, at());
        let v: serde_json::Value = serde_json::from_slice(&p.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "chatId": chat, "messageId": msg, "title": "Team", "body": "hi \"all\"",
                "unread": 20, "sentAt": "2026-01-02T03:04:05.678Z"
            })
        );
        let back: Payload = serde_json::from_slice(&p.to_json()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn a_long_body_is_cut_on_a_character_boundary_with_an_ellipsis() {
        let body = "é".repeat(5000);
        let p = payload("Alice", &body);
        assert!(p.to_json().len() <= MAX_PAYLOAD_BYTES);
        assert!(p.to_json().len() > MAX_PAYLOAD_BYTES - 4, "uses the budget");
        assert!(p.body.ends_with(ELLIPSIS));
        assert!(body.starts_with(p.body.trim_end_matches(ELLIPSIS)));
        assert_eq!(p.title, "Alice");
    }

    #[test]
    fn escapes_count_and_a_huge_title_leaves_room_for_the_body() {
        // Each control character takes 6 bytes escaped.
        let p = payload(&"\u{1}".repeat(2000), &"\"".repeat(3000));
        let json = p.to_json();
        assert!(json.len() <= MAX_PAYLOAD_BYTES, "{}", json.len());
        assert!(p.title.ends_with(ELLIPSIS) && p.title.chars().count() > 50);
        assert!(p.body.ends_with(ELLIPSIS) && p.body.len() > 500);
    }

    #[test]
    fn trailing_space_is_dropped_before_the_ellipsis() {
        // The cut moves one character per offset, so one of five lands after a space.
        for offset in 0..5 {
            let body = format!("{}{}", "x".repeat(offset), "word ".repeat(1000));
            let p = payload("t", &body);
            assert!(p.body.ends_with(ELLIPSIS));
            assert!(
                !p.body.trim_end_matches(ELLIPSIS).ends_with(' '),
                "{offset}"
            );
        }
    }

    proptest! {
        #[test]
        fn never_over_the_budget_and_only_cut_when_needed(
            title in any::<String>(),
            body in proptest::collection::vec(any::<char>(), 0..4000).prop_map(|c| c.into_iter().collect::<String>()),
            unread in any::<i64>(),
        ) {
            let p = Payload::new(Uuid::now_v7(), Uuid::now_v7(), &title, &body, unread, at());
            let json = p.to_json();
            prop_assert!(json.len() <= MAX_PAYLOAD_BYTES);
            let back: Payload = serde_json::from_slice(&json).unwrap();
            prop_assert_eq!(&back, &p);
            let whole = Payload { title: title.clone(), body: body.clone(), ..p.clone() };
            if whole.to_json().len() <= MAX_PAYLOAD_BYTES {
                prop_assert_eq!(p, whole);
            } else {
                for (cut, orig) in [(&p.title, &title), (&p.body, &body)] {
                    if cut != orig {
                        prop_assert!(cut.is_empty() || cut.ends_with(ELLIPSIS));
                        prop_assert!(orig.starts_with(cut.trim_end_matches(ELLIPSIS)));
                    }
                }
            }
        }
    }
}
