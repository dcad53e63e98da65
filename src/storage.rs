//! S3-compatible object storage for attachments (object_store): presigned PUT and GET
//! URLs, and HEAD to find an uploaded object's size. No other part of Courier talks to S3.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use object_store::{
    ClientOptions, ObjectStoreExt, RetryConfig,
    aws::{AmazonS3, AmazonS3Builder},
    path::Path,
    signer::{HeaderName, HeaderValue, Method, SignedUrlOptions, Signer},
};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::{
    config::{S3Config, Uploads},
    domain::message::Message,
};

/// Where an upload's bytes are in the bucket.
pub fn object_key(upload: Uuid) -> String {
    format!("uploads/{upload}")
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("attachments are not configured (S3_BUCKET is unset)")]
    Off,
    #[error("object storage: {0}")]
    S3(#[from] object_store::Error),
    #[error("not a valid Content-Type header value")]
    BadContentType,
}

/// A presigned upload: PUT `url` with `content_type` as `Content-Type` before `expires_at`.
#[derive(Debug, Clone)]
pub struct PresignedPut {
    pub url: String,
    pub content_type: String,
    pub expires_at: DateTime<Utc>,
}

/// The attachments store and the upload limits; cheap to clone.
#[derive(Clone)]
pub struct Storage {
    /// For HEAD: at `S3_ENDPOINT`.
    s3: Option<Arc<AmazonS3>>,
    /// For the presigned URLs: at `S3_PUBLIC_ENDPOINT` (the same store when unset).
    signer: Option<Arc<AmazonS3>>,
    /// `UPLOAD_MAX_BYTES`.
    pub max_bytes: u64,
    /// `UPLOAD_ALLOWED_TYPES`.
    pub allowed_types: Arc<[String]>,
    put_ttl: Duration,
    get_ttl: Duration,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("enabled", &self.s3.is_some())
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// The store of the configuration (no I/O: the first request connects).
    pub fn new(cfg: &Uploads) -> Result<Self, StorageError> {
        let (s3, signer) = match &cfg.s3 {
            None => (None, None),
            Some(c) => {
                let s3 = Arc::new(build(c, c.endpoint.as_deref())?);
                let signer = match &c.public_endpoint {
                    Some(public) => Arc::new(build(c, Some(public))?),
                    None => s3.clone(),
                };
                (Some(s3), Some(signer))
            }
        };
        Ok(Self {
            s3,
            signer,
            max_bytes: cfg.max_bytes,
            allowed_types: cfg.allowed_types.clone().into(),
            put_ttl: cfg.upload_url_ttl,
            get_ttl: cfg.download_url_ttl,
        })
    }

    /// Whether `S3_BUCKET` is set.
    pub fn enabled(&self) -> bool {
        self.s3.is_some()
    }

    fn s3(&self) -> Result<&AmazonS3, StorageError> {
        self.s3.as_deref().ok_or(StorageError::Off)
    }

    fn signer(&self) -> Result<&AmazonS3, StorageError> {
        self.signer.as_deref().ok_or(StorageError::Off)
    }

    /// A presigned PUT of `key`; the `Content-Type` header is part of the signature.
    pub async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<PresignedPut, StorageError> {
        let opts = SignedUrlOptions::default().with_signed_header(
            HeaderName::from_static("content-type"),
            HeaderValue::from_str(content_type).map_err(|_| StorageError::BadContentType)?,
        );
        let expires_at = Utc::now() + self.put_ttl;
        let url = self
            .signer()?
            .signed_url_opts(Method::PUT, &Path::from(key), self.put_ttl, &opts)
            .await?;
        Ok(PresignedPut {
            url: url.into(),
            content_type: content_type.to_string(),
            expires_at,
        })
    }

    /// A presigned GET of `key`, valid for `ATTACHMENT_URL_TTL_SECS`.
    pub async fn presign_get(&self, key: &str) -> Result<String, StorageError> {
        let url = self
            .signer()?
            .signed_url(Method::GET, &Path::from(key), self.get_ttl)
            .await?;
        Ok(url.into())
    }

