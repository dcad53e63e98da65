//! Broker topology and Redis routing state against the real services.

mod common;

use std::{process::Command, time::Duration};

use common::{Mode, spawn_with, test_config};
use uuid::Uuid;

#[tokio::test]
async fn topology_is_declared_idempotently_with_the_contract_properties() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let topo = app.topology();
    // Declaring again (as every api and worker start does) is a no-op, not an error.
    let conn = app.amqp().await;
    topo.declare(&conn).await.unwrap();
    topo.declare(&conn).await.unwrap();
    conn.close(200, "bye".into()).await.unwrap();

    let out = Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "-q",
            "--formatter",
            "json",
            "name",
            "type",
            "arguments",
            "durable",
        ])
        .output()
        .expect("rabbitmqctl");
    assert!(out.status.success());
    let queues: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let find = |name: &str| {
        queues
            .iter()
            .find(|q| q["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    for n in 0..2 {
        let q = find(&topo.partition_queue(n));
        assert_eq!(q["type"], "quorum");
        assert_eq!(q["durable"], true);
        let args = q["arguments"].to_string();
        assert!(args.contains("x-single-active-consumer"), "{args}");
        assert!(args.contains(&topo.dlx), "{args}");
    }
    assert_eq!(find(&topo.dlq)["type"], "quorum");
    // A retry waits in a quorum queue (a node's loss loses none) and goes back to its
    // partition at least once.
    for delay in topo.retry_levels() {
        let q = find(&topo.retry_queue(delay));
        assert_eq!(q["type"], "quorum");
        let args = q["arguments"].to_string();
        for want in ["x-message-ttl", "at-least-once", "reject-publish"] {
            assert!(args.contains(want), "{want}: {args}");
        }
    }
}

/// A classic retry queue made by an earlier version is kept: the topology still
/// declares (a quorum queue of that name is refused), and the queue keeps its messages.
#[tokio::test]
async fn a_classic_retry_queue_of_an_earlier_version_is_kept() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let conn = app.amqp().await;
    let mut topo = app.topology();
    topo.queue_prefix = format!("{}.old", topo.queue_prefix);
    topo.dlq = format!("{}.old", topo.dlq);
    let ch = conn.create_channel().await.unwrap();
    let old = topo.retry_queue(topo.retry_levels()[0]);
    let mut args = lapin::types::FieldTable::default();
    args.insert(
        "x-message-ttl".into(),
        lapin::types::AMQPValue::LongLongInt(1000),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        courier::mq::long_string(&topo.exchange),
    );
    let durable = lapin::options::QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(old.as_str().into(), durable, args)
        .await
        .unwrap();
    topo.declare(&conn)
        .await
        .expect("the classic retry queue is kept");
    let list = Command::new("rabbitmqctl")
        .args(["list_queues", "-q", "--formatter", "json", "name", "type"])
        .output()
        .expect("rabbitmqctl");
    let queues: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    let kind = |name: &str| {
        queues
            .iter()
            .find(|q| q["name"] == name)
            .map(|q| q["type"].clone())
    };
    assert_eq!(kind(&old), Some("classic".into()));
    let newer = topo.retry_queue(topo.retry_levels()[1]);
    assert_eq!(kind(&newer), Some("quorum".into()));
    let mut queues: Vec<String> = (0..topo.partitions)
        .map(|n| topo.partition_queue(n))
        .collect();
    queues.extend(topo.retry_levels().into_iter().map(|d| topo.retry_queue(d)));
    queues.push(topo.dlq.clone());
    for q in queues {
        ch.queue_delete(q.as_str().into(), Default::default())
            .await
            .unwrap();
    }
    conn.close(200, "bye".into()).await.unwrap();
}

/// The quorum queues' arguments as the broker lists them, by name.
fn queue_arguments() -> serde_json::Map<String, serde_json::Value> {
    let out = Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "-q",
            "--formatter",
            "json",
            "name",
            "arguments",
        ])
        .output()
        .expect("rabbitmqctl");
    assert!(out.status.success());
    let queues: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    queues
        .into_iter()
        .map(|q| {
            (
                q["name"].as_str().unwrap().to_string(),
                q["arguments"].clone(),
            )
        })
        .collect()
}

