//! `POST /uploads`: announces a file and answers a presigned PUT to upload it with.

use super::responses::{BadRequest, BodyErrors, ServerErrors, Unauthorized};
use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;

use super::{
    AppState,
    extract::{ApiJson, AuthUser},
};
use crate::{
    error::ApiResult,
    service::uploads::{self as uc, UploadInput, UploadTicket},
};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = UploadBody)]
pub struct UploadBody {
    /// 1–255 characters, no `/`, `\` or control characters.
    #[schema(min_length = 1, max_length = 255, example = "photo.jpg")]
    file_name: String,
    /// A media type on `UPLOAD_ALLOWED_TYPES` (default images, video, audio, text/plain,
    /// PDF, ZIP); the upload must send it as `Content-Type`.
    #[schema(example = "image/jpeg")]
    content_type: String,
    /// Bytes, 1 to `UPLOAD_MAX_BYTES` (default 26214400); the uploaded object must
    /// have exactly this size when a message names it.
    #[schema(minimum = 1, example = 48213)]
    size: i64,
}

/// Announces an upload: the answer's `uploadUrl` takes the bytes (one `PUT` with
/// `headers`) until `expiresAt`; then send a message with `attachments: [id]`.
#[utoipa::path(post, path = "/uploads", operation_id = "createUpload", tag = "attachments",
    security(("bearer" = [])), request_body = UploadBody,
    responses(
        (status = 201, description = "A presigned upload", body = UploadTicket),
        BadRequest, Unauthorized, ServerErrors, BodyErrors,
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<UploadBody>,
) -> ApiResult<(StatusCode, Json<UploadTicket>)> {
    let input = UploadInput {
        file_name: body.file_name,
        content_type: body.content_type,
        size: body.size,
    };
    let ticket = uc::create(&state.ctx, me, input).await?;
    Ok((StatusCode::CREATED, Json(ticket)))
}
