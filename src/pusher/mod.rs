//! The pusher: notifies members who are not connected, through Web Push and FCM. It
//! consumes its own queue on the integration exchange (`message.created`) plus the
//! jobs it queues for itself (coalesced flushes, retries), and acks a delivery only
//! once every push it caused is settled (at least once; redeliveries are deduped by
//! message id in Redis).

mod decide;
mod deliver;
mod jobs;
pub mod topology;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use futures::StreamExt;
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{
    backoff::Backoff,
    cache::Cache,
    config::Config,
    health::Health,
    mq::{Link, Session, Topology},
    push::Sender,
    server::Service,
    service::Deps,
};
pub use topology::PushTopology;

/// Why handling a delivery failed; it is tried again in place (after a backoff) until
/// it succeeds or the pusher stops.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("postgres: {0}")]
    Db(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Cache(#[from] redis::RedisError),
    #[error("lookup: {0}")]
    Lookup(#[from] crate::cache::membership::LookupError),
    #[error("broker: {0}")]
    Publish(#[from] crate::mq::publish::PublishError),
    #[error("{0}")]
    Internal(String),
    #[error("stopping")]
    Stopping,
}

/// What every delivery's handling shares.
pub struct Ctx {
    pub pool: PgPool,
    pub cache: Cache,
    pub sender: Sender,
    pub topology: PushTopology,
    pub delay: Duration,
    pub coalesce: Duration,
    pub ttl: Duration,
    pub prefetch: u16,
    pub stop: CancellationToken,
}

/// Waits between attempts at a delivery whose handling failed.
const RETRY_IN_PLACE: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));

/// Starts the pusher's consumer on `service` (the `pusher` role and `courier`).
pub fn spawn(service: &mut Service, config: &Config, deps: &Deps) -> anyhow::Result<Link> {
    let link_stop = CancellationToken::new();
    let (link, link_task) = Link::spawn(
        config.rabbitmq.clone(),
        Topology::new(&config.rabbitmq),
        "courier-pusher",
        link_stop.clone(),
    );
    let push = &config.push;
    let ctx = Arc::new(Ctx {
        pool: deps.pool.clone(),
        cache: deps.cache.clone(),
        sender: Sender::new(push)?,
        topology: PushTopology::new(
            &push.queue,
            &config.rabbitmq.integration_exchange,
            push.coalesce,
            config.rabbitmq.quorum_replicas,
        ),
        delay: push.delay,
        coalesce: push.coalesce,
        ttl: push.ttl,
        prefetch: push.prefetch,
        stop: service.stop.clone(),
    });
    let consumer_link = link.clone();
    service.spawn_on_run(async move {
        consume_loop(consumer_link, ctx).await;
        link_stop.cancel();
        if let Err(e) = link_task.await {
            tracing::error!(error = %e, "rabbitmq supervisor failed");
        }
    });
    Ok(link)
}

/// Builds the pusher role; its HTTP port (`PUSHER_PORT`) serves health only.
pub async fn build(config: &Config) -> anyhow::Result<Service> {
    anyhow::ensure!(
        config.push.configured(),
        "no push service is configured: set PUSH_VAPID_PUBLIC_KEY, PUSH_VAPID_PRIVATE_KEY and \
         PUSH_VAPID_SUBJECT (Web Push), or FCM_PROJECT_ID and FCM_SERVICE_ACCOUNT_FILE (FCM)"
    );
    let deps = Deps::connect(config).await?;
    crate::db::probe(config).await?;
    crate::mq::connect::preflight(&config.rabbitmq, "courier-pusher").await?;
    crate::db::migrate_or_check(config).await?;
    let addr = SocketAddr::new(config.bind_host, config.push.pusher_port);
    let mut service = Service::bind(
        "pusher",
        addr,
        axum::Router::new(),
        CancellationToken::new(),
    )
    .await?;
    service.serve_metrics(config).await?;
    let link = spawn(&mut service, config, &deps)?;
    // Who blocked whom, in memory (a blocked sender's messages push nothing).
    service.spawn_on_run(deps.near_cache(config, service.stop.clone()));
    let health = Health {
        db: Some(deps.pool.clone()),
        cache: Some(deps.cache.clone()),
        mq: Some(link),
    };
    let router = crate::http::finish(health.router());
    Ok(service.with_router(router))
}

async fn consume_loop(mut link: Link, ctx: Arc<Ctx>) {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
    while !ctx.stop.is_cancelled() {
        let session = tokio::select! {
            _ = ctx.stop.cancelled() => return,
            s = link.next_session() => match s { Some(s) => s, None => return },
        };
        let started = tokio::time::Instant::now();
        match consume(session, &ctx).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(queue = %ctx.topology.queue, error = %e, "push consumer stopped, restarting");
                backoff.reset_after(started.elapsed());
                if !backoff.wait(&ctx.stop).await {
                    return;
                }
            }
        }
    }
}

