//! Bans in the worker, against real RabbitMQ, PostgreSQL and Redis: sends (and edits)
//! of a user banned while they sat in the queue are not persisted but dead-lettered
//! with the ban's reason; the other senders of the same batches are persisted.

mod common;

use common::{Mode, TestApp, TestUser, poll, spawn_with, test_config};
use courier::config::Config;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A worker started next to an API-only app (which leaves sends in the queues).
struct Worker {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Worker {
    async fn start(config: &Config) -> Self {
        let service = courier::worker::build(config).await.expect("worker");
        let stop = CancellationToken::new();
        let s = stop.clone();
        let task = tokio::spawn(service.run_until_stopped(async move { s.cancelled().await }));
        Self { stop, task }
    }

    /// Stops it; what it has not acked goes back to the queues.
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("worker task").expect("worker run");
    }
}

async fn ban(app: &TestApp, user: Uuid, reason: &str, until: Option<&str>) {
    sqlx::query(
        "UPDATE users SET banned_at = now(), ban_reason = $2,
                          banned_until = now() + $3::interval WHERE id = $1",
    )
    .bind(user)
    .bind(reason)
    .bind(until)
    .execute(&app.pool)
    .await
    .expect("ban");
}

async fn send(app: &TestApp, user: &TestUser, chat: Uuid, content: &str) {
    let (status, body) = app.send(user, chat, content, Uuid::new_v4()).await;
    assert_eq!(status, 202, "{body}");
}

/// `(sender, content)` of a chat's stored messages, in sequence order.
async fn stored(app: &TestApp, chat: Uuid) -> Vec<(Uuid, String)> {
    sqlx::query_as("SELECT sender_id, content FROM messages WHERE chat_id = $1 ORDER BY sequence")
        .bind(chat)
        .fetch_all(&app.pool)
        .await
        .expect("messages")
}

#[tokio::test]
async fn queued_sends_and_edits_of_a_banned_user_are_dead_lettered_with_the_reason() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let (a, b, c, d) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
        app.register("d").await,
    );
    let chat = app.group_chat(&b, &[&a, &c, &d]).await;

    // Before the ban: one message of a's is persisted.
    send(&app, &a, chat, "before the ban").await;
    let worker = Worker::start(&app.config).await;
    app.wait_messages(chat, 1).await;
    worker.stop().await;
    let first: Uuid = sqlx::query_scalar("SELECT id FROM messages WHERE chat_id = $1")
        .bind(chat)
        .fetch_one(&app.pool)
        .await
        .expect("first message");

    // With no worker running, a's sends and an edit sit in the queue among the others'.
    send(&app, &a, chat, "a1").await;
    send(&app, &b, chat, "b1").await;
    send(&app, &a, chat, "a2").await;
    let (status, body) = app
        .call(
            "PATCH",
            &format!("/chats/{chat}/messages/{first}"),
            Some(&a.token),
            Some(json!({"content": "edited after the ban"})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    send(&app, &c, chat, "c1").await;
    send(&app, &d, chat, "d1").await;
    send(&app, &a, chat, "a3").await;
    send(&app, &b, chat, "b2").await;
    // a is banned now; d's ban expired an hour ago and holds nothing back.
    ban(&app, a.id, "spamming links", None).await;
    ban(&app, d.id, "old ban", Some("-1 hour")).await;

    let worker = Worker::start(&app.config).await;
    let dlq = app.topology().dlq;
    poll::until("four dead letters", || async {
        (app.queue_depth(&dlq).await >= 4).then_some(())
    })
    .await;
    app.wait_messages(chat, 5).await;
    worker.stop().await;

    let expected: Vec<(Uuid, String)> = [
        (a.id, "before the ban"),
        (b.id, "b1"),
        (c.id, "c1"),
        (d.id, "d1"),
        (b.id, "b2"),
    ]
    .into_iter()
    .map(|(u, s)| (u, s.to_string()))
    .collect();
    assert_eq!(
        stored(&app, chat).await,
        expected,
        "nothing of a's after the ban"
    );
    assert_eq!(app.sequences(chat).await, vec![1, 2, 3, 4, 5], "no gaps");

    let dead = courier::mq::dlq::list(&app.config, 10)
        .await
        .expect("dlq list");
    assert_eq!(dead.len(), 4, "{dead:?}");
    for letter in &dead {
        assert_eq!(letter.reason.as_deref(), Some("banned"), "{letter:?}");
        assert_eq!(letter.ban_reason.as_deref(), Some("spamming links"));
        assert_eq!(
            letter.last_error.as_deref(),
            Some("sender is banned: spamming links")
        );
        assert_eq!(letter.attempts, Some(1), "dead-lettered at once");
    }
    let mut bodies: Vec<serde_json::Value> = dead
        .iter()
        .map(|l| serde_json::from_str(&l.body).expect("json body"))
        .collect();
    bodies.sort_by_key(|b| b["content"].as_str().unwrap_or_default().to_string());
    let contents: Vec<&str> = bodies
        .iter()
        .map(|b| b["content"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        contents,
        vec!["a1", "a2", "a3", "edited after the ban"],
        "the original commands are kept"
    );
    assert!(
        bodies.iter().all(|b| b["chatId"] == json!(chat)),
        "{bodies:?}"
    );
    let metrics = reqwest::get(format!("{}/metrics", app.metrics))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    let counted = metrics
        .lines()
        .filter(|l| l.starts_with("courier_worker_dead_letters_total{reason=\"banned\"}"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    assert!(counted >= 4.0, "counted {counted}:\n{metrics}");

    // Lifted, a replay persists them at the end of the chat (each once).
    sqlx::query("UPDATE users SET banned_at = NULL, ban_reason = NULL WHERE id = $1")
        .bind(a.id)
        .execute(&app.pool)
        .await
        .expect("unban");
    let replayed = courier::mq::dlq::replay(&app.config, 10, None)
        .await
        .expect("replay");
    assert_eq!(replayed.replayed, 4);
    let worker = Worker::start(&app.config).await;
    app.wait_messages(chat, 8).await;
    poll::until("the replayed edit", || async {
        let content: String = sqlx::query_scalar("SELECT content FROM messages WHERE id = $1")
            .bind(first)
            .fetch_one(&app.pool)
            .await
            .expect("first");
        (content == "edited after the ban").then_some(())
    })
    .await;
    worker.stop().await;
    assert_eq!(app.message_count(chat).await, 8);
}
