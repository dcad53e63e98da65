//! Reading messages as Message v2: history pages, sync, replies, pins, single
//! messages; with each reply's current excerpt, reactions (`me` for the reader) and
//! receipt status.

use std::collections::HashMap;

use sqlx::PgPool;
use uuid::Uuid;

use super::messages::MessageRow;
use crate::domain::{
    message::{Message, Reaction, ReplyTo, excerpt},
    moderation::DeletedBy,
    receipts,
};

/// Which page of a chat's history to read.
#[derive(Debug, Clone, Copy)]
pub enum Cursor {
    Newest,
    Before(i64),
    After(i64),
}

/// A page of history, ascending by sequence, and whether more lies beyond it.
///
/// Two static statements: backwards (`Newest` is before `i64::MAX`), read newest
/// first and reversed, and forwards.
pub async fn history(
    pool: &PgPool,
    viewer: Uuid,
    chat: Uuid,
    cursor: Cursor,
    limit: i64,
) -> Result<(Vec<Message>, bool), sqlx::Error> {
    let mut rows = match cursor {
        Cursor::Newest | Cursor::Before(_) => {
            let before = match cursor {
                Cursor::Before(s) => s,
                _ => i64::MAX,
            };
            sqlx::query_as!(
                MessageRow,
                "SELECT id, chat_id, sender_id, client_message_id, content, message_type, sequence,
                        sent_at, edited_at, deleted_at, reply_to_id, forwarded_chat_id,
                        forwarded_message_id, forwarded_sender_id, mentions, bot_name
                 FROM messages WHERE chat_id = $1 AND sequence < $2
                 ORDER BY sequence DESC LIMIT $3",
                chat,
                before,
                limit + 1,
            )
            .fetch_all(pool)
            .await?
        }
        Cursor::After(after) => {
            sqlx::query_as!(
                MessageRow,
                "SELECT id, chat_id, sender_id, client_message_id, content, message_type, sequence,
                        sent_at, edited_at, deleted_at, reply_to_id, forwarded_chat_id,
                        forwarded_message_id, forwarded_sender_id, mentions, bot_name
                 FROM messages WHERE chat_id = $1 AND sequence > $2
                 ORDER BY sequence ASC LIMIT $3",
                chat,
                after,
                limit + 1,
            )
            .fetch_all(pool)
            .await?
        }
    };
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if !matches!(cursor, Cursor::After(_)) {
        rows.reverse();
    }
    Ok((hydrate(pool, Some(viewer), rows).await?, has_more))
}

/// Replies to `message` in `chat`, ascending, after sequence `after`.
pub async fn replies(
    pool: &PgPool,
    viewer: Uuid,
    chat: Uuid,
    message: Uuid,
    after: i64,
    limit: i64,
) -> Result<(Vec<Message>, bool), sqlx::Error> {
    let mut rows = sqlx::query_as!(
        MessageRow,
        "SELECT id, chat_id, sender_id, client_message_id, content, message_type, sequence,
                sent_at, edited_at, deleted_at, reply_to_id, forwarded_chat_id,
                forwarded_message_id, forwarded_sender_id, mentions, bot_name
         FROM messages
         WHERE reply_to_id = $1 AND chat_id = $2 AND sequence > $3
         ORDER BY sequence LIMIT $4",
        message,
        chat,
        after,
        limit + 1,
    )
    .fetch_all(pool)
    .await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((hydrate(pool, Some(viewer), rows).await?, has_more))
}

/// The chat's pinned messages, most recently pinned first.
pub async fn pinned(pool: &PgPool, viewer: Uuid, chat: Uuid) -> Result<Vec<Message>, sqlx::Error> {
    let rows = sqlx::query_as!(
        MessageRow,
        "SELECT m.id, m.chat_id, m.sender_id, m.client_message_id, m.content, m.message_type,
                m.sequence, m.sent_at, m.edited_at, m.deleted_at, m.reply_to_id,
                m.forwarded_chat_id, m.forwarded_message_id, m.forwarded_sender_id, m.mentions,
                m.bot_name
         FROM chat_pins p JOIN messages m ON m.id = p.message_id
         WHERE p.chat_id = $1 ORDER BY p.pinned_at DESC, m.sequence DESC",
        chat,
    )
    .fetch_all(pool)
    .await?;
    hydrate(pool, Some(viewer), rows).await
}

/// One message of a chat as stored, for checks (no reply excerpt, reactions or status).
pub async fn find(pool: &PgPool, chat: Uuid, id: Uuid) -> Result<Option<Message>, sqlx::Error> {
    Ok(row(pool, chat, id).await?.map(Message::from))
}

/// One message of a chat as everyone reads it (reactions without `me`).
pub async fn one(pool: &PgPool, chat: Uuid, id: Uuid) -> Result<Option<Message>, sqlx::Error> {
    let rows: Vec<MessageRow> = row(pool, chat, id).await?.into_iter().collect();
    Ok(hydrate(pool, None, rows).await?.pop())
}

async fn row(pool: &PgPool, chat: Uuid, id: Uuid) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as!(
        MessageRow,
        "SELECT id, chat_id, sender_id, client_message_id, content, message_type, sequence,
                sent_at, edited_at, deleted_at, reply_to_id, forwarded_chat_id,
                forwarded_message_id, forwarded_sender_id, mentions, bot_name
         FROM messages WHERE id = $1 AND chat_id = $2",
        id,
        chat,
    )
    .fetch_optional(pool)
    .await
}

