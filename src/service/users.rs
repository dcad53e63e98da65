//! Reading users: the caller, and any user by id (with `avatarUrl` minted for the read).

use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult};
use crate::{db, domain::user::User};

/// The caller's own user (`Unauthenticated` if it no longer exists).
pub async fn me(ctx: &Ctx, me: Uuid) -> ServiceResult<User> {
    let user = db::users::find(&ctx.pool, me)
        .await?
        .ok_or(ServiceError::Unauthenticated)?;
    Ok(super::profiles::sign(&ctx.storage, user).await)
}

/// Any user, by id.
pub async fn get(ctx: &Ctx, id: Uuid) -> ServiceResult<User> {
    let user = db::users::find(&ctx.pool, id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("user not found".into()))?;
    Ok(super::profiles::sign(&ctx.storage, user).await)
}
