//! The Redis side of realtime sessions against a real Redis: per-user event streams
//! (offsets from the global clock, retention, recovery bounds) and presence (grace
//! period, reaped gateways). Group timelines: tests/timeline.rs.

mod common;

use std::time::Duration;

use common::{Mode, poll, spawn_with, test_config};
use courier::domain::events::{Delivery, EVENT_NEW, EVENT_SAVED, Event, Offset, Outgoing, Push};
use futures::StreamExt;
use uuid::Uuid;

/// The per-user deliveries of a push.
fn user_events(push: Push) -> Vec<(Uuid, Event)> {
    push.into_deliveries()
        .into_iter()
        .filter_map(Delivery::into_user)
        .collect()
}

fn event(data: &str, users: &[(Uuid, &'static str)]) -> Outgoing {
    Outgoing {
        data: data.to_string(),
        targets: users.to_vec(),
        ..Outgoing::default()
    }
}

#[tokio::test]
async fn streams_give_offsets_and_push_to_the_gateways_holding_the_user() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let cache = &app.cache;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    cache.register_conn("gw-1", a, "s1").await.unwrap();
    let mut pubsub = cache.client().get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(cache.keys.gateway_channel("gw-1"))
        .await
        .unwrap();
    let mut pushes = pubsub.into_on_message();

    let first = event(r#"{"n":1}"#, &[(a, EVENT_NEW), (b, EVENT_SAVED)]);
    let second = event(r#"{"n":2}"#, &[(a, EVENT_NEW)]);
    cache.publish_events(&[first, second]).await.unwrap();

    let msg = tokio::time::timeout(Duration::from_secs(5), pushes.next())
        .await
        .expect("a push")
        .unwrap();
    let events = user_events(serde_json::from_slice::<Push>(msg.get_payload_bytes()).unwrap());
    assert_eq!(events.len(), 2, "only a has a connection on gw-1");
    let (o1, o2) = (events[0].1.offset.unwrap(), events[1].1.offset.unwrap());
    assert!(o1 < o2, "offsets grow, and pushes come in stream order");
    assert_eq!(
        events[1].1.payload().get(),
        format!(r#"{{"offset":"{o2}","n":2}}"#)
    );

    let read = cache.read_timeline(a, &[], Some(o1), false).await.unwrap();
    assert!(read.recoverable && read.complete);
    assert_eq!(read.last, o2);
    assert_eq!(read.entries.len(), 1);
    assert_eq!(read.entries[0].offset, o2);
    assert_eq!(read.entries[0].data, r#"{"n":2}"#);
    assert_eq!(read.entries[0].group, None);
    let b_read = cache.read_timeline(b, &[], Some(o1), false).await.unwrap();
    assert_eq!(
        b_read.entries.iter().map(|e| e.offset).collect::<Vec<_>>(),
        Vec::<Offset>::new(),
        "b's only event has the first id"
    );
    let b_all = cache
        .read_timeline(b, &[], Some(Offset::ZERO), false)
        .await
        .unwrap();
    assert_eq!(b_all.entries.len(), 1);
    assert_eq!(
        b_all.entries[0].offset, o1,
        "one id per event, in every stream"
    );
    let fresh = cache
        .read_timeline(Uuid::new_v4(), &[], Some(o1), false)
        .await
        .unwrap();
    assert!(
        !fresh.recoverable && fresh.entries.is_empty(),
        "a user in no group without a stream: another user's offset is not theirs"
    );
}

#[tokio::test]
async fn trimmed_streams_report_what_can_no_longer_be_recovered() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[("RECOVERY_MAX_EVENTS", "5")])).await;
    let cache = &app.cache;
    let a = Uuid::new_v4();
    cache
        .publish_events(&[event("{}", &[(a, EVENT_NEW)])])
        .await
        .unwrap();
    let start = cache.read_timeline(a, &[], None, false).await.unwrap().last;
    // MAXLEN ~ trims whole nodes: far more than the cap is needed to see a trim.
    for _ in 0..5 {
        let batch: Vec<Outgoing> = (0..100).map(|_| event("{}", &[(a, EVENT_NEW)])).collect();
        cache.publish_events(&batch).await.unwrap();
    }
    let read = cache
        .read_timeline(a, &[], Some(start), false)
        .await
        .unwrap();
    assert!(
        !read.recoverable,
        "the first events were trimmed, so the offset is past retention"
    );
    assert!(read.entries.len() < 500);
    let late = read.entries.last().unwrap().offset;
    let near = cache
        .read_timeline(a, &[], Some(late), false)
        .await
        .unwrap();
    assert!(near.recoverable, "an offset within the kept entries");
}

#[tokio::test]
async fn ephemeral_events_are_pushed_but_not_kept() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let cache = &app.cache;
    let a = Uuid::new_v4();
    cache.register_conn("gw-1", a, "s1").await.unwrap();
    let mut pubsub = cache.client().get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(cache.keys.gateway_channel("gw-1"))
        .await
        .unwrap();
    let mut pushes = pubsub.into_on_message();
    cache
        .publish_ephemeral(&[event(r#"{"t":1}"#, &[(a, "chat.typing")])])
        .await
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), pushes.next())
        .await
        .expect("a push")
        .unwrap();
    let events = user_events(serde_json::from_slice::<Push>(msg.get_payload_bytes()).unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1.offset, None);
    assert_eq!(events[0].1.payload().get(), r#"{"t":1}"#);
    let read = cache
        .read_timeline(a, &[], Some(Offset::ZERO), false)
        .await
        .unwrap();
    assert_eq!(read.last, Offset::ZERO, "no id was given out");
    assert!(read.entries.is_empty());
}

#[tokio::test]
async fn presence_has_a_grace_period_and_survives_a_second_device() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let cache = &app.cache;
    let a = Uuid::new_v4();
    let none = Duration::ZERO;
    assert!(
        cache.register_conn("gw-1", a, "s1").await.unwrap(),
        "came online"
    );
    assert!(
        !cache.register_conn("gw-2", a, "s2").await.unwrap(),
        "already online"
    );
    cache.unregister_conn("gw-1", a, "s1").await.unwrap();
    assert!(
        cache.sweep_offline(none).await.unwrap().is_empty(),
        "s2 is open"
    );
    cache.unregister_conn("gw-2", a, "s2").await.unwrap();
    assert_eq!(cache.online(&[a]).await.unwrap(), vec![true], "in grace");
    assert!(
        cache
            .sweep_offline(Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty(),
        "the grace has not run out"
    );
    assert!(
        !cache.register_conn("gw-1", a, "s3").await.unwrap(),
        "back within the grace: no new online"
    );
    cache.unregister_conn("gw-1", a, "s3").await.unwrap();
    let gone = cache.sweep_offline(none).await.unwrap();
    assert_eq!(gone.iter().map(|g| g.0).collect::<Vec<_>>(), vec![a]);
    assert!(cache.sweep_offline(none).await.unwrap().is_empty(), "once");
    assert_eq!(cache.online(&[a]).await.unwrap(), vec![false]);
}

#[tokio::test]
async fn a_reaped_gateways_users_go_offline_unless_connected_elsewhere() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let cache = &app.cache;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    cache.heartbeat("gw-dead").await.unwrap();
    cache.register_conn("gw-dead", a, "s1").await.unwrap();
    cache.register_conn("gw-dead", b, "s2").await.unwrap();
    cache.register_conn("gw-alive", b, "s3").await.unwrap();
    let grace = Duration::from_secs(30);
    assert_eq!(cache.reap_gateways(-1000, grace).await.unwrap(), 1);
    let gone = cache.sweep_offline(grace).await.unwrap();
    assert_eq!(
        gone.iter().map(|g| g.0).collect::<Vec<_>>(),
        vec![a],
        "offline at once (the lease was the grace); b still has a socket elsewhere"
    );
    assert_eq!(cache.online(&[a, b]).await.unwrap(), vec![false, true]);
}

#[tokio::test]
async fn a_new_connection_gets_an_offset_it_can_resume_from() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let cache = &app.cache;
    let a = Uuid::new_v4();
    let opened = cache.read_timeline(a, &[], None, true).await.unwrap();
    assert!(opened.end > Offset::ZERO, "a real position");
    assert!(opened.since < opened.end && opened.end == opened.last);
    cache
        .publish_events(&[event(r#"{"n":1}"#, &[(a, EVENT_NEW)])])
        .await
        .unwrap();
    let read = cache
        .read_timeline(a, &[], Some(opened.end), false)
        .await
        .unwrap();
    assert!(read.recoverable, "the offset can be resumed from");
    assert_eq!(read.entries.len(), 1, "only the event, not the marker");
    assert_eq!(read.entries[0].name, EVENT_NEW);
    assert_eq!(read.end, read.entries[0].offset);
    let again = cache.read_timeline(a, &[], None, true).await.unwrap();
    assert_eq!(again.end, read.end, "an existing stream is left as it is");
    assert_eq!(again.since, opened.since);
    let other = cache
        .read_timeline(Uuid::new_v4(), &[], Some(opened.end), true)
        .await
        .unwrap();
    assert!(!other.recoverable, "a's offset is not another user's");
    assert!(other.end > read.end, "their stream starts with a marker");
}

#[tokio::test]
async fn the_sweep_removes_idle_streams_and_keeps_recent_ones() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[("RECOVERY_WINDOW_SECS", "1")])).await;
    let cache = &app.cache;
    let (idle, busy) = (Uuid::new_v4(), Uuid::new_v4());
    cache
        .publish_events(&[event("{}", &[(idle, EVENT_NEW)])])
        .await
        .unwrap();
    // The window under test is 1 s: the idle user's only event ages past it.
    let aged = cache
        .read_timeline(idle, &[], Some(Offset::ZERO), false)
        .await
        .unwrap();
    poll::until_older_than(aged.entries[0].offset.ms, Duration::from_secs(1)).await;
    cache
        .publish_events(&[event("{}", &[(busy, EVENT_NEW)])])
        .await
        .unwrap();
    assert_eq!(cache.sweep_streams().await.unwrap(), 1);
    let all = |u| cache.read_timeline(u, &[], Some(Offset::ZERO), false);
    assert!(all(idle).await.unwrap().entries.is_empty());
    assert_eq!(all(busy).await.unwrap().entries.len(), 1);
}