/// `RABBITMQ_QUORUM_REPLICAS` goes to new quorum queues as `x-quorum-initial-group-size`;
/// a queue made before with another count (or none) is kept, any other difference fails.
#[tokio::test]
async fn the_replica_count_is_declared_and_existing_queues_are_kept() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let conn = app.amqp().await;
    let mut topo = app.topology();
    assert_eq!(topo.quorum_replicas, None, "one URI: the broker's default");
    for n in [1, 2] {
        topo.quorum_replicas = Some(n);
        topo.declare(&conn)
            .await
            .expect("an existing queue is kept");
    }
    let args = queue_arguments();
    let kept = args[&topo.partition_queue(0)].to_string();
    assert!(!kept.contains("x-quorum-initial-group-size"), "{kept}");

    let mut other = app.topology();
    other.dlx = format!("{}.other", other.dlx);
    other.quorum_replicas = Some(1);
    assert!(
        other.declare(&conn).await.is_err(),
        "another DLX is refused"
    );

    let mut fresh = app.topology();
    fresh.queue_prefix = format!("{}.fresh", fresh.queue_prefix);
    fresh.dlq = format!("{}.fresh", fresh.dlq);
    fresh.quorum_replicas = Some(1);
    fresh.declare(&conn).await.unwrap();
    let args = queue_arguments();
    for q in [fresh.partition_queue(0), fresh.dlq.clone()] {
        let a = args[&q].to_string();
        assert!(a.contains("x-quorum-initial-group-size"), "{q}: {a}");
    }

    let ch = conn.create_channel().await.unwrap();
    let mut queues: Vec<String> = (0..fresh.partitions)
        .map(|n| fresh.partition_queue(n))
        .collect();
    queues.extend(
        fresh
            .retry_levels()
            .into_iter()
            .map(|d| fresh.retry_queue(d)),
    );
    queues.push(fresh.dlq.clone());
    for q in queues {
        ch.queue_delete(q.as_str().into(), Default::default())
            .await
            .unwrap();
    }
    ch.exchange_delete(other.dlx.as_str().into(), Default::default())
        .await
        .unwrap();
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test]
async fn dead_gateways_are_reaped_from_routing_state() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let cache = &app.cache;
    let (u1, u2) = (Uuid::new_v4(), Uuid::new_v4());
    assert!(
        cache.heartbeat("gw-dead").await.unwrap(),
        "first heartbeat registers"
    );
    assert!(!cache.heartbeat("gw-dead").await.unwrap());
    cache.heartbeat("gw-alive").await.unwrap();
    cache.register_conn("gw-dead", u1, "s1").await.unwrap();
    cache.register_conn("gw-alive", u1, "s2").await.unwrap();
    cache.register_conn("gw-dead", u2, "s3").await.unwrap();
    let before = cache.gateways_of(&[u1, u2]).await.unwrap();
    assert_eq!(
        before[&u1],
        vec!["gw-alive".to_string(), "gw-dead".to_string()]
    );

    // gw-dead last renewed its lease a minute ago (the lease's score is the time of the
    // last heartbeat): older than the 1 s lease, with no clock to wait for.
    let minute_ago = chrono::Utc::now().timestamp_millis() - 60_000;
    let mut redis = cache
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: i64 = redis::cmd("ZADD")
        .arg(cache.keys.gateways())
        .arg("XX")
        .arg(minute_ago)
        .arg("gw-dead")
        .query_async(&mut redis)
        .await
        .unwrap();
    cache.heartbeat("gw-alive").await.unwrap();
    assert_eq!(
        cache
            .reap_gateways(1000, Duration::from_secs(5))
            .await
            .unwrap(),
        1
    );
    let after = cache.gateways_of(&[u1, u2]).await.unwrap();
    assert_eq!(after.get(&u1), Some(&vec!["gw-alive".to_string()]));
    assert_eq!(after.get(&u2), None);
    assert!(
        cache.heartbeat("gw-dead").await.unwrap(),
        "a reaped gateway learns it must re-register"
    );

    cache.unregister_conn("gw-alive", u1, "s2").await.unwrap();
    assert!(cache.gateways_of(&[u1]).await.unwrap().is_empty());
}

/// The pusher's quorum queues get `RABBITMQ_QUORUM_REPLICAS` as the chat topology's do;
/// declared again with another count, they are kept.
#[tokio::test]
async fn the_pusher_queues_get_the_replica_count() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let conn = app.amqp().await;
    let queue = format!("{}.push", app.topology().queue_prefix);
    let integrations = app.topology().integrations;
    let push = |replicas| {
        courier::pusher::PushTopology::new(&queue, &integrations, Duration::from_secs(5), replicas)
    };
    push(Some(1)).declare(&conn).await.unwrap();
    push(Some(2))
        .declare(&conn)
        .await
        .expect("an existing queue is kept");
    let args = queue_arguments();
    for q in [queue.clone(), push(None).dlq()] {
        let a = args[&q].to_string();
        assert!(a.contains("x-quorum-initial-group-size"), "{q}: {a}");
    }
    let ch = conn.create_channel().await.unwrap();
    push(None).delete(&ch).await.unwrap();
    conn.close(200, "bye".into()).await.unwrap();
}
