//! Full-text search over the messages of the chats a user currently takes part in:
//! `websearch_to_tsquery('simple', q)` against the stored `messages.search` tsvector
//! (GIN index on `(chat_id, search)`), best match first, keyset-paginated, with an
//! HTML-safe `ts_headline` snippet per result.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::messages::{MessageRow, message_row};
use crate::domain::message::Message;

/// Where a page ends, in the order of the results: rank descending, then newest
/// first (`sent_at`, then `id`, descending). The next page starts strictly after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Key {
    /// `ts_rank` as PostgreSQL computed it (a `real`, compared exactly).
    pub rank: f32,
    pub sent_at: DateTime<Utc>,
    pub id: Uuid,
}

/// One result: the message as history shows it to the reader, and the snippet.
#[derive(Debug, Clone)]
pub struct Hit {
    pub message: Message,
    /// HTML-escaped content (all of it when short, else fragments around the
    /// matches), each match in `<mark>…</mark>`.
    pub snippet: String,
    pub key: Key,
}

/// The statement (`search.sql`, beside this file): the bench prepares and explains
/// the same text.
pub const SQL: &str = include_str!("search.sql");

/// Messages up to this many characters are shown whole in their snippet (the `300`
/// of `search.sql`).
pub const WHOLE_SNIPPET_CHARS: usize = 300;

/// The messages of `viewer`'s chats (only `chat` when given) matching `query` in
/// web-search syntax, after `after`; at most `limit`, with whether more follow.
/// Membership is read in the same statement, so a removed participant finds nothing
/// of that chat from the moment the removal committed.
pub async fn search(
    pool: &PgPool,
    viewer: Uuid,
    query: &str,
    chat: Option<Uuid>,
    after: Option<Key>,
    limit: i64,
) -> Result<(Vec<Hit>, bool), sqlx::Error> {
    let mut rows = sqlx::query_file!(
        "src/db/search.sql",
        viewer,
        query,
        chat,
        after.map(|k| k.rank),
        after.map(|k| k.sent_at),
        after.map(|k| k.id),
        limit + 1,
    )
    .fetch_all(pool)
    .await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let mut extra: HashMap<Uuid, (Key, String)> = HashMap::with_capacity(rows.len());
    let mut plain: Vec<MessageRow> = Vec::with_capacity(rows.len());
    for r in rows {
        let key = Key {
            rank: r.rank,
            sent_at: r.key_at,
            id: r.id,
        };
        extra.insert(r.id, (key, r.snippet));
        plain.push(message_row!(r));
    }
    // Hydrated as history reads them (reactions with `me`, status, reply excerpts).
    let messages = super::history::hydrate(pool, Some(viewer), plain).await?;
    let hits = messages
        .into_iter()
        .filter_map(|message| {
            let (key, snippet) = extra.remove(&message.id)?;
            Some(Hit {
                message,
                snippet,
                key,
            })
        })
        .collect();
    Ok((hits, has_more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_shows_short_messages_whole_up_to_the_constant() {
        assert!(SQL.contains(&format!(
            "char_length(m.content) <= {WHOLE_SNIPPET_CHARS}\n"
        )));
    }
}
