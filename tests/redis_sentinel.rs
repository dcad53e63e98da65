//! Redis Sentinel against a set of this test's own (scripts/redis-sentinel.sh on free
//! ports, with a password for the master and another for the sentinels): the cache
//! finds the master through the sentinels, and after a `kill -9` of the master it finds
//! the promoted replica by itself (commands work again, subscribers are told).

mod common;

use std::{path::PathBuf, process::Command, time::Duration};

use common::test_config;
use courier::cache::Cache;

/// One Sentinel set: master, replica, three sentinels; stopped and removed on drop.
struct Set {
    dir: PathBuf,
    ports: Vec<u16>,
}

impl Set {
    fn start() -> Self {
        let ports = common::ports::free(5);
        let dir = std::env::temp_dir().join(format!("courier-sentinel-{}", uuid::Uuid::new_v4()));
        let set = Self { dir, ports };
        set.sh(&["start"]);
        set
    }

    fn sh(&self, args: &[&str]) -> String {
        let p = &self.ports;
        let out = Command::new("scripts/redis-sentinel.sh")
            .args(args)
            .env("RS_DIR", &self.dir)
            .env("RS_MASTER_PORT", p[0].to_string())
            .env("RS_REPLICA_PORT", p[1].to_string())
            .env("RS_SENTINEL_PORTS", format!("{} {} {}", p[2], p[3], p[4]))
            .env("RS_PASSWORD", "hunter2-master")
            .env("RS_SENTINEL_PASSWORD", "hunter2-sentinel")
            .output()
            .unwrap();
        assert!(out.status.success(), "redis-sentinel.sh {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn sentinels(&self) -> String {
        self.ports[2..]
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for Set {
    fn drop(&mut self) {
        self.sh(&["stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn the_cache_follows_the_master_through_a_failover() {
    let set = Set::start();
    let cache = Cache::connect(
        &test_config(&[
            ("REDIS_SENTINELS", &set.sentinels()),
            ("REDIS_PASSWORD", "hunter2-master"),
            ("REDIS_SENTINEL_PASSWORD", "hunter2-sentinel"),
        ]),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let port_of = |c: &Cache| c.client().get_connection_info().addr().to_string();
    assert_eq!(port_of(&cache), format!("127.0.0.1:{}", set.ports[0]));
    assert!(cache.ping().await);
    let mut changes = cache
        .master_changes()
        .expect("a sentinel cache tells of changes");
    changes.mark_unchanged();

    let old = set.sh(&["master"]);
    set.sh(&["kill", &set.ports[0].to_string()]);
    let promoted = set.sh(&["wait-failover", &old]);
    assert_eq!(promoted, format!("127.0.0.1:{}", set.ports[1]));
    // Commands fail on the dead master until the cache finds the promoted one by itself.
    let back = tokio::time::timeout(Duration::from_secs(10), async {
        while !cache.ping().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(back.is_ok(), "the cache reaches the promoted master");
    assert_eq!(port_of(&cache), promoted);
    tokio::time::timeout(Duration::from_secs(5), changes.changed())
        .await
        .expect("subscribers are told of the new master")
        .unwrap();
    // Writes go through (a replica would answer READONLY).
    let user = uuid::Uuid::new_v4();
    cache.read_timeline(user, &[], None, true).await.unwrap();
    cache.purge_prefix().await.unwrap();
}
