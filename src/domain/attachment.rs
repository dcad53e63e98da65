//! Attachments: the file a message carries (Message v2 `attachments`) and the rules an
//! announced upload must follow (name, media type against the allow-list, size).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most attachments one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;
/// Longest file name, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 255;
/// Longest media type, in bytes.
pub const MAX_CONTENT_TYPE_LEN: usize = 255;

/// A file attached to a message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// The upload's id (from `POST /uploads`).
    pub id: Uuid,
    #[schema(example = "photo.jpg")]
    pub file_name: String,
    #[schema(example = "image/jpeg")]
    pub content_type: String,
    /// Bytes.
    #[schema(minimum = 1)]
    pub size: i64,
    /// A presigned GET of the file, minted for this read or event; it expires after
    /// `ATTACHMENT_URL_TTL_SECS` ("" while attachments are off).
    #[serde(default)]
    pub url: String,
}

/// A checked upload announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSpec {
    pub file_name: String,
    /// Lower-cased.
    pub content_type: String,
    pub size: i64,
}

/// Checks an announced upload against the limits; the message says which rule broke.
pub fn check_upload(
    file_name: &str,
    content_type: &str,
    size: i64,
    max_bytes: u64,
    allowed: &[String],
) -> Result<UploadSpec, String> {
    let name = file_name.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_FILE_NAME_CHARS {
        return Err(format!(
            "fileName must be 1 to {MAX_FILE_NAME_CHARS} characters"
        ));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
        || name == "."
        || name == ".."
    {
        return Err("fileName must not contain path separators or control characters".into());
    }
    if size <= 0 || size as u64 > max_bytes {
        return Err(format!("size must be 1 to {max_bytes} bytes"));
    }
    let ct = content_type.trim().to_ascii_lowercase();
    if !is_media_type(&ct) {
        return Err("contentType must be a media type such as image/png".into());
    }
    if !type_allowed(&ct, allowed) {
        return Err(format!("contentType {ct} is not allowed"));
    }
    Ok(UploadSpec {
        file_name: name.to_string(),
        content_type: ct,
        size,
    })
}

/// `type/subtype` with optional `; parameters`, printable ASCII, within the length limit.
fn is_media_type(ct: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if ct.len() > MAX_CONTENT_TYPE_LEN || !ct.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return false;
    }
    let essence = ct.split(';').next().unwrap_or_default().trim();
    matches!(essence.split_once('/'), Some((t, s)) if token(t) && token(s))
}

/// Whether the media type (its `type/subtype`, parameters ignored) matches the list
/// (`type/subtype`, `type/*`, or `*/*`).
pub fn type_allowed(ct: &str, allowed: &[String]) -> bool {
    let essence = ct.split(';').next().unwrap_or_default().trim();
    let Some((ty, _)) = essence.split_once('/') else {
        return false;
    };
    allowed.iter().any(|a| match a.split_once('/') {
        Some(("*", "*")) => true,
        Some((t, "*")) => t == ty,
        _ => a == essence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow() -> Vec<String> {
        vec!["image/*".into(), "application/pdf".into()]
    }

    #[test]
    fn uploads_are_checked() {
        let ok = check_upload(" cat.PNG ", "Image/PNG", 10, 100, &allow()).unwrap();
        assert_eq!(ok.file_name, "cat.PNG");
        assert_eq!(ok.content_type, "image/png");
        assert!(check_upload("a.pdf", "application/pdf", 100, 100, &allow()).is_ok());
        for (name, ct, size) in [
            ("", "image/png", 1),
            ("../etc/passwd", "image/png", 1),
            ("a\\b", "image/png", 1),
            ("a\0b", "image/png", 1),
            ("..", "image/png", 1),
            ("a.png", "image/png", 0),
            ("a.png", "image/png", 101),
            ("a.png", "image/png", -1),
            ("a.txt", "text/plain", 1),
            ("a", "image", 1),
            ("a", "image/png\r\nx: y", 1),
            ("a", "application/pdfx", 1),
        ] {
            assert!(
                check_upload(name, ct, size, 100, &allow()).is_err(),
                "{name:?} {ct:?} {size}"
            );
        }
        assert!(check_upload(&"n".repeat(256), "image/png", 1, 100, &allow()).is_err());
        assert!(check_upload(&"é".repeat(255), "image/png", 1, 100, &allow()).is_ok());
    }

    #[test]
    fn allow_list_wildcards() {
        assert!(type_allowed("image/png", &allow()));
        assert!(type_allowed("image/svg+xml; charset=utf-8", &allow()));
        assert!(!type_allowed("video/mp4", &allow()));
        assert!(type_allowed("video/mp4", &["*/*".to_string()]));
    }
}
