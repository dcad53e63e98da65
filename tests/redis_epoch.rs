//! The Redis dataset's epoch against a real Redis: offsets keep their `<ms>-<n>` form
//! and stay recoverable while one server writes the clock; when another server wrote
//! it last (a promoted replica, a restart from a snapshot), a new epoch starts, older
//! offsets are not recoverable, and new offsets and pushes carry the new epoch.

mod common;

use std::time::Duration;

use common::test_config;
use courier::{
    cache::Cache,
    domain::events::{Offset, Outgoing, Push},
};
use futures::StreamExt;
use uuid::Uuid;

fn to_user(user: Uuid) -> Outgoing {
    Outgoing {
        data: "{}".into(),
        targets: vec![(user, "chat.message.new")],
        ..Outgoing::default()
    }
}

#[tokio::test]
async fn another_writer_of_the_clock_starts_a_new_epoch() {
    let cache = Cache::connect(&test_config(&[]), Duration::from_secs(5))
        .await
        .unwrap();
    let user = Uuid::new_v4();
    let start = cache.read_timeline(user, &[], None, true).await.unwrap();
    assert_eq!(start.last.epoch, 0);
    assert!(
        !start.last.to_string().contains(':'),
        "the first epoch's offsets are <ms>-<n>"
    );
    cache.publish_events(&[to_user(user)]).await.unwrap();
    let r = cache
        .read_timeline(user, &[], Some(start.end), false)
        .await
        .unwrap();
    assert!(r.recoverable, "the same server: no new epoch");
    assert_eq!((r.entries.len(), r.last.epoch), (1, 0));
    let before = r.entries[0].offset;

    // The clock as a replica holds it after its master wrote it.
    let mut c = cache
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("HSET")
        .arg(cache.keys.clock(user))
        .arg("node")
        .arg("0123456789abcdef0123456789abcdef01234567")
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    let mut pubsub = cache.client().get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(cache.keys.gateway_channel("gw-epoch"))
        .await
        .unwrap();
    cache.register_conn("gw-epoch", user, "c1").await.unwrap();
    let mut pushes = pubsub.into_on_message();
    cache.publish_events(&[to_user(user)]).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), pushes.next())
        .await
        .expect("a push")
        .unwrap();
    let push: Push = serde_json::from_slice(msg.get_payload_bytes()).unwrap();
    let (_, event) = push.into_deliveries().remove(0).into_user().unwrap();
    let pushed = event.offset.unwrap();
    assert_ne!(pushed.epoch, 0, "pushed offsets carry the new epoch");
    assert!(
        pushed
            .to_string()
            .starts_with(&format!("{}:", pushed.epoch))
    );

    let r = cache
        .read_timeline(user, &[], Some(before), false)
        .await
        .unwrap();
    assert!(!r.recoverable, "an offset of the old epoch is not trusted");
    assert_eq!(r.last.epoch, pushed.epoch);
    let wire: Offset = pushed.to_string().parse().unwrap();
    let r = cache
        .read_timeline(user, &[], Some(wire), false)
        .await
        .unwrap();
    assert!(r.recoverable, "an offset of the new epoch is");
    assert!(r.since <= wire);
    // And it stays the same epoch while this server writes.
    cache.publish_events(&[to_user(user)]).await.unwrap();
    let r = cache
        .read_timeline(user, &[], Some(wire), false)
        .await
        .unwrap();
    assert!(r.recoverable && r.last.epoch == pushed.epoch && r.entries.len() == 1);
    cache.purge_prefix().await.unwrap();
}
