//! Applying a lifecycle command in one transaction under the chat's row lock: checks
//! the actor's rights again, changes the rows, bumps the chat's version per effect,
//! and records the command with its effects (a redelivery is re-announced, not
//! re-applied).

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::{
    chat::{ChatType, Role},
    lifecycle::{Applied, Effect, LifecycleCommand, MAX_REACTIONS, Op, may_delete, may_pin},
    mention,
    message::{EXCERPT_CHARS, Rejection},
    moderation::DeletedBy,
};

/// What became of a lifecycle command.
#[derive(Debug)]
pub enum LifeOutcome {
    /// Applied now or before; `audience` is the chat's participants now.
    Applied {
        applied: Applied,
        audience: Vec<Uuid>,
    },
    Rejected(Rejection),
}

pub(super) type Tx<'a> = Transaction<'a, Postgres>;

pub async fn apply(pool: &PgPool, cmd: &LifecycleCommand) -> Result<LifeOutcome, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let chat = sqlx::query!(
        r#"SELECT c.version, c.type AS "kind: ChatType",
                  ARRAY(SELECT user_id FROM chat_participants p WHERE p.chat_id = c.id
                        ORDER BY user_id) AS "audience!"
           FROM chats c WHERE c.id = $1 FOR UPDATE"#,
        cmd.chat_id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some((version, kind, audience)) = chat.map(|c| (c.version, c.kind, c.audience)) else {
        return Ok(LifeOutcome::Rejected(Rejection::ChatGone));
    };
    let done = sqlx::query_scalar!(
        r#"SELECT effect AS "effect: sqlx::types::Json<Applied>" FROM applied_commands
           WHERE id = $1"#,
        cmd.command_id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(sqlx::types::Json(applied)) = done {
        return Ok(LifeOutcome::Applied { applied, audience });
    }
    let effects = match changes(&mut tx, cmd, kind).await? {
        Ok(effects) => effects,
        Err(r) => return Ok(LifeOutcome::Rejected(r)),
    };
    let applied = Applied {
        effects: effects
            .into_iter()
            .enumerate()
            .map(|(i, e)| (version + 1 + i as i64, e))
            .collect(),
    };
    if !applied.effects.is_empty() {
        sqlx::query!(
            "UPDATE chats SET version = $2 WHERE id = $1",
            cmd.chat_id,
            version + applied.effects.len() as i64,
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query!(
        "INSERT INTO applied_commands (id, chat_id, effect) VALUES ($1, $2, $3)",
        cmd.command_id,
        cmd.chat_id,
        sqlx::types::Json(&applied) as _,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(LifeOutcome::Applied { applied, audience })
}

/// Applies the command's changes; no effect when it changes nothing (a client retry).
async fn changes(
    tx: &mut Tx<'_>,
    cmd: &LifecycleCommand,
    kind: ChatType,
) -> Result<Result<Vec<Effect>, Rejection>, sqlx::Error> {
    if let Op::ChatChanged { removed, added } = &cmd.op {
        return Ok(Ok(vec![Effect::Chat {
            removed: removed.clone(),
            added: added.clone(),
        }]));
    }
    if let Op::ModeratorDelete { message_id } = &cmd.op {
        return super::moderation::moderate(tx, cmd, *message_id).await;
    }
    // With the actor's ban, in the same statement: a banned user's queued edits,
    // deletes, reactions and pins are dead-lettered like their sends.
    let row = sqlx::query!(
        r#"SELECT p.role AS "role: Role",
                  CASE WHEN u.banned_at IS NOT NULL
                            AND (u.banned_until IS NULL OR u.banned_until > now())
                       THEN coalesce(u.ban_reason, '') END AS "ban_reason?"
           FROM chat_participants p LEFT JOIN users u ON u.id = p.user_id
           WHERE p.chat_id = $1 AND p.user_id = $2"#,
        cmd.chat_id,
        cmd.actor_id,
    )
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(Err(Rejection::NotParticipant));
    };
    if let Some(reason) = row.ban_reason {
        return Ok(Err(Rejection::Banned(reason)));
    }
    let role = row.role;
    let Some(message_id) = cmd.op.message_id() else {
        return Ok(Ok(Vec::new()));
    };
    // The target message, locked.
    let target = sqlx::query!(
        "SELECT sender_id, sequence, content, deleted_at FROM messages
         WHERE id = $1 AND chat_id = $2 FOR UPDATE",
        message_id,
        cmd.chat_id,
    )
    .fetch_optional(&mut **tx)
    .await?;
    let Some(target) = target else {
        return Ok(Err(Rejection::MessageGone));
    };
    let (sender, sequence, content) = (target.sender_id, target.sequence, target.content);
    let deleted_at = target.deleted_at;
    let actor = cmd.actor_id;
    let deleted = deleted_at.is_some();
    let effects = match &cmd.op {
        Op::Edit { content: new, .. } => {
            if actor != sender {
                return Ok(Err(Rejection::Forbidden));
            }
            if deleted || *new == content {
                return Ok(Ok(Vec::new()));
            }
            sqlx::query!(
                "UPDATE messages SET content = $2, edited_at = now() WHERE id = $1",
                message_id,
                new,
            )
            .execute(&mut **tx)
            .await?;
            let notified = remention(tx, cmd.chat_id, kind, message_id, sender, new).await?;
            vec![Effect::Updated {
                message_id,
                notified,
            }]
        }
        Op::Delete { .. } => {
            if !may_delete(actor, sender, kind, role) {
                return Ok(Err(Rejection::Forbidden));
            }
            if deleted {
                return Ok(Ok(Vec::new()));
            }
            delete(tx, cmd.chat_id, message_id, sequence, actor, None).await?
        }
        Op::React { emoji, add, .. } => {
            if deleted {
                return Ok(Ok(Vec::new()));
            }
            react(tx, message_id, actor, emoji, *add).await?
        }
        Op::Pin { pinned, .. } => {
            if !may_pin(kind, role) {
                return Ok(Err(Rejection::Forbidden));
            }
            if deleted && *pinned {
                return Ok(Ok(Vec::new()));
            }
            let changed = if *pinned {
                sqlx::query!(
                    "INSERT INTO chat_pins (chat_id, message_id, pinned_by) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    cmd.chat_id,
                    message_id,
                    actor,
                )
                .execute(&mut **tx)
                .await?
            } else {
                sqlx::query!(
                    "DELETE FROM chat_pins WHERE chat_id = $1 AND message_id = $2",
                    cmd.chat_id,
                    message_id,
                )
                .execute(&mut **tx)
                .await?
            };
            if changed.rows_affected() == 0 {
                Vec::new()
            } else {
                vec![Effect::Pins {
                    message_id,
                    pinned: *pinned,
                    user_id: actor,
                }]
            }
        }
        Op::ChatChanged { .. } | Op::ModeratorDelete { .. } => Vec::new(),
    };
    Ok(Ok(effects))
}

/// Tombstones a message: content emptied, reactions dropped, unpinned.
pub(super) async fn delete(
    tx: &mut Tx<'_>,
    chat: Uuid,
    message_id: Uuid,
    sequence: i64,
    actor: Uuid,
    deleted_by: Option<DeletedBy>,
) -> Result<Vec<Effect>, sqlx::Error> {
    sqlx::query!(
        "UPDATE messages SET content = '', mentions = '{}', deleted_at = now(), deleted_by = $2
         WHERE id = $1",
        message_id,
        deleted_by.map(DeletedBy::as_str),
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "DELETE FROM notifications WHERE message_id = $1 AND read_at IS NULL",
        message_id,
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "DELETE FROM message_reactions WHERE message_id = $1",
        message_id
    )
    .execute(&mut **tx)
    .await?;
    let unpinned = sqlx::query!(
        "DELETE FROM chat_pins WHERE chat_id = $1 AND message_id = $2",
        chat,
        message_id,
    )
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let mut effects = vec![Effect::Deleted {
        message_id,
        sequence,
        deleted_by,
    }];
    if unpinned > 0 {
        effects.push(Effect::Pins {
            message_id,
            pinned: false,
            user_id: actor,
        });
    }
    Ok(effects)
}

/// Mentions of an edited message, recomputed; users it mentions for the first time get
/// their notification (once per message, ever). Returns them.
async fn remention(
    tx: &mut Tx<'_>,
    chat: Uuid,
    kind: ChatType,
    message_id: Uuid,
    sender: Uuid,
    content: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let mentions = if content.contains('@') {
        let roster: Vec<(Uuid, String)> = sqlx::query!(
            "SELECT p.user_id, u.username FROM chat_participants p JOIN users u ON u.id = p.user_id
             WHERE p.chat_id = $1 ORDER BY p.joined_at, p.user_id",
            chat,
        )
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| (r.user_id, r.username))
        .collect();
        mention::resolve(content, kind == ChatType::Group, sender, &roster)
    } else {
        Vec::new()
    };
    sqlx::query!(
        "UPDATE messages SET mentions = $2 WHERE id = $1",
        message_id,
        &mentions,
    )
    .execute(&mut **tx)
    .await?;
    let users: Vec<Uuid> = mention::notified(&mentions, sender).collect();
    if users.is_empty() {
        return Ok(users);
    }
    let ids: Vec<Uuid> = users
        .iter()
        .map(|u| mention::notification_id(message_id, *u))
        .collect();
    sqlx::query_scalar!(
        "INSERT INTO notifications (id, user_id, type, chat_id, message_id, sender_id, excerpt,
                                    created_at)
         SELECT x.id, x.user_id, $3, $4, $5, $6, left($7, $8), now()
         FROM UNNEST($1::uuid[], $2::uuid[]) AS x(id, user_id)
         ON CONFLICT DO NOTHING
         RETURNING user_id",
        &ids,
        &users,
        mention::TYPE_MENTION,
        chat,
        message_id,
        sender,
        content,
        EXCERPT_CHARS as i32,
    )
    .fetch_all(&mut **tx)
    .await
}

/// Adds or removes one user's reaction; over `MAX_REACTIONS` distinct emojis a new
/// emoji is not added.
async fn react(
    tx: &mut Tx<'_>,
    message_id: Uuid,
    user: Uuid,
    emoji: &str,
    add: bool,
) -> Result<Vec<Effect>, sqlx::Error> {
    let changed = if add {
        let kinds = sqlx::query!(
            r#"SELECT count(DISTINCT emoji) AS "distinct!",
                      COALESCE(bool_or(emoji = $2), false) AS "present!"
               FROM message_reactions WHERE message_id = $1"#,
            message_id,
            emoji,
        )
        .fetch_one(&mut **tx)
        .await?;
        let (distinct, present) = (kinds.distinct, kinds.present);
        if !present && distinct >= MAX_REACTIONS {
            tracing::info!(%message_id, "reaction over the per-message limit dropped");
            return Ok(Vec::new());
        }
        sqlx::query!(
            "INSERT INTO message_reactions (message_id, emoji, user_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            message_id,
            emoji,
            user,
        )
        .execute(&mut **tx)
        .await?
    } else {
        sqlx::query!(
            "DELETE FROM message_reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3",
            message_id,
            emoji,
            user,
        )
        .execute(&mut **tx)
        .await?
    };
    if changed.rows_affected() == 0 {
        return Ok(Vec::new());
    }
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM message_reactions WHERE message_id = $1 AND emoji = $2"#,
        message_id,
        emoji,
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(vec![Effect::Reaction {
        message_id,
        emoji: emoji.to_string(),
        user_id: user,
        added: add,
        count,
    }])
}

/// Forgets applied commands older than `days` (a redelivery comes within minutes).
pub async fn purge_applied(pool: &PgPool, days: i32) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        "DELETE FROM applied_commands WHERE applied_at < now() - make_interval(days => $1)",
        days,
    )
    .execute(pool)
    .await?
    .rows_affected())
}
