//! Account deletion's writes, each inside the deleting transaction (which holds the
//! user's row lock), and the release of a deleted account's username after its hold.

use std::time::Duration;

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

pub type Tx<'a> = Transaction<'a, Postgres>;

/// The display name a deleted account keeps (its messages stay attributed to it).
pub const DELETED_DISPLAY_NAME: &str = "Deleted user";
/// A password hash no password verifies against (not a PHC string).
pub const UNUSABLE_HASH: &str = "!deleted";

/// Locks the user's row: `None` if there is no such user, else whether it is deleted.
pub async fn lock(tx: &mut Tx<'_>, user: Uuid) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT deleted_at IS NOT NULL AS "deleted!" FROM users WHERE id = $1 FOR UPDATE"#,
        user,
    )
    .fetch_optional(&mut **tx)
    .await
}

/// Whether the user is deleted (`None`: no such user).
pub async fn is_deleted(pool: &PgPool, user: Uuid) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT deleted_at IS NOT NULL AS "deleted!" FROM users WHERE id = $1"#,
        user,
    )
    .fetch_optional(pool)
    .await
}

/// The group chats the user is in, in id order (the order their rows are locked).
pub async fn groups(tx: &mut Tx<'_>, user: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT c.id FROM chats c JOIN chat_participants p ON p.chat_id = c.id
         WHERE p.user_id = $1 AND c.type = 'group' ORDER BY c.id",
        user,
    )
    .fetch_all(&mut **tx)
    .await
}

/// The other users of the user's direct chats.
pub async fn direct_partners(tx: &mut Tx<'_>, user: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT DISTINCT p2.user_id FROM chat_participants p1
         JOIN chats c ON c.id = p1.chat_id AND c.type = 'direct'
         JOIN chat_participants p2 ON p2.chat_id = p1.chat_id AND p2.user_id <> $1
         WHERE p1.user_id = $1",
        user,
    )
    .fetch_all(&mut **tx)
    .await
}

/// Closes the direct chats with `partners` the way a block does: `user` blocks each.
pub async fn close_direct(
    tx: &mut Tx<'_>,
    user: Uuid,
    partners: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO user_blocks (blocker_id, blocked_id)
         SELECT $1, p FROM UNNEST($2::uuid[]) AS p
         ON CONFLICT DO NOTHING",
        user,
        partners,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes the user's uploads (their messages' attachment links go with them);
/// returns the storage keys of the objects to delete.
pub async fn delete_uploads(tx: &mut Tx<'_>, user: Uuid) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "DELETE FROM uploads WHERE owner_id = $1 RETURNING object_key",
        user,
    )
    .fetch_all(&mut **tx)
    .await
}

/// Anonymizes the user: "Deleted user", an unusable password, no e-mail, bio or
/// avatar, no notifications, every refresh token revoked; `deleted_at` starts the username hold.
pub async fn anonymize(tx: &mut Tx<'_>, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE users SET display_name = $2, password_hash = $3, email = NULL,
                          bio = NULL, avatar_upload_id = NULL,
                          deleted_at = now(), updated_at = now()
         WHERE id = $1",
        user,
        DELETED_DISPLAY_NAME,
        UNUSABLE_HASH,
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        user,
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!("DELETE FROM notifications WHERE user_id = $1", user)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Frees `username` if a deleted account held it for longer than `hold`: that row is
/// renamed `deleted-<last 24 hex digits of its id>`. Returns whether it was freed.
pub async fn free_username(
    pool: &PgPool,
    username: &str,
    hold: Duration,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE users SET username = 'deleted-' || right(replace(id::text, '-', ''), 24)
         WHERE username = $1 AND deleted_at IS NOT NULL
           AND deleted_at <= now() - make_interval(secs => $2)",
        username,
        hold.as_secs_f64(),
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
