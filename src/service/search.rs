//! Searching messages: the caller's chats only (or one of them), web-search syntax,
//! best match first, with opaque keyset cursors (rank, time, id) that page without
//! duplicates or gaps.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use chrono::DateTime;
use serde::Serialize;
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult, require_member};
use crate::{
    db::{self, search::Key},
    domain::message::Message,
};

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Results per page when the client names no limit.
pub const DEFAULT_LIMIT: i64 = 20;
/// Most results per page.
pub const MAX_LIMIT: i64 = 100;

/// A search as the client asked for it.
#[derive(Debug, Clone, Default)]
pub struct SearchInput {
    pub q: String,
    pub chat_id: Option<Uuid>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// One result: the message (Message v2, as history shows it to the caller) and a
/// snippet of its content around the matches.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    pub message: Message,
    /// HTML-safe: the content's `& < > " '` are escaped as entities, and each match
    /// is wrapped in `<mark>` … `</mark>` (up to two fragments, joined by " … ").
    #[schema(example = "can we <mark>deploy</mark> on friday")]
    pub snippet: String,
}

/// A page of results.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SearchPage)]
pub struct SearchPage {
    /// Best match first; equally good matches newest first.
    pub results: Vec<SearchResult>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Searches the messages of the chats `me` takes part in now.
pub async fn messages(ctx: &Ctx, me: Uuid, input: SearchInput) -> ServiceResult<SearchPage> {
    let q = input.q.trim();
    if q.is_empty() {
        return Err(invalid("q is required"));
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(invalid("q must be at most 200 characters"));
    }
    if q.contains('\0') {
        return Err(invalid("q must not contain NUL characters"));
    }
    let limit = input.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid("limit must be 1 to 100"));
    }
    let after = match input.cursor.as_deref() {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| invalid("cursor is not valid"))?),
    };
    if let Some(chat) = input.chat_id {
        require_member(&ctx.pool, chat, me).await?;
    }
    let (hits, has_more) =
        db::search::search(&ctx.pool, me, q, input.chat_id, after, limit).await?;
    let next_cursor = if has_more {
        hits.last().map(|h| encode_cursor(&h.key))
    } else {
        None
    };
    let (mut messages, snippets): (Vec<Message>, Vec<String>) =
        hits.into_iter().map(|h| (h.message, h.snippet)).unzip();
    // Attachment URLs are minted per read, as history does.
    super::uploads::sign(&ctx.storage, &mut messages).await?;
    let results = messages
        .into_iter()
        .zip(snippets)
        .map(|(message, snippet)| SearchResult { message, snippet })
        .collect();
    Ok(SearchPage {
        results,
        next_cursor,
    })
}

fn invalid(msg: &str) -> ServiceError {
    ServiceError::Invalid(msg.into())
}

/// Cursor layout version (the first byte).
const CURSOR_V1: u8 = 1;
/// Version, rank (f32 bits), sent_at (µs since the epoch), id.
const CURSOR_LEN: usize = 1 + 4 + 8 + 16;

/// The opaque cursor after `key`: base64url of version, rank, time and id.
pub fn encode_cursor(key: &Key) -> String {
    let mut bytes = Vec::with_capacity(CURSOR_LEN);
    bytes.push(CURSOR_V1);
    bytes.extend_from_slice(&key.rank.to_bits().to_be_bytes());
    bytes.extend_from_slice(&key.sent_at.timestamp_micros().to_be_bytes());
    bytes.extend_from_slice(key.id.as_bytes());
    B64.encode(bytes)
}

/// The key a cursor names, or `None` if it is not one this server made.
pub fn decode_cursor(cursor: &str) -> Option<Key> {
    if cursor.len() > 64 {
        return None;
    }
    let bytes = B64.decode(cursor).ok()?;
    if bytes.len() != CURSOR_LEN || bytes[0] != CURSOR_V1 {
        return None;
    }
    let rank = f32::from_bits(u32::from_be_bytes(bytes[1..5].try_into().ok()?));
    if !rank.is_finite() || rank < 0.0 {
        return None;
    }
    let micros = i64::from_be_bytes(bytes[5..13].try_into().ok()?);
    let sent_at = DateTime::from_timestamp_micros(micros)?;
    let id = Uuid::from_slice(&bytes[13..]).ok()?;
    Some(Key { rank, sent_at, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key {
            rank: 0.0607927,
            sent_at: DateTime::from_timestamp_micros(1_764_512_345_678_901).unwrap(),
            id: Uuid::now_v7(),
        }
    }

    #[test]
    fn cursors_round_trip_exactly() {
        let k = key();
        let c = encode_cursor(&k);
        assert!(
            c.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        let back = decode_cursor(&c).unwrap();
        assert_eq!(back, k);
        assert_eq!(back.rank.to_bits(), k.rank.to_bits());
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let good = encode_cursor(&key());
        for bad in [
            "",
            "x",
            "!!!!",
            &good[..good.len() - 1],
            &format!("{good}AA"),
            &B64.encode([2u8; CURSOR_LEN]),
            &B64.encode({
                let mut b = vec![CURSOR_V1];
                b.extend_from_slice(&f32::NAN.to_bits().to_be_bytes());
                b.extend_from_slice(&[0; 24]);
                b
            }),
            &B64.encode({
                let mut b = vec![CURSOR_V1, 0, 0, 0, 0];
                b.extend_from_slice(&i64::MAX.to_be_bytes());
                b.extend_from_slice(&[0; 16]);
                b
            }),
            &"A".repeat(100),
        ] {
            assert!(decode_cursor(bad).is_none(), "{bad:?}");
        }
    }
}
