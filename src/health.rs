//! `/healthz` (the process runs) and `/readyz` (its dependencies are reachable),
//! served by every role (`/metrics` has a listener of its own: `Service::serve_metrics`).

use axum::{Json, Router, extract::State, response::IntoResponse, routing::get};
use serde_json::json;
use sqlx::PgPool;

use crate::{cache::Cache, error::ApiError, mq::Link};

/// The dependencies a role uses; `None` for those it does not.
#[derive(Clone, Default)]
pub struct Health {
    pub db: Option<PgPool>,
    pub cache: Option<Cache>,
    pub mq: Option<Link>,
}

impl Health {
    pub fn router<S>(self) -> Router<S> {
        Router::new()
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .route("/readyz", get(readyz))
            .with_state(self)
    }

    /// The first dependency that is down, if any.
    pub async fn first_down(&self) -> Option<&'static str> {
        if let Some(db) = &self.db
            && !crate::db::ping(db).await
        {
            return Some("postgresql");
        }
        if let Some(cache) = &self.cache
            && !cache.ping().await
        {
            return Some("redis");
        }
        if let Some(mq) = &self.mq
            && !mq.is_up()
        {
            return Some("rabbitmq");
        }
        None
    }
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    match h.first_down().await {
        None => Ok(Json(json!({"status": "ready"}))),
        Some(dep) => Err(ApiError::unavailable(dep)),
    }
}
