//! Chat management: create, rename, participants and roles. Each change commits with
//! its announcement in the outbox; membership changes drop the cached member set under
//! the chat's lock before committing. The announcement then goes through the chat's
//! partition (the worker's relay resends what an API process failed to hand over), so
//! `chat.updated` / `chat.removed` reach clients in chat order.

use uuid::Uuid;

use super::{
    Ctx, ServiceError, ServiceResult, error::Violation, no_nul, on_constraint, require_member,
};
use crate::{
    db::{self, manage},
    domain::{
        chat::{Chat, ChatType, Role, may_remove},
        lifecycle::LifecycleCommand,
        receipts::Marks,
    },
};

/// The constraints a new participant can break (`require_users` checked first, so
/// only a user deleted meanwhile): the user, or the caller, no longer exists.
const PARTICIPANT_CONSTRAINTS: &[Violation] = &[
    ("chat_participants_user_id_fkey", || {
        ServiceError::Invalid("a participant is not a known user".into())
    }),
    ("chats_created_by_fkey", || ServiceError::Unauthenticated),
];

fn participant_error(e: sqlx::Error) -> ServiceError {
    on_constraint(e, PARTICIPANT_CONSTRAINTS)
}

/// Most participants accepted in one request.
pub const MAX_IDS: usize = 1000;

/// A title after trimming: 1 to 128 characters.
pub fn normalize_title(raw: Option<&str>) -> ServiceResult<String> {
    let title = raw.map(str::trim).unwrap_or_default();
    if title.is_empty() || title.chars().count() > 128 {
        return Err(ServiceError::Invalid(
            "title must be 1 to 128 characters".into(),
        ));
    }
    no_nul(title)?;
    Ok(title.to_string())
}

async fn require_users(ctx: &Ctx, ids: &[Uuid]) -> ServiceResult<()> {
    if ids.len() > MAX_IDS {
        return Err(ServiceError::Invalid(format!(
            "at most {MAX_IDS} participants per request"
        )));
    }
    let missing = db::users::missing(&ctx.pool, ids).await?;
    if let Some(first) = missing.first() {
        return Err(ServiceError::Invalid(format!("unknown user id: {first}")));
    }
    Ok(())
}

/// Hands a recorded change to the chat's partition and clears it from the outbox. A
/// failure is not the caller's: the change is committed, and the relay resends it.
pub(super) async fn announce(ctx: &Ctx, cmd: &LifecycleCommand, request_id: &str) {
    match ctx
        .commands
        .send(cmd.chat_id, cmd.command_id, cmd, request_id)
        .await
    {
        Ok(()) => {
            if let Err(e) = manage::forget_change(&ctx.pool, cmd.command_id).await {
                tracing::warn!(error = %e, "announced chat change left in the outbox");
            }
        }
        Err(e) => tracing::warn!(error = %e, chat = %cmd.chat_id, "chat change left to the relay"),
    }
}

/// A chat to create: `direct` with exactly one other user, or a `group` with a title
/// (the caller becomes its owner).
pub struct NewChat {
    pub kind: ChatType,
    pub participant_ids: Vec<Uuid>,
    pub title: Option<String>,
}

/// Creates a chat; `false` when it is the direct chat that already existed.
pub async fn create(
    ctx: &Ctx,
    me: Uuid,
    new: NewChat,
    request_id: &str,
) -> ServiceResult<(Chat, bool)> {
    match new.kind {
        ChatType::Direct => {
            let [other] = new.participant_ids[..] else {
                return Err(ServiceError::Invalid(
                    "a direct chat needs exactly one participantId".into(),
                ));
            };
            create_direct(ctx, me, other, request_id).await
        }
        ChatType::Group => {
            let title = new.title.as_deref();
            let chat = create_group(ctx, me, title, new.participant_ids, request_id).await?;
            Ok((chat, true))
        }
    }
}

