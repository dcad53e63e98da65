//! Attachments: announcing an upload (a presigned PUT), checking the uploads a send
//! names (the caller's own, in storage with the declared size), and minting the
//! presigned GET of every attachment a read or event carries.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult};
use crate::{
    db,
    domain::{
        attachment::{Attachment, MAX_ATTACHMENTS, check_upload},
        message::Message,
    },
    storage::{Storage, StorageError, object_key},
};

/// What a client announces before uploading.
#[derive(Debug, Clone)]
pub struct UploadInput {
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
}

/// Where and how to upload the bytes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadTicket {
    /// The upload's id: name it in a send's `attachments`.
    pub id: Uuid,
    /// A presigned URL: send the bytes as the body of one request with `method`.
    pub upload_url: String,
    /// Always "PUT".
    #[schema(example = "PUT")]
    pub method: &'static str,
    /// Headers the upload request must carry exactly (`Content-Type`: part of the signature).
    #[schema(value_type = Object, example = json!({"Content-Type": "image/png"}))]
    pub headers: BTreeMap<&'static str, String>,
    /// When `uploadUrl` stops working (`UPLOAD_URL_TTL_SECS` after the announcement).
    #[serde(with = "crate::domain::time")]
    pub expires_at: DateTime<Utc>,
}

/// A storage failure as the client sees it: off (not configured) or unreachable.
pub(super) fn unavailable(e: StorageError) -> ServiceError {
    match e {
        StorageError::Off => ServiceError::Unavailable("attachment storage (not configured)"),
        StorageError::BadContentType => {
            ServiceError::Invalid("contentType must be a media type such as image/png".into())
        }
        e => {
            tracing::warn!(error = %e, "object storage failed");
            ServiceError::Unavailable("object storage")
        }
    }
}

/// Announces an upload: checked against the limits, recorded, answered with a presigned PUT.
pub async fn create(ctx: &Ctx, me: Uuid, input: UploadInput) -> ServiceResult<UploadTicket> {
    let storage = &ctx.storage;
    if !storage.enabled() {
        return Err(unavailable(StorageError::Off));
    }
    let spec = check_upload(
        &input.file_name,
        &input.content_type,
        input.size,
        storage.max_bytes,
        &storage.allowed_types,
    )
    .map_err(ServiceError::Invalid)?;
    let id = Uuid::now_v7();
    let key = object_key(id);
    let put = storage
        .presign_put(&key, &spec.content_type)
        .await
        .map_err(unavailable)?;
    db::uploads::insert(&ctx.pool, id, me, &spec, &key).await?;
    Ok(UploadTicket {
        id,
        upload_url: put.url,
        method: "PUT",
        headers: BTreeMap::from([("Content-Type", put.content_type)]),
        expires_at: put.expires_at,
    })
}

/// Fails early (before any I/O) on more than `MAX_ATTACHMENTS` or a repeated id.
pub fn check_count(ids: &[Uuid]) -> ServiceResult<()> {
    if ids.len() > MAX_ATTACHMENTS {
        return Err(ServiceError::Invalid(format!(
            "at most {MAX_ATTACHMENTS} attachments per message"
        )));
    }
    if ids.iter().collect::<HashSet<_>>().len() != ids.len() {
        return Err(ServiceError::Invalid(
            "attachments must not name an upload twice".into(),
        ));
    }
    Ok(())
}

/// The attachments a send names, in its order: each an upload of the caller whose
/// object is in storage with the declared size (else 400).
pub async fn resolve(ctx: &Ctx, me: Uuid, ids: &[Uuid]) -> ServiceResult<Vec<Attachment>> {
    check_count(ids)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    if !ctx.storage.enabled() {
        return Err(unavailable(StorageError::Off));
    }
    let found = db::uploads::find(&ctx.pool, ids).await?;
    let mut ordered = Vec::with_capacity(ids.len());
    for id in ids {
        match found.iter().find(|u| u.id == *id) {
            // Someone else's upload reads as unknown: ids of others are not probed.
            Some(u) if u.owner_id == me => ordered.push(u.clone()),
            _ => {
                return Err(ServiceError::Invalid(format!(
                    "attachment {id} is not an upload of yours"
                )));
            }
        }
    }
    let keys: Vec<String> = ordered.iter().map(|u| object_key(u.id)).collect();
    let sizes = futures::future::join_all(keys.iter().map(|k| ctx.storage.size(k))).await;
    for (u, size) in ordered.iter().zip(sizes) {
        match size.map_err(unavailable)? {
            None => {
                return Err(ServiceError::Invalid(format!(
                    "attachment {} has not been uploaded yet",
                    u.id
                )));
            }
            Some(n) if n != u.size as u64 => {
                return Err(ServiceError::Invalid(format!(
                    "attachment {} has {n} bytes in storage, not the {} announced",
                    u.id, u.size
                )));
            }
            Some(_) => {}
        }
    }
    let fresh: Vec<Uuid> = ordered
        .iter()
        .filter(|u| u.confirmed_at.is_none())
        .map(|u| u.id)
        .collect();
    if !fresh.is_empty() {
        db::uploads::confirm(&ctx.pool, &fresh).await?;
    }
    Ok(ordered.into_iter().map(Attachment::from).collect())
}

/// Mints the `url` of every attachment of `messages` (for this read).
pub async fn sign(storage: &Storage, messages: &mut [Message]) -> ServiceResult<()> {
    storage.sign(messages).await.map_err(unavailable)
}
