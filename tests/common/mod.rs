//! Integration-test harness: each `spawn_app` gets its own PostgreSQL database,
//! Redis key prefix and RabbitMQ names, runs Courier in-process on port 0 against
//! the real services, and dropping the `TestApp` (at the end of the test, or while a
//! failing test unwinds) stops it and removes everything it made.
#![allow(dead_code)]

pub mod barrier;
mod cleanup;
#[allow(dead_code)] // not every test binary waits this way
pub mod poll;
pub mod ports;
pub mod probe;
#[allow(dead_code)] // not every test binary reads history
pub mod reads;

use std::{collections::HashMap, time::Duration};

use courier::{cache::Cache, config::Config, mq::Topology, server::Service};
use lapin::{
    Connection, ConnectionProperties, Consumer,
    options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const PASSWORD: &str = "correct-horse-1";

/// Which roles the in-process app runs.
#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    /// API + worker + gateway in one service.
    AllInOne,
    /// Only the API (messages stay in the partition queues).
    ApiOnly,
}

pub struct TestApp {
    pub addr: String,
    /// Base URL of the `/metrics` listener (`METRICS_PORT`).
    pub metrics: String,
    pub config: Config,
    pub pool: PgPool,
    pub cache: Cache,
    pub http: reqwest::Client,
    stop: CancellationToken,
    /// Declared last: dropped after the app was told to stop and the pool released.
    _cleanup: cleanup::Cleanup,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The fields drop next: the pool, then `Cleanup` removes the resources.
        self.stop.cancel();
    }
}

pub struct TestUser {
    pub id: Uuid,
    pub username: String,
    pub token: String,
    pub refresh: String,
}

/// A configuration isolated from every other test.
pub fn test_config(overrides: &[(&str, &str)]) -> Config {
    let id = Uuid::new_v4().simple().to_string()[..12].to_string();
    let mut vars: HashMap<String, String> = [
        (
            "DATABASE_URL",
            format!("postgres://postgres:postgres@127.0.0.1:5432/courier_test_{id}"),
        ),
        ("DATABASE_MAX_CONNECTIONS", "5".into()),
        ("REDIS_KEY_PREFIX", format!("courier_test_{id}:")),
        ("RABBITMQ_CHAT_EXCHANGE", format!("t{id}.events")),
        ("RABBITMQ_CHAT_DLX_EXCHANGE", format!("t{id}.dlx")),
        (
            "RABBITMQ_INTEGRATION_EXCHANGE",
            format!("t{id}.integrations"),
        ),
        ("RABBITMQ_CHAT_QUEUE_PREFIX", format!("t{id}.send")),
        ("RABBITMQ_CHAT_DLQ_NAME", format!("t{id}.send.dlq")),
        ("RABBITMQ_CHAT_PARTITION_COUNT", "2".into()),
        ("RABBITMQ_CHAT_MAX_RETRIES", "2".into()),
        ("JWT_SECRET", format!("test-secret-{id}-0123456789")),
        ("GATEWAY_ID", format!("gw-{id}")),
        ("HOST", "127.0.0.1".into()),
        ("PORT", "0".into()),
        ("GATEWAY_PORT", "0".into()),
        ("WORKER_PORT", "0".into()),
        ("METRICS_PORT", "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in overrides {
        vars.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|k| vars.get(k).cloned()).expect("test config")
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Mode::AllInOne, test_config(&[])).await
}

pub async fn spawn_with(mode: Mode, config: Config) -> TestApp {
    let app = spawn_unready(mode, config).await;
    app.wait_ready().await;
    app
}

/// The S3 stand-in (`S3_TEST_ENDPOINT`, moto on 127.0.0.1:9090 by default).
pub fn s3_endpoint() -> String {
    std::env::var("S3_TEST_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9090".into())
}