/// One chat of the caller's, with every participant's delivered and read marks.
pub async fn get(ctx: &Ctx, me: Uuid, chat: Uuid) -> ServiceResult<(Chat, Vec<Marks>)> {
    require_member(&ctx.pool, chat, me).await?;
    let marks = db::chats::marks(&ctx.pool, &[chat])
        .await?
        .remove(&chat)
        .unwrap_or_default();
    let found = db::chats::load(&ctx.pool, chat)
        .await?
        .ok_or_else(|| ServiceError::NotFound("chat not found".into()))?;
    Ok((found, marks))
}

/// Creates a direct chat (or returns the existing one: `false`).
pub async fn create_direct(
    ctx: &Ctx,
    me: Uuid,
    other: Uuid,
    request_id: &str,
) -> ServiceResult<(Chat, bool)> {
    if other == me {
        return Err(ServiceError::Invalid(
            "a direct chat needs another user".into(),
        ));
    }
    require_users(ctx, &[other]).await?;
    super::blocks::refuse_if_blocked(ctx, me, other).await?;
    let (chat, created) = db::chats::create_direct(&ctx.pool, me, other)
        .await
        .map_err(participant_error)?;
    if let Some(cmd) = &created {
        announce(ctx, cmd, request_id).await;
    }
    Ok((chat, created.is_some()))
}

pub async fn create_group(
    ctx: &Ctx,
    me: Uuid,
    title: Option<&str>,
    mut ids: Vec<Uuid>,
    request_id: &str,
) -> ServiceResult<Chat> {
    let title = normalize_title(title)?;
    ids.sort();
    ids.dedup();
    let would = ids.iter().filter(|u| **u != me).count() + 1;
    if would > ctx.max_members {
        return Err(ServiceError::TooManyMembers {
            max: ctx.max_members,
            would,
        });
    }
    require_users(ctx, &ids).await?;
    let (chat, cmd) = db::chats::create_group(&ctx.pool, me, &title, &ids)
        .await
        .map_err(participant_error)?;
    announce(ctx, &cmd, request_id).await;
    Ok(chat)
}

/// The change every management use case makes: lock, check, write, record, commit.
struct Change<'a> {
    tx: manage::Tx<'a>,
    kind: ChatType,
    role: Role,
}

async fn begin(ctx: &Ctx, me: Uuid, chat: Uuid) -> ServiceResult<Change<'static>> {
    let mut tx = ctx.pool.begin().await?;
    match manage::lock(&mut tx, chat, me).await? {
        None => Err(ServiceError::NotFound("chat not found".into())),
        Some((_, None)) => Err(ServiceError::not_participant()),
        Some((kind, Some(role))) => Ok(Change { tx, kind, role }),
    }
}

async fn commit(
    ctx: &Ctx,
    mut change: Change<'_>,
    me: Uuid,
    chat: Uuid,
    added: Vec<Uuid>,
    removed: Vec<Uuid>,
    request_id: &str,
) -> ServiceResult<Chat> {
    let members_changed = !added.is_empty() || !removed.is_empty();
    let cmd = LifecycleCommand::chat_changed(chat, me, added, removed);
    manage::record_change(&mut change.tx, &cmd).await?;
    if members_changed {
        // Under the row lock, before the commit: a Redis failure aborts the change.
        ctx.cache.invalidate_members(chat).await?;
    }
    change.tx.commit().await?;
    announce(ctx, &cmd, request_id).await;
    db::chats::load(&ctx.pool, chat)
        .await?
        .ok_or_else(|| ServiceError::NotFound("chat not found".into()))
}

fn group_only(kind: ChatType, what: &str) -> ServiceResult<()> {
    if kind != ChatType::Group {
        return Err(ServiceError::Invalid(format!("{what} only in group chats")));
    }
    Ok(())
}

