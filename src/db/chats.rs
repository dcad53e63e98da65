//! Chats and participants.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::{
    chat::{Chat, ChatType, Participant, Role, direct_key},
    lifecycle::LifecycleCommand,
    receipts::Marks,
};

struct ChatRow {
    id: Uuid,
    kind: ChatType,
    title: Option<String>,
    last_sequence: i64,
    created_at: DateTime<Utc>,
}

struct ParticipantRow {
    chat_id: Uuid,
    user_id: Uuid,
    role: Role,
    joined_at: DateTime<Utc>,
}

/// The caller's relation to a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    NoChat,
    Outsider(ChatType),
    Member(ChatType, Role),
}

pub(super) async fn participants_of(
    pool: &PgPool,
    chat_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Participant>>, sqlx::Error> {
    let rows = sqlx::query_as!(
        ParticipantRow,
        r#"SELECT chat_id, user_id, role AS "role: Role", joined_at FROM chat_participants
           WHERE chat_id = ANY($1) ORDER BY joined_at, user_id"#,
        chat_ids,
    )
    .fetch_all(pool)
    .await?;
    let mut map: HashMap<Uuid, Vec<Participant>> = HashMap::new();
    for r in rows {
        map.entry(r.chat_id).or_default().push(Participant {
            user_id: r.user_id,
            role: r.role,
            joined_at: r.joined_at,
        });
    }
    Ok(map)
}

fn assemble(row: ChatRow, participants: &mut HashMap<Uuid, Vec<Participant>>) -> Chat {
    Chat {
        id: row.id,
        kind: row.kind,
        title: row.title,
        participants: participants.remove(&row.id).unwrap_or_default(),
        created_at: row.created_at,
        last_sequence: row.last_sequence,
    }
}

pub async fn load(pool: &PgPool, chat_id: Uuid) -> Result<Option<Chat>, sqlx::Error> {
    let row = sqlx::query_as!(
        ChatRow,
        r#"SELECT c.id, c.type AS "kind: ChatType", c.title, c.last_sequence, c.created_at
           FROM chats c WHERE c.id = $1"#,
        chat_id,
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut parts = participants_of(pool, &[chat_id]).await?;
    Ok(Some(assemble(row, &mut parts)))
}

pub async fn membership(
    pool: &PgPool,
    chat_id: Uuid,
    user: Uuid,
) -> Result<Membership, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT c.type AS "kind: ChatType", p.role AS "role?: Role" FROM chats c
           LEFT JOIN chat_participants p ON p.chat_id = c.id AND p.user_id = $2
           WHERE c.id = $1"#,
        chat_id,
        user,
    )
    .fetch_optional(pool)
    .await?
    .map(|r| (r.kind, r.role));
    Ok(match row {
        None => Membership::NoChat,
        Some((kind, None)) => Membership::Outsider(kind),
        Some((kind, Some(role))) => Membership::Member(kind, role),
    })
}

async fn insert_chat(
    tx: &mut Transaction<'_, Postgres>,
    kind: ChatType,
    title: Option<&str>,
    direct: Option<String>,
    creator: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "INSERT INTO chats (id, type, title, direct_key, created_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (direct_key) DO NOTHING RETURNING id",
        Uuid::now_v7(),
        kind as _,
        title,
        direct,
        creator,
    )
    .fetch_optional(&mut **tx)
    .await
}

pub(super) async fn insert_participants(
    tx: &mut Transaction<'_, Postgres>,
    chat: Uuid,
    users: &[Uuid],
    roles: &[Role],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let names: Vec<&str> = roles.iter().map(|r| role_name(*r)).collect();
    sqlx::query_scalar!(
        "INSERT INTO chat_participants (chat_id, user_id, role)
         SELECT $1, u, r FROM UNNEST($2::uuid[], $3::text[]) AS t(u, r)
         ON CONFLICT (chat_id, user_id) DO NOTHING
         RETURNING user_id",
        chat,
        users,
        &names as &[&str],
    )
    .fetch_all(&mut **tx)
    .await
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

/// The direct chat between two users, with the announcement of its creation if it
/// was created now (recorded in the outbox in the same transaction).
pub async fn create_direct(
    pool: &PgPool,
    me: Uuid,
    other: Uuid,
) -> Result<(Chat, Option<LifecycleCommand>), sqlx::Error> {
    let key = direct_key(me, other);
    let mut tx = pool.begin().await?;
    let created = insert_chat(&mut tx, ChatType::Direct, None, Some(key.clone()), me).await?;
    let mut announce = None;
    if let Some(id) = created {
        let added =
            insert_participants(&mut tx, id, &[me, other], &[Role::Member, Role::Member]).await?;
        let cmd = LifecycleCommand::chat_changed(id, me, added, Vec::new());
        super::manage::record_change(&mut tx, &cmd).await?;
        announce = Some(cmd);
    }
    tx.commit().await?;
    let id = match created {
        Some(id) => id,
        None => {
            sqlx::query_scalar!("SELECT id FROM chats WHERE direct_key = $1", key)
                .fetch_one(pool)
                .await?
        }
    };
    let chat = load(pool, id).await?.ok_or(sqlx::Error::RowNotFound)?;
    Ok((chat, announce))
}

/// A group chat with the caller as owner and the others as members.
pub async fn create_group(
    pool: &PgPool,
    me: Uuid,
    title: &str,
    others: &[Uuid],
) -> Result<(Chat, LifecycleCommand), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let id = insert_chat(&mut tx, ChatType::Group, Some(title), None, me)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let mut added = insert_participants(&mut tx, id, &[me], &[Role::Owner]).await?;
    let members: Vec<Uuid> = others.iter().copied().filter(|u| *u != me).collect();
    added.extend(
        insert_participants(&mut tx, id, &members, &vec![Role::Member; members.len()]).await?,
    );
    let cmd = LifecycleCommand::chat_changed(id, me, added, Vec::new());
    super::manage::record_change(&mut tx, &cmd).await?;
    tx.commit().await?;
    Ok((load(pool, id).await?.ok_or(sqlx::Error::RowNotFound)?, cmd))
}

