//! What the pusher reads of a chat's members (their devices are `db::push`): each
//! member's read state, settings and latest unread message in that chat.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::chat::ChatSettings;

/// The newest message a member has not read (not their own, not deleted).
#[derive(Debug, Clone)]
pub struct Latest {
    pub id: Uuid,
    pub sequence: i64,
    pub sender_id: Uuid,
    pub sender_name: String,
    pub content: String,
    pub has_attachments: bool,
    pub sent_at: DateTime<Utc>,
}

/// A member's view of a chat when a push is due.
#[derive(Debug, Clone)]
pub struct MemberState {
    pub user_id: Uuid,
    pub group: bool,
    pub title: Option<String>,
    pub last_read_sequence: i64,
    /// Mute (and archive) settings.
    pub settings: ChatSettings,
    /// Messages of others after the read position (as `GET /chats` counts them).
    pub unread: i64,
    pub latest: Option<Latest>,
}

/// The state of each of `users` (who are still members) in `chat`.
pub async fn member_states(
    pool: &PgPool,
    chat: Uuid,
    users: &[Uuid],
) -> Result<Vec<MemberState>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT p.user_id, c.type = 'group' AS "group!", c.title, p.last_read_sequence,
                  p.muted_until, p.archived, p.mute_mentions,
                  (SELECT count(*) FROM messages u
                    WHERE u.chat_id = p.chat_id AND u.sequence > p.last_read_sequence
                      AND u.sender_id <> p.user_id) AS "unread!",
                  l.id AS "l_id?", l.sequence AS "l_sequence?", l.sender_id AS "l_sender?",
                  l.content AS "l_content?", l.sent_at AS "l_sent_at?",
                  CASE WHEN su.deleted_at IS NOT NULL THEN 'Deleted user'
                       ELSE COALESCE(l.bot_name, su.display_name, su.username) END AS "l_sender_name?",
                  EXISTS (SELECT 1 FROM message_attachments a WHERE a.message_id = l.id)
                    AS "l_attachments!"
           FROM chat_participants p
           JOIN chats c ON c.id = p.chat_id
           LEFT JOIN LATERAL (
               SELECT m.id, m.sequence, m.sender_id, m.content, m.sent_at, m.bot_name
               FROM messages m
               WHERE m.chat_id = p.chat_id AND m.sequence > p.last_read_sequence
                 AND m.sender_id <> p.user_id AND m.deleted_at IS NULL
               ORDER BY m.sequence DESC LIMIT 1
           ) l ON true
           LEFT JOIN users su ON su.id = l.sender_id
           WHERE p.chat_id = $1 AND p.user_id = ANY($2)"#,
        chat,
        users,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| MemberState {
            user_id: r.user_id,
            group: r.group,
            title: r.title,
            last_read_sequence: r.last_read_sequence,
            settings: ChatSettings {
                muted_until: r.muted_until,
                archived: r.archived,
                mute_mentions: r.mute_mentions,
            },
            unread: r.unread,
            latest: match (r.l_id, r.l_sequence, r.l_sender, r.l_sent_at) {
                (Some(id), Some(sequence), Some(sender_id), Some(sent_at)) => Some(Latest {
                    id,
                    sequence,
                    sender_id,
                    sender_name: r.l_sender_name.unwrap_or_default(),
                    content: r.l_content.unwrap_or_default(),
                    has_attachments: r.l_attachments,
                    sent_at,
                }),
                _ => None,
            },
        })
        .collect())
}