/// Adds users to a group (owner or admin).
pub async fn add_participants(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    users: &[Uuid],
    request_id: &str,
) -> ServiceResult<Chat> {
    if users.is_empty() {
        return Err(ServiceError::Invalid("userIds must not be empty".into()));
    }
    require_users(ctx, users).await?;
    let mut change = begin(ctx, me, chat).await?;
    group_only(change.kind, "participants can be added")?;
    if !change.role.can_manage() {
        return Err(ServiceError::Forbidden(
            "only the owner or an admin can add participants".into(),
        ));
    }
    let added = manage::add(&mut change.tx, chat, users)
        .await
        .map_err(participant_error)?;
    // Under the chat's row lock: concurrent additions are counted one after the other.
    let would = manage::member_count(&mut change.tx, chat).await? as usize;
    if would > ctx.max_members {
        return Err(ServiceError::TooManyMembers {
            max: ctx.max_members,
            would,
        });
    }
    commit(ctx, change, me, chat, added, Vec::new(), request_id).await
}

/// Removes a participant from a group (owner/admin, or oneself); they get
/// `chat.removed` and nothing more of the chat.
pub async fn remove_participant(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    target: Uuid,
    request_id: &str,
) -> ServiceResult<()> {
    let mut change = begin(ctx, me, chat).await?;
    group_only(change.kind, "participants can be removed")?;
    let Some(target_role) = manage::role_of(&mut change.tx, chat, target).await? else {
        return Err(ServiceError::NotFound(
            "that user is not a participant".into(),
        ));
    };
    if !may_remove(me, change.role, target, target_role) {
        return Err(ServiceError::Forbidden(
            "you may not remove that participant".into(),
        ));
    }
    manage::remove(&mut change.tx, chat, target).await?;
    commit(ctx, change, me, chat, Vec::new(), vec![target], request_id).await?;
    Ok(())
}

/// `user` leaves group `chat` inside the caller's `tx` (account deletion leaves every
/// group in one transaction): locked, removed, recorded and its member cache dropped as
/// `remove_participant` does; the change is to `announce` after the commit (`None`:
/// not a participant of that group by now).
pub(super) async fn leave_within(
    ctx: &Ctx,
    tx: &mut manage::Tx<'_>,
    chat: Uuid,
    user: Uuid,
) -> ServiceResult<Option<LifecycleCommand>> {
    let Some((ChatType::Group, Some(_))) = manage::lock(tx, chat, user).await? else {
        return Ok(None);
    };
    manage::remove(tx, chat, user).await?;
    let cmd = LifecycleCommand::chat_changed(chat, user, Vec::new(), vec![user]);
    manage::record_change(tx, &cmd).await?;
    // Under the row lock, before the commit: a Redis failure aborts the deletion.
    ctx.cache.invalidate_members(chat).await?;
    Ok(Some(cmd))
}

/// Renames a group (owner or admin).
pub async fn rename(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    title: Option<&str>,
    request_id: &str,
) -> ServiceResult<Chat> {
    let title = normalize_title(title)?;
    let mut change = begin(ctx, me, chat).await?;
    group_only(change.kind, "a title can be set")?;
    if !change.role.can_manage() {
        return Err(ServiceError::Forbidden(
            "only the owner or an admin can rename the chat".into(),
        ));
    }
    manage::rename(&mut change.tx, chat, &title).await?;
    commit(ctx, change, me, chat, Vec::new(), Vec::new(), request_id).await
}

/// Makes a participant an admin or a member again (the owner only).
pub async fn set_role(
    ctx: &Ctx,
    me: Uuid,
    chat: Uuid,
    target: Uuid,
    role: Role,
    request_id: &str,
) -> ServiceResult<Chat> {
    if role == Role::Owner {
        return Err(ServiceError::Invalid("role must be admin or member".into()));
    }
    let mut change = begin(ctx, me, chat).await?;
    group_only(change.kind, "roles exist")?;
    if change.role != Role::Owner {
        return Err(ServiceError::Forbidden(
            "only the owner can change roles".into(),
        ));
    }
    match manage::role_of(&mut change.tx, chat, target).await? {
        None => {
            return Err(ServiceError::NotFound(
                "that user is not a participant".into(),
            ));
        }
        Some(Role::Owner) => {
            return Err(ServiceError::Forbidden(
                "the owner's role cannot change".into(),
            ));
        }
        Some(_) => {}
    }
    manage::set_role(&mut change.tx, chat, target, role).await?;
    commit(ctx, change, me, chat, Vec::new(), Vec::new(), request_id).await
}
