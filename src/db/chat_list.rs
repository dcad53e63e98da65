//! The chat list (`GET /chats`): a user's chats by last activity, keyset-paged, each
//! with its unread count, last message and the user's settings; and those settings.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{chats, history, messages::MessageRow};
use crate::domain::{
    chat::{Chat, ChatSettings, ChatType},
    message::Message,
};

/// Where a page starts: the walk's snapshot time and the last chat of the previous
/// page, by its activity as of that time and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct After {
    pub activity: DateTime<Utc>,
    pub id: Uuid,
}

/// One chat of the list, with what the list adds to it.
#[derive(Debug)]
pub struct Listed {
    pub chat: Chat,
    pub unread: i64,
    pub last_message: Option<Message>,
    pub settings: ChatSettings,
    /// Its activity as of the walk's snapshot: the key of the next page's cursor.
    pub activity: DateTime<Utc>,
}

/// A page of `user`'s chats, archived or not, ordered by last activity as of `asof`
/// (newest first, then id), after `after`, at most `limit` (all without one).
///
/// One statement for the chats (a chat touched after `asof` keeps its place by its
/// newest message at `asof`, found by a short backward scan of its sequences; a chat
/// created after `asof` is not part of the walk): the page is cut first (a top-N sort
/// over the caller's memberships), then only its chats get their unread count and last
/// message. Then one read for the participants of the page and the reads that hydrate
/// its last messages: a fixed number per page.
pub async fn page(
    pool: &PgPool,
    user: Uuid,
    archived: bool,
    asof: DateTime<Utc>,
    after: Option<After>,
    limit: Option<i64>,
) -> Result<Vec<Listed>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"WITH mine AS (
             SELECT c.id, c.type, c.title, c.last_sequence, c.created_at,
                    p.last_read_sequence, p.muted_until, p.archived, p.mute_mentions,
                    CASE WHEN COALESCE(c.last_message_at, c.created_at) <= $3
                         THEN COALESCE(c.last_message_at, c.created_at)
                         ELSE COALESCE((SELECT h.sent_at FROM messages h
                                        WHERE h.chat_id = c.id AND h.sent_at <= $3
                                        ORDER BY h.sequence DESC LIMIT 1), c.created_at)
                    END AS activity
             FROM chat_participants p JOIN chats c ON c.id = p.chat_id
             WHERE p.user_id = $1 AND p.archived = $2 AND c.created_at <= $3
           ),
           page AS (
             SELECT * FROM mine c
             WHERE $4::timestamptz IS NULL OR c.activity < $4 OR (c.activity = $4 AND c.id > $5)
             ORDER BY c.activity DESC, c.id
             LIMIT $6
           )
           SELECT c.id AS "id!", c.type AS "kind!: ChatType", c.title,
                  c.last_sequence AS "last_sequence!", c.created_at AS "created_at!",
                  c.muted_until, c.archived AS "archived!", c.mute_mentions AS "mute_mentions!",
                  c.activity AS "activity!",
                  (SELECT count(*) FROM messages u
                    WHERE u.chat_id = c.id AND u.sequence > c.last_read_sequence
                      AND u.sender_id <> $1) AS "unread!",
                  m.id AS "m_id?", m.sender_id AS "m_sender_id?",
                  m.client_message_id AS "m_client_message_id?", m.content AS "m_content?",
                  m.message_type AS "m_message_type?", m.sent_at AS "m_sent_at?",
                  m.edited_at AS "m_edited_at?", m.deleted_at AS "m_deleted_at?",
                  m.reply_to_id AS "m_reply_to_id?", m.forwarded_chat_id AS "m_forwarded_chat_id?",
                  m.forwarded_message_id AS "m_forwarded_message_id?",
                  m.forwarded_sender_id AS "m_forwarded_sender_id?",
                  m.mentions AS "m_mentions?", m.bot_name AS "m_bot_name?"
           FROM page c
           LEFT JOIN messages m ON m.chat_id = c.id AND m.sequence = c.last_sequence
           ORDER BY c.activity DESC, c.id"#,
        user,
        archived,
        asof,
        after.map(|a| a.activity),
        after.map(|a| a.id),
        limit,
    )
    .fetch_all(pool)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut parts = chats::participants_of(pool, &ids).await?;
    let mut last_rows = Vec::new();
    for r in &rows {
        if let (Some(id), Some(sender_id), Some(client_message_id), Some(content)) = (
            r.m_id,
            r.m_sender_id,
            r.m_client_message_id,
            r.m_content.clone(),
        ) {
            last_rows.push(MessageRow {
                id,
                chat_id: r.id,
                sender_id,
                client_message_id,
                content,
                message_type: r.m_message_type.clone().unwrap_or_default(),
                sequence: r.last_sequence,
                sent_at: r.m_sent_at.unwrap_or(r.created_at),
                edited_at: r.m_edited_at,
                deleted_at: r.m_deleted_at,
                reply_to_id: r.m_reply_to_id,
                forwarded_chat_id: r.m_forwarded_chat_id,
                forwarded_message_id: r.m_forwarded_message_id,
                forwarded_sender_id: r.m_forwarded_sender_id,
                mentions: r.m_mentions.clone().unwrap_or_default(),
                bot_name: r.m_bot_name.clone(),
            });
        }
    }
    let mut last: std::collections::HashMap<Uuid, Message> =
        history::hydrate(pool, Some(user), last_rows)
            .await?
            .into_iter()
            .map(|m| (m.chat_id, m))
            .collect();
    Ok(rows
        .into_iter()
        .map(|r| Listed {
            chat: Chat {
                id: r.id,
                kind: r.kind,
                title: r.title,
                participants: parts.remove(&r.id).unwrap_or_default(),
                created_at: r.created_at,
                last_sequence: r.last_sequence,
            },
            unread: r.unread,
            last_message: last.remove(&r.id),
            settings: ChatSettings {
                muted_until: r.muted_until,
                archived: r.archived,
                mute_mentions: r.mute_mentions,
            },
            activity: r.activity,
        })
        .collect())
}

/// A change of a user's settings of a chat: `None` leaves one as it is;
/// `muted_until: Some(None)` clears the mute.
#[derive(Debug, Clone, Copy, Default)]
pub struct SettingsUpdate {
    pub muted_until: Option<Option<DateTime<Utc>>>,
    pub archived: Option<bool>,
    pub mute_mentions: Option<bool>,
}

/// Applies `change` to `user`'s settings of `chat`; `None` when the user is not a
/// participant.
pub async fn update_settings(
    pool: &PgPool,
    chat: Uuid,
    user: Uuid,
    change: SettingsUpdate,
) -> Result<Option<ChatSettings>, sqlx::Error> {
    let row = sqlx::query!(
        r#"UPDATE chat_participants
           SET muted_until = CASE WHEN $3 THEN $4 ELSE muted_until END,
               archived = COALESCE($5, archived),
               mute_mentions = COALESCE($6, mute_mentions)
           WHERE chat_id = $1 AND user_id = $2
           RETURNING muted_until, archived, mute_mentions"#,
        chat,
        user,
        change.muted_until.is_some(),
        change.muted_until.flatten(),
        change.archived,
        change.mute_mentions,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| ChatSettings {
        muted_until: r.muted_until,
        archived: r.archived,
        mute_mentions: r.mute_mentions,
    }))
}
