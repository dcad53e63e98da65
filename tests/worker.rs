//! The worker against real RabbitMQ, PostgreSQL and Redis: idempotent persistence,
//! gap-free sequences, re-notification on redelivery, DLQ and retries.

mod common;

use std::time::Duration;

use common::{TestApp, probe::Probe, spawn_app};
use courier::{
    domain::{events::Event, message::SendCommand},
    mq::{self, publish},
};
use futures::StreamExt;
use lapin::{
    options::{BasicAckOptions, BasicConsumeOptions},
    types::FieldTable,
};
use uuid::Uuid;

fn command(chat: Uuid, sender: Uuid, content: &str) -> SendCommand {
    common::send_command(chat, sender, content)
}

/// Publishes raw bytes to a chat's partition, as the API would.
async fn publish_raw(app: &TestApp, chat: Uuid, body: &[u8]) {
    publish_with_id(app, chat, body, Uuid::new_v4()).await;
}

async fn publish_with_id(app: &TestApp, chat: Uuid, body: &[u8], message_id: Uuid) {
    app.publish(chat, body, message_id).await;
}

async fn publish_cmd(app: &TestApp, cmd: &SendCommand) {
    publish_with_id(
        app,
        cmd.chat_id,
        &serde_json::to_vec(cmd).unwrap(),
        cmd.broker_message_id,
    )
    .await;
}

/// Takes the dead-lettered messages: (reason header, attempts header, body).
async fn drain_dlq(app: &TestApp, expect: usize) -> Vec<(String, u32, Vec<u8>)> {
    let conn = app.amqp().await;
    let ch = conn.create_channel().await.unwrap();
    let mut consumer = ch
        .basic_consume(
            app.topology().dlq.as_str().into(),
            "dlq-probe".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    while out.len() < expect {
        let d = tokio::time::timeout(Duration::from_secs(20), consumer.next())
            .await
            .expect("dead letter in time")
            .expect("stream")
            .unwrap();
        let headers = d.properties.headers().clone();
        out.push((
            mq::header_str(headers.as_ref(), mq::HEADER_REASON).unwrap_or_default(),
            mq::header_u32(headers.as_ref(), mq::HEADER_ATTEMPTS).unwrap_or_default(),
            d.data.clone(),
        ));
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    conn.close(200, "bye".into()).await.unwrap();
    out
}

#[tokio::test]
async fn the_same_delivery_twice_is_one_row_and_is_notified_twice() {
    let app = spawn_app().await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    // A fake gateway holding one socket of b: we listen on its channel.
    let mut probe = Probe::new(&app, &[&b]).await;

    let cmd = command(chat, a.id, "twice");
    publish_cmd(&app, &cmd).await;
    publish_cmd(&app, &cmd).await; // a redelivery / duplicate publish
    // The chat's creation (`chat.updated`) may come through too.
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(probe.next_where(Event::is_new_message).await);
    }
    let message = |i: usize| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(seen[i].1.data.get()).unwrap()["message"].clone()
    };
    assert_eq!(
        message(0),
        message(1),
        "the stored row is re-notified, not a new one"
    );
    assert_eq!(message(0)["sequence"], 1);
    assert_eq!(
        (seen[0].0, seen[1].0),
        (b.id, b.id),
        "only b has a socket on this gateway"
    );
    assert!(
        seen[0].1.offset < seen[1].1.offset,
        "each notification is a new entry of b's stream"
    );
    assert_eq!(app.sequences(chat).await, vec![1]);

    publish_cmd(&app, &command(chat, b.id, "next")).await;
    app.wait_messages(chat, 2).await;
    assert_eq!(app.sequences(chat).await, vec![1, 2]);
}

