//! Uploads and message attachments: the announced files, their link to messages (in the
//! send's transaction), and the attachments of messages being read.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{
    attachment::{Attachment, UploadSpec},
    message::Message,
};

/// An announced upload.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Upload {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub confirmed_at: Option<DateTime<Utc>>,
}

impl From<Upload> for Attachment {
    fn from(u: Upload) -> Self {
        Attachment {
            id: u.id,
            file_name: u.file_name,
            content_type: u.content_type,
            size: u.size,
            url: String::new(),
        }
    }
}

/// Records an announced upload whose bytes will be at `object_key`.
pub async fn insert(
    pool: &PgPool,
    id: Uuid,
    owner: Uuid,
    spec: &UploadSpec,
    object_key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO uploads (id, owner_id, file_name, content_type, size, object_key)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        owner,
        spec.file_name,
        spec.content_type,
        spec.size,
        object_key,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The uploads among `ids` (any owner; the caller checks).
pub async fn find(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Upload>, sqlx::Error> {
    sqlx::query_as!(
        Upload,
        "SELECT id, owner_id, file_name, content_type, size, confirmed_at
         FROM uploads WHERE id = ANY($1)",
        ids,
    )
    .fetch_all(pool)
    .await
}

/// Marks uploads found in storage with their declared size (first time only).
pub async fn confirm(pool: &PgPool, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE uploads SET confirmed_at = now() WHERE id = ANY($1) AND confirmed_at IS NULL",
        ids,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Links the new messages to their uploads, in the send's transaction.
pub(super) async fn link(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    fresh: &[(Uuid, Message)],
) -> Result<(), sqlx::Error> {
    let mut messages = Vec::new();
    let mut positions = Vec::new();
    let mut uploads = Vec::new();
    for (_, m) in fresh {
        for (i, a) in m.attachments.iter().enumerate() {
            messages.push(m.id);
            positions.push(i as i16);
            uploads.push(a.id);
        }
    }
    if messages.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "INSERT INTO message_attachments (message_id, position, upload_id)
         SELECT * FROM UNNEST($1::uuid[], $2::smallint[], $3::uuid[])",
        &messages,
        &positions,
        &uploads,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The attachments of each of the messages (`url` empty), in their order.
pub(super) async fn of_messages(
    pool: &PgPool,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Attachment>>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT a.message_id, u.id, u.file_name, u.content_type, u.size
         FROM message_attachments a JOIN uploads u ON u.id = a.upload_id
         WHERE a.message_id = ANY($1) ORDER BY a.message_id, a.position",
        ids,
    )
    .fetch_all(pool)
    .await?;
    let mut out: HashMap<Uuid, Vec<Attachment>> = HashMap::new();
    for r in rows {
        out.entry(r.message_id).or_default().push(Attachment {
            id: r.id,
            file_name: r.file_name,
            content_type: r.content_type,
            size: r.size,
            url: String::new(),
        });
    }
    Ok(out)
}
