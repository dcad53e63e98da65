//! The broker topology, declared idempotently by the API and the worker:
//!
//! * `RABBITMQ_CHAT_EXCHANGE` (direct): routing key `<prefix>.<n>` → quorum queue
//!   `<prefix>.<n>` (single active consumer, dead-letters to the DLX).
//! * `<exchange>.retry` (headers): header `x-courier-retry-delay = <ms>` → quorum
//!   queue `<prefix>.retry.<ms>` whose TTL expires messages back into the main
//!   exchange under their original routing key, i.e. their partition, dead-lettered
//!   at least once (`x-dead-letter-strategy`, with `x-overflow` `reject-publish`): a
//!   message leaves the retry queue only once its partition queue has confirmed it.
//! * `RABBITMQ_CHAT_DLX_EXCHANGE` (fanout) → quorum queue `RABBITMQ_CHAT_DLQ_NAME`.
//! * `RABBITMQ_INTEGRATION_EXCHANGE` (topic): integration events for other systems,
//!   which bind their own queues to it.
//!
//! Quorum queues get `x-quorum-initial-group-size` = `RABBITMQ_QUORUM_REPLICAS` when it
//! is set (see [`crate::config::RabbitConfig::quorum_replicas`]). The broker refuses a
//! redeclaration whose replica count differs (PRECONDITION_FAILED): a queue made
//! before is kept as it is, with a warning (its members change with `rabbitmq-queues
//! grow` / `shrink`), while any other difference still fails. The retry queues are
//! classic queues, on the node that first declared them: while that node is down their
//! declaration is skipped (with a warning), so the partitions stay served.

use std::time::Duration;

use lapin::{
    Channel, Connection, ExchangeKind,
    options::{
        ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
        QueueDeleteOptions,
    },
    protocol::{AMQPErrorKind, AMQPSoftError},
    types::{AMQPValue, FieldTable},
};
use uuid::Uuid;

use super::{HEADER_RETRY_DELAY, long_string};
use crate::{config::RabbitConfig, domain::partition};

/// Delay before retry attempt n (1-based); later attempts use the last.
pub const RETRY_DELAYS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];

#[derive(Debug, Clone)]
pub struct Topology {
    pub exchange: String,
    pub retry_exchange: String,
    pub dlx: String,
    pub dlq: String,
    /// Topic exchange of integration events.
    pub integrations: String,
    pub queue_prefix: String,
    pub partitions: u16,
    pub max_retries: u32,
    /// `x-quorum-initial-group-size` of new quorum queues (`None`: the broker's default).
    pub quorum_replicas: Option<u16>,
}

/// The argument naming a quorum queue's replica count.
const GROUP_SIZE: &str = "x-quorum-initial-group-size";

impl Topology {
    pub fn new(c: &RabbitConfig) -> Self {
        Self {
            exchange: c.exchange.clone(),
            retry_exchange: format!("{}.retry", c.exchange),
            dlx: c.dlx_exchange.clone(),
            dlq: c.dlq_name.clone(),
            integrations: c.integration_exchange.clone(),
            queue_prefix: c.queue_prefix.clone(),
            partitions: c.partition_count,
            max_retries: c.max_retries,
            quorum_replicas: c.quorum_replicas,
        }
    }

    pub fn partition_queue(&self, n: u16) -> String {
        partition::queue_name(&self.queue_prefix, n)
    }

    /// The routing key (= queue name) of a chat's partition.
    pub fn route(&self, chat: Uuid) -> String {
        self.partition_queue(partition::partition_of(chat, self.partitions))
    }

    /// Delay before retry attempt `attempt` (1-based).
    pub fn retry_delay(attempt: u32) -> Duration {
        let i = (attempt.max(1) as usize - 1).min(RETRY_DELAYS.len() - 1);
        RETRY_DELAYS[i]
    }

    /// The delays for which a retry queue exists.
    pub fn retry_levels(&self) -> Vec<Duration> {
        let n = (self.max_retries as usize).min(RETRY_DELAYS.len());
        RETRY_DELAYS[..n].to_vec()
    }

    pub fn retry_queue(&self, delay: Duration) -> String {
        format!("{}.retry.{}", self.queue_prefix, delay.as_millis())
    }

