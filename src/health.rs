//! `/healthz` (the process runs) and `/readyz` (its dependencies are reachable),
//! served by every role (`/metrics` has a listener of its own: `Service::serve_metrics`).
//! While `/readyz` finds a dependency down it finds out why in the background (never
//! delaying the answer) and logs one line naming the dependency and the cause (a refused
//! connection, a dropped TLS session, a certificate refused on reconnect) whenever the
//! dependency or its cause changes, and one line when the process is ready again.

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

/// `/readyz`'s state: the dependencies, and what it last logged.
#[derive(Clone)]
struct Readiness {
    health: Health,
    reported: Arc<Mutex<Reported>>,
}

/// What `/readyz` last logged, so that it logs changes, not every probe.
#[derive(Debug, Default)]
struct Reported {
    /// The dependency and cause last logged as down.
    down: Option<(&'static str, String)>,
    /// A diagnosis is running (at most one at a time).
    diagnosing: bool,
    /// Bumped when the process is ready again: a diagnosis started before is stale.
    epoch: u64,
}

impl Reported {
    /// Whether a diagnosis should start now (none running); marks it running.
    fn start(&mut self) -> Option<u64> {
        (!self.diagnosing).then(|| {
            self.diagnosing = true;
            self.epoch
        })
    }

    /// A diagnosis of `epoch` found `cause` for `dependency`: whether to log it (a
    /// change of dependency or of cause, numbers such as times aside).
    fn found(&mut self, epoch: u64, dependency: &'static str, cause: &str) -> bool {
        self.diagnosing = false;
        let same = |(dep, was): &(&'static str, String)| {
            *dep == dependency && without_digits(was) == without_digits(cause)
        };
        if epoch != self.epoch || self.down.as_ref().is_some_and(same) {
            return false;
        }
        self.down = Some((dependency, cause.to_string()));
        true
    }

    /// The process is ready: the dependency to log as back, if one was logged down.
    fn ready(&mut self) -> Option<&'static str> {
        let was = self.down.take().map(|(dep, _)| dep);
        if was.is_some() || self.diagnosing {
            self.epoch += 1;
            self.diagnosing = false;
        }
        was
    }
}

fn without_digits(s: &str) -> String {
    s.chars().filter(|c| !c.is_ascii_digit()).collect()
}

impl Health {
    pub fn router<S>(self) -> Router<S> {
        let state = Readiness {
            health: self,
            reported: Arc::new(Mutex::new(Reported::default())),
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
        // Ready once the near cache follows Redis too: the process then answers
        // revocations and blocks from memory (every role that uses Redis runs it).
        if let Some(cache) = &self.cache
            && (!cache.ping().await || !cache.near.synced())
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
        Ok(_) if !cache.near.synced() => {
            "the near cache is not subscribed to its channel yet (starting or recovering)".into()
        }
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

impl Readiness {
    fn lock(&self) -> std::sync::MutexGuard<'_, Reported> {
        self.reported.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs what `/readyz` found when it changed; the cause is looked for in the
    /// background, so the answer is never delayed by it.
    fn report(&self, down: Option<&'static str>) {
        let Some(dep) = down else {
            if let Some(was) = self.lock().ready() {
                tracing::info!(dependency = was, "ready again: {was} is back");
            }
            return;
        };
        let Some(epoch) = self.lock().start() else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            let cause = this.health.cause(dep).await;
            if this.lock().found(epoch, dep, &cause) {
                tracing::warn!(dependency = dep, cause = %cause, "not ready: {dep} is down");
            }
        });
    }
}

async fn readyz(State(r): State<Readiness>) -> impl IntoResponse {
    let down = r.health.first_down().await;
    r.report(down);
    match down {
        None => Ok(Json(json!({"status": "ready"}))),
        Some(dep) => Err(ApiError::unavailable(dep)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_are_logged() {
        let mut r = Reported::default();
        assert_eq!(r.ready(), None);
        let e = r.start().unwrap();
        assert_eq!(r.start(), None, "one diagnosis at a time");
        assert!(r.found(e, "redis", "Connection refused (os error 111)"));
        let e = r.start().unwrap();
        assert!(!r.found(e, "redis", "Connection refused (os error 111)"));
        // The same cause with other numbers (a time) is no change; another cause is.
        let e = r.start().unwrap();
        assert!(r.found(e, "redis", "certificate expired at 1700000000"));
        let e = r.start().unwrap();
        assert!(!r.found(e, "redis", "certificate expired at 1700000005"));
        let e = r.start().unwrap();
        assert!(r.found(e, "postgresql", "certificate expired at 1700000005"));
        assert_eq!(r.ready(), Some("postgresql"));
        assert_eq!(r.ready(), None);
    }

    #[test]
    fn a_diagnosis_older_than_the_recovery_is_dropped() {
        let mut r = Reported::default();
        let e = r.start().unwrap();
        assert_eq!(r.ready(), None);
        assert!(
            !r.found(e, "redis", "refused"),
            "stale: the process was ready since"
        );
        let e = r.start().unwrap();
        assert!(r.found(e, "redis", "refused"));
    }

    #[tokio::test]
    async fn an_unused_dependency_has_no_cause_to_find() {
        let h = Health::default();
        assert_eq!(h.first_down().await, None);
        assert_eq!(h.cause("postgresql").await, "not used");
        assert_eq!(h.cause("rabbitmq").await, "not connected yet");
    }
}
