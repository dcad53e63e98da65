//! Deleting one's account (`DELETE /users/me`), and registering a username a deleted
//! account held.
//!
//! The user row stays, anonymized, so the messages it sent keep their sender (shown as
//! "Deleted user"). In one PostgreSQL transaction, under the user's row lock: the user
//! leaves every group (each announced as `remove_participant` announces a leave:
//! `chat.updated` to the others, `member.removed` on the integration exchange), its
//! direct chats are closed the way a block closes them (sends get 403 `blocked`), its
//! uploads' rows go (their objects are deleted from storage before the commit, so a
//! failure leaves nothing half-done in PostgreSQL and a retry finishes), its refresh
//! tokens are revoked, its push subscriptions deleted and the row is anonymized. After
//! the commit every session is revoked: tokens get 401 `session_revoked`, sockets
//! `auth.revoked` `account_deleted`.

use uuid::Uuid;

use super::{
    Ctx, ServiceError, ServiceResult, accounts, chats,
    revocation::{self, Which},
    sessions::Caller,
};
use crate::{
    db::{self, accounts as db_accounts},
    domain::session::reason,
    storage::StorageError,
};

/// Usernames of this form name deleted accounts whose hold is over; nobody registers one.
pub const RESERVED_PREFIX: &str = "deleted-";

/// Deletes the caller's account once `password` matches (`BadCredentials` otherwise).
/// Idempotent: for an account already deleted (a retry after its sessions could not
/// all be revoked) only the revocation runs again.
pub async fn delete(ctx: &Ctx, caller: Caller, password: String) -> ServiceResult<()> {
    let user = caller.user;
    match db_accounts::is_deleted(&ctx.pool, user).await? {
        None => return Err(ServiceError::Unauthenticated),
        Some(true) => return revoke_all(ctx, user).await,
        Some(false) => {}
    }
    let stored = db::sessions::password_hash(&ctx.pool, user)
        .await?
        .ok_or(ServiceError::Unauthenticated)?;
    if !accounts::check(ctx, user, password, stored).await? {
        return Err(ServiceError::BadCredentials("password is wrong"));
    }

    let mut tx = ctx.pool.begin().await?;
    if db_accounts::lock(&mut tx, user).await? != Some(false) {
        // Deleted by a concurrent request meanwhile (or gone): it revokes.
        return revoke_all(ctx, user).await;
    }
    let mut changes = Vec::new();
    for chat in db_accounts::groups(&mut tx, user).await? {
        if let Some(cmd) = chats::leave_within(ctx, &mut tx, chat, user).await? {
            changes.push(cmd);
        }
    }
    let partners = db_accounts::direct_partners(&mut tx, user).await?;
    db_accounts::close_direct(&mut tx, user, &partners).await?;
    // Anonymized first: the row lets go of anything it names before the uploads go.
    db_accounts::anonymize(&mut tx, user).await?;
    // Every device, also those registered under no (or a purged) session.
    db::push::delete_of_user(&mut *tx, user).await?;
    let keys = db_accounts::delete_uploads(&mut tx, user).await?;
    let mut blocks_of = partners;
    blocks_of.push(user);
    // Before the commit (a Redis failure aborts) and after it, as a block does.
    super::blocks::invalidate_before(ctx, &blocks_of).await?;
    delete_objects(ctx, user, &keys).await?;
    tx.commit().await?;
    super::blocks::invalidate_after(ctx, &blocks_of).await;
    metrics::counter!("courier_accounts_deleted_total").increment(1);
    for cmd in &changes {
        chats::announce(ctx, cmd, "account-deletion").await;
    }
    revoke_all(ctx, user).await
}

async fn revoke_all(ctx: &Ctx, user: Uuid) -> ServiceResult<()> {
    revocation::revoke(ctx, user, Which::AllBut(None), reason::ACCOUNT_DELETED).await
}

/// Deletes the uploads' objects; `Unavailable` if storage fails (the transaction then
/// rolls back and a retry deletes the rest). Without storage there is nothing to delete.
async fn delete_objects(ctx: &Ctx, user: Uuid, keys: &[String]) -> ServiceResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    if !ctx.storage.enabled() {
        tracing::warn!(%user, objects = keys.len(), "attachments are off: uploads' objects left in place");
        return Ok(());
    }
    for key in keys {
        match ctx.storage.delete(key).await {
            Ok(()) => {}
            Err(StorageError::Off) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, %user, "deleting an upload's object failed");
                return Err(ServiceError::Unavailable("object storage"));
            }
        }
    }
    Ok(())
}

/// Registering `username` found it taken: frees it if a deleted account held it for
/// longer than `ACCOUNT_USERNAME_HOLD` (then the registration tries again).
pub async fn release_held(ctx: &Ctx, username: &str) -> ServiceResult<bool> {
    Ok(db_accounts::free_username(&ctx.pool, username, ctx.username_hold).await?)
}
