//! Redis Cluster mode against a local cluster of 3 masters and 3 replicas of each
//! test's own (scripts/redis-cluster.sh on free ports): keys carry their owner's hash tag, a group message reaches every
//! member's own stream across slots, presence works in per-slot steps, and the sweep
//! removes an idle user's stream with their clock.

mod common;

use std::{collections::HashSet, path::PathBuf, process::Command, time::Duration};

use common::{Mode, poll, spawn_with, test_config};
use courier::{
    cache::{Cache, cluster::key_slot},
    domain::events::Outgoing,
};
use uuid::Uuid;

/// A cluster of this test's own (scripts/redis-cluster.sh on free ports), stopped and
/// removed on drop.
struct Local {
    dir: PathBuf,
    ports: Vec<u16>,
}

impl Local {
    fn start() -> Self {
        let ports = common::ports::free(12);
        let dir = std::env::temp_dir().join(format!("courier-rcluster-{}", Uuid::new_v4()));
        let local = Self { dir, ports };
        local.sh("start");
        local
    }

    fn sh(&self, cmd: &str) -> String {
        let list = |p: &[u16]| p.iter().map(u16::to_string).collect::<Vec<_>>().join(" ");
        let out = Command::new("scripts/redis-cluster.sh")
            .arg(cmd)
            .env("RC_DIR", &self.dir)
            .env("RC_PORTS", list(&self.ports[..6]))
            .env("RC_BUS_PORTS", list(&self.ports[6..]))
            .output()
            .unwrap();
        assert!(out.status.success(), "redis-cluster.sh {cmd}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn config(&self, extra: &[(&str, &str)]) -> courier::config::Config {
        let nodes = self.sh("nodes");
        let mut vars = vec![("REDIS_CLUSTER_NODES", nodes.as_str())];
        vars.extend_from_slice(extra);
        test_config(&vars)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.sh("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn to_user(user: Uuid) -> Outgoing {
    Outgoing {
        data: "{}".into(),
        targets: vec![(user, "chat.message.new")],
        ..Outgoing::default()
    }
}

#[tokio::test]
async fn a_group_message_reaches_every_members_stream_across_slots() {
    let cluster = Local::start();
    let app = spawn_with(Mode::AllInOne, cluster.config(&[])).await;
    let owner = app.register("owner").await;
    let mut members = Vec::new();
    for i in 0..6 {
        members.push(app.register(&format!("m{i}")).await);
    }
    let chat = app
        .group_chat(&owner, &members.iter().collect::<Vec<_>>())
        .await;
    let keys = &app.cache.keys;
    let slots: HashSet<u16> = members
        .iter()
        .map(|m| key_slot(keys.user_events(m.id).as_bytes()))
        .collect();
    assert!(slots.len() > 1, "the members' streams are in several slots");
    assert!(
        keys.user_events(owner.id)
            .contains(&format!("{{u:{}}}", owner.id))
    );

    let (status, body) = app.send(&owner, chat, "hello all", Uuid::new_v4()).await;
    assert_eq!(status, 202, "{body}");
    for m in &members {
        let read = poll::until("the message in a member's stream", || async {
            let r = app
                .cache
                .read_timeline(m.id, &[], None, false)
                .await
                .unwrap();
            let start = r.since;
            let r = app
                .cache
                .read_timeline(m.id, &[], Some(start), false)
                .await
                .unwrap();
            r.entries
                .iter()
                .any(|e| e.name == "chat.message.new" && e.data.contains("hello all"))
                .then_some(r)
        })
        .await;
        assert!(
            read.entries.iter().all(|e| e.group.is_none()),
            "cluster mode has no chat timelines"
        );
    }
    let saved = poll::until("the sender's own copy", || async {
        let r = app
            .cache
            .read_timeline(owner.id, &[], None, false)
            .await
            .unwrap();
        let r = app
            .cache
            .read_timeline(owner.id, &[], Some(r.since), false)
            .await
            .unwrap();
        r.entries
            .iter()
            .find(|e| e.data.contains("hello all"))
            .cloned()
    })
    .await;
    assert_eq!(saved.name, "chat.message.saved");
    assert!(
        app.cache
            .keys_matching(&format!("{}chat:*:events", keys.prefix()))
            .await
            .unwrap()
            .is_empty(),
        "no chat timeline was written"
    );
}

#[tokio::test]
async fn presence_and_routing_work_in_per_slot_steps() {
    let cluster = Local::start();
    let cache = Cache::connect(&cluster.config(&[]), Duration::from_secs(5))
        .await
        .unwrap();
    let user = Uuid::new_v4();
    assert!(cache.register_conn("gw-a", user, "c1").await.unwrap());
    assert!(!cache.register_conn("gw-b", user, "c2").await.unwrap());
    assert_eq!(cache.connection_count(user).await.unwrap(), 2);
    let mut on = cache
        .gateways_of(&[user])
        .await
        .unwrap()
        .remove(&user)
        .unwrap();
    on.sort();
    assert_eq!(on, ["gw-a", "gw-b"]);
    cache.unregister_conn("gw-a", user, "c1").await.unwrap();
    assert!(
        cache
            .sweep_offline(Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "a connection is left"
    );
    cache.unregister_conn("gw-b", user, "c2").await.unwrap();
    assert_eq!(cache.online(&[user]).await.unwrap(), [true], "in grace");
    let gone = poll::until("the user to go offline", || async {
        let g = cache.sweep_offline(Duration::ZERO).await.unwrap();
        (!g.is_empty()).then_some(g)
    })
    .await;
    assert_eq!(gone[0].0, user);
    assert_eq!(cache.online(&[user]).await.unwrap(), [false]);

    // A lost gateway's connections are removed with it.
    cache.register_conn("gw-c", user, "c3").await.unwrap();
    cache.forget_gateway("gw-c", 0).await.unwrap();
    assert_eq!(cache.connection_count(user).await.unwrap(), 0);
    cache.purge_prefix().await.unwrap();
}

#[tokio::test]
async fn the_sweep_removes_an_idle_stream_with_its_users_clock() {
    let cluster = Local::start();
    let config = cluster.config(&[("RECOVERY_WINDOW_SECS", "1")]);
    let cache = Cache::connect(&config, Duration::from_secs(5))
        .await
        .unwrap();
    let (idle, busy) = (Uuid::new_v4(), Uuid::new_v4());
    cache.publish_events(&[to_user(idle)]).await.unwrap();
    let first = cache.read_timeline(idle, &[], None, false).await.unwrap();
    assert!(first.last.ms > 0, "the user's clock exists");
    poll::until_older_than(first.last.ms, cache.retention.window).await;
    cache.publish_events(&[to_user(busy)]).await.unwrap();
    assert_eq!(cache.sweep_streams().await.unwrap(), 1);
    let keys = cache
        .keys_matching(&format!("{}*", cache.keys.prefix()))
        .await
        .unwrap();
    assert!(!keys.contains(&cache.keys.user_events(idle)), "{keys:?}");
    assert!(!keys.contains(&cache.keys.clock(idle)), "{keys:?}");
    assert!(keys.contains(&cache.keys.clock(busy)), "{keys:?}");
    // An offset of the idle user's from before is not recoverable any more.
    let again = cache
        .read_timeline(idle, &[], Some(first.last), true)
        .await
        .unwrap();
    assert!(!again.recoverable);
    cache.purge_prefix().await.unwrap();
}

#[tokio::test]
async fn pipelines_and_transactions_over_several_slots_run_per_slot() {
    let cluster = Local::start();
    let cache = Cache::connect(&cluster.config(&[]), Duration::from_secs(5))
        .await
        .unwrap();
    let keys = &cache.keys;
    let a = Uuid::new_v4();
    let b = std::iter::repeat_with(Uuid::new_v4)
        .find(|b| {
            key_slot(keys.user_events(*b).as_bytes()) != key_slot(keys.user_events(a).as_bytes())
        })
        .unwrap();
    // A transaction over two users' slots: one per slot, each user's keys together.
    cache.invalidate_blocks(&[a, b]).await.unwrap();
    cache.invalidate_blocks(&[a, b]).await.unwrap();
    let seeds: Vec<String> = cluster
        .sh("nodes")
        .split(',')
        .map(|n| format!("redis://{n}"))
        .collect();
    let mut c = redis::cluster::ClusterClient::new(seeds)
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    for u in [a, b] {
        let generation: Option<String> = redis::cmd("GET")
            .arg(keys.user_blocks_gen(u))
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(generation.as_deref(), Some("2"), "{u}");
    }
    // A plain pipeline over several slots: command by command, answers in order.
    cache.register_conn("gw-1", a, "ca").await.unwrap();
    cache.register_conn("gw-2", b, "cb").await.unwrap();
    let on = cache.gateways_of(&[a, b, Uuid::new_v4()]).await.unwrap();
    assert_eq!(on.len(), 2);
    assert_eq!(on[&a], ["gw-1"]);
    assert_eq!(on[&b], ["gw-2"]);
}
