//! The pusher's queues: `PUSH_QUEUE` (quorum) bound to the integration exchange for
//! `message.created`, delay queues that expire jobs back into it (retries at fixed
//! levels, coalesced flushes after `PUSH_COALESCE_SECS`), and `{PUSH_QUEUE}.dlq`
//! (quorum). The quorum queues get `RABBITMQ_QUORUM_REPLICAS` replicas as the chat
//! topology's do (an existing queue with another count is kept, with a warning).

use std::time::Duration;

use lapin::{
    Channel, Connection,
    options::{QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions},
    types::{AMQPValue, FieldTable},
};

use crate::mq::{
    long_string,
    topology::{declare_quorum, quorum_args},
};

/// Delays of the retry queues; a retry waits in the first that is at least its backoff
/// (or its `Retry-After`), or the last.
pub const RETRY_LEVELS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];

/// Attempts of one push before it is dead-lettered (the first one included).
pub const MAX_ATTEMPTS: u32 = 6;

#[derive(Debug, Clone)]
pub struct PushTopology {
    pub queue: String,
    pub integrations: String,
    pub coalesce: Duration,
    /// `x-quorum-initial-group-size` of new quorum queues (`None`: the broker's default).
    pub quorum_replicas: Option<u16>,
}

impl PushTopology {
    pub fn new(
        queue: &str,
        integrations: &str,
        coalesce: Duration,
        quorum_replicas: Option<u16>,
    ) -> Self {
        Self {
            queue: queue.to_string(),
            integrations: integrations.to_string(),
            coalesce,
            quorum_replicas,
        }
    }

    pub fn dlq(&self) -> String {
        format!("{}.dlq", self.queue)
    }

    pub fn retry_queue(&self, delay: Duration) -> String {
        format!("{}.retry.{}", self.queue, delay.as_millis())
    }

    /// The delay queue of coalesced flushes (named by its delay, so changing
    /// `PUSH_COALESCE_SECS` makes a new one and the old one drains into the main queue).
    pub fn flush_queue(&self) -> String {
        format!("{}.flush.{}", self.queue, self.coalesce.as_millis())
    }

    /// The retry queue for attempt `attempt` (1-based) when the service asked to wait
    /// `after` (`Retry-After`).
    pub fn retry_level(attempt: u32, after: Option<Duration>) -> Duration {
        let i = (attempt.max(1) as usize - 1).min(RETRY_LEVELS.len() - 1);
        let wanted = after.map_or(RETRY_LEVELS[i], |a| a.max(RETRY_LEVELS[i]));
        RETRY_LEVELS
            .iter()
            .copied()
            .find(|l| *l >= wanted)
            .unwrap_or(RETRY_LEVELS[RETRY_LEVELS.len() - 1])
    }

    fn delay_queues(&self) -> Vec<(String, Duration)> {
        let mut out: Vec<_> = RETRY_LEVELS
            .iter()
            .map(|d| (self.retry_queue(*d), *d))
            .collect();
        out.push((self.flush_queue(), self.coalesce));
        out
    }

    /// Declares every queue and binding on channels of `conn` (idempotent).
    pub async fn declare(&self, conn: &Connection) -> lapin::Result<()> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let quorum = quorum_args(self.quorum_replicas);
        let replicas = self.quorum_replicas;
        let ch = conn.create_channel().await?;
        let ch = declare_quorum(conn, ch, &self.queue, quorum.clone(), replicas).await?;
        ch.queue_bind(
            self.queue.as_str().into(),
            self.integrations.as_str().into(),
            "message.created".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        let ch = declare_quorum(conn, ch, &self.dlq(), quorum, replicas).await?;
        for (name, delay) in self.delay_queues() {
            let mut args = FieldTable::default();
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(delay.as_millis() as i64),
            );
            // Expired jobs go back to the main queue through the default exchange.
            args.insert("x-dead-letter-exchange".into(), long_string(""));
            args.insert("x-dead-letter-routing-key".into(), long_string(&self.queue));
            ch.queue_declare(name.as_str().into(), durable, args)
                .await?;
        }
        ch.close(200, "push topology declared".into()).await
    }

    /// Deletes every queue `declare` made (test teardown).
    pub async fn delete(&self, ch: &Channel) -> lapin::Result<()> {
        let mut names = vec![self.queue.clone(), self.dlq()];
        names.extend(self.delay_queues().into_iter().map(|(n, _)| n));
        for q in names {
            ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_levels_honour_retry_after_and_cap() {
        let s = Duration::from_secs;
        assert_eq!(PushTopology::retry_level(1, None), s(1));
        assert_eq!(PushTopology::retry_level(2, None), s(5));
        assert_eq!(PushTopology::retry_level(1, Some(s(3))), s(5));
        assert_eq!(PushTopology::retry_level(1, Some(s(31))), s(120));
        assert_eq!(PushTopology::retry_level(9, None), s(600));
        assert_eq!(PushTopology::retry_level(1, Some(s(9999))), s(600));
    }
}
