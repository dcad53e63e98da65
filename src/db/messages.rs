//! Messages: batch persistence with per-chat sequences, and the stored row.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

pub use crate::domain::sequence::Outcome;
use crate::domain::{
    message::{ForwardedFrom, Message, ReplyTo, SendCommand},
    sequence::{self, IdemKey, Snapshot},
};

pub(super) const MESSAGE_COLUMNS: &str = "id, chat_id, sender_id, client_message_id, content, \
     message_type, sequence, sent_at, edited_at, deleted_at, reply_to_id, forwarded_chat_id, \
     forwarded_message_id, forwarded_sender_id";

/// A stored message as a row (reply excerpts, reactions and marks come separately).
#[derive(sqlx::FromRow)]
pub(super) struct MessageRow {
    pub id: Uuid,
    pub chat_id: Uuid,
    sender_id: Uuid,
    client_message_id: Uuid,
    content: String,
    message_type: String,
    sequence: i64,
    sent_at: DateTime<Utc>,
    edited_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    pub reply_to_id: Option<Uuid>,
    forwarded_chat_id: Option<Uuid>,
    forwarded_message_id: Option<Uuid>,
    forwarded_sender_id: Option<Uuid>,
}

/// A stored message with the broker message that stored it.
#[derive(sqlx::FromRow)]
struct KnownRow {
    #[sqlx(flatten)]
    msg: MessageRow,
    broker_message_id: Uuid,
}

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
            ..Message::default()
        }
    }
}

/// Persists a batch in one transaction. Sequences are assigned per chat under a row
/// lock on the chat, so there are no gaps and no repeats, even with two workers racing
/// during a partition handover; a command whose `(chat, sender, clientMessageId)` is
/// already stored yields the stored message instead of a new row.
///
/// Five round trips (begin, lock + membership, stored rows, insert + sequences,
/// commit): on a busy machine each one costs a context switch on both sides.
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
    // which of the batch's senders take part in each.
    let locked: Vec<(Uuid, i64, Vec<Uuid>)> = sqlx::query_as(
        "WITH locked AS (
             SELECT id, last_sequence FROM chats WHERE id = ANY($1) ORDER BY id FOR UPDATE
         )
         SELECT l.id, l.last_sequence,
                ARRAY(SELECT p.user_id FROM chat_participants p
                      WHERE p.chat_id = l.id AND p.user_id = ANY($2))
         FROM locked l",
    )
    .bind(&chat_ids)
    .bind(&sender_ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut last_sequence = HashMap::with_capacity(locked.len());
    let mut members = HashSet::new();
    for (chat, last, users) in locked {
        last_sequence.insert(chat, last);
        members.extend(users.into_iter().map(|u| (chat, u)));
    }

    // A separate statement, so that it sees what a worker that held the lock before
    // us committed. One unique-index probe per command: the LATERAL subquery (kept
    // from being flattened by its LIMIT) cannot become a hash join over a scan of the
    // whole table, which the planner picks while the table's statistics are young.
    let chats: Vec<Uuid> = cmds.iter().map(|c| c.chat_id).collect();
    let senders: Vec<Uuid> = cmds.iter().map(|c| c.sender_id).collect();
    let client_ids: Vec<Uuid> = cmds.iter().map(|c| c.client_message_id).collect();
    let stored: HashMap<IdemKey, (Uuid, Message)> =
        sqlx::query_as::<_, KnownRow>(sqlx::AssertSqlSafe(format!(
            "SELECT m.* FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[]) AS k(chat, sender, client)
             CROSS JOIN LATERAL (
                 SELECT {MESSAGE_COLUMNS}, broker_message_id FROM messages
                 WHERE chat_id = k.chat AND sender_id = k.sender AND client_message_id = k.client
                 LIMIT 1
             ) m"
        )))
        .bind(&chats)
        .bind(&senders)
        .bind(&client_ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| {
            (
                (r.msg.chat_id, r.msg.sender_id, r.msg.client_message_id),
                (r.broker_message_id, Message::from(r.msg)),
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
        },
        now,
    );
    if !plan.fresh.is_empty() {
        insert_messages(&mut tx, &plan.fresh, &plan.last_sequence, now).await?;
    }
    tx.commit().await?;
    Ok(plan.outcomes)
}

/// Inserts the new rows and moves the chats' last sequences, in one statement.
async fn insert_messages(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    fresh: &[(Uuid, Message)],
    last_sequence: &HashMap<Uuid, i64>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let col = |f: fn(&Message) -> Uuid| fresh.iter().map(|(_, m)| f(m)).collect::<Vec<_>>();
    let opt = |f: fn(&Message) -> Option<Uuid>| fresh.iter().map(|(_, m)| f(m)).collect::<Vec<_>>();
    let (ids, seqs): (Vec<Uuid>, Vec<i64>) = last_sequence.iter().map(|(c, s)| (*c, *s)).unzip();
    // `c.id = ANY($10)` reaches the chats through their primary key.
    sqlx::query(
        "WITH inserted AS (
             INSERT INTO messages (id, chat_id, sender_id, client_message_id, broker_message_id,
                                   content, message_type, sequence, sent_at, reply_to_id,
                                   forwarded_chat_id, forwarded_message_id, forwarded_sender_id)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[],
                                  $6::text[], $7::text[], $8::bigint[], $9::timestamptz[],
                                  $13::uuid[], $14::uuid[], $15::uuid[], $16::uuid[])
         )
         UPDATE chats c SET last_sequence = v.seq, last_message_at = $12
         FROM UNNEST($10::uuid[], $11::bigint[]) AS v(id, seq)
         WHERE c.id = v.id AND c.id = ANY($10)",
    )
    .bind(col(|m| m.id))
    .bind(col(|m| m.chat_id))
    .bind(col(|m| m.sender_id))
    .bind(col(|m| m.client_message_id))
    .bind(fresh.iter().map(|(b, _)| *b).collect::<Vec<_>>())
    .bind(
        fresh
            .iter()
            .map(|(_, m)| m.content.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        fresh
            .iter()
            .map(|(_, m)| m.message_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(fresh.iter().map(|(_, m)| m.sequence).collect::<Vec<_>>())
    .bind(fresh.iter().map(|(_, m)| m.sent_at).collect::<Vec<_>>())
    .bind(&ids)
    .bind(&seqs)
    .bind(now)
    .bind(opt(|m| m.reply_to.as_ref().map(|r| r.id)))
    .bind(opt(|m| m.forwarded_from.map(|f| f.chat_id)))
    .bind(opt(|m| m.forwarded_from.map(|f| f.message_id)))
    .bind(opt(|m| m.forwarded_from.map(|f| f.sender_id)))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
