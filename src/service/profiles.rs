//! Profiles: `PATCH /users/me` (display name, bio, avatar from the uploads flow), the
//! `avatarUrl` every `User` read carries (a presigned GET minted per read), and the
//! `user.updated` event to everyone who shares a chat with the user and to the user's
//! own connections.

use serde::Serialize;
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult, no_nul, sessions::MAX_DISPLAY_NAME};
use crate::{
    db::{self, profiles::ProfileChange},
    domain::{
        events::{EVENT_USER_UPDATED, Outgoing},
        user::{AVATAR_MAX_BYTES, AVATAR_TYPES, MAX_BIO, User},
    },
    storage::{Storage, StorageError, object_key},
};

/// What `PATCH /users/me` asks for: `None` leaves a field as it is, `Some(None)`
/// clears it.
#[derive(Debug, Default, Clone)]
pub struct ProfileInput {
    pub display_name: Option<Option<String>>,
    pub avatar_upload_id: Option<Option<Uuid>>,
    pub bio: Option<Option<String>>,
}

/// The payload of `user.updated`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = UserUpdatedEvent)]
pub struct UserUpdated<'a> {
    pub user: &'a User,
}

/// Mints each user's `avatar_url` (for this read). A user without an avatar, or any
/// while attachments are off, gets null; a signing failure is logged and reads as no
/// avatar rather than failing the read that carries the user.
pub async fn sign_users(storage: &Storage, users: &mut [User]) {
    for u in users.iter_mut() {
        u.avatar_url = match u.avatar {
            None => None,
            Some(upload) => match storage.presign_get(&object_key(upload)).await {
                Ok(url) => Some(url),
                Err(StorageError::Off) => None,
                Err(e) => {
                    tracing::warn!(error = %e, user = %u.id, "could not sign an avatar url");
                    None
                }
            },
        };
    }
}

/// `sign_users` for one user.
pub async fn sign(storage: &Storage, mut user: User) -> User {
    sign_users(storage, std::slice::from_mut(&mut user)).await;
    user
}

/// A text field as stored: trimmed, blank is null; NUL and over `max` characters refused.
fn text(field: &str, value: Option<String>, max: usize) -> ServiceResult<Option<String>> {
    let Some(v) = value else { return Ok(None) };
    if v.chars().count() > max {
        return Err(ServiceError::Invalid(format!(
            "{field} must be at most {max} characters"
        )));
    }
    no_nul(&v)?;
    let t = v.trim();
    Ok((!t.is_empty()).then(|| t.to_string()))
}

/// Checks the text fields (in the contract's alphabetical order of fields: bio, then
/// displayName); the avatar is checked by `check_avatar`.
fn check(input: ProfileInput) -> ServiceResult<ProfileChange> {
    let bio = input.bio.map(|b| text("bio", b, MAX_BIO)).transpose()?;
    let display_name = input
        .display_name
        .map(|d| text("displayName", d, MAX_DISPLAY_NAME))
        .transpose()?;
    Ok(ProfileChange {
        display_name,
        bio,
        avatar: input.avatar_upload_id,
    })
}

fn invalid(msg: impl Into<String>) -> ServiceError {
    ServiceError::Invalid(msg.into())
}

/// An avatar must be an upload of `me`, of an image type, at most 5 MB, and in storage
/// with its declared size.
async fn check_avatar(ctx: &Ctx, me: Uuid, id: Uuid) -> ServiceResult<()> {
    let found = db::uploads::find(&ctx.pool, &[id]).await?;
    // Someone else's upload reads as unknown: ids of others are not probed.
    let Some(upload) = found.into_iter().find(|u| u.id == id && u.owner_id == me) else {
        return Err(invalid(format!(
            "avatarUploadId {id} is not an upload of yours"
        )));
    };
    let ct = upload.content_type.split(';').next().unwrap_or("").trim();
    if !AVATAR_TYPES.iter().any(|t| t.eq_ignore_ascii_case(ct)) {
        return Err(invalid(
            "avatarUploadId must be an image: image/png, image/jpeg, image/webp or image/gif",
        ));
    }
    if upload.size > AVATAR_MAX_BYTES {
        return Err(invalid(format!(
            "avatarUploadId must be at most {AVATAR_MAX_BYTES} bytes (5 MB)"
        )));
    }
    // Without storage no upload can be made; one made before it was turned off: 503.
    if !ctx.storage.enabled() {
        return Err(super::uploads::unavailable(StorageError::Off));
    }
    match ctx.storage.size(&object_key(id)).await {
        Ok(Some(n)) if n == upload.size as u64 => {}
        Ok(Some(n)) => {
            return Err(invalid(format!(
                "avatarUploadId {id} has {n} bytes in storage, not the {} announced",
                upload.size
            )));
        }
        Ok(None) => {
            return Err(invalid(format!(
                "avatarUploadId {id} has not been uploaded yet"
            )));
        }
        Err(e) => return Err(super::uploads::unavailable(e)),
    }
    if upload.confirmed_at.is_none() {
        db::uploads::confirm(&ctx.pool, &[id]).await?;
    }
    Ok(())
}

