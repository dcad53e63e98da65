//! Per-chat order under retries, against real services: a message that fails for a
//! reason of its own is retried later, and the later messages of its chat wait behind
//! it (parked in the same retry queue, without spending their attempts), so the chat's
//! sequence follows send order; another chat of the same partition is not held up.

mod common;

use common::{TestApp, TestUser, spawn_app};
use courier::domain::{message::SendCommand, partition::partition_of};
use uuid::Uuid;

fn command(chat: Uuid, sender: Uuid, content: &str) -> SendCommand {
    common::send_command(chat, sender, content)
}

async fn publish(app: &TestApp, cmd: &SendCommand) {
    let body = serde_json::to_vec(cmd).unwrap();
    app.publish(cmd.chat_id, &body, cmd.broker_message_id).await;
}

async fn contents(app: &TestApp, chat: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT content FROM messages WHERE chat_id = $1 ORDER BY sequence")
        .bind(chat)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// A direct chat of `a` with a new user, in the same partition as `chat`.
async fn neighbour(app: &TestApp, a: &TestUser, chat: Uuid) -> Uuid {
    let partitions = app.topology().partitions;
    loop {
        let other = app.register("n").await;
        let c = app.direct_chat(a, &other).await;
        if partition_of(c, partitions) == partition_of(chat, partitions) {
            return c;
        }
    }
}

#[tokio::test]
async fn a_retried_message_holds_back_its_own_chat_only() {
    let app = spawn_app().await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    let other = neighbour(&app, &a, chat).await;
    // Fault injection in this test's own database: the first two inserts of "flaky"
    // fail (a sequence, unlike a table, is not rolled back with the failed insert).
    for ddl in [
        "CREATE SEQUENCE flaky_tries",
        "CREATE FUNCTION flaky() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.content = 'flaky' AND nextval('flaky_tries') <= 2 THEN
                 RAISE EXCEPTION 'flaky insert';
             END IF;
             RETURN NEW;
         END $$",
        "CREATE TRIGGER flaky BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION flaky()",
    ] {
        sqlx::query(ddl).execute(&app.pool).await.unwrap();
    }
    for content in ["a", "flaky", "b", "c"] {
        publish(&app, &command(chat, a.id, content)).await;
    }
    publish(&app, &command(other, a.id, "elsewhere")).await;
    app.wait_messages(other, 1).await;
    assert_eq!(
        contents(&app, chat).await,
        vec!["a"],
        "b and c wait behind the retried message"
    );
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_holds WHERE chat_id = $1")
        .bind(chat)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        held, 1,
        "the hold is recorded for a worker taking over the partition"
    );

    app.wait_messages(chat, 4).await;
    assert_eq!(contents(&app, chat).await, vec!["a", "flaky", "b", "c"]);
    assert_eq!(app.sequences(chat).await, vec![1, 2, 3, 4]);
    let holds: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_holds")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(holds, 0, "released once the head is persisted");
    assert_eq!(
        app.queue_depth(&app.topology().dlq).await,
        0,
        "nothing dead-lettered"
    );
}
