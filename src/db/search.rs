//! Full-text search over the messages of the chats a user currently takes part in:
//! `websearch_to_tsquery('simple', q)` against the stored `messages.search` tsvector
//! (GIN index on `(chat_id, search)`), best match first, keyset-paginated, with an
//! HTML-safe `ts_headline` snippet per result.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::messages::{MESSAGE_COLUMNS, MessageRow};
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

#[derive(sqlx::FromRow)]
struct HitRow {
    #[sqlx(flatten)]
    msg: MessageRow,
    rank: f32,
    key_at: DateTime<Utc>,
    snippet: String,
}

/// The content with `& < > " '` escaped, so that the snippet's only markup is `<mark>`.
const ESCAPED: &str = "replace(replace(replace(replace(replace(m.content, '&', '&amp;'), \
     '<', '&lt;'), '>', '&gt;'), '\"', '&quot;'), '''', '&#39;')";

/// Messages up to this many characters are shown whole in their snippet.
pub const WHOLE_SNIPPET_CHARS: usize = 300;

/// `ts_headline` options for a short message (all of it) and a long one (up to two
/// fragments of 8-20 words around the matches, joined by " … ").
const WHOLE: &str = "StartSel=<mark>, StopSel=</mark>, HighlightAll=true";
const FRAGMENTS: &str = "StartSel=<mark>, StopSel=</mark>, MaxWords=20, MinWords=8, \
     MaxFragments=2, FragmentDelimiter=\" … \"";

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
    // The inner query ranks the candidates and keeps a page (plus one); only that
    // page pays for a headline (ts_headline parses the whole content again). The chat
    // filter sits in the membership subquery, so that a generic plan (prepared
    // statement) still loops over one chat, not over all of the caller's.
    let sql = format!(
        "SELECT {columns}, rank, m.sent_at AS key_at,
                CASE WHEN char_length(m.content) <= {WHOLE_SNIPPET_CHARS}
                     THEN ts_headline('simple'::regconfig, {ESCAPED}, tsq, '{WHOLE}')
                     ELSE ts_headline('simple'::regconfig, {ESCAPED}, tsq, '{FRAGMENTS}')
                END AS snippet
         FROM (
             SELECT m.*, ts_rank(m.search, q.tsq) AS rank, q.tsq
             FROM messages m, websearch_to_tsquery('simple'::regconfig, translate($2, '<>', '  ')) AS q(tsq)
             WHERE m.chat_id IN (SELECT p.chat_id FROM chat_participants p
                                  WHERE p.user_id = $1 AND ($3::uuid IS NULL OR p.chat_id = $3))
               AND m.deleted_at IS NULL
               AND m.search @@ q.tsq
               AND ($4::real IS NULL
                    OR (ts_rank(m.search, q.tsq), m.sent_at, m.id) < ($4, $5, $6))
             ORDER BY rank DESC, m.sent_at DESC, m.id DESC
             LIMIT $7
         ) m
         ORDER BY rank DESC, m.sent_at DESC, m.id DESC",
        columns = MESSAGE_COLUMNS
            .split(", ")
            .map(|c| format!("m.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let mut rows: Vec<HitRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(viewer)
        .bind(query)
        .bind(chat)
        .bind(after.map(|k| k.rank))
        .bind(after.map(|k| k.sent_at))
        .bind(after.map(|k| k.id))
        .bind(limit + 1)
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
            id: r.msg.id,
        };
        extra.insert(r.msg.id, (key, r.snippet));
        plain.push(r.msg);
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
