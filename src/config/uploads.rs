//! Attachments configuration: the S3-compatible store (`S3_*`), upload limits and the
//! content-type allow-list. Attachments are off when `S3_BUCKET` is unset.

use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, Env};

/// `UPLOAD_ALLOWED_TYPES` when unset.
pub const DEFAULT_ALLOWED_TYPES: &str =
    "image/*,video/*,audio/*,text/plain,application/pdf,application/zip";
/// `UPLOAD_MAX_BYTES` when unset (25 MiB).
pub const DEFAULT_MAX_BYTES: u64 = 26_214_400;
/// The longest a SigV4 presigned URL may live (7 days).
const MAX_URL_TTL_SECS: u64 = 604_800;

/// Where attachments are stored (`Debug` shows neither key).
#[derive(Clone)]
pub struct S3Config {
    /// `S3_ENDPOINT`: an S3-compatible server (`None`: AWS S3 of `S3_REGION`).
    pub endpoint: Option<String>,
    /// `S3_PUBLIC_ENDPOINT`: the same server as clients reach it, for the presigned
    /// URLs (default `S3_ENDPOINT`), when Courier reaches it under another name.
    pub public_endpoint: Option<String>,
    /// `S3_REGION` (default `us-east-1`).
    pub region: String,
    /// `S3_BUCKET`.
    pub bucket: String,
    /// `S3_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `S3_SECRET_ACCESS_KEY`.
    pub secret_access_key: SecretString,
    /// `S3_FORCE_PATH_STYLE`: `<endpoint>/<bucket>/<key>` instead of
    /// `<bucket>.<endpoint host>/<key>` (default: true with `S3_ENDPOINT`, false without).
    pub force_path_style: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("public_endpoint", &self.public_endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &"[REDACTED]")
            .field("secret_access_key", &"[REDACTED]")
            .field("force_path_style", &self.force_path_style)
            .finish()
    }
}

/// Uploads and the attachments' URLs.
#[derive(Debug, Clone)]
pub struct Uploads {
    /// `None` when `S3_BUCKET` is unset: `POST /uploads` and sends with attachments
    /// answer 503 `unavailable`.
    pub s3: Option<S3Config>,
    /// `UPLOAD_MAX_BYTES`: the largest file a client may announce.
    pub max_bytes: u64,
    /// `UPLOAD_ALLOWED_TYPES`: `type/subtype` or `type/*`, lower case; `*/*` allows all.
    pub allowed_types: Vec<String>,
    /// `UPLOAD_URL_TTL_SECS` (900): how long a presigned PUT stays valid.
    pub upload_url_ttl: Duration,
    /// `ATTACHMENT_URL_TTL_SECS` (3600): how long an attachment's presigned GET stays valid.
    pub download_url_ttl: Duration,
}

pub(super) fn from_env<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<Uploads, ConfigError> {
    let max_bytes = match env.parse("UPLOAD_MAX_BYTES", DEFAULT_MAX_BYTES)? {
        0 => return Err(env.bad("UPLOAD_MAX_BYTES", "must be at least 1")),
        n if n > 5 * 1024 * 1024 * 1024 => {
            return Err(env.bad(
                "UPLOAD_MAX_BYTES",
                "at most 5 GiB (the largest single PUT S3 accepts)",
            ));
        }
        n => n,
    };
    let mut allowed_types = Vec::new();
    for t in env
        .string("UPLOAD_ALLOWED_TYPES", DEFAULT_ALLOWED_TYPES)
        .split(',')
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
    {
        let ok = t.split_once('/').is_some_and(|(ty, sub)| {
            !ty.is_empty()
                && !sub.is_empty()
                && t.bytes().all(|b| b.is_ascii_graphic() && b != b';')
                && (ty != "*" || sub == "*")
        });
        if !ok {
            return Err(env.bad(
                "UPLOAD_ALLOWED_TYPES",
                &format!("not a media type or type/* pattern: {t:?}"),
            ));
        }
        allowed_types.push(t);
    }
    Ok(Uploads {
        s3: s3(env)?,
        max_bytes,
        allowed_types,
        upload_url_ttl: ttl(env, "UPLOAD_URL_TTL_SECS", 900)?,
        download_url_ttl: ttl(env, "ATTACHMENT_URL_TTL_SECS", 3600)?,
    })
}

fn ttl<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    var: &'static str,
    default: u64,
) -> Result<Duration, ConfigError> {
    match env.parse(var, default)? {
        n if !(1..=MAX_URL_TTL_SECS).contains(&n) => {
            Err(env.bad(var, "must be 1 to 604800 seconds (7 days)"))
        }
        n => Ok(Duration::from_secs(n)),
    }
}

