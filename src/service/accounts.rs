//! E-mail accounts of the chat-be compatibility profile: register and sign in with an
//! e-mail (the username Courier needs is derived from it), and the upgrade of bcrypt
//! hashes imported from the reference backend to Argon2id at the first sign-in.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult};
use crate::{
    auth::password,
    db::compat::{self as db, Inserted},
    domain::compat::{normalize_email, username_from_email},
};

/// A user as the reference backend shows it.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: Uuid,
    pub username: String,
    pub email: Option<String>,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<db::Account> for Account {
    fn from(a: db::Account) -> Self {
        Self {
            id: a.id,
            username: a.username,
            email: a.email,
            role: a.role,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// The reference backend's password rule (at least 6), capped as Courier caps it.
pub const PASSWORD_RULE: &str = "password must be 6 to 128 characters";

/// How many random suffixes are tried when the derived username is taken.
const USERNAME_TRIES: usize = 5;

fn email(raw: &str) -> ServiceResult<String> {
    normalize_email(raw).ok_or_else(|| ServiceError::Invalid("email must be an email".into()))
}

/// The display name of a first and a last name: both trimmed, joined, at most 64
/// characters; `None` when empty.
fn display_name(names: [Option<&str>; 2]) -> Option<String> {
    let names: Vec<&str> = names
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let display: String = names.join(" ").chars().take(64).collect();
    (!display.is_empty()).then_some(display)
}

/// Registers an e-mail account; 409 `error.unique.email` when the e-mail is taken.
pub async fn register(
    ctx: &Ctx,
    raw_email: &str,
    pass: String,
    names: [Option<&str>; 2],
) -> ServiceResult<Account> {
    let display = display_name(names);
    let display_name = display.as_deref();
    let email = email(raw_email)?;
    if !(6..=128).contains(&pass.chars().count()) {
        return Err(ServiceError::Invalid(PASSWORD_RULE.into()));
    }
    let hash = password::hash(pass).await?;
    let mut suffix = None;
    for _ in 0..=USERNAME_TRIES {
        let username = username_from_email(&email, suffix.as_deref());
        match db::insert(&ctx.pool, &username, &email, display_name, &hash).await? {
            Inserted::Created(a) => return Ok(a.into()),
            Inserted::EmailTaken => {
                return Err(ServiceError::Conflict("error.unique.email".into()));
            }
            Inserted::UsernameTaken => {
                suffix = Some(Uuid::new_v4().simple().to_string()[..8].to_string());
            }
        }
    }
    Err(ServiceError::internal(anyhow::anyhow!(
        "no free username derived from {email}"
    )))
}

/// The account of these credentials (`Unauthenticated` for an unknown e-mail or a
/// wrong password, after the same work).
pub async fn login(ctx: &Ctx, raw_email: &str, pass: String) -> ServiceResult<Account> {
    let found = match normalize_email(raw_email) {
        Some(e) => db::credentials(&ctx.pool, &e).await?,
        None => None,
    };
    let Some((account, stored)) = found else {
        password::verify(pass, password::dummy_hash().await?).await?;
        return Err(ServiceError::Unauthenticated);
    };
    if !check(ctx, account.id, pass, stored).await? {
        return Err(ServiceError::Unauthenticated);
    }
    Ok(account.into())
}

/// Verifies a password against a stored hash; a bcrypt hash (imported from the
/// reference backend) that matches is replaced by an Argon2id hash of the password.
/// Courier's own login calls this too, so imported users may sign in either way.
pub async fn check(ctx: &Ctx, user: Uuid, pass: String, stored: String) -> ServiceResult<bool> {
    let legacy = password::is_legacy(&stored);
    if !password::verify(pass.clone(), stored).await? {
        return Ok(false);
    }
    if legacy {
        let upgraded = password::hash(pass).await?;
        if let Err(e) = db::set_password_hash(&ctx.pool, user, &upgraded).await {
            // The sign-in stands; the next one tries again.
            tracing::warn!(error = %e, %user, "upgrading an imported bcrypt hash failed");
        }
    }
    Ok(true)
}

/// The account `id`, if there is one.
pub async fn find(ctx: &Ctx, id: Uuid) -> ServiceResult<Option<Account>> {
    Ok(db::find(&ctx.pool, id).await?.map(Into::into))
}