#[tokio::test]
async fn sequences_have_no_gaps_across_chats_and_batches() {
    let app = spawn_app().await;
    let users = [
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
    ];
    let chats = [
        app.direct_chat(&users[0], &users[1]).await,
        app.direct_chat(&users[1], &users[2]).await,
        app.direct_chat(&users[0], &users[2]).await,
    ];
    let conn = app.amqp().await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let topo = app.topology();
    let mut pending = Vec::new();
    let mut cmds = Vec::new();
    for i in 0..300 {
        let chat = chats[i % 3];
        let sender = if i % 3 == 1 { &users[1] } else { &users[0] };
        let sender = if i % 3 == 1 && i % 2 == 0 {
            &users[2]
        } else {
            sender
        };
        cmds.push(command(chat, sender.id, &format!("m{i}")));
    }
    // Every 10th command is published twice (client retries).
    for (i, c) in cmds.iter().enumerate() {
        let copies = if i % 10 == 0 { 2 } else { 1 };
        for _ in 0..copies {
            let props =
                publish::json_properties(&c.broker_message_id.to_string(), FieldTable::default());
            let body = serde_json::to_vec(c).unwrap();
            pending.push(
                ch.basic_publish(
                    topo.exchange.as_str().into(),
                    topo.route(c.chat_id).as_str().into(),
                    Default::default(),
                    &body,
                    props,
                )
                .await
                .unwrap(),
            );
        }
    }
    for p in pending {
        assert!(p.await.unwrap().is_ack());
    }
    // A marker per chat, published after every copy: once it is stored, a duplicate
    // stored twice would be there too.
    for (chat, sender) in chats.iter().zip(&users) {
        publish_cmd(&app, &command(*chat, sender.id, "marker")).await;
    }
    for chat in chats {
        app.wait_marker(chat, "marker").await;
    }
    for chat in chats {
        assert_eq!(app.sequences(chat).await, (1..=101).collect::<Vec<_>>());
        // Content order within a chat follows publish order.
        let contents: Vec<String> =
            sqlx::query_scalar("SELECT content FROM messages WHERE chat_id = $1 ORDER BY sequence")
                .bind(chat)
                .fetch_all(&app.pool)
                .await
                .unwrap();
        let expected: Vec<String> = cmds
            .iter()
            .filter(|c| c.chat_id == chat)
            .map(|c| c.content.clone())
            .chain(["marker".to_string()])
            .collect();
        assert_eq!(contents, expected);
    }
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test]
async fn permanent_failures_go_to_the_dlq_at_once_and_do_not_block() {
    let app = spawn_app().await;
    let (a, b, outsider) = (
        app.register("a").await,
        app.register("b").await,
        app.register("x").await,
    );
    let chat = app.direct_chat(&a, &b).await;
    publish_raw(&app, chat, b"{this is not json").await;
    publish_cmd(&app, &command(chat, outsider.id, "intruder")).await;
    publish_cmd(&app, &command(Uuid::new_v4(), a.id, "nowhere")).await;
    publish_cmd(&app, &command(chat, a.id, "behind the poison")).await;
    app.wait_messages(chat, 1).await;
    let mut dead = drain_dlq(&app, 3).await;
    dead.sort();
    let reasons: Vec<(&str, u32)> = dead.iter().map(|(r, n, _)| (r.as_str(), *n)).collect();
    assert_eq!(
        reasons,
        vec![("chat_gone", 1), ("malformed", 1), ("not_participant", 1)]
    );
    assert!(
        dead.iter().any(|(_, _, body)| body == b"{this is not json"),
        "the original body is kept"
    );
    assert_eq!(app.sequences(chat).await, vec![1]);
}

#[tokio::test]
async fn message_specific_failures_are_retried_then_dead_lettered() {
    let app = spawn_app().await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    // Fault injection in this test's own database: one content always fails to insert.
    sqlx::query("ALTER TABLE messages ADD CONSTRAINT no_boom CHECK (content <> 'boom')")
        .execute(&app.pool)
        .await
        .unwrap();
    publish_cmd(&app, &command(chat, a.id, "before")).await;
    publish_cmd(&app, &command(chat, a.id, "boom")).await;
    publish_cmd(&app, &command(chat, a.id, "after")).await;
    app.wait_messages(chat, 2).await;
    // RABBITMQ_CHAT_MAX_RETRIES=2 in tests: attempts 1 and 2 are retried (1 s, 5 s), the 3rd dead-letters.
    let dead = drain_dlq(&app, 1).await;
    assert_eq!((dead[0].0.as_str(), dead[0].1), ("retries_exhausted", 3));
    let cmd: SendCommand = serde_json::from_slice(&dead[0].2).unwrap();
    assert_eq!(cmd.content, "boom");
    assert_eq!(
        app.sequences(chat).await,
        vec![1, 2],
        "no gap from the failed message"
    );

    // Once the cause is gone, a retried message succeeds: the cause goes once the
    // first attempt failed, seen as the message waiting in a retry queue.
    publish_cmd(&app, &command(chat, a.id, "boom")).await;
    common::poll::until("the failed attempt in a retry queue", || async {
        (app.retries_waiting().await > 0).then_some(())
    })
    .await;
    sqlx::query("ALTER TABLE messages DROP CONSTRAINT no_boom")
        .execute(&app.pool)
        .await
        .unwrap();
    app.wait_messages(chat, 3).await;
    assert_eq!(app.sequences(chat).await, vec![1, 2, 3]);
}

