//! The worker: consumes every partition queue, persists batches with per-chat
//! sequences, notifies the gateways that hold the recipients' sockets, then acks.

mod audience;
mod batch;
mod dispose;
mod holds;
mod integration;
mod lifecycle;
mod notify;
mod outbox;
mod persister;
mod sends;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use futures::StreamExt;
use lapin::{
    options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
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
    server::Service,
    service::Deps,
};

/// Most deliveries handled in one transaction.
pub const BATCH_MAX: usize = 256;

/// How the worker waits for a dependency that is down (PostgreSQL, Redis): up to
/// 100 ms at first, doubling to up to 1 s.
const OUTAGE_BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));

/// What every partition consumer shares.
pub struct Ctx {
    pub pool: PgPool,
    pub cache: Cache,
    pub topology: Topology,
    pub prefetch: u16,
    pub stop: CancellationToken,
    pub persister: persister::Persister,
    /// Mints the attachments' URLs of the events.
    pub storage: crate::storage::Storage,
    /// `API_COMPAT`: the wire shape of `chat.message.new` / `chat.message.saved`.
    pub compat: crate::domain::compat::ApiCompat,
}

/// Why a partition consumer stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("broker: {0}")]
    Publish(#[from] crate::mq::publish::PublishError),
    #[error("consumer stream ended")]
    Ended,
    #[error("rabbitmq connection lost")]
    SessionLost,
    #[error("broker did not answer in time while setting up the consumer")]
    SetupTimeout,
    #[error("stopping")]
    Stopping,
}

/// Starts one consumer loop per partition on `service`.
pub fn spawn_consumers(
    service: &mut Service,
    config: &Config,
    deps: &Deps,
) -> anyhow::Result<Link> {
    let topology = Topology::new(&config.rabbitmq);
    // The link outlives the consumers: they settle their last batch before it closes.
    let link_stop = CancellationToken::new();
    let (link, link_task) = Link::spawn(
        config.rabbitmq.clone(),
        topology.clone(),
        "courier-worker",
        link_stop.clone(),
    );
    let persist_pool = crate::db::persist_pool(config)?;
    let (persister, persister_task) =
        persister::Persister::new(persist_pool, config.worker_commit_linger);
    service.spawn_on_run(persister_task);
    let ctx = Arc::new(Ctx {
        persister,
        pool: deps.pool.clone(),
        cache: deps.cache.clone(),
        topology,
        prefetch: config.rabbitmq.prefetch,
        stop: service.stop.clone(),
        storage: deps.storage.clone(),
        compat: config.api_compat,
    });
    service.spawn_on_run(watch_depths(link.clone(), ctx.clone()));
    service.spawn_on_run(sweep_streams(ctx.clone()));
    service.spawn_on_run(outbox::relay(link.clone(), ctx.clone()));
    let partitions = config.rabbitmq.partition_count;
    let consumer_link = link.clone();
    service.spawn_on_run(async move {
        let mut consumers = tokio::task::JoinSet::new();
        for n in 0..partitions {
            consumers.spawn(partition_loop(consumer_link.clone(), ctx.clone(), n));
        }
        while let Some(done) = consumers.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "partition consumer panicked");
            }
        }
        link_stop.cancel();
        if let Err(e) = link_task.await {
            tracing::error!(error = %e, "rabbitmq supervisor failed");
        }
    });
    Ok(link)
}

/// Builds the worker role; its HTTP port (`WORKER_PORT`) serves health only.
pub async fn build(config: &Config) -> anyhow::Result<Service> {
    let deps = Deps::connect(config).await?;
    crate::db::probe(config).await?;
    crate::mq::connect::preflight(&config.rabbitmq, "courier-worker").await?;
    crate::db::migrate_or_check(config).await?;
    let stop = CancellationToken::new();
    let addr = SocketAddr::new(config.bind_host, config.worker_port);
    let mut service = Service::bind("worker", addr, axum::Router::new(), stop).await?;
    service.serve_metrics(config).await?;
    service.max_connections = config.http_max_connections;
    let link = spawn_consumers(&mut service, config, &deps)?;
    // Who blocked each sender, in memory (`courier` runs it with the API's tasks).
    service.spawn_on_run(deps.near_cache(config, service.stop.clone()));
    let health = Health {
        db: Some(deps.pool.clone()),
        cache: Some(deps.cache.clone()),
        mq: Some(link),
    };
    let router = crate::http::finish(health.router());
    Ok(service.with_router(router))
}

/// Consumes one partition, reconnecting whenever the session or channel is lost.
async fn partition_loop(mut link: Link, ctx: Arc<Ctx>, partition: u16) {
    let queue = ctx.topology.partition_queue(partition);
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
    while !ctx.stop.is_cancelled() {
        let session = tokio::select! {
            _ = ctx.stop.cancelled() => return,
            s = link.next_session() => match s { Some(s) => s, None => return },
        };
        let started = tokio::time::Instant::now();
        match consume(&session, &ctx, &queue, partition).await {
            Ok(()) | Err(ConsumeError::Stopping) => return,
            Err(e) => {
                tracing::warn!(%queue, error = %e, "partition consumer stopped, restarting");
                backoff.reset_after(started.elapsed());
                if !backoff.wait(&ctx.stop).await {
                    return;
                }
            }
        }
    }
}