/// Like `spawn_with`, with uploads and attachments in a fresh bucket of the S3
/// stand-in (moto takes an unsigned create), plus `overrides`.
pub async fn spawn_with_s3(mode: Mode, overrides: &[(&str, &str)]) -> TestApp {
    let bucket = format!(
        "courier-test-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let created = reqwest::Client::new()
        .put(format!("{}/{bucket}", s3_endpoint()))
        .send()
        .await
        .expect("S3 server reachable (scripts/services.sh starts moto_server)");
    assert!(
        created.status().is_success(),
        "create bucket: {}",
        created.status()
    );
    let endpoint = s3_endpoint();
    let mut vars = vec![
        ("S3_ENDPOINT", endpoint.as_str()),
        ("S3_BUCKET", bucket.as_str()),
        ("S3_REGION", "us-east-1"),
        ("S3_ACCESS_KEY_ID", "test"),
        ("S3_SECRET_ACCESS_KEY", "test-secret"),
    ];
    vars.extend_from_slice(overrides);
    spawn_with(mode, test_config(&vars)).await
}

/// Like `spawn_with`, without waiting for readiness (for outage tests).
pub async fn spawn_unready(mode: Mode, config: Config) -> TestApp {
    // First, so that what a failed build already made is removed too.
    let cleanup = cleanup::Cleanup::new(&config);
    let service: Service = match mode {
        Mode::AllInOne => courier::all_in_one::build(&config).await,
        Mode::ApiOnly => courier::api::build(&config).await,
    }
    .expect("build service");
    let addr = format!("http://127.0.0.1:{}", service.port());
    let metrics = service
        .metrics_addr
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    let stop = CancellationToken::new();
    let s = stop.clone();
    // Detached: stopped by `stop`, dropped with the test's runtime.
    tokio::spawn(service.run_until_stopped(async move { s.cancelled().await }));
    TestApp {
        addr,
        metrics,
        pool: courier::db::pool(&config).expect("pool"),
        cache: Cache::connect(&config, Duration::from_secs(5))
            .await
            .expect("redis"),
        config,
        http: reqwest::Client::new(),
        stop,
        _cleanup: cleanup,
    }
}

impl TestApp {
    /// Waits for `/readyz` (the broker link comes up in the background).
    pub async fn wait_ready(&self) {
        let mut last = String::from("no answer");
        for _ in 0..100 {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.addr)).send().await {
                let status = r.status();
                if status == 200 {
                    return;
                }
                last = format!("{status} {}", r.text().await.unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("app never became ready (last /readyz: {last})");
    }

    pub fn topology(&self) -> Topology {
        Topology::new(&self.config.rabbitmq)
    }

    /// Sends a request; returns status and JSON body (Null when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(
            method.parse().expect("method"),
            format!("{}{path}", self.addr),
        );
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A raw request with a given body and content type.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(
                method.parse().expect("method"),
                format!("{}{path}", self.addr),
            )
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (
            status,
            serde_json::from_slice(&resp.bytes().await.expect("body")).unwrap_or(Value::Null),
        )
    }

    pub async fn register(&self, name: &str) -> TestUser {
        let username = format!("{name}_{}", &Uuid::new_v4().simple().to_string()[..8]);
        let (status, body) = self
            .call(
                "POST",
                "/auth/register",
                None,
                Some(json!({"username": username, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        TestUser {
            id: body["user"]["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("user id"),
            username,
            token: body["accessToken"].as_str().expect("token").to_string(),
            refresh: body["refreshToken"].as_str().expect("refresh").to_string(),
        }
    }

    /// Signs in again as `u` with a device name: a new session; returns its
    /// (access, refresh) tokens.
    pub async fn login_device(&self, u: &TestUser, device: &str) -> (String, String) {
        let (s, body) = self
            .call(
                "POST",
                "/auth/login",
                None,
                Some(json!({"username": u.username, "password": PASSWORD, "deviceName": device})),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        (
            body["accessToken"].as_str().expect("token").to_string(),
            body["refreshToken"].as_str().expect("refresh").to_string(),
        )
    }

    pub async fn direct_chat(&self, a: &TestUser, b: &TestUser) -> Uuid {
        let (status, body) = self
            .call(
                "POST",
                "/chats",
                Some(&a.token),
                Some(json!({"type": "direct", "participantIds": [b.id]})),
            )
            .await;
        assert!(status == 201 || status == 200, "{status} {body}");
        body["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("chat id")
    }

    /// A group titled "team" owned by `owner` with `others` as members.
    pub async fn group_chat(&self, owner: &TestUser, others: &[&TestUser]) -> Uuid {
        let ids: Vec<Uuid> = others.iter().map(|u| u.id).collect();
        let (status, body) = self
            .call(
                "POST",
                "/chats",
                Some(&owner.token),
                Some(json!({"type": "group", "title": "team", "participantIds": ids})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("chat id")
    }

    pub async fn send(
        &self,
        user: &TestUser,
        chat: Uuid,
        content: &str,
        client_id: Uuid,
    ) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/chats/{chat}/messages"),
            Some(&user.token),
            Some(json!({"content": content, "clientMessageId": client_id})),
        )
        .await
    }

    pub async fn message_count(&self, chat: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM messages WHERE chat_id = $1")
            .bind(chat)
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }

    /// Sequences of a chat, ascending.
    pub async fn sequences(&self, chat: Uuid) -> Vec<i64> {
        sqlx::query_scalar("SELECT sequence FROM messages WHERE chat_id = $1 ORDER BY sequence")
            .bind(chat)
            .fetch_all(&self.pool)
            .await
            .expect("sequences")
    }

    /// Waits until `chat` holds `n` messages (or panics after 10 s).
    pub async fn wait_messages(&self, chat: Uuid, n: i64) {
        for _ in 0..200 {
            if self.message_count(chat).await >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "chat {chat} never reached {n} messages (has {})",
            self.message_count(chat).await
        );
    }

    /// Publishes raw bytes to a chat's partition with a broker message id, as the API
    /// would (or as a redelivery would look).
    pub async fn publish(&self, chat: Uuid, body: &[u8], message_id: Uuid) {
        use courier::mq::publish;
        let conn = self.amqp().await;
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        let topo = self.topology();
        let props = publish::json_properties(&message_id.to_string(), Default::default());
        publish::publish_confirmed(
            &ch,
            &topo.exchange,
            &topo.route(chat),
            body,
            props,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        conn.close(200, "bye".into()).await.unwrap();
    }

    /// A separate broker connection for tests that publish or inspect queues.
    pub async fn amqp(&self) -> Connection {
        amqp(&self.config).await
    }

    /// A consumer of an exclusive queue bound with `key` to the app's integration
    /// exchange (`no_ack`: deliveries need no ack), and the connection that holds it.
    pub async fn integration_events(&self, key: &str, no_ack: bool) -> (Connection, Consumer) {
        let conn = self.amqp().await;
        let ch = conn.create_channel().await.expect("channel");
        let exclusive = QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        };
        let q = ch
            .queue_declare("".into(), exclusive, FieldTable::default())
            .await
            .expect("declare");
        ch.queue_bind(
            q.name().as_str().into(),
            self.topology().integrations.as_str().into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
        let consumer = ch
            .basic_consume(
                q.name().as_str().into(),
                "t".into(),
                BasicConsumeOptions {
                    no_ack,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("consume");
        (conn, consumer)
    }

    /// Messages ready in a queue.
    pub async fn queue_depth(&self, queue: &str) -> u32 {
        let conn = self.amqp().await;
        let ch = conn.create_channel().await.expect("channel");
        let q = ch
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .expect("passive declare");
        conn.close(200, "bye".into()).await.expect("close");
        q.message_count()
    }
}

pub async fn amqp(config: &Config) -> Connection {
    Connection::connect(
        config.rabbitmq.uri.expose_secret(),
        ConnectionProperties::default(),
    )
    .await
    .expect("amqp")
}

/// A send command as the API would publish it (for tests that publish directly).
#[allow(dead_code)] // not every test binary publishes commands
pub fn send_command(
    chat: Uuid,
    sender: Uuid,
    content: &str,
) -> courier::domain::message::SendCommand {
    courier::domain::message::SendCommand {
        broker_message_id: Uuid::now_v7(),
        chat_id: chat,
        sender_id: sender,
        client_message_id: Uuid::new_v4(),
        content: content.into(),
        accepted_at: chrono::Utc::now(),
        reply_to: None,
        forwarded_from: None,
        bot: None,
        attachments: Vec::new(),
    }
}
