//! Profiles: changing a user's display name, bio and avatar in one statement, and the
//! user search (prefix and trigram matches, pg_trgm) with its keyset.

use sqlx::PgPool;
use uuid::Uuid;

use super::users::UserRow;
use crate::domain::user::User;

/// A change of profile: `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Default, Clone)]
pub struct ProfileChange {
    pub display_name: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub avatar: Option<Option<Uuid>>,
}

/// Applies `change` to `user` atomically; `None` if there is no such user.
pub async fn update(
    pool: &PgPool,
    user: Uuid,
    change: &ProfileChange,
) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query_as!(
        UserRow,
        "UPDATE users SET
             display_name = CASE WHEN $2 THEN $3 ELSE display_name END,
             bio = CASE WHEN $4 THEN $5 ELSE bio END,
             avatar_upload_id = CASE WHEN $6 THEN $7 ELSE avatar_upload_id END
         WHERE id = $1
         RETURNING id, username, display_name, created_at, bio, avatar_upload_id",
        user,
        change.display_name.is_some(),
        change.display_name.clone().flatten(),
        change.bio.is_some(),
        change.bio.clone().flatten(),
        change.avatar.is_some(),
        change.avatar.flatten(),
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Into::into))
}

/// Where a user stands in the results of one query: match tier (0 exact username,
/// 1 username prefix, 2 display name prefix, 3 trigram only), then the best trigram
/// word similarity (higher first), then the username (unique).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchKey {
    pub tier: i32,
    pub score: f64,
    pub username: String,
}

/// One result and its key.
#[derive(Debug, Clone)]
pub struct Found {
    pub user: User,
    pub key: SearchKey,
}

/// `LIKE`'s wildcards and escape character in `s`, escaped (backslash, the default).
pub fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Users whose lowercased username or display name starts with `q` (lowercase), or is
/// trigram-similar to it (`%>`: word similarity at least
/// `pg_trgm.word_similarity_threshold`, 0.6), without `caller` and the users who
/// blocked `caller`; the `limit` after `after` in key order, and whether more follow.
pub async fn search(
    pool: &PgPool,
    caller: Uuid,
    q: &str,
    after: Option<&SearchKey>,
    limit: i64,
) -> Result<(Vec<Found>, bool), sqlx::Error> {
    let prefix = format!("{}%", escape_like(q));
    let rows = sqlx::query!(
        r#"WITH m AS (
             SELECT u.id, u.username, u.display_name, u.created_at, u.bio, u.avatar_upload_id,
                    CASE WHEN lower(u.username) = $2 THEN 0
                         WHEN lower(u.username) LIKE $3 THEN 1
                         WHEN lower(u.display_name) LIKE $3 THEN 2
                         ELSE 3 END AS tier,
                    greatest(word_similarity($2, lower(u.username)),
                             word_similarity($2, coalesce(lower(u.display_name), '')))::float8
                      AS score
             FROM users u
             WHERE (lower(u.username) LIKE $3 OR lower(u.display_name) LIKE $3
                    OR lower(u.username) %> $2 OR lower(u.display_name) %> $2)
               AND u.id <> $1 AND u.deleted_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM user_blocks b
                               WHERE b.blocker_id = u.id AND b.blocked_id = $1)
           )
           SELECT id, username, display_name, created_at, bio, avatar_upload_id,
                  tier AS "tier!", score AS "score!"
           FROM m
           WHERE $4::int IS NULL OR (tier, -score, username) > ($4, -$5::float8, $6::text)
           ORDER BY tier, -score, username
           LIMIT $7"#,
        caller,
        q,
        prefix,
        after.map(|k| k.tier),
        after.map(|k| k.score),
        after.map(|k| k.username.as_str()),
        limit + 1,
    )
    .fetch_all(pool)
    .await?;
    let more = rows.len() as i64 > limit;
    let found = rows
        .into_iter()
        .take(limit as usize)
        .map(|r| Found {
            key: SearchKey {
                tier: r.tier,
                score: r.score,
                username: r.username.clone(),
            },
            user: UserRow {
                id: r.id,
                username: r.username,
                display_name: r.display_name,
                created_at: r.created_at,
                bio: r.bio,
                avatar_upload_id: r.avatar_upload_id,
            }
            .into(),
        })
        .collect();
    Ok((found, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("a_b%c\\d"), "a\\_b\\%c\\\\d");
        assert_eq!(escape_like("alice"), "alice");
    }
}
