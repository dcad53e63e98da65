//! Publisher confirms reach the publish they answer, however many tasks publish on one
//! channel at once (against the real RabbitMQ).
//!
//! The broker numbers a channel's publishes in the order their frames arrive, and lapin
//! numbers them when `basic_publish` is first polled, just before it queues the frames;
//! two tasks on two threads could take numbers 7 and 8 and queue their frames 8 first.
//! Every confirm is then the other one's: a nack (a quorum queue without a leader) is
//! read as an ack, and a message the broker refused gets its 202. Half of the publishes
//! here go to a queue that refuses everything (`x-max-length` 0, `reject-publish`): each
//! must come back nacked, and each of the other half acked.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use courier::mq::publish::{PublishError, json_properties, publish_confirmed};
use lapin::{
    Connection, ConnectionProperties,
    options::{ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions},
    types::{AMQPValue, FieldTable},
};
use secrecy::ExposeSecret;
use uuid::Uuid;

const TASKS: usize = 8;
const PER_TASK: usize = 1500;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishes_on_one_channel_get_their_own_confirms() {
    let config = courier::config::Config::from_lookup(|k| {
        (k == "JWT_SECRET").then(|| "0123456789abcdef0123456789abcdef".to_string())
    })
    .unwrap();
    let conn = Connection::connect(
        config.rabbitmq.uri.expose_secret(),
        ConnectionProperties::default(),
    )
    .await
    .expect("amqp");
    let id = Uuid::new_v4().simple().to_string();
    let (accept, refuse) = (format!("t{id}.accept"), format!("t{id}.refuse"));
    let setup = conn.create_channel().await.unwrap();
    let opts = QueueDeclareOptions {
        auto_delete: false,
        ..Default::default()
    };
    setup
        .queue_declare(accept.as_str().into(), opts, FieldTable::default())
        .await
        .unwrap();
    let mut full = FieldTable::default();
    full.insert("x-max-length".into(), AMQPValue::LongInt(0));
    full.insert(
        "x-overflow".into(),
        courier::mq::long_string("reject-publish"),
    );
    setup
        .queue_declare(refuse.as_str().into(), opts, full)
        .await
        .unwrap();

    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let wrong = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let (ch, wrong) = (ch.clone(), wrong.clone());
        let (accept, refuse) = (accept.clone(), refuse.clone());
        tasks.spawn(async move {
            let mut pending = Vec::new();
            for i in 0..PER_TASK {
                let refused = (i + t) % 2 == 1;
                let queue = if refused {
                    refuse.clone()
                } else {
                    accept.clone()
                };
                let ch = ch.clone();
                pending.push(tokio::spawn(async move {
                    let props = json_properties(&Uuid::new_v4().to_string(), FieldTable::default());
                    let timeout = std::time::Duration::from_secs(30);
                    let r = publish_confirmed(&ch, "", &queue, b"{}", props, timeout).await;
                    (refused, r)
                }));
                if i % 16 == 15 {
                    tokio::task::yield_now().await;
                }
            }
            for p in pending {
                match p.await.unwrap() {
                    (false, Ok(())) | (true, Err(PublishError::Nacked)) => {}
                    (false, Err(PublishError::Nacked)) | (true, Ok(())) => {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    (_, Err(e)) => panic!("publish failed: {e}"),
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    for q in [&accept, &refuse] {
        setup
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
    }
    conn.close(200, "bye".into()).await.unwrap();
    assert_eq!(
        wrong.load(Ordering::Relaxed),
        0,
        "confirms given to another publish than theirs, out of {}",
        TASKS * PER_TASK
    );
}
