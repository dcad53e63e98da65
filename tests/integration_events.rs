//! Integration events against real services: a consumer bound to the topic exchange
//! gets every committed change (sends, edits, reactions, pins, deletes, chat details,
//! members) under the contract's routing keys, each with a stable id, so a redelivered
//! command is recognisable as the same event.

mod common;

use std::{collections::HashMap, time::Duration};

use common::{TestApp, spawn_app};
use courier::domain::lifecycle::{LifecycleCommand, Op};
use futures::StreamExt;
use lapin::{Consumer, options::BasicAckOptions};
use serde_json::{Value, json};
use uuid::Uuid;

/// A queue bound to every routing key of the app's integration exchange.
async fn subscribe(app: &TestApp) -> (lapin::Connection, Consumer) {
    app.integration_events("#", false).await
}

/// Every event received, as (routing key, AMQP message id, body), in arrival order.
struct Log {
    consumer: Consumer,
    seen: Vec<(String, String, Value)>,
}

impl Log {
    /// Reads until `pred` holds for some received event (10 s at most).
    async fn until(&mut self, what: &str, pred: impl Fn(&str, &Value) -> bool) -> Value {
        loop {
            if let Some((_, _, v)) = self.seen.iter().find(|(k, _, v)| pred(k, v)) {
                return v.clone();
            }
            self.read_one(what).await;
        }
    }

    /// Reads one more event.
    async fn read_one(&mut self, what: &str) {
        {
            let d = tokio::time::timeout(Duration::from_secs(10), self.consumer.next())
                .await
                .unwrap_or_else(|_| panic!("no {what} within 10 s; got {:?}", self.keys()))
                .expect("consumer open")
                .expect("delivery");
            d.acker.ack(BasicAckOptions::default()).await.unwrap();
            let id = d
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default();
            let body: Value = serde_json::from_slice(&d.data).unwrap();
            assert_eq!(
                body["id"],
                json!(id),
                "the body's id is the AMQP message id"
            );
            assert_eq!(body["type"], json!(d.routing_key.as_str()));
            self.seen.push((d.routing_key.to_string(), id, body));
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.seen.iter().map(|(k, _, _)| k.as_str()).collect()
    }
}

#[tokio::test]
async fn every_committed_change_is_published_with_a_stable_id() {
    let app = spawn_app().await;
    let (_conn, consumer) = subscribe(&app).await;
    let mut log = Log {
        consumer,
        seen: Vec::new(),
    };
    let (a, b, c) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
    );
    let chat = app.group_chat(&a, &[&b]).await;
    let on = |v: &Value| v["chatId"] == json!(chat);
    log.until("chat.updated", |k, v| {
        k == "chat.updated" && on(v) && v["data"]["chat"]["title"] == "team"
    })
    .await;
    for u in [&a, &b] {
        log.until("member.added", |k, v| {
            k == "member.added" && v["data"]["userId"] == json!(u.id)
        })
        .await;
    }

    let cid = Uuid::new_v4();
    assert_eq!(app.send(&a, chat, "hello", cid).await.0, 202);
    let created = log
        .until("message.created", |k, v| k == "message.created" && on(v))
        .await;
    let message = created["data"]["message"].clone();
    assert_eq!(message["clientMessageId"], json!(cid));
    let mid = message["id"].as_str().unwrap().to_string();
    let path = format!("/chats/{chat}/messages/{mid}");

