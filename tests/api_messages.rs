//! Sending, history and the error paths of `POST /chats/:chatId/messages`.

mod common;

use std::time::Duration;

use common::{Mode, spawn_app, spawn_unready, spawn_with, test_config};
use futures::StreamExt;
use lapin::{
    options::{BasicAckOptions, BasicConsumeOptions},
    types::FieldTable,
};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn send_is_accepted_persisted_and_paged() {
    let app = spawn_app().await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    let client_id = Uuid::new_v4();
    let (s, body) = app.send(&a, chat, "  hello  ", client_id).await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["clientMessageId"], json!(client_id));
    assert!(
        body["brokerMessageId"]
            .as_str()
            .and_then(|s| s.parse::<Uuid>().ok())
            .is_some()
    );
    for i in 2..=5 {
        assert_eq!(
            app.send(&b, chat, &format!("m{i}"), Uuid::new_v4()).await.0,
            202
        );
    }
    app.wait_messages(chat, 5).await;
    assert_eq!(app.sequences(chat).await, vec![1, 2, 3, 4, 5]);

    let page = |q: &str| format!("/chats/{chat}/messages{q}");
    let (s, all) = app.call("GET", &page(""), Some(&b.token), None).await;
    assert_eq!(s, 200);
    let m0 = &all["messages"][0];
    assert_eq!(m0["content"], "hello", "stored trimmed");
    assert_eq!(m0["clientMessageId"], json!(client_id));
    assert_eq!(
        (
            m0["messageType"].as_str(),
            m0["status"].as_str(),
            m0["sequence"].as_i64()
        ),
        (Some("text"), Some("sent"), Some(1))
    );
    let sent_at = m0["sentAt"].as_str().unwrap();
    assert!(
        sent_at.len() == 24 && sent_at.ends_with('Z'),
        "RFC 3339 with milliseconds: {sent_at}"
    );
    assert_eq!(all["hasMore"], false);

    let seqs = |v: &serde_json::Value| {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["sequence"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let (_, newest) = app
        .call("GET", &page("?limit=2"), Some(&a.token), None)
        .await;
    assert_eq!(
        (seqs(&newest), &newest["hasMore"]),
        (vec![4, 5], &json!(true))
    );
    let (_, before) = app
        .call("GET", &page("?limit=2&before=4"), Some(&a.token), None)
        .await;
    assert_eq!(
        (seqs(&before), &before["hasMore"]),
        (vec![2, 3], &json!(true))
    );
    let (_, first) = app
        .call("GET", &page("?limit=2&before=2"), Some(&a.token), None)
        .await;
    assert_eq!((seqs(&first), &first["hasMore"]), (vec![1], &json!(false)));
    let (_, after) = app
        .call("GET", &page("?after=3"), Some(&a.token), None)
        .await;
    assert_eq!(
        (seqs(&after), &after["hasMore"]),
        (vec![4, 5], &json!(false))
    );
    for bad in [
        "?limit=0",
        "?limit=101",
        "?before=1&after=1",
        "?limit=abc",
        "?after=-1",
    ] {
        let (s, err) = app.call("GET", &page(bad), Some(&a.token), None).await;
        assert_eq!(
            (s, err["code"].as_str()),
            (400, Some("validation_failed")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn client_retries_are_persisted_once() {
    let app = spawn_app().await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    let id = Uuid::new_v4();
    for _ in 0..3 {
        assert_eq!(app.send(&a, chat, "once", id).await.0, 202);
    }
    // The marker: sent after the retries in the same chat, so handled after them.
    assert_eq!(app.send(&a, chat, "after", Uuid::new_v4()).await.0, 202);
    app.wait_marker(chat, "after").await;
    assert_eq!(app.sequences(chat).await, vec![1, 2]);
    // The same clientMessageId from the other participant is a different message.
    assert_eq!(app.send(&b, chat, "mine", id).await.0, 202);
    app.wait_messages(chat, 3).await;
}

#[tokio::test]
async fn bad_sends_get_contract_errors_and_persist_nothing() {
    let app = spawn_app().await;
    let (a, b, outsider) = (
        app.register("a").await,
        app.register("b").await,
        app.register("x").await,
    );
    let chat = app.direct_chat(&a, &b).await;
    // Counted before the request is answered: the chat's announcement is in already.
    let published = app.chat_publishes().await;
    let path = format!("/chats/{chat}/messages");
    let cid = Uuid::new_v4();
    let cases = [
        (
            json!({"content": "", "clientMessageId": cid}),
            400,
            "validation_failed",
        ),
        (
            json!({"content": "   \n ", "clientMessageId": cid}),
            400,
            "validation_failed",
        ),
        (
            json!({"content": "x".repeat(4001), "clientMessageId": cid}),
            400,
            "validation_failed",
        ),
        (
            json!({"content": "a\u{0}b", "clientMessageId": cid}),
            400,
            "validation_failed",
        ),
        (
            json!({"content": 5, "clientMessageId": cid}),
            400,
            "validation_failed",
        ),
        (
            json!({"content": "hi", "clientMessageId": "nope"}),
            400,
            "validation_failed",
        ),
        (json!({"content": "hi"}), 400, "validation_failed"),
    ];
    for (body, status, code) in cases {
        let (s, err) = app
            .call("POST", &path, Some(&a.token), Some(body.clone()))
            .await;
        assert_eq!((s, err["code"].as_str()), (status, Some(code)), "{body}");
    }
    let (s, err) = app
        .raw(
            "POST",
            &path,
            Some(&a.token),
            "application/json",
            b"{\"content\": ".to_vec(),
        )
        .await;
    assert_eq!((s, err["code"].as_str()), (400, Some("invalid_json")));
    let huge = serde_json::to_vec(&json!({"content": "x".repeat(70_000), "clientMessageId": cid}))
        .unwrap();
    let (s, err) = app
        .raw("POST", &path, Some(&a.token), "application/json", huge)
        .await;
    assert_eq!((s, err["code"].as_str()), (413, Some("payload_too_large")));
    let ok_body = Some(json!({"content": "hi", "clientMessageId": cid}));
    // A chat that does not exist, on the partition of `chat`: the marker below covers it.
    let topo = app.topology();
    let nowhere = std::iter::repeat_with(Uuid::new_v4)
        .find(|c| topo.route(*c) == topo.route(chat))
        .unwrap();
    let (s, err) = app
        .call(
            "POST",
            &format!("/chats/{nowhere}/messages"),
            Some(&a.token),
            ok_body.clone(),
        )
        .await;
    assert_eq!((s, err["code"].as_str()), (404, Some("not_found")));
    let (s, err) = app
        .call("POST", &path, Some(&outsider.token), ok_body.clone())
        .await;
    assert_eq!((s, err["code"].as_str()), (403, Some("forbidden")));
    let (s, err) = app.call("POST", &path, None, ok_body.clone()).await;
    assert_eq!((s, err["code"].as_str()), (401, Some("unauthorized")));
    let (s, _) = app.call("GET", &path, Some(&outsider.token), None).await;
    assert_eq!(s, 403);

    assert_eq!(
        app.chat_publishes().await,
        published,
        "nothing half-sent reached the broker"
    );
    // A valid send after them, on the same partition: once it is stored, anything
    // published before it would have been handled (stored or dead-lettered) too.
    assert_eq!(app.send(&a, chat, "marker", Uuid::new_v4()).await.0, 202);
    assert_eq!(app.chat_publishes().await, published + 1.0, "the marker is");
    app.wait_marker(chat, "marker").await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(total, 1, "only the marker is stored");
}

#[tokio::test]
async fn sends_are_routed_to_the_chat_partition_as_persistent_json() {
    let config = test_config(&[("RABBITMQ_CHAT_PARTITION_COUNT", "4")]);
    let app = spawn_with(Mode::ApiOnly, config).await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    let (_, accepted) = app.send(&a, chat, "routed", Uuid::new_v4()).await;
    let topo = app.topology();
    let target = topo.route(chat);
    // The chat's creation is announced through its partition too, ahead of the send.
    for n in 0..4 {
        let q = topo.partition_queue(n);
        assert_eq!(app.queue_depth(&q).await, 2 * u32::from(q == target), "{q}");
    }
    let conn = app.amqp().await;
    let ch = conn.create_channel().await.unwrap();
    // Quorum queues with single active consumer refuse basic.get: consume one.
    let mut consumer = ch
        .basic_consume(
            target.as_str().into(),
            "probe".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(5), consumer.next())
            .await
            .unwrap()
            .expect("a message")
            .unwrap()
    };
    let created = next().await;
    let body: serde_json::Value = serde_json::from_slice(&created.data).unwrap();
    assert_eq!(
        (body["kind"].as_str(), &body["chatId"]),
        (Some("chatChanged"), &json!(chat))
    );
    let got = next().await;
    assert_eq!(got.properties.delivery_mode(), &Some(2));
    assert_eq!(
        got.properties.content_type().as_ref().map(|s| s.as_str()),
        Some("application/json")
    );
    let mid = got
        .properties
        .message_id()
        .as_ref()
        .map(|s| s.as_str().to_string());
    assert_eq!(mid.as_deref(), accepted["brokerMessageId"].as_str());
    let body: serde_json::Value = serde_json::from_slice(&got.data).unwrap();
    assert_eq!(body["chatId"], json!(chat));
    assert_eq!(body["content"], "routed");
    got.ack(BasicAckOptions::default()).await.unwrap();
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test]
async fn broker_down_answers_503_and_persists_nothing() {
    // A port where nothing listens: the API's broker link never comes up.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = test_config(&[(
        "RABBITMQ_URI",
        &format!("amqp://guest:guest@127.0.0.1:{dead}/%2f"),
    )]);
    let app = spawn_unready(Mode::ApiOnly, config).await;
    // The broker link never comes up; Redis is named first only until the near cache
    // has subscribed (start-up), then RabbitMQ stays the cause.
    common::poll::until("readyz to name rabbitmq", || async {
        let (s, err) = app.call("GET", "/readyz", None, None).await;
        assert_eq!((s, err["code"].as_str()), (503, Some("unavailable")));
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("rabbitmq"))
            .then_some(())
    })
    .await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    let resp = app
        .http
        .post(format!("{}/chats/{chat}/messages", app.addr))
        .bearer_auth(&a.token)
        .json(&json!({"content": "lost?", "clientMessageId": Uuid::new_v4()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "unavailable");
    assert_eq!(app.message_count(chat).await, 0);
}

/// A 503 after the confirm timeout does not mean "not sent": RabbitMQ may take the
/// command after the API stopped waiting. Forced here through the send path's own
/// publisher (`service::commands::Commands`, what `POST .../messages` calls) with a
/// zero confirm timeout, which always gives up before the confirm: the command answered
/// `Unavailable` (503) is persisted, and the client's retry with the same
/// clientMessageId over HTTP (the contract) is answered 202 and stays one message.
#[tokio::test]
async fn a_late_confirm_503_may_be_persisted_and_its_retry_stays_one_message() {
    use courier::{
        mq::{Link, Topology},
        service::{ServiceError, commands::Commands},
    };
    let app = spawn_app().await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    let topology = Topology::new(&app.config.rabbitmq);
    let stop = tokio_util::sync::CancellationToken::new();
    let (mut link, task) = Link::spawn(
        app.config.rabbitmq.clone(),
        topology.clone(),
        "late-confirm",
        stop.clone(),
    );
    assert!(link.wait_up(Duration::from_secs(10)).await);
    let impatient = Commands {
        link,
        topology: std::sync::Arc::new(topology),
        confirm_timeout: Duration::ZERO,
    };
    // Zero still lets a confirm through now and then: tokio's timer fires on its next
    // 1 ms tick, and a local broker can ack sooner. Such a send is a plain success
    // (persisted once); the next one gets the 503 this test is about.
    let mut sent: i64 = 0;
    let cmd = loop {
        let cmd = common::send_command(chat, a.id, "late");
        let answer = impatient
            .send(chat, cmd.broker_message_id, &cmd, "late-confirm")
            .await;
        sent += 1;
        match answer {
            Err(ServiceError::Unavailable("rabbitmq")) => break cmd,
            Ok(()) if sent < 20 => continue,
            other => panic!("attempt {sent}: {other:?}"),
        }
    };
    // Answered 503, persisted all the same.
    app.wait_messages(chat, sent).await;
    let retry = app.send(&a, chat, "late", cmd.client_message_id).await;
    assert_eq!(retry.0, 202, "{:?}", retry);
    // A later send of the chat is persisted after the retry (one partition, in order):
    // once it is there, the retry was handled.
    let marker = app.send(&a, chat, "marker", Uuid::new_v4()).await;
    assert_eq!(marker.0, 202, "{:?}", marker);
    app.wait_messages(chat, sent + 1).await;
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messages WHERE chat_id = $1 AND client_message_id = $2",
    )
    .bind(chat)
    .bind(cmd.client_message_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(
        app.sequences(chat).await,
        (1..=sent + 1).collect::<Vec<_>>()
    );
    stop.cancel();
    task.await.unwrap();
}