/// Consumes until stopped or the session dies; each delivery is handled in its own
/// task (most wait for their message's delay), bounded by `PUSH_PREFETCH`.
async fn consume(session: Arc<Session>, ctx: &Arc<Ctx>) -> anyhow::Result<()> {
    ctx.topology.declare(&session.conn).await?;
    let ch = session.conn.create_channel().await?;
    ch.basic_qos(ctx.prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("courier-pusher-{}", uuid::Uuid::new_v4().simple());
    let mut consumer = ch
        .basic_consume(
            ctx.topology.queue.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %ctx.topology.queue, "consuming");
    let lost = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let result = loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => break Ok(()),
            _ = tick.tick() => {
                if !session.is_up() {
                    break Err(anyhow::anyhow!("rabbitmq connection lost"));
                }
                while tasks.try_join_next().is_some() {}
            }
            d = consumer.next() => match d {
                Some(Ok(delivery)) => {
                    let (ctx, session, lost) = (ctx.clone(), session.clone(), lost.clone());
                    tasks.spawn(async move { handle(&ctx, &session, &lost, delivery).await });
                }
                Some(Err(e)) => break Err(e.into()),
                None => break Err(anyhow::anyhow!("consumer stream ended")),
            },
        }
    };
    // Deliveries not settled go back to the queue when the channel closes.
    lost.cancel();
    if result.is_ok() {
        if let Err(e) = ch
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await
        {
            tracing::debug!(error = %e, "cancelling the push consumer");
        }
        // Pushes in flight finish (bounded by the HTTP timeouts); waits are abandoned.
        while tasks.join_next().await.is_some() {}
        ch.close(200, "pusher stopping".into()).await?;
    } else {
        tasks.abort_all();
    }
    result
}

/// Handles one delivery, trying again in place while a dependency is down, then acks.
async fn handle(ctx: &Ctx, session: &Session, lost: &CancellationToken, d: Delivery) {
    let mut backoff = RETRY_IN_PLACE;
    loop {
        match process(ctx, session, &d.data).await {
            Ok(()) => break,
            Err(Failure::Stopping) => return,
            Err(e) => {
                tracing::warn!(error = %e, "push handling failed; trying again");
                metrics::counter!("courier_push_handling_errors_total").increment(1);
                tokio::select! {
                    _ = lost.cancelled() => return,
                    go = backoff.wait(&ctx.stop) => if !go { return },
                }
            }
        }
    }
    if let Err(e) = d.acker.ack(BasicAckOptions::default()).await {
        tracing::warn!(error = %e, "ack of a push delivery failed; it will be redelivered");
    }
}

async fn process(ctx: &Ctx, session: &Session, body: &[u8]) -> Result<(), Failure> {
    let incoming = match jobs::parse(body) {
        Ok(i) => i,
        Err(e) => {
            // Nothing can be done with it: dead-lettered rather than redelivered forever.
            tracing::warn!(error = %e, "unreadable delivery on the push queue; dead-lettered");
            deliver::dead_letter_raw(ctx, session, body, &e.to_string()).await?;
            metrics::counter!("courier_push_failed_total", "kind" => "none", "reason" => "malformed")
                .increment(1);
            return Ok(());
        }
    };
    match incoming {
        jobs::Incoming::Created(m) => decide::message(ctx, session, &m).await,
        jobs::Incoming::Job(job) => match *job {
            jobs::Job::Flush { device, user, chat } => {
                decide::flush(ctx, session, (device, user, chat)).await
            }
            retry @ jobs::Job::Retry { .. } => decide::retry(ctx, session, retry).await,
        },
        jobs::Incoming::Other(kind) => {
            tracing::debug!(%kind, "integration event ignored by the pusher");
            Ok(())
        }
    }
}