fn s3<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<Option<S3Config>, ConfigError> {
    let Some(bucket) = env.raw("S3_BUCKET") else {
        return Ok(None);
    };
    let bucket = bucket.trim().to_string();
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !valid_bucket {
        return Err(env.bad(
            "S3_BUCKET",
            "must be 3 to 63 characters of a-z, 0-9, '-' and '.'",
        ));
    }
    let endpoint = endpoint_var(env, "S3_ENDPOINT")?;
    let public_endpoint = endpoint_var(env, "S3_PUBLIC_ENDPOINT")?;
    let access_key_id = env
        .raw("S3_ACCESS_KEY_ID")
        .ok_or_else(|| env.bad("S3_ACCESS_KEY_ID", "required with S3_BUCKET"))?;
    let secret_access_key = env
        .secret_opt("S3_SECRET_ACCESS_KEY")
        .ok_or_else(|| env.bad("S3_SECRET_ACCESS_KEY", "required with S3_BUCKET"))?;
    let force_path_style = env.parse("S3_FORCE_PATH_STYLE", endpoint.is_some())?;
    Ok(Some(S3Config {
        region: env.string("S3_REGION", "us-east-1"),
        endpoint,
        public_endpoint,
        bucket,
        access_key_id,
        secret_access_key,
        force_path_style,
    }))
}

fn endpoint_var<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    var: &'static str,
) -> Result<Option<String>, ConfigError> {
    let Some(e) = env.raw(var) else {
        return Ok(None);
    };
    let e = e.trim().trim_end_matches('/').to_string();
    match url_host(&e) {
        Some(_) => Ok(Some(e)),
        None => Err(env.bad(
            var,
            "must be an http:// or https:// URL without path (http://127.0.0.1:9090)",
        )),
    }
}

/// The host of an `http(s)://host[:port]` URL without path, query or user info.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let ok = !rest.is_empty() && !rest.contains(['/', '?', '#', '@', ' ']);
    ok.then_some(rest)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::super::Config;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, super::ConfigError> {
        let mut map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.insert(
            "JWT_SECRET".into(),
            "0123456789abcdef0123456789abcdef".into(),
        );
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn attachments_are_off_without_a_bucket_and_defaults_follow_the_contract() {
        let c = cfg(&[]).unwrap();
        assert!(c.uploads.s3.is_none());
        assert_eq!(c.uploads.max_bytes, 26_214_400);
        assert!(c.uploads.allowed_types.contains(&"image/*".to_string()));
    }

    #[test]
    fn s3_settings_are_read_and_the_secret_is_not_printed() {
        let c = cfg(&[
            ("S3_BUCKET", "courier"),
            ("S3_ENDPOINT", "http://127.0.0.1:9090/"),
            ("S3_ACCESS_KEY_ID", "id"),
            ("S3_SECRET_ACCESS_KEY", "hunter2-secret"),
            ("UPLOAD_ALLOWED_TYPES", "image/*, Text/Plain"),
        ])
        .unwrap();
        let s3 = c.uploads.s3.clone().unwrap();
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9090"));
        assert!(
            s3.force_path_style,
            "path style by default with an endpoint"
        );
        assert_eq!(s3.region, "us-east-1");
        assert_eq!(s3.secret_access_key.expose_secret(), "hunter2-secret");
        assert_eq!(c.uploads.allowed_types, ["image/*", "text/plain"]);
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn bad_upload_variables_are_named() {
        for (pairs, var) in [
            (vec![("S3_BUCKET", "b!")], "S3_BUCKET"),
            (vec![("S3_BUCKET", "bucket")], "S3_ACCESS_KEY_ID"),
            (
                vec![("S3_BUCKET", "bucket"), ("S3_ACCESS_KEY_ID", "k")],
                "S3_SECRET_ACCESS_KEY",
            ),
            (
                vec![
                    ("S3_BUCKET", "bucket"),
                    ("S3_ACCESS_KEY_ID", "k"),
                    ("S3_SECRET_ACCESS_KEY", "s"),
                    ("S3_ENDPOINT", "127.0.0.1:9090"),
                ],
                "S3_ENDPOINT",
            ),
            (
                vec![
                    ("S3_BUCKET", "bucket"),
                    ("S3_ACCESS_KEY_ID", "k"),
                    ("S3_SECRET_ACCESS_KEY", "s"),
                    ("S3_FORCE_PATH_STYLE", "maybe"),
                ],
                "S3_FORCE_PATH_STYLE",
            ),
            (
                vec![
                    ("S3_BUCKET", "bucket"),
                    ("S3_ACCESS_KEY_ID", "k"),
                    ("S3_SECRET_ACCESS_KEY", "s"),
                    ("S3_PUBLIC_ENDPOINT", "http://h/path"),
                ],
                "S3_PUBLIC_ENDPOINT",
            ),
            (vec![("UPLOAD_MAX_BYTES", "0")], "UPLOAD_MAX_BYTES"),
            (vec![("UPLOAD_MAX_BYTES", "lots")], "UPLOAD_MAX_BYTES"),
            (
                vec![("UPLOAD_ALLOWED_TYPES", "image")],
                "UPLOAD_ALLOWED_TYPES",
            ),
            (
                vec![("UPLOAD_ALLOWED_TYPES", "*/png")],
                "UPLOAD_ALLOWED_TYPES",
            ),
            (vec![("UPLOAD_URL_TTL_SECS", "0")], "UPLOAD_URL_TTL_SECS"),
            (
                vec![("ATTACHMENT_URL_TTL_SECS", "9999999")],
                "ATTACHMENT_URL_TTL_SECS",
            ),
        ] {
            let e = cfg(&pairs).unwrap_err();
            assert_eq!(e.var, var, "{pairs:?}");
        }
    }
}
