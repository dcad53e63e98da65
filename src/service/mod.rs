//! Use cases shared by the REST API and the gateway, and the connections they run on.

pub mod account_deletion;
pub mod accounts;
pub mod audit;
pub mod blocks;
pub mod chat_list;
pub mod chats;
pub mod commands;
pub mod devices;
mod error;
pub mod hooks;
pub mod lifecycle;
pub mod messages;
pub mod moderation;
pub mod notifications;
pub mod pages;
pub mod presence;
pub mod profiles;
pub mod push_subscriptions;
pub mod receipts;
pub mod reports;
pub mod revocation;
pub mod search;
pub mod sessions;
pub mod typing;
pub mod uploads;
pub mod user_search;
pub mod users;

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;
use uuid::Uuid;

pub use error::{ServiceError, ServiceResult, no_nul, on_constraint};

use crate::{
    auth::JwtKeys,
    cache::Cache,
    config::Config,
    db::{self, chats::Membership},
    domain::chat::{ChatType, Role},
};

/// The shared connections of a process, made once and given to each role it runs.
#[derive(Clone)]
pub struct Deps {
    pub pool: PgPool,
    pub cache: Cache,
    pub jwt: Arc<JwtKeys>,
    /// Delivery receipts gathered by this process (flushed by `receipts::Receipts::run`).
    pub receipts: receipts::Receipts,
    /// Attachments' object storage (off without `S3_BUCKET`).
    pub storage: crate::storage::Storage,
}

impl Deps {
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let jwt = JwtKeys::new(&config.jwt, config.jwt_expiration)?;
        let pool = crate::db::pool(config)?;
        Ok(Self {
            cache: Cache::connect(config, Duration::from_secs(30))
                .await?
                .with_pool(pool.clone()),
            pool,
            jwt: Arc::new(jwt),
            receipts: receipts::Receipts::default(),
            storage: crate::storage::Storage::new(&config.uploads)?,
        })
    }

    /// The receipts flusher to run once per process until `stop` (the role spawns it).
    pub fn receipts_flusher(
        &self,
        config: &Config,
        stop: tokio_util::sync::CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.receipts.clone().run(
            self.pool.clone(),
            self.cache.clone(),
            config.realtime.receipt_flush,
            stop,
        )
    }

    /// The near cache's follower (revocations, blocks) to run once per process until
    /// `stop` (the role spawns it).
    pub fn near_cache(
        &self,
        config: &Config,
        stop: tokio_util::sync::CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        crate::cache::near::run(
            self.cache.clone(),
            self.pool.clone(),
            revocation::window(config.jwt_expiration),
            stop,
        )
    }
}

/// What the message and chat use cases run on.
#[derive(Clone)]
pub struct Ctx {
    pub pool: PgPool,
    pub cache: Cache,
    pub commands: commands::Commands,
    pub limits: crate::config::RateLimits,
    /// `MESSAGE_EDIT_WINDOW_SECS`.
    pub edit_window: Duration,
    /// `CHAT_MAX_MEMBERS`.
    pub max_members: usize,
    /// Attachments: presigned URLs and uploaded objects.
    pub storage: crate::storage::Storage,
    /// Signs and checks access tokens.
    pub jwt: Arc<JwtKeys>,
    /// `REFRESH_TOKEN_TTL`.
    pub refresh_ttl: Duration,
    /// `ACCOUNT_USERNAME_HOLD`: a deleted account's username is free again after it.
    pub username_hold: Duration,
    /// Delivery and read receipts of this process.
    pub receipts: receipts::Receipts,
    /// Push subscriptions: the VAPID public key, whether `http:` endpoints are taken.
    pub push: push_subscriptions::PushSettings,
}

/// Loads the caller's membership: 404 if no chat, 403 if not a participant.
pub async fn require_member(
    pool: &PgPool,
    chat: Uuid,
    user: Uuid,
) -> ServiceResult<(ChatType, Role)> {
    match db::chats::membership(pool, chat, user).await? {
        Membership::NoChat => Err(ServiceError::NotFound("chat not found".into())),
        Membership::Outsider(_) => Err(ServiceError::Forbidden(
            "you are not a participant of this chat".into(),
        )),
        Membership::Member(kind, role) => Ok((kind, role)),
    }
}
