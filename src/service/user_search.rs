//! Finding users by name (`GET /users/search`): a prefix or trigram match on username
//! and display name in PostgreSQL (pg_trgm), best first, paged by an opaque keyset
//! cursor; never the caller nor users who blocked the caller; rate-limited per user
//! (`RATE_LIMIT_USER_SEARCH_*`).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde::Serialize;
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult};
use crate::{
    db::{self, profiles::SearchKey},
    domain::user::User,
};

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 64;
/// Results per page when the client names no limit.
pub const DEFAULT_LIMIT: i64 = 20;
/// Most results per page.
pub const MAX_LIMIT: i64 = 50;

/// A search as the client asked for it.
#[derive(Debug, Clone, Default)]
pub struct UserSearchInput {
    pub q: String,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A page of users.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSearchPage {
    /// Exact username first, then username prefixes, display name prefixes, and
    /// trigram (typo-tolerant) matches; within each, the more similar first, then by
    /// username.
    pub users: Vec<User>,
    /// Pass as `cursor` (with the same `q`) for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

fn invalid(msg: &str) -> ServiceError {
    ServiceError::Invalid(msg.into())
}

/// Counts the search against the caller's limit: `RateLimited` once over it. A Redis
/// failure lets it through (the limit is protection, not a dependency).
async fn count(ctx: &Ctx, me: Uuid) -> ServiceResult<()> {
    match ctx
        .cache
        .hit(&format!("user_search:{me}"), ctx.limits.user_search)
        .await
    {
        Ok(None) => Ok(()),
        Ok(Some(retry_after_secs)) => {
            metrics::counter!("courier_rate_limited_total").increment(1);
            Err(ServiceError::RateLimited { retry_after_secs })
        }
        Err(e) => {
            tracing::warn!(error = %e, "user search rate limit check failed; allowing");
            Ok(())
        }
    }
}

/// Searches users by username and display name for `me`.
pub async fn search(ctx: &Ctx, me: Uuid, input: UserSearchInput) -> ServiceResult<UserSearchPage> {
    let q = input.q.trim().to_lowercase();
    let n = q.chars().count();
    if n == 0 || n > MAX_QUERY_CHARS {
        return Err(invalid("q must be 1 to 64 characters"));
    }
    if q.contains('\0') {
        return Err(invalid("q must not contain NUL characters"));
    }
    let limit = input.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid("limit must be 1 to 50"));
    }
    let after = match input.cursor.as_deref() {
        None => None,
        Some(c) => {
            Some(decode_cursor(c, &q).ok_or_else(|| invalid("cursor is not valid for this q"))?)
        }
    };
    count(ctx, me).await?;
    let (found, more) = db::profiles::search(&ctx.pool, me, &q, after.as_ref(), limit).await?;
    let next_cursor = if more {
        found.last().map(|f| encode_cursor(&f.key, &q))
    } else {
        None
    };
    let mut users: Vec<User> = found.into_iter().map(|f| f.user).collect();
    super::profiles::sign_users(&ctx.storage, &mut users).await;
    Ok(UserSearchPage { users, next_cursor })
}

/// Cursor layout version (the first byte).
const CURSOR_V1: u8 = 1;
/// Version, query fingerprint, tier, score (f64 bits), then the username.
const CURSOR_HEAD: usize = 1 + 8 + 1 + 8;

/// FNV-1a of the query: a cursor is only good for the query that made it.
fn fingerprint(q: &str) -> u64 {
    q.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The opaque cursor after `key` in the results of `q`.
fn encode_cursor(key: &SearchKey, q: &str) -> String {
    let mut bytes = Vec::with_capacity(CURSOR_HEAD + key.username.len());
    bytes.push(CURSOR_V1);
    bytes.extend_from_slice(&fingerprint(q).to_be_bytes());
    bytes.push(key.tier.clamp(0, 3) as u8);
    bytes.extend_from_slice(&key.score.to_bits().to_be_bytes());
    bytes.extend_from_slice(key.username.as_bytes());
    B64.encode(bytes)
}

/// The key a cursor names, or `None` if this server did not make it for `q`.
fn decode_cursor(cursor: &str, q: &str) -> Option<SearchKey> {
    if cursor.len() > 96 {
        return None;
    }
    let bytes = B64.decode(cursor).ok()?;
    if bytes.len() <= CURSOR_HEAD || bytes[0] != CURSOR_V1 || bytes[9] > 3 {
        return None;
    }
    if u64::from_be_bytes(bytes[1..9].try_into().ok()?) != fingerprint(q) {
        return None;
    }
    let score = f64::from_bits(u64::from_be_bytes(bytes[10..18].try_into().ok()?));
    if !score.is_finite() {
        return None;
    }
    let username = String::from_utf8(bytes[CURSOR_HEAD..].to_vec()).ok()?;
    if username.contains('\0') {
        return None;
    }
    Some(SearchKey {
        tier: i32::from(bytes[9]),
        score,
        username,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SearchKey {
        SearchKey {
            tier: 3,
            score: 0.833_333_313_465_118_4,
            username: "maximilian_0123456789abcdef_xyz".into(),
        }
    }

    #[test]
    fn cursors_round_trip_exactly_for_their_query() {
        let c = encode_cursor(&key(), "maximillian");
        assert!(c.len() <= 96, "{}", c.len());
        let back = decode_cursor(&c, "maximillian").unwrap();
        assert_eq!(back, key());
        assert_eq!(back.score.to_bits(), key().score.to_bits());
        assert_eq!(
            decode_cursor(&c, "maximilian"),
            None,
            "another query's cursor"
        );
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let good = encode_cursor(&key(), "q");
        for bad in [
            "",
            "!!!!",
            &good[..12],
            &B64.encode([2u8; 20]),
            &B64.encode({
                let mut b = vec![CURSOR_V1];
                b.extend_from_slice(&fingerprint("q").to_be_bytes());
                b.push(0);
                b.extend_from_slice(&f64::NAN.to_bits().to_be_bytes());
                b.push(b'a');
                b
            }),
            &"A".repeat(120),
        ] {
            assert!(decode_cursor(bad, "q").is_none(), "{bad:?}");
        }
    }
}