/// How long opening a channel and registering the consumer may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Consumes until stopped or the session dies. A lost connection does not always end
/// lapin's consumer stream (nor answer a pending RPC), so the loss of the session is
/// watched for directly: a partition must never sit without a consumer.
async fn consume(
    session: &Session,
    ctx: &Ctx,
    queue: &str,
    partition: u16,
) -> Result<(), ConsumeError> {
    tokio::select! {
        r = consume_on(session, ctx, queue, partition) => r,
        _ = session_lost(session) => Err(ConsumeError::SessionLost),
    }
}

/// Resolves once the session's connection or publishing channel is down.
async fn session_lost(session: &Session) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        if !session.is_up() {
            return;
        }
    }
}

async fn open_consumer(
    session: &Session,
    ctx: &Ctx,
    queue: &str,
    tag: &str,
) -> Result<(lapin::Channel, lapin::Consumer), ConsumeError> {
    let ch = session.conn.create_channel().await?;
    ch.basic_qos(ctx.prefetch, BasicQosOptions::default())
        .await?;
    let consumer = ch
        .basic_consume(
            queue.into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((ch, consumer))
}

async fn consume_on(
    session: &Session,
    ctx: &Ctx,
    queue: &str,
    partition: u16,
) -> Result<(), ConsumeError> {
    let tag = format!("courier-worker-{}", uuid::Uuid::new_v4().simple());
    let (ch, consumer) =
        tokio::time::timeout(SETUP_TIMEOUT, open_consumer(session, ctx, queue, &tag))
            .await
            .map_err(|_| ConsumeError::SetupTimeout)??;
    tracing::info!(%queue, "consuming");
    let mut batches = consumer.ready_chunks(BATCH_MAX);
    // Read when the first deliveries arrive: only then is this consumer the active one
    // (single active consumer), and the previous one has left its holds behind.
    let mut holds: Option<holds::Holds> = None;
    loop {
        let items = tokio::select! {
            _ = ctx.stop.cancelled() => {
                // Stop taking deliveries; what is unacked goes back to the queue.
                ch.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await?;
                ch.close(200, "worker stopping".into()).await?;
                return Ok(());
            }
            b = batches.next() => b.ok_or(ConsumeError::Ended)?,
        };
        let deliveries = items.into_iter().collect::<Result<Vec<_>, _>>()?;
        if tracing::enabled!(tracing::Level::DEBUG) {
            for d in &deliveries {
                tracing::debug!(
                    %queue,
                    channel = ch.id(),
                    tag = d.delivery_tag,
                    redelivered = d.redelivered,
                    message_id = d.properties.message_id().as_ref().map(|s| s.as_str()).unwrap_or(""),
                    "delivery received"
                );
            }
        }
        if holds.is_none() {
            holds = Some(load_holds(ctx, partition).await?);
        }
        if let Some(holds) = holds.as_mut() {
            batch::handle(ctx, session, holds, deliveries).await?;
        }
    }
}

/// The partition's chat holds, waiting for PostgreSQL if it is down.
async fn load_holds(ctx: &Ctx, partition: u16) -> Result<holds::Holds, ConsumeError> {
    let mut backoff = OUTAGE_BACKOFF;
    loop {
        match holds::Holds::load(&ctx.pool, partition).await {
            Ok(h) => return Ok(h),
            Err(e) => {
                tracing::warn!(error = %e, partition, "reading chat holds failed; retrying");
                if !backoff.wait(&ctx.stop).await {
                    return Err(ConsumeError::Stopping);
                }
            }
        }
    }
}

/// Every minute, removes the event streams of users without a recent event and trims
/// entries older than the recovery window (every worker does; it is idempotent).
async fn sweep_streams(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(crate::cache::events::SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match ctx.cache.sweep_streams().await {
            Ok(n) => metrics::counter!("courier_streams_removed_total").increment(n as u64),
            Err(e) => tracing::debug!(error = %e, "stream sweep failed"),
        }
    }
}

/// Every 5 s, publishes the depth of each partition queue and of the DLQ as gauges.
async fn watch_depths(link: Link, ctx: Arc<Ctx>) {
    let mut queues: Vec<String> = (0..ctx.topology.partitions)
        .map(|n| ctx.topology.partition_queue(n))
        .collect();
    queues.push(ctx.topology.dlq.clone());
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(session) = link.current() else {
            continue;
        };
        if let Err(e) = record_depths(&session, &queues).await {
            tracing::debug!(error = %e, "queue depth probe failed");
        }
    }
}

async fn record_depths(session: &Session, queues: &[String]) -> lapin::Result<()> {
    let ch = session.conn.create_channel().await?;
    for q in queues {
        let opts = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let info = ch
            .queue_declare(q.as_str().into(), opts, FieldTable::default())
            .await?;
        metrics::gauge!("courier_queue_depth", "queue" => q.clone())
            .set(f64::from(info.message_count()));
    }
    ch.close(200, "depth probe done".into()).await
}