/// Changes the caller's profile in one statement (nothing half-written) and announces
/// it (`user.updated`); a request that changes nothing answers the user as it is,
/// without an event.
pub async fn update(ctx: &Ctx, me: Uuid, input: ProfileInput) -> ServiceResult<User> {
    let change = check(input)?;
    if let Some(Some(upload)) = change.avatar {
        check_avatar(ctx, me, upload).await?;
    }
    if change.display_name.is_none() && change.bio.is_none() && change.avatar.is_none() {
        return super::users::me(ctx, me).await;
    }
    let user = db::profiles::update(&ctx.pool, me, &change)
        .await
        .map_err(|e| {
            // The upload was deleted between the check and the update.
            super::on_constraint(
                e,
                &[("users_avatar_upload_id_fkey", || {
                    invalid("avatarUploadId is not an upload of yours")
                })],
            )
        })?
        .ok_or(ServiceError::Unauthenticated)?;
    let user = sign(&ctx.storage, user).await;
    announce(ctx, &user).await?;
    Ok(user)
}

/// `user.updated` to every member of every chat of the user and to the user's own
/// connections, once per recipient (ephemeral: not replayed on recovery).
async fn announce(ctx: &Ctx, user: &User) -> ServiceResult<()> {
    let mut to = db::users::contacts(&ctx.pool, user.id).await?;
    to.push(user.id);
    let event = Outgoing::to_users(EVENT_USER_UPDATED, &UserUpdated { user }, to)
        .map_err(ServiceError::internal)?;
    ctx.cache.publish_ephemeral(&[event]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(s: &str) -> Option<Option<String>> {
        Some(Some(s.to_string()))
    }

    fn message(input: ProfileInput) -> String {
        check(input).unwrap_err().public_message()
    }

    #[test]
    fn text_fields_are_trimmed_and_blank_clears() {
        let c = check(ProfileInput {
            display_name: some("  Alice "),
            bio: some("   "),
            avatar_upload_id: Some(None),
        })
        .unwrap();
        assert_eq!(c.display_name, Some(Some("Alice".into())));
        assert_eq!(c.bio, Some(None));
        assert_eq!(c.avatar, Some(None));
        let c = check(ProfileInput::default()).unwrap();
        assert!(c.display_name.is_none() && c.bio.is_none() && c.avatar.is_none());
    }

    #[test]
    fn limits_and_nul_are_refused_bio_first() {
        let long_bio = "é".repeat(MAX_BIO + 1);
        assert_eq!(
            message(ProfileInput {
                bio: Some(Some(long_bio)),
                display_name: Some(Some("x".repeat(65))),
                ..Default::default()
            }),
            "bio must be at most 500 characters"
        );
        assert!(
            check(ProfileInput {
                bio: Some(Some("é".repeat(MAX_BIO))),
                ..Default::default()
            })
            .is_ok()
        );
        assert_eq!(
            message(ProfileInput {
                display_name: Some(Some("x".repeat(65))),
                ..Default::default()
            }),
            "displayName must be at most 64 characters"
        );
        assert_eq!(
            message(ProfileInput {
                bio: some("a\0b"),
                ..Default::default()
            }),
            "text must not contain NUL characters"
        );
    }
}
