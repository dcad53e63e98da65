//! Messages: batch persistence with per-chat sequences, and the stored row.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

pub use crate::domain::sequence::Outcome;
use crate::domain::{
    chat::ChatSettings,
    mention,
    message::{Bot, ForwardedFrom, Message, ReplyTo, SendCommand},
    sequence::{self, IdemKey, Roster, Snapshot},
};

/// A stored message as a row (reply excerpts, reactions and marks come separately).
/// Statements that read one select its columns by name (`query_as!(MessageRow, ...)`),
/// or with more columns, build it with [`message_row!`].
pub(super) struct MessageRow {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub sender_id: Uuid,
    pub client_message_id: Uuid,
    pub content: String,
    pub message_type: String,
    pub sequence: i64,
    pub sent_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub reply_to_id: Option<Uuid>,
    pub forwarded_chat_id: Option<Uuid>,
    pub forwarded_message_id: Option<Uuid>,
    pub forwarded_sender_id: Option<Uuid>,
    pub mentions: Vec<Uuid>,
    pub bot_name: Option<String>,
}

/// A [`MessageRow`] from a `query!` record that has the message's columns among others.
macro_rules! message_row {
    ($r:expr) => {
        $crate::db::messages::MessageRow {
            id: $r.id,
            chat_id: $r.chat_id,
            sender_id: $r.sender_id,
            client_message_id: $r.client_message_id,
            content: $r.content,
            message_type: $r.message_type,
            sequence: $r.sequence,
            sent_at: $r.sent_at,
            edited_at: $r.edited_at,
            deleted_at: $r.deleted_at,
            reply_to_id: $r.reply_to_id,
            forwarded_chat_id: $r.forwarded_chat_id,
            forwarded_message_id: $r.forwarded_message_id,
            forwarded_sender_id: $r.forwarded_sender_id,
            mentions: $r.mentions,
            bot_name: $r.bot_name,
        }
    };
}
pub(super) use message_row;

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Self {
        Message {
            id: r.id,
            chat_id: r.chat_id,
            sender_id: r.sender_id,
            client_message_id: r.client_message_id,
            content: r.content,
            message_type: r.message_type,
            status: "sent".into(),
            delivered_count: 0,
            read_count: 0,
            sequence: r.sequence,
            sent_at: r.sent_at,
            edited_at: r.edited_at,
            deleted_at: r.deleted_at,
            // Filled with the original's current excerpt by the reads.
            reply_to: r.reply_to_id.map(|id| ReplyTo {
                id,
                sender_id: Uuid::nil(),
                excerpt: String::new(),
            }),
            forwarded_from: match (
                r.forwarded_chat_id,
                r.forwarded_message_id,
                r.forwarded_sender_id,
            ) {
                (Some(chat_id), Some(message_id), Some(sender_id)) => Some(ForwardedFrom {
                    chat_id,
                    message_id,
                    sender_id,
                }),
                _ => None,
            },
            bot: r.bot_name.map(|name| Bot {
                hook_id: r.sender_id,
                name,
            }),
            mentions: if r.deleted_at.is_some() {
                Vec::new()
            } else {
                r.mentions
            },
            ..Message::default()
        }
    }
}

