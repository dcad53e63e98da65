//! Observable barriers for tests that assert something did not happen: a later marker
//! that must come first (a chat's commands are handled in order), or a counter of the
//! app's `/metrics` listener, instead of a sleep that proves nothing on a slow runner.

use uuid::Uuid;

use super::{TestApp, poll};

impl TestApp {
    /// Waits until a message with `content` is stored in `chat`. Sent (or published) as
    /// a marker after what is under test in the same chat, it is handled after it: once
    /// the marker is there, so is everything before it that was going to be.
    pub async fn wait_marker(&self, chat: Uuid, content: &str) {
        poll::until(&format!("marker {content:?} in {chat}"), || async {
            let found: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE chat_id = $1 AND content = $2)",
            )
            .bind(chat)
            .bind(content)
            .fetch_one(&self.pool)
            .await
            .expect("marker query");
            found.then_some(())
        })
        .await;
    }

    /// The sum of the samples of counter `name` on the app's metrics listener whose
    /// labels contain every one of `labels` (e.g. `exchange="t1.events"`).
    /// The recorder is process-wide, shared by the tests of a binary running at once:
    /// filter on a label only this test's app uses (its exchange names).
    pub async fn counter(&self, name: &str, labels: &[&str]) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.metrics))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        text.lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(name)?;
                let (labelled, value) = rest.rsplit_once(' ')?;
                (labelled.is_empty() || labelled.starts_with('{'))
                    .then_some(())
                    .filter(|()| labels.iter().all(|l| labelled.contains(l)))?;
                value.parse::<f64>().ok()
            })
            .sum()
    }

    /// Broker publishes to this app's chat exchange (the API's sends and chat
    /// announcements), counted when confirmed or refused, before the request is answered.
    pub async fn chat_publishes(&self) -> f64 {
        let label = format!("exchange=\"{}\"", self.config.rabbitmq.exchange);
        self.counter("courier_publish_total", &[&label]).await
    }

    /// Messages waiting in the retry queues (of every delay): a failed attempt, seen.
    pub async fn retries_waiting(&self) -> u32 {
        let topo = self.topology();
        let conn = self.amqp().await;
        let ch = conn.create_channel().await.expect("channel");
        let mut n = 0;
        for delay in topo.retry_levels() {
            let passive = lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let q = ch
                .queue_declare(
                    topo.retry_queue(delay).as_str().into(),
                    passive,
                    Default::default(),
                )
                .await
                .expect("passive declare");
            n += q.message_count();
        }
        conn.close(200, "bye".into()).await.expect("close");
        n
    }
}