    /// The stored size of `key`, `None` when there is no such object.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        match self.s3()?.head(&Path::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the object `key` (nothing when there is none).
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.s3()?.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Mints each attachment's `url` (tombstones carry none). While attachments are off
    /// the urls stay "".
    pub async fn sign(&self, messages: &mut [Message]) -> Result<(), StorageError> {
        for m in messages.iter_mut() {
            if m.deleted_at.is_some() {
                m.attachments.clear();
                continue;
            }
            if self.s3.is_none() {
                continue;
            }
            for a in &mut m.attachments {
                a.url = self.presign_get(&object_key(a.id)).await?;
            }
        }
        Ok(())
    }
}

fn build(cfg: &S3Config, endpoint: Option<&str>) -> Result<AmazonS3, StorageError> {
    // reqwest's rustls has no built-in crypto provider here: ring, the process's one.
    crate::tls::install_crypto_provider();
    let mut b = AmazonS3Builder::new()
        .with_region(&cfg.region)
        .with_bucket_name(&cfg.bucket)
        .with_access_key_id(&cfg.access_key_id)
        .with_secret_access_key(cfg.secret_access_key.expose_secret())
        .with_virtual_hosted_style_request(!cfg.force_path_style)
        .with_retry(RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(5),
            ..RetryConfig::default()
        })
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(true)
                .with_timeout(Duration::from_secs(10))
                .with_connect_timeout(Duration::from_secs(3)),
        );
    if let Some(endpoint) = endpoint {
        b = b.with_endpoint(if cfg.force_path_style {
            endpoint.to_string()
        } else {
            // Virtual-hosted style: the bucket is a subdomain of the endpoint's host.
            endpoint.replacen("://", &format!("://{}.", cfg.bucket), 1)
        });
    }
    Ok(b.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uploads(path_style: bool) -> Uploads {
        Uploads {
            s3: Some(S3Config {
                endpoint: Some("http://127.0.0.1:9090".into()),
                public_endpoint: None,
                region: "us-east-1".into(),
                bucket: "media".into(),
                access_key_id: "AKID".into(),
                secret_access_key: "secret".to_string().into(),
                force_path_style: path_style,
            }),
            max_bytes: 10,
            allowed_types: vec!["image/*".into()],
            upload_url_ttl: Duration::from_secs(60),
            download_url_ttl: Duration::from_secs(120),
        }
    }

    #[tokio::test]
    async fn presigned_urls_name_the_bucket_key_and_expiry() {
        let s = Storage::new(&uploads(true)).unwrap();
        let put = s.presign_put("uploads/x", "image/png").await.unwrap();
        assert!(
            put.url
                .starts_with("http://127.0.0.1:9090/media/uploads/x?")
        );
        assert!(put.url.contains("X-Amz-Expires=60"), "{}", put.url);
        assert!(
            put.url.contains("content-type"),
            "content type signed: {}",
            put.url
        );
        assert!(!put.url.contains("secret"));
        let get = s.presign_get("uploads/x").await.unwrap();
        assert!(get.contains("X-Amz-Expires=120"), "{get}");
        let mut cfg = uploads(false);
        if let Some(s3) = cfg.s3.as_mut() {
            s3.endpoint = Some("https://s3.example.com".into());
        }
        let get = Storage::new(&cfg)
            .unwrap()
            .presign_get("uploads/x")
            .await
            .unwrap();
        assert!(
            get.starts_with("https://media.s3.example.com/uploads/x?"),
            "{get}"
        );
    }

    #[tokio::test]
    async fn presigned_urls_use_the_public_endpoint() {
        let mut cfg = uploads(true);
        if let Some(s3) = cfg.s3.as_mut() {
            s3.public_endpoint = Some("https://files.example.com".into());
        }
        let s = Storage::new(&cfg).unwrap();
        let get = s.presign_get("uploads/x").await.unwrap();
        assert!(
            get.starts_with("https://files.example.com/media/uploads/x?"),
            "{get}"
        );
    }

    #[tokio::test]
    async fn off_without_a_bucket() {
        let s = Storage::new(&Uploads {
            s3: None,
            ..uploads(true)
        })
        .unwrap();
        assert!(!s.enabled());
        assert!(matches!(
            s.presign_get("k").await.unwrap_err(),
            StorageError::Off
        ));
    }
}