/// Moves the read mark forward (never back): `Ok(true)` if it moved.
/// `Err(last_sequence)` if `sequence` is beyond the chat's last.
pub async fn mark_read(
    pool: &PgPool,
    chat: Uuid,
    user: Uuid,
    sequence: i64,
) -> Result<Result<bool, i64>, sqlx::Error> {
    let last = sqlx::query_scalar!("SELECT last_sequence FROM chats WHERE id = $1", chat)
        .fetch_one(pool)
        .await?;
    if sequence > last {
        return Ok(Err(last));
    }
    // A read mark is a delivered mark too.
    let moved = sqlx::query!(
        "UPDATE chat_participants
         SET last_read_sequence = $3, delivered_sequence = GREATEST(delivered_sequence, $3)
         WHERE chat_id = $1 AND user_id = $2 AND last_read_sequence < $3",
        chat,
        user,
        sequence,
    )
    .execute(pool)
    .await?;
    Ok(Ok(moved.rows_affected() == 1))
}

/// Raises delivered marks `(chat, user, sequence)` (never lowers them, never past the
/// chat's last sequence); returns the marks that moved, with their new value.
pub async fn advance_delivered(
    pool: &PgPool,
    marks: &[(Uuid, Uuid, i64)],
) -> Result<Vec<(Uuid, Uuid, i64)>, sqlx::Error> {
    let chats: Vec<Uuid> = marks.iter().map(|m| m.0).collect();
    let users: Vec<Uuid> = marks.iter().map(|m| m.1).collect();
    let seqs: Vec<i64> = marks.iter().map(|m| m.2).collect();
    let rows = sqlx::query!(
        "UPDATE chat_participants p SET delivered_sequence = v.seq
         FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[]) AS v(chat, usr, seq)
         WHERE p.chat_id = v.chat AND p.user_id = v.usr AND p.delivered_sequence < v.seq
         RETURNING p.chat_id, p.user_id, p.delivered_sequence",
        &chats,
        &users,
        &seqs,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.chat_id, r.user_id, r.delivered_sequence))
        .collect())
}

/// Every participant's marks, per chat.
pub async fn marks(
    pool: &PgPool,
    chats: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Marks>>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT chat_id, user_id, delivered_sequence, last_read_sequence
         FROM chat_participants WHERE chat_id = ANY($1) ORDER BY joined_at, user_id",
        chats,
    )
    .fetch_all(pool)
    .await?;
    let mut map: HashMap<Uuid, Vec<Marks>> = HashMap::new();
    for r in rows {
        map.entry(r.chat_id).or_default().push(Marks {
            user_id: r.user_id,
            delivered_sequence: r.delivered_sequence,
            read_sequence: r.last_read_sequence,
        });
    }
    Ok(map)
}

/// Member ids per chat, for the membership cache: read under a share lock on the chats,
/// so a membership change in flight (it holds the row lock) commits first.
pub async fn member_ids_settled(
    pool: &PgPool,
    chats: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Uuid>>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT c.id, p.user_id FROM chats c JOIN chat_participants p ON p.chat_id = c.id
         WHERE c.id = ANY($1) FOR SHARE OF c",
        chats,
    )
    .fetch_all(pool)
    .await?;
    let mut map: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for r in rows {
        map.entry(r.id).or_default().push(r.user_id);
    }
    Ok(map)
}

/// The group chats `user` is a member of (their timelines are what a gateway follows
/// for the user's connections).
pub async fn group_ids_of(pool: &PgPool, user: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT c.id FROM chat_participants p JOIN chats c ON c.id = p.chat_id
         WHERE p.user_id = $1 AND c.type = 'group'",
        user,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}
