//! `/healthz` (the process runs) and `/readyz` (its dependencies are reachable),
//! served by every role (`/metrics` has a listener of its own: `Service::serve_metrics`).
//! When `/readyz` first finds a dependency down it logs one line naming the dependency
//! and the cause (a dropped TLS session, a refused connection, a certificate problem on
//! reconnect), and one when the process is ready again.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{Json, Router, extract::State, response::IntoResponse, routing::get};
use serde_json::json;
use sqlx::{ConnectOptions, PgPool};

use crate::{cache::Cache, error::ApiError, mq::Link};

/// How long the diagnosis of a down PostgreSQL may try a connection of its own.
const DIAGNOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the diagnosis of a down RabbitMQ link waits for the link to learn why.
const MQ_CAUSE_PATIENCE: Duration = Duration::from_millis(500);

/// The dependencies a role uses; `None` for those it does not.
#[derive(Clone, Default)]
pub struct Health {
    pub db: Option<PgPool>,
    pub cache: Option<Cache>,
    pub mq: Option<Link>,
}

/// `/readyz`'s state: the dependencies, and the one it last reported down (to log
/// transitions only, not every probe).
#[derive(Clone)]
struct Readiness {
    health: Health,
    reported: Arc<Mutex<Option<&'static str>>>,
}

impl Health {
    pub fn router<S>(self) -> Router<S> {
        let state = Readiness {
            health: self,
            reported: Arc::new(Mutex::new(None)),
        };
        Router::new()
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .route("/readyz", get(readyz))
            .with_state(state)
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

    /// Why `dependency` (as [`Self::first_down`] names it) is down, in one line.
    pub async fn cause(&self, dependency: &str) -> String {
        match dependency {
            "postgresql" => match &self.db {
                Some(db) => postgres_cause(db).await,
                None => "not used".into(),
            },
            "redis" => match &self.cache {
                Some(cache) => redis_cause(cache).await,
                None => "not used".into(),
            },
            "rabbitmq" => match &self.mq {
                Some(mq) => mq.cause_within(MQ_CAUSE_PATIENCE).await,
                None => None,
            }
            .unwrap_or_else(|| "not connected yet".into()),
            other => format!("unknown dependency {other}"),
        }
    }
}

/// The pool only says it timed out: a connection of its own (same options, so the same
/// TLS) says why, e.g. refused, or the certificate the server now presents.
async fn postgres_cause(db: &PgPool) -> String {
    match tokio::time::timeout(DIAGNOSE_TIMEOUT, db.connect_options().connect()).await {
        Err(_) => format!("no answer within {}s", DIAGNOSE_TIMEOUT.as_secs()),
        Ok(Err(e)) => match crate::tls::rustls_error(&e) {
            Some(tls) => format!("TLS: {tls}"),
            None => e.to_string(),
        },
        Ok(Ok(conn)) => {
            if let Err(e) = sqlx::Connection::close(conn).await {
                tracing::debug!(error = %e, "closing the diagnosis connection");
            }
            "the pool's connections failed; a new connection succeeds (recovering)".into()
        }
    }
}

/// The error of a PING (its TLS cause when it is one, see `cache::connect::tls_cause`).
async fn redis_cause(cache: &Cache) -> String {
    let mut c = cache.conn.clone();
    match redis::cmd("PING").query_async::<String>(&mut c).await {
        Ok(_) => "PING failed, then succeeded (recovering)".into(),
        Err(e) => {
            let tls = matches!(
                cache.client().get_connection_info().addr(),
                redis::ConnectionAddr::TcpTls { .. }
            );
            crate::cache::connect::tls_cause(&e, tls).unwrap_or_else(|| e.to_string())
        }
    }
}

/// Records `now` as the reported state; returns the previous one when it changed.
fn transition(
    reported: &Mutex<Option<&'static str>>,
    now: Option<&'static str>,
) -> Option<Option<&'static str>> {
    let mut last = reported.lock().unwrap_or_else(PoisonError::into_inner);
    (*last != now).then(|| std::mem::replace(&mut *last, now))
}

async fn readyz(State(r): State<Readiness>) -> impl IntoResponse {
    let down = r.health.first_down().await;
    match (transition(&r.reported, down), down) {
        (Some(_), Some(dep)) => {
            let cause = r.health.cause(dep).await;
            tracing::warn!(dependency = dep, cause = %cause, "not ready: {dep} is down");
        }
        (Some(Some(was)), None) => {
            tracing::info!(dependency = was, "ready again: {was} is back");
        }
        _ => {}
    }
    match down {
        None => Ok(Json(json!({"status": "ready"}))),
        Some(dep) => Err(ApiError::unavailable(dep)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_are_reported() {
        let reported = Mutex::new(None);
        assert_eq!(transition(&reported, None), None);
        assert_eq!(transition(&reported, Some("redis")), Some(None));
        assert_eq!(transition(&reported, Some("redis")), None);
        assert_eq!(
            transition(&reported, Some("postgresql")),
            Some(Some("redis"))
        );
        assert_eq!(transition(&reported, None), Some(Some("postgresql")));
        assert_eq!(transition(&reported, None), None);
    }

    #[tokio::test]
    async fn an_unused_dependency_has_no_cause_to_find() {
        let h = Health::default();
        assert_eq!(h.first_down().await, None);
        assert_eq!(h.cause("postgresql").await, "not used");
        assert_eq!(h.cause("rabbitmq").await, "not connected yet");
    }
}
