//! Dead-letter tooling: list the DLQ and replay messages into their partition once
//! the cause is fixed. Replay is idempotent: persistence is keyed on
//! `(chat, sender, clientMessageId)`, so a message replayed twice is stored once.

use lapin::{
    BasicProperties, Channel, Connection,
    message::BasicGetMessage,
    options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, ConfirmSelectOptions},
    types::FieldTable,
};
use serde::Serialize;

use super::{
    HEADER_ATTEMPTS, HEADER_BAN_REASON, HEADER_LAST_ERROR, HEADER_REASON, HEADER_RETRY_DELAY,
    HEADER_SOURCE_QUEUE, Topology, header_str, header_u32, publish::publish_confirmed,
};
use crate::{config::Config, domain::message::SendCommand};

/// What `list` shows of a dead letter.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub broker_message_id: Option<String>,
    pub reason: Option<String>,
    /// Reason `banned`: the ban's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ban_reason: Option<String>,
    pub attempts: Option<u32>,
    pub last_error: Option<String>,
    pub source_queue: Option<String>,
    pub body: String,
}

impl DeadLetter {
    fn of(m: &BasicGetMessage) -> Self {
        let h = m.delivery.properties.headers().as_ref();
        Self {
            broker_message_id: m
                .delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.to_string()),
            reason: header_str(h, HEADER_REASON),
            ban_reason: header_str(h, HEADER_BAN_REASON),
            attempts: header_u32(h, HEADER_ATTEMPTS),
            last_error: header_str(h, HEADER_LAST_ERROR),
            source_queue: header_str(h, HEADER_SOURCE_QUEUE),
            body: String::from_utf8_lossy(&m.delivery.data).into_owned(),
        }
    }
}

async fn open(config: &Config) -> anyhow::Result<(Connection, Channel, Topology)> {
    let conn = super::connect::open(&config.rabbitmq, "courier-dlq").await?;
    let topology = Topology::new(&config.rabbitmq);
    topology.declare(&conn).await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok((conn, ch, topology))
}

/// Takes up to `limit` messages off the DLQ (unacked until the caller settles them).
async fn take(
    ch: &Channel,
    topology: &Topology,
    limit: usize,
) -> anyhow::Result<Vec<BasicGetMessage>> {
    let mut out = Vec::new();
    while out.len() < limit {
        match ch
            .basic_get(
                topology.dlq.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await?
        {
            Some(m) => out.push(m),
            None => break,
        }
    }
    Ok(out)
}

async fn requeue(taken: &[BasicGetMessage]) -> anyhow::Result<()> {
    for m in taken {
        m.delivery
            .acker
            .nack(BasicNackOptions {
                requeue: true,
                ..Default::default()
            })
            .await?;
    }
    Ok(())
}

/// Lists up to `limit` dead letters, leaving them in the queue.
pub async fn list(config: &Config, limit: usize) -> anyhow::Result<Vec<DeadLetter>> {
    let (conn, ch, topology) = open(config).await?;
    let taken = take(&ch, &topology, limit).await?;
    let listed = taken.iter().map(DeadLetter::of).collect();
    requeue(&taken).await?;
    conn.close(200, "dlq list done".into()).await?;
    Ok(listed)
}

/// The partition a dead letter goes back to: its recorded source queue, else the
/// partition of its chat.
fn target(topology: &Topology, m: &BasicGetMessage) -> Option<String> {
    let h = m.delivery.properties.headers().as_ref();
    header_str(h, HEADER_SOURCE_QUEUE)
        .filter(|q| (0..topology.partitions).any(|n| topology.partition_queue(n) == *q))
        .or_else(|| {
            SendCommand::parse(&m.delivery.data)
                .ok()
                .map(|c| topology.route(c.chat_id))
        })
}

/// Properties for a replay: the original ones, minus the failure bookkeeping.
fn replay_properties(p: &BasicProperties) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(old) = p.headers() {
        for (k, v) in old.inner() {
            let key = k.as_str();
            if ![
                HEADER_ATTEMPTS,
                HEADER_BAN_REASON,
                HEADER_LAST_ERROR,
                HEADER_REASON,
                HEADER_RETRY_DELAY,
                HEADER_SOURCE_QUEUE,
                "x-death",
            ]
            .contains(&key)
                && !key.starts_with("x-first-death")
                && !key.starts_with("x-last-death")
            {
                headers.insert(k.clone(), v.clone());
            }
        }
    }
    p.clone().with_headers(headers)
}

/// Outcome of a replay run.
#[derive(Debug, Default, Serialize)]
pub struct Replayed {
    pub replayed: usize,
    /// Left in the DLQ: not matching the filter, or with no partition to go to.
    pub kept: usize,
}

/// Replays up to `limit` dead letters (only `only_id` if given) into their partition:
/// each is republished with a confirm before it is removed from the DLQ.
pub async fn replay(
    config: &Config,
    limit: usize,
    only_id: Option<&str>,
) -> anyhow::Result<Replayed> {
    let (conn, ch, topology) = open(config).await?;
    let taken = take(&ch, &topology, limit).await?;
    let mut result = Replayed::default();
    let mut keep = Vec::new();
    for m in taken {
        let id = m
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string());
        let wanted = only_id.is_none_or(|want| id.as_deref() == Some(want));
        match target(&topology, &m).filter(|_| wanted) {
            Some(route) => {
                let props = replay_properties(&m.delivery.properties);
                publish_confirmed(
                    &ch,
                    &topology.exchange,
                    &route,
                    &m.delivery.data,
                    props,
                    crate::mq::CONFIRM_TIMEOUT,
                )
                .await?;
                m.delivery.acker.ack(BasicAckOptions::default()).await?;
                result.replayed += 1;
            }
            None => keep.push(m),
        }
    }
    result.kept = keep.len();
    requeue(&keep).await?;
    conn.close(200, "dlq replay done".into()).await?;
    Ok(result)
}

/// Number of messages waiting in the DLQ.
pub async fn depth(config: &Config) -> anyhow::Result<u32> {
    let (conn, ch, topology) = open(config).await?;
    let q = ch
        .queue_declare(
            topology.dlq.as_str().into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    conn.close(200, "dlq depth done".into()).await?;
    Ok(q.message_count())
}