    let edit = app
        .call(
            "PATCH",
            &path,
            Some(&a.token),
            Some(json!({ "content": "hello!" })),
        )
        .await;
    assert_eq!(edit.0, 202, "{}", edit.1);
    let updated = log
        .until("message.updated", |k, _| k == "message.updated")
        .await;
    assert_eq!(updated["data"]["message"]["content"], "hello!");
    let react = app
        .call(
            "PUT",
            &format!("{path}/reactions/%F0%9F%91%8D"),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(react.0, 204, "{}", react.1);
    let reaction = log
        .until("reaction.updated", |k, _| k == "reaction.updated")
        .await;
    assert_eq!(reaction["data"]["emoji"], "👍");
    assert_eq!(
        (
            reaction["data"]["added"].clone(),
            reaction["data"]["count"].clone()
        ),
        (json!(true), json!(1))
    );
    let pin = app
        .call(
            "PUT",
            &format!("/chats/{chat}/pins/{mid}"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(pin.0, 204, "{}", pin.1);
    log.until("pinned", |k, v| {
        k == "chat.updated" && v["data"]["change"] == "pinned"
    })
    .await;
    assert_eq!(app.call("DELETE", &path, Some(&a.token), None).await.0, 202);
    let deleted = log
        .until("message.deleted", |k, _| k == "message.deleted")
        .await;
    assert_eq!(deleted["data"]["messageId"], json!(mid));

    let r = app
        .call(
            "PATCH",
            &format!("/chats/{chat}"),
            Some(&a.token),
            Some(json!({ "title": "renamed" })),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    log.until("renamed", |k, v| {
        k == "chat.updated" && v["data"]["chat"]["title"] == "renamed"
    })
    .await;
    let r = app
        .call(
            "POST",
            &format!("/chats/{chat}/participants"),
            Some(&a.token),
            Some(json!({ "userIds": [c.id] })),
        )
        .await;
    assert!(r.0 == 200 || r.0 == 201, "{}", r.1);
    log.until("member.added c", |k, v| {
        k == "member.added" && v["data"]["userId"] == json!(c.id)
    })
    .await;
    let r = app
        .call(
            "DELETE",
            &format!("/chats/{chat}/participants/{}", c.id),
            Some(&a.token),
            None,
        )
        .await;
    assert!(r.0 == 204 || r.0 == 200, "{}", r.1);
    let removed = log
        .until("member.removed", |k, _| k == "member.removed")
        .await;
    assert_eq!(removed["data"]["userId"], json!(c.id));

    // Versions only grow along the chat's lifecycle events.
    let versions: Vec<i64> = log
        .seen
        .iter()
        .filter_map(|(_, _, v)| v["version"].as_i64())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] <= w[1]), "{versions:?}");
    // No event twice so far: ids are distinct.
    let mut ids: Vec<&str> = log.seen.iter().map(|(_, id, _)| id.as_str()).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "{:?}", log.keys());

    // Redeliveries: the same send and the same lifecycle command again re-publish the
    // same ids, which a consumer recognises.
    let send = common::send_command(chat, b.id, "twice");
    let body = serde_json::to_vec(&send).unwrap();
    app.publish(chat, &body, send.broker_message_id).await;
    app.publish(chat, &body, send.broker_message_id).await;
    let react = LifecycleCommand {
        command_id: Uuid::now_v7(),
        chat_id: chat,
        actor_id: a.id,
        op: Op::React {
            message_id: created_id(&app, chat, "twice").await,
            emoji: "🎉".into(),
            add: true,
        },
    };
    let body = serde_json::to_vec(&react).unwrap();
    app.publish(chat, &body, react.command_id).await;
    app.publish(chat, &body, react.command_id).await;
    let count = |log: &Log, key: &str| -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for (k, id, _) in &log.seen {
            if k == key {
                *m.entry(id.clone()).or_default() += 1;
            }
        }
        m
    };
    log.until("the redelivered send", |k, v| {
        k == "message.created" && v["data"]["message"]["content"] == "twice"
    })
    .await;
    loop {
        let sends = count(&log, "message.created");
        let reactions = count(&log, "reaction.updated");
        if sends.values().any(|n| *n == 2) && reactions.values().any(|n| *n == 2) {
            assert_eq!(sends.len(), 2, "two distinct sends: {sends:?}");
            assert_eq!(reactions.len(), 2, "two distinct reactions: {reactions:?}");
            break;
        }
        log.read_one("a redelivered event").await;
    }
}

async fn created_id(app: &TestApp, chat: Uuid, content: &str) -> Uuid {
    for _ in 0..200 {
        let id: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM messages WHERE chat_id = $1 AND content = $2")
                .bind(chat)
                .bind(content)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        if let Some(id) = id {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{content} never persisted");
}