#[tokio::test]
async fn membership_changes_reach_the_routing_at_once() {
    let app = spawn_app().await;
    let (a, b, c) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
    );
    let (_, chat) = app
        .call(
            "POST",
            "/chats",
            Some(&a.token),
            Some(
                serde_json::json!({"type": "group", "title": "g", "participantIds": [b.id, c.id]}),
            ),
        )
        .await;
    let chat: Uuid = chat["id"].as_str().unwrap().parse().unwrap();
    let mut probe = Probe::new(&app, &[&b, &c]).await;
    // The recipients of the next message event (chat events are skipped).
    let mut next_users = async || loop {
        let mut users: Vec<Uuid> = probe
            .next_push()
            .await
            .into_iter()
            .filter(|(_, e)| e.is_message())
            .map(|(u, _)| u)
            .collect();
        users.sort();
        if !users.is_empty() {
            return users;
        }
    };

    assert_eq!(app.send(&a, chat, "to both", Uuid::new_v4()).await.0, 202);
    let mut both = vec![b.id, c.id];
    both.sort();
    assert_eq!(next_users().await, both, "the membership cache is warm now");

    let (s, _) = app
        .call(
            "DELETE",
            &format!("/chats/{chat}/participants/{}", c.id),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(app.send(&a, chat, "to b only", Uuid::new_v4()).await.0, 202);
    assert_eq!(
        next_users().await,
        vec![b.id],
        "a removed member is not notified"
    );
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed_idempotently() {
    let app = spawn_app().await;
    let (a, b, c) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
    );
    let (_, chat) = app
        .call(
            "POST",
            "/chats",
            Some(&a.token),
            Some(serde_json::json!({"type": "group", "title": "g", "participantIds": [b.id]})),
        )
        .await;
    let chat: Uuid = chat["id"].as_str().unwrap().parse().unwrap();
    // c is not (yet) a participant: its message is dead-lettered at once.
    let cmd = command(chat, c.id, "too early");
    publish_cmd(&app, &cmd).await;
    publish_raw(&app, chat, b"garbage").await;
    let dlq = app.topology().dlq;
    for _ in 0..400 {
        if app.queue_depth(&dlq).await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = courier::mq::dlq::list(&app.config, 10).await.unwrap();
    let mut reasons: Vec<String> = listed.iter().filter_map(|d| d.reason.clone()).collect();
    reasons.sort();
    assert_eq!(reasons, vec!["malformed", "not_participant"]);
    assert_eq!(
        app.queue_depth(&dlq).await,
        2,
        "listing leaves them in place"
    );

    // Fix the cause, then replay only that message.
    let (s, _) = app
        .call(
            "POST",
            &format!("/chats/{chat}/participants"),
            Some(&a.token),
            Some(serde_json::json!({"userIds": [c.id]})),
        )
        .await;
    assert_eq!(s, 200);
    let id = cmd.broker_message_id.to_string();
    let r = courier::mq::dlq::replay(&app.config, 10, Some(&id))
        .await
        .unwrap();
    assert_eq!((r.replayed, r.kept), (1, 1));
    app.wait_messages(chat, 1).await;

    // Replaying the same message again (e.g. a second copy) stores nothing new.
    publish_cmd(&app, &cmd).await;
    publish_cmd(&app, &command(chat, a.id, "marker")).await;
    app.wait_messages(chat, 2).await;
    assert_eq!(app.sequences(chat).await, vec![1, 2]);
    assert_eq!(app.message_count(chat).await, 2);
    assert_eq!(
        courier::mq::dlq::depth(&app.config).await.unwrap(),
        1,
        "the malformed one stays"
    );
}
