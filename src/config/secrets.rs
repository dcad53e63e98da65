//! Secrets from files (Docker and Kubernetes secrets): each secret variable `NAME` may
//! instead be given as `NAME_FILE`, a path whose contents, without one trailing newline,
//! are the value. Setting both is an error; a file that cannot be read is named, its
//! contents never are.

use std::collections::HashMap;

use super::ConfigError;

/// Every secret variable and its `_FILE` form. [`resolve_files`] reads them and the
/// tests check each one reaches its field, so a new secret is added here only.
pub(super) static SECRET_VARS: &[(&str, &str)] = &[
    ("JWT_SECRET", "JWT_SECRET_FILE"),
    ("JWT_PRIVATE_KEY", "JWT_PRIVATE_KEY_FILE"),
    ("JWT_PUBLIC_KEY", "JWT_PUBLIC_KEY_FILE"),
    ("DATABASE_URL", "DATABASE_URL_FILE"),
    ("DATABASE_MIGRATION_URL", "DATABASE_MIGRATION_URL_FILE"),
    ("REDIS_PASSWORD", "REDIS_PASSWORD_FILE"),
    ("REDIS_URL", "REDIS_URL_FILE"),
    ("REDIS_SENTINEL_PASSWORD", "REDIS_SENTINEL_PASSWORD_FILE"),
    ("RABBITMQ_PASSWORD", "RABBITMQ_PASSWORD_FILE"),
    ("RABBITMQ_URI", "RABBITMQ_URI_FILE"),
    ("RABBITMQ_URIS", "RABBITMQ_URIS_FILE"),
    ("S3_ACCESS_KEY_ID", "S3_ACCESS_KEY_ID_FILE"),
    ("S3_SECRET_ACCESS_KEY", "S3_SECRET_ACCESS_KEY_FILE"),
    ("PUSH_VAPID_PRIVATE_KEY", "PUSH_VAPID_PRIVATE_KEY_FILE"),
];

/// The values of the secrets given as `NAME_FILE`, keyed by `NAME` (they take the
/// place of `NAME` in the lookup). Unset or blank counts as not set, as everywhere.
pub(super) fn resolve_files(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<HashMap<&'static str, String>, ConfigError> {
    let set = |var: &str| get(var).filter(|v| !v.trim().is_empty());
    let mut values = HashMap::new();
    for &(name, file_var) in SECRET_VARS {
        let Some(path) = set(file_var) else {
            continue;
        };
        if set(name).is_some() {
            return Err(ConfigError {
                var: name,
                reason: format!("both {name} and {file_var} are set; set one"),
            });
        }
        // The io error names the cause (not found, permission, not UTF-8), never the
        // contents.
        let contents = std::fs::read_to_string(&path).map_err(|e| ConfigError {
            var: file_var,
            reason: format!("cannot read {path}: {e}"),
        })?;
        values.insert(name, strip_one_newline(contents));
    }
    Ok(values)
}

/// `contents` without one trailing `\n` or `\r\n` (what `echo` and editors add).
fn strip_one_newline(mut contents: String) -> String {
    if contents.ends_with('\n') {
        contents.pop();
        if contents.ends_with('\r') {
            contents.pop();
        }
    }
    contents
}

#[cfg(test)]
mod tests;
