//! The broker-only ceiling: what RabbitMQ alone does on this machine with Courier's
//! topology, message size and confirms, and nothing else. In the run's vhost it declares
//! a copy of Courier's partitions under another prefix (durable quorum queues with
//! single active consumer and a dead-letter exchange, bound to a direct exchange by
//! queue name), then `--senders` publishers each publish a persistent, mandatory,
//! JSON send command of Courier's size on a confirm channel and await its confirm
//! (as the API does per request), while one consumer per partition (prefetch 256, as
//! the worker) acks every delivery. Measured: confirmed and consumed messages/s over
//! the window, and RabbitMQ's CPU per message.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use anyhow::Context;
use futures_util::StreamExt;
use lapin::{
    BasicProperties, Confirmation, Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};
use serde::Serialize;
use tokio::time::Instant;

use crate::{cli::Args, deploy::Isolation, procstat::ServiceSnapshot};

const PREFIX: &str = "ceiling.chat.message.send";
const EXCHANGE: &str = "ceiling.chat.events";
const DLX: &str = "ceiling.chat.dlx";
const PARTITIONS: u16 = 8;
/// The worker's default prefetch (RABBITMQ_PREFETCH).
const PREFETCH: u16 = 256;

#[derive(Debug, Clone, Serialize)]
pub struct CeilingFigures {
    pub publishers: usize,
    pub partitions: u16,
    pub body_bytes: usize,
    pub window_secs: f64,
    pub confirmed_per_s: f64,
    pub consumed_per_s: f64,
    pub nacked_or_failed: u64,
    /// RabbitMQ CPU (all its processes) per confirmed message over the window.
    pub rabbitmq_cpu_us_per_message: f64,
}

/// A send command as the API publishes it (same fields, same size).
fn body(n: u64) -> Vec<u8> {
    let id = || uuid::Uuid::new_v4().to_string();
    format!(
        r#"{{"brokerMessageId":"{}","chatId":"{}","senderId":"{}","clientMessageId":"{}","content":"bench {} {} 1764522000000000","acceptedAt":"2026-11-30T17:00:00.000Z"}}"#,
        id(),
        id(),
        id(),
        id(),
        n % 1000,
        n
    )
    .into_bytes()
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

async fn declare(conn: &Connection) -> anyhow::Result<()> {
    let ch = conn.create_channel().await?;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(
        EXCHANGE.into(),
        lapin::ExchangeKind::Direct,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.exchange_declare(
        DLX.into(),
        lapin::ExchangeKind::Fanout,
        durable,
        FieldTable::default(),
    )
    .await?;
    let qopts = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for n in 0..PARTITIONS {
        let q = format!("{PREFIX}.{n}");
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), long_string("quorum"));
        args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        args.insert("x-dead-letter-exchange".into(), long_string(DLX));
        ch.queue_declare(q.as_str().into(), qopts, args).await?;
        ch.queue_bind(
            q.as_str().into(),
            EXCHANGE.into(),
            q.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    Ok(())
}

/// Runs the broker-only load for warm-up + duration in `iso`'s vhost.
pub async fn run(args: &Args, iso: &Isolation) -> anyhow::Result<CeilingFigures> {
    let uri = format!("amqp://guest:guest@127.0.0.1:5672/{}", iso.vhost);
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .context("cannot connect to RabbitMQ")?;
    declare(&conn).await?;
    let consumed = Arc::new(AtomicU64::new(0));
    let mut consumers = tokio::task::JoinSet::new();
    for n in 0..PARTITIONS {
        let ch = conn.create_channel().await?;
        ch.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
        let mut stream = ch
            .basic_consume(
                format!("{PREFIX}.{n}").as_str().into(),
                format!("ceiling-{n}").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let consumed = consumed.clone();
        consumers.spawn(async move {
            while let Some(Ok(d)) = stream.next().await {
                if d.acker.ack(BasicAckOptions::default()).await.is_err() {
                    break;
                }
                consumed.fetch_add(1, Relaxed);
            }
        });
    }
    let publish = conn.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let confirmed = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let warm = start + Duration::from_secs_f64(args.warmup);
    let end = warm + Duration::from_secs_f64(args.duration_secs());
    let publishers = args.sender_count();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..publishers {
        let (ch, confirmed, failed) = (publish.clone(), confirmed.clone(), failed.clone());
        tasks.spawn(async move {
            let mut k = i as u64;
            while Instant::now() < end {
                let route = format!("{PREFIX}.{}", k % PARTITIONS as u64);
                let props = BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/json".into())
                    .with_message_id(uuid::Uuid::new_v4().to_string().as_str().into());
                let opts = BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                };
                let outcome = match ch
                    .basic_publish(
                        EXCHANGE.into(),
                        route.as_str().into(),
                        opts,
                        &body(k),
                        props,
                    )
                    .await
                {
                    Ok(pending) => pending.await,
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(Confirmation::Ack(None)) => confirmed.fetch_add(1, Relaxed),
                    _ => failed.fetch_add(1, Relaxed),
                };
                k += publishers as u64;
            }
        });
    }
    tokio::time::sleep_until(warm).await;
    let (c0, d0, f0) = (
        confirmed.load(Relaxed),
        consumed.load(Relaxed),
        failed.load(Relaxed),
    );
    let cpu0 = ServiceSnapshot::take();
    tokio::time::sleep_until(end).await;
    let (c1, d1, f1) = (
        confirmed.load(Relaxed),
        consumed.load(Relaxed),
        failed.load(Relaxed),
    );
    let cpu1 = ServiceSnapshot::take();
    let window = end.duration_since(warm).as_secs_f64();
    while tasks.join_next().await.is_some() {}
    consumers.abort_all();
    let _ = conn.close(200, "ceiling done".into()).await;
    let rabbit_cpu = cpu1
        .since(&cpu0)
        .into_iter()
        .find(|(label, _)| *label == "rabbitmq")
        .map_or(0.0, |(_, secs)| secs);
    let per_s = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / window;
    Ok(CeilingFigures {
        publishers,
        partitions: PARTITIONS,
        body_bytes: body(0).len(),
        window_secs: window,
        confirmed_per_s: per_s(c0, c1),
        consumed_per_s: per_s(d0, d1),
        nacked_or_failed: f1 - f0,
        rabbitmq_cpu_us_per_message: if c1 > c0 {
            rabbit_cpu * 1e6 / (c1 - c0) as f64
        } else {
            0.0
        },
    })
}