/// Messages persisted after the given sequences, in the chats the user is part of,
/// oldest first, at most `cap`.
pub async fn since(
    pool: &PgPool,
    user: Uuid,
    seen: &[(Uuid, i64)],
    cap: i64,
) -> Result<(Vec<Message>, bool), sqlx::Error> {
    let (chats, seqs): (Vec<Uuid>, Vec<i64>) = seen.iter().copied().unzip();
    let mut rows = sqlx::query_as!(
        MessageRow,
        "SELECT m.id, m.chat_id, m.sender_id, m.client_message_id, m.content, m.message_type,
                m.sequence, m.sent_at, m.edited_at, m.deleted_at, m.reply_to_id,
                m.forwarded_chat_id, m.forwarded_message_id, m.forwarded_sender_id, m.mentions,
                m.bot_name
         FROM messages m
         JOIN UNNEST($2::uuid[], $3::bigint[]) AS s(chat_id, seq)
           ON m.chat_id = s.chat_id AND m.sequence > s.seq
         JOIN chat_participants p ON p.chat_id = m.chat_id AND p.user_id = $1
         ORDER BY m.sent_at, m.chat_id, m.sequence LIMIT $4",
        user,
        &chats,
        &seqs,
        cap + 1,
    )
    .fetch_all(pool)
    .await?;
    let has_more = rows.len() as i64 > cap;
    rows.truncate(cap as usize);
    Ok((hydrate(pool, Some(user), rows).await?, has_more))
}

/// Who reacted with what to a message, per emoji in the order the emojis first came.
pub async fn reaction_users(
    pool: &PgPool,
    message: Uuid,
) -> Result<Vec<(String, Vec<Uuid>)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT emoji, array_agg(user_id ORDER BY created_at) AS "users!" FROM message_reactions
           WHERE message_id = $1 GROUP BY emoji ORDER BY min(created_at), emoji"#,
        message,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.emoji, r.users)).collect())
}

/// How many distinct emojis a message has, and whether `emoji` is among them.
pub async fn reaction_kinds(
    pool: &PgPool,
    message: Uuid,
    emoji: &str,
) -> Result<(i64, bool), sqlx::Error> {
    let r = sqlx::query!(
        r#"SELECT count(DISTINCT emoji) AS "kinds!", COALESCE(bool_or(emoji = $2), false) AS "present!"
           FROM message_reactions WHERE message_id = $1"#,
        message,
        emoji,
    )
    .fetch_one(pool)
    .await?;
    Ok((r.kinds, r.present))
}

/// Rows as messages: reply excerpts (current), reactions with `me`, receipt status,
/// attachments (their `url`s are minted by the service layer; none on a tombstone).
pub(super) async fn hydrate(
    pool: &PgPool,
    viewer: Option<Uuid>,
    rows: Vec<MessageRow>,
) -> Result<Vec<Message>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut chats: Vec<Uuid> = rows.iter().map(|r| r.chat_id).collect();
    chats.sort();
    chats.dedup();
    let reply_ids: Vec<Uuid> = rows.iter().filter_map(|r| r.reply_to_id).collect();
    let marks = super::chats::marks(pool, &chats).await?;
    let mut attachments = super::uploads::of_messages(pool, &ids).await?;
    let mut reactions: HashMap<Uuid, Vec<Reaction>> = HashMap::new();
    let rows_r = sqlx::query!(
        r#"SELECT message_id, emoji, count(*) AS "count!", COALESCE(bool_or(user_id = $2), false) AS "me!"
           FROM message_reactions WHERE message_id = ANY($1)
           GROUP BY message_id, emoji ORDER BY min(created_at), emoji"#,
        &ids,
        viewer,
    )
    .fetch_all(pool)
    .await?;
    for r in rows_r {
        reactions.entry(r.message_id).or_default().push(Reaction {
            emoji: r.emoji,
            count: r.count,
            me: r.me,
        });
    }
    let originals: HashMap<Uuid, ReplyTo> = if reply_ids.is_empty() {
        HashMap::new()
    } else {
        let found = sqlx::query!(
            "SELECT id, sender_id, content, deleted_at FROM messages WHERE id = ANY($1)",
            &reply_ids,
        )
        .fetch_all(pool)
        .await?;
        found
            .into_iter()
            .map(|r| {
                let (id, sender_id) = (r.id, r.sender_id);
                let excerpt = if r.deleted_at.is_some() {
                    String::new()
                } else {
                    excerpt(&r.content)
                };
                (
                    id,
                    ReplyTo {
                        id,
                        sender_id,
                        excerpt,
                    },
                )
            })
            .collect()
    };
    let tombstones: Vec<Uuid> = rows
        .iter()
        .filter(|r| r.deleted_at.is_some())
        .map(|r| r.id)
        .collect();
    let moderated: Vec<Uuid> = if tombstones.is_empty() {
        Vec::new()
    } else {
        sqlx::query_scalar!(
            "SELECT id FROM messages WHERE id = ANY($1) AND deleted_by = 'moderator'",
            &tombstones,
        )
        .fetch_all(pool)
        .await?
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut m = Message::from(r);
            if moderated.contains(&m.id) {
                m.deleted_by = Some(DeletedBy::Moderator);
            }
            if let Some(rt) = &m.reply_to {
                m.reply_to = originals.get(&rt.id).cloned().or(m.reply_to.take());
            }
            m.reactions = reactions.remove(&m.id).unwrap_or_default();
            if m.deleted_at.is_none() {
                m.attachments = attachments.remove(&m.id).unwrap_or_default();
            }
            let chat_marks = marks.get(&m.chat_id).map(Vec::as_slice).unwrap_or(&[]);
            receipts::apply(&mut m, chat_marks);
            m
        })
        .collect())
}