    /// Declares everything on channels of `conn` (idempotent).
    pub async fn declare(&self, conn: &Connection) -> lapin::Result<()> {
        let ch = conn.create_channel().await?;
        let ch = self.declare_on(conn, ch).await?;
        ch.close(200, "topology declared".into()).await
    }

    /// The arguments of a quorum queue: `x-queue-type` and the replica count.
    fn quorum_args(&self) -> FieldTable {
        quorum_args(self.quorum_replicas)
    }

    async fn declare_quorum(
        &self,
        conn: &Connection,
        ch: Channel,
        q: &str,
        args: FieldTable,
    ) -> lapin::Result<Channel> {
        declare_quorum(conn, ch, q, args, self.quorum_replicas).await
    }

    async fn declare_on(&self, conn: &Connection, mut ch: Channel) -> lapin::Result<Channel> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        for (name, kind) in [
            (&self.exchange, ExchangeKind::Direct),
            (&self.dlx, ExchangeKind::Fanout),
            (&self.retry_exchange, ExchangeKind::Headers),
            (&self.integrations, ExchangeKind::Topic),
        ] {
            ch.exchange_declare(name.as_str().into(), kind, durable, FieldTable::default())
                .await?;
        }
        let qopts = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };

        ch = self
            .declare_quorum(conn, ch, &self.dlq, self.quorum_args())
            .await?;
        ch.queue_bind(
            self.dlq.as_str().into(),
            self.dlx.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

        for n in 0..self.partitions {
            let q = self.partition_queue(n);
            let mut args = self.quorum_args();
            args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
            args.insert("x-dead-letter-exchange".into(), long_string(&self.dlx));
            ch = self.declare_quorum(conn, ch, &q, args).await?;
            ch.queue_bind(
                q.as_str().into(),
                self.exchange.as_str().into(),
                q.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }

        for delay in self.retry_levels() {
            let q = self.retry_queue(delay);
            let mut expiring = FieldTable::default();
            expiring.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(delay.as_millis() as i64),
            );
            expiring.insert("x-dead-letter-exchange".into(), long_string(&self.exchange));
            let mut args = self.quorum_args();
            for (k, v) in expiring.inner() {
                args.insert(k.clone(), v.clone());
            }
            args.insert(
                "x-dead-letter-strategy".into(),
                long_string("at-least-once"),
            );
            args.insert("x-overflow".into(), long_string("reject-publish"));
            let declared = match self.declare_quorum(conn, ch, &q, args).await {
                Ok(ch) => Some(ch),
                Err(e) if is_precondition_failed(&e) => {
                    // A classic retry queue of an earlier version: kept as it is.
                    let fresh = conn.create_channel().await?;
                    match fresh
                        .queue_declare(q.as_str().into(), qopts, expiring)
                        .await
                    {
                        Ok(_) => {
                            tracing::warn!(queue = %q, "classic retry queue of an earlier version kept (at-most-once dead-lettering, lost with its node); delete it once empty to have it declared as a quorum queue");
                            Some(fresh)
                        }
                        // Its node is down (a cluster node lost): the partitions do not
                        // need it; retries routed to it are returned (mandatory) and so
                        // redelivered later.
                        Err(e) if is_soft(&e, AMQPSoftError::NOTFOUND) => {
                            tracing::warn!(queue = %q, error = %e, "retry queue unavailable (its node is down); going on without it");
                            None
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            };
            let Some(declared) = declared else {
                ch = conn.create_channel().await?;
                continue;
            };
            ch = declared;
            let mut bind = FieldTable::default();
            bind.insert("x-match".into(), long_string("all"));
            bind.insert(
                HEADER_RETRY_DELAY.into(),
                long_string(&delay.as_millis().to_string()),
            );
            ch.queue_bind(
                q.as_str().into(),
                self.retry_exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                bind,
            )
            .await?;
        }
        Ok(ch)
    }

    /// Deletes everything `declare` made (test teardown).
    pub async fn delete(&self, ch: &Channel) -> lapin::Result<()> {
        let mut queues: Vec<String> = (0..self.partitions)
            .map(|n| self.partition_queue(n))
            .collect();
        queues.extend(self.retry_levels().into_iter().map(|d| self.retry_queue(d)));
        queues.push(self.dlq.clone());
        for q in queues {
            ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        for e in [
            &self.exchange,
            &self.retry_exchange,
            &self.dlx,
            &self.integrations,
        ] {
            ch.exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}

/// The arguments of a quorum queue: `x-queue-type`, and `x-quorum-initial-group-size` =
/// `replicas` when given (`RABBITMQ_QUORUM_REPLICAS`).
pub fn quorum_args(replicas: Option<u16>) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long_string("quorum"));
    if let Some(n) = replicas {
        args.insert(GROUP_SIZE.into(), AMQPValue::LongInt(i32::from(n)));
    }
    args
}

/// Declares durable quorum queue `q` with `args` (from [`quorum_args`]); when it exists
/// with another replica count, keeps it with a warning (the refusal closed `ch`: the
/// declaration goes on on a new channel, returned). Any other difference fails.
pub async fn declare_quorum(
    conn: &Connection,
    ch: Channel,
    q: &str,
    args: FieldTable,
    replicas: Option<u16>,
) -> lapin::Result<Channel> {
    let opts = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    match ch.queue_declare(q.into(), opts, args.clone()).await {
        Ok(_) => Ok(ch),
        Err(e) if replicas.is_some() && is_precondition_failed(&e) => {
            // Declared again with the count it has, so any other difference still fails.
            let Some(current) = current_group_size(&e.to_string()) else {
                return Err(e);
            };
            let ch = conn.create_channel().await?;
            let mut same = args.inner().clone();
            match current {
                Some(n) => same.insert(GROUP_SIZE.into(), AMQPValue::LongInt(n)),
                None => same.remove(GROUP_SIZE),
            };
            ch.queue_declare(q.into(), opts, FieldTable::from(same))
                .await?;
            tracing::warn!(
                queue = q,
                replicas,
                current,
                "quorum queue exists with another replica count; kept as it is (change its members with rabbitmq-queues grow/shrink)"
            );
            Ok(ch)
        }
        Err(e) => Err(e),
    }
}

/// The replica count a queue has, from the broker's refusal of another one:
/// `inequivalent arg 'x-quorum-initial-group-size' ... current is the value '3' of type
/// 'signedint'` (or `current is '3'`) → `Some(Some(3))`, `... current is none` →
/// `Some(None)`; `None` when the refusal is about something else.
fn current_group_size(refusal: &str) -> Option<Option<i32>> {
    let rest = refusal
        .split(&format!("inequivalent arg '{GROUP_SIZE}'"))
        .nth(1)?;
    let current = rest.split("current is ").nth(1)?;
    if current.starts_with("none") {
        return Some(None);
    }
    let current = current.strip_prefix("the value ").unwrap_or(current);
    let value = current.strip_prefix('\'')?.split('\'').next()?;
    value.parse().ok().map(Some)
}

/// Whether the broker refused a declaration as not equivalent (406).
fn is_precondition_failed(e: &lapin::Error) -> bool {
    is_soft(e, AMQPSoftError::PRECONDITIONFAILED)
}

/// Whether `e` is the channel error `soft` (e.g. 404 NOT_FOUND: a classic queue whose
/// node is down).
fn is_soft(e: &lapin::Error, soft: AMQPSoftError) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(p) if *p.kind() == AMQPErrorKind::Soft(soft))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_replica_count_is_read_from_the_refusal() {
        let refusal = |tail: &str| {
            format!(
                "PRECONDITION_FAILED - inequivalent arg '{GROUP_SIZE}' for queue 'q' in vhost '/': {tail}"
            )
        };
        let has = refusal("received none but current is the value '1' of type 'signedint'");
        assert_eq!(current_group_size(&has), Some(Some(1)));
        let none = refusal("received the value '3' of type 'signedint' but current is none");
        assert_eq!(current_group_size(&none), Some(None));
        let both = refusal("received '2' but current is '1'");
        assert_eq!(current_group_size(&both), Some(Some(1)));
        let other = "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue 'q'";
        assert_eq!(current_group_size(other), None);
    }

    #[test]
    fn retry_delays_grow_and_cap() {
        assert_eq!(Topology::retry_delay(1), Duration::from_secs(1));
        assert_eq!(Topology::retry_delay(2), Duration::from_secs(5));
        assert_eq!(Topology::retry_delay(99), Duration::from_secs(600));
        assert!(RETRY_DELAYS.windows(2).all(|w| w[0] < w[1]));
    }
}