/// Persists a batch in one transaction. Sequences are assigned per chat under a row
/// lock on the chat, so there are no gaps and no repeats, even with two workers racing
/// during a partition handover; a command whose `(chat, sender, clientMessageId)` is
/// already stored yields the stored message instead of a new row.
///
/// Five round trips (begin, lock + membership + bans, stored rows, insert + sequences,
/// commit): on a busy machine each one costs a context switch on both sides. The
/// senders' bans are read by the locking statement itself, so a batch's ban check
/// costs no round trip (one primary-key probe per distinct sender).
pub async fn persist_batch(
    pool: &PgPool,
    cmds: &[SendCommand],
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut chat_ids: Vec<Uuid> = cmds.iter().map(|c| c.chat_id).collect();
    chat_ids.sort();
    chat_ids.dedup();
    let mut sender_ids: Vec<Uuid> = cmds.iter().map(|c| c.sender_id).collect();
    sender_ids.sort();
    sender_ids.dedup();
    // The chats' rows are locked (in id order, so two workers cannot deadlock), with
    // which of the batch's senders take part in each (participants, and live hooks),
    // for chats where a command may mention someone, everyone's usernames, and the
    // senders who are banned.
    let mentioning: Vec<Uuid> = cmds
        .iter()
        .filter(|c| c.content.contains('@'))
        .map(|c| c.chat_id)
        .collect();
    let locked = sqlx::query!(
        r#"WITH locked AS (
             SELECT id, last_sequence, type FROM chats WHERE id = ANY($1) ORDER BY id FOR UPDATE
           )
           SELECT l.id AS "id!", l.last_sequence AS "last_sequence!", l.type = 'group' AS "grp!",
                  ARRAY(SELECT p.user_id FROM chat_participants p
                        WHERE p.chat_id = l.id AND p.user_id = ANY($2)
                        UNION ALL
                        SELECT h.id FROM chat_hooks h
                        WHERE h.chat_id = l.id AND h.id = ANY($2) AND h.deleted_at IS NULL)
                      AS "senders!",
                  CASE WHEN l.id = ANY($3) THEN
                      ARRAY(SELECT p.user_id FROM chat_participants p
                            WHERE p.chat_id = l.id ORDER BY p.joined_at, p.user_id)
                  END AS "roster_ids?",
                  CASE WHEN l.id = ANY($3) THEN
                      ARRAY(SELECT u.username FROM chat_participants p JOIN users u ON u.id = p.user_id
                            WHERE p.chat_id = l.id ORDER BY p.joined_at, p.user_id)
                  END AS "roster_names?",
                  -- Computed once for the statement (an uncorrelated subquery): the
                  -- batch's banned senders with their reasons, NULL when none is.
                  (SELECT jsonb_object_agg(u.id, coalesce(u.ban_reason, '')) FROM users u
                   WHERE u.id = ANY($2) AND u.banned_at IS NOT NULL
                     AND (u.banned_until IS NULL OR u.banned_until > now()))
                      AS "banned: sqlx::types::Json<HashMap<Uuid, String>>"
           FROM locked l"#,
        &chat_ids,
        &sender_ids,
        &mentioning,
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut last_sequence = HashMap::with_capacity(locked.len());
    let mut members = HashSet::new();
    let mut rosters = HashMap::new();
    let mut banned = HashMap::new();
    for c in locked {
        if let Some(sqlx::types::Json(b)) = c.banned {
            banned = b; // the same on every row
        }
        last_sequence.insert(c.id, c.last_sequence);
        members.extend(c.senders.into_iter().map(|u| (c.id, u)));
        if let (Some(ids), Some(names)) = (c.roster_ids, c.roster_names) {
            let participants = ids.into_iter().zip(names).collect();
            rosters.insert(
                c.id,
                Roster {
                    group: c.grp,
                    participants,
                },
            );
        }
    }

    // A separate statement, so that it sees what a worker that held the lock before
    // us committed. One unique-index probe per command: the LATERAL subquery (kept
    // from being flattened by its LIMIT) cannot become a hash join over a scan of the
    // whole table, which the planner picks while the table's statistics are young.
    let chats: Vec<Uuid> = cmds.iter().map(|c| c.chat_id).collect();
    let senders: Vec<Uuid> = cmds.iter().map(|c| c.sender_id).collect();
    let client_ids: Vec<Uuid> = cmds.iter().map(|c| c.client_message_id).collect();
    let stored: HashMap<IdemKey, (Uuid, Message)> = sqlx::query!(
        r#"SELECT m.id AS "id!", m.chat_id AS "chat_id!", m.sender_id AS "sender_id!",
                  m.client_message_id AS "client_message_id!", m.content AS "content!",
                  m.message_type AS "message_type!", m.sequence AS "sequence!",
                  m.sent_at AS "sent_at!", m.edited_at, m.deleted_at, m.reply_to_id,
                  m.forwarded_chat_id, m.forwarded_message_id, m.forwarded_sender_id,
                  m.mentions AS "mentions!", m.bot_name,
                  m.broker_message_id AS "broker_message_id!"
           FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[]) AS k(chat, sender, client)
           CROSS JOIN LATERAL (
               SELECT id, chat_id, sender_id, client_message_id, content, message_type, sequence,
                      sent_at, edited_at, deleted_at, reply_to_id, forwarded_chat_id,
                      forwarded_message_id, forwarded_sender_id, mentions, bot_name,
                      broker_message_id
               FROM messages
               WHERE chat_id = k.chat AND sender_id = k.sender AND client_message_id = k.client
               LIMIT 1
           ) m"#,
        &chats,
        &senders,
        &client_ids,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| {
        let broker = r.broker_message_id;
        let msg = message_row!(r);
        (
            (msg.chat_id, msg.sender_id, msg.client_message_id),
            (broker, Message::from(msg)),
        )
    })
    .collect();

    let now = Utc::now();
    let plan = sequence::plan(
        cmds,
        Snapshot {
            last_sequence,
            members,
            stored,
            rosters,
            banned,
        },
        now,
    );
    let mut outcomes = plan.outcomes;
    if !plan.fresh.is_empty() {
        let unarchived = insert_messages(&mut tx, &plan.fresh, &plan.last_sequence, now).await?;
        store_mentions(&mut tx, plan.fresh.iter().map(|(_, m)| m)).await?;
        super::uploads::link(&mut tx, &plan.fresh).await?;
        attach_unarchived(&mut outcomes, &plan.fresh, unarchived);
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Hands each chat's un-archived members to the outcome of the chat's first new
/// message of the batch (so each is announced once, by whoever sent it).
fn attach_unarchived(
    outcomes: &mut [Outcome],
    fresh: &[(Uuid, Message)],
    mut unarchived: HashMap<Uuid, Vec<(Uuid, ChatSettings)>>,
) {
    if unarchived.is_empty() {
        return;
    }
    let fresh_ids: HashSet<Uuid> = fresh.iter().map(|(_, m)| m.id).collect();
    for o in outcomes {
        if let Outcome::Persisted {
            message,
            unarchived: mine,
            ..
        } = o
            && fresh_ids.contains(&message.id)
            && let Some(users) = unarchived.remove(&message.chat_id)
        {
            *mine = users;
        }
    }
}

/// Inserts the new rows, moves the chats' last sequences and un-archives the chats
/// for their members who have not muted them, in one statement; returns, per chat,
/// the members it un-archived with their settings now.
async fn insert_messages(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    fresh: &[(Uuid, Message)],
    last_sequence: &HashMap<Uuid, i64>,
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, Vec<(Uuid, ChatSettings)>>, sqlx::Error> {
    let col = |f: fn(&Message) -> Uuid| fresh.iter().map(|(_, m)| f(m)).collect::<Vec<_>>();
    let opt = |f: fn(&Message) -> Option<Uuid>| fresh.iter().map(|(_, m)| f(m)).collect::<Vec<_>>();
    let (ids, seqs): (Vec<Uuid>, Vec<i64>) = last_sequence.iter().map(|(c, s)| (*c, *s)).unzip();
    // `c.id = ANY($10)` reaches the chats through their primary key.
    let contents: Vec<&str> = fresh.iter().map(|(_, m)| m.content.as_str()).collect();
    let types: Vec<&str> = fresh.iter().map(|(_, m)| m.message_type.as_str()).collect();
    let bots: Vec<Option<&str>> = fresh
        .iter()
        .map(|(_, m)| m.bot.as_ref().map(|b| b.name.as_str()))
        .collect();
    let rows = sqlx::query!(
        "WITH inserted AS (
             INSERT INTO messages (id, chat_id, sender_id, client_message_id, broker_message_id,
                                   content, message_type, sequence, sent_at, reply_to_id,
                                   forwarded_chat_id, forwarded_message_id, forwarded_sender_id,
                                   bot_name)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[],
                                  $6::text[], $7::text[], $8::bigint[], $9::timestamptz[],
                                  $13::uuid[], $14::uuid[], $15::uuid[], $16::uuid[], $17::text[])
         ),
         -- A new message un-archives the chat for the members who have not muted it.
         unarchived AS (
             UPDATE chat_participants p SET archived = false
             WHERE p.chat_id = ANY($10) AND p.archived
               AND (p.muted_until IS NULL OR p.muted_until <= $12)
             RETURNING p.chat_id, p.user_id, p.muted_until, p.mute_mentions
         ),
         moved AS (
             UPDATE chats c SET last_sequence = v.seq, last_message_at = $12
             FROM UNNEST($10::uuid[], $11::bigint[]) AS v(id, seq)
             WHERE c.id = v.id AND c.id = ANY($10)
         )
         -- Every data-modifying part runs to completion, read or not.
         SELECT chat_id AS \"chat_id!\", user_id AS \"user_id!\", muted_until,
                mute_mentions AS \"mute_mentions!\" FROM unarchived",
        &col(|m| m.id),
        &col(|m| m.chat_id),
        &col(|m| m.sender_id),
        &col(|m| m.client_message_id),
        &fresh.iter().map(|(b, _)| *b).collect::<Vec<_>>(),
        &contents as &[&str],
        &types as &[&str],
        &fresh.iter().map(|(_, m)| m.sequence).collect::<Vec<_>>(),
        &fresh.iter().map(|(_, m)| m.sent_at).collect::<Vec<_>>(),
        &ids,
        &seqs,
        now,
        &opt(|m| m.reply_to.as_ref().map(|r| r.id)) as &[Option<Uuid>],
        &opt(|m| m.forwarded_from.map(|f| f.chat_id)) as &[Option<Uuid>],
        &opt(|m| m.forwarded_from.map(|f| f.message_id)) as &[Option<Uuid>],
        &opt(|m| m.forwarded_from.map(|f| f.sender_id)) as &[Option<Uuid>],
        &bots as &[Option<&str>],
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut unarchived: HashMap<Uuid, Vec<(Uuid, ChatSettings)>> = HashMap::new();
    for r in rows {
        let settings = ChatSettings {
            muted_until: r.muted_until,
            archived: false,
            mute_mentions: r.mute_mentions,
        };
        unarchived
            .entry(r.chat_id)
            .or_default()
            .push((r.user_id, settings));
    }
    Ok(unarchived)
}

/// Stores the mentions of new messages and one notification per mentioned user but
/// the sender (nothing to do, and no round trip, when none mentions anyone).
pub(super) async fn store_mentions<'m>(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    messages: impl Iterator<Item = &'m Message>,
) -> Result<(), sqlx::Error> {
    let (mut ids, mut users, mut ords) = (Vec::new(), Vec::new(), Vec::new());
    for m in messages {
        for (i, u) in m.mentions.iter().enumerate() {
            ids.push(m.id);
            users.push(*u);
            ords.push(i as i32);
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    let notification_ids: Vec<Uuid> = ids
        .iter()
        .zip(&users)
        .map(|(m, u)| mention::notification_id(*m, *u))
        .collect();
    sqlx::query!(
        "WITH pairs AS (
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int[], $4::uuid[])
                 AS x(message_id, user_id, ord, nid)
         ),
         marked AS (
             UPDATE messages m SET mentions = v.users
             FROM (SELECT message_id, array_agg(user_id ORDER BY ord) AS users
                   FROM pairs GROUP BY message_id) v
             WHERE m.id = v.message_id AND m.id = ANY($1)
         )
         INSERT INTO notifications (id, user_id, type, chat_id, message_id, sender_id, excerpt,
                                    created_at)
         SELECT p.nid, p.user_id, $5, m.chat_id, m.id, m.sender_id, left(m.content, $6),
                m.sent_at
         FROM pairs p JOIN messages m ON m.id = p.message_id
         WHERE p.user_id <> m.sender_id
         ON CONFLICT DO NOTHING",
        &ids,
        &users,
        &ords,
        &notification_ids,
        mention::TYPE_MENTION,
        crate::domain::message::EXCERPT_CHARS as i32,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
