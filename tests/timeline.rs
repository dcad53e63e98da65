//! Group chats' timelines against a real Redis: one global id per event across every
//! stream, a group event appended once and pushed only to the gateways following the
//! chat, and `read_timeline` merging a user's stream with their groups' timelines
//! (dedupe, `upto`, `except`, and when an offset is recoverable).

mod common;

use std::time::Duration;

use common::{Mode, poll, spawn_with, test_config};
use courier::{
    cache::Cache,
    domain::events::{
        Delivery, EVENT_CHAT_REMOVED, EVENT_CHAT_UPDATED, EVENT_NEW, EVENT_SAVED, GroupTarget,
        Membership, Offset, Outgoing, Push,
    },
};
use futures::{StreamExt, stream::BoxStream};
use uuid::Uuid;

fn to_users(data: &str, users: &[(Uuid, &'static str)]) -> Outgoing {
    Outgoing {
        data: data.to_string(),
        targets: users.to_vec(),
        ..Outgoing::default()
    }
}

fn to_group(data: &str, chat: Uuid, except: &[Uuid]) -> Outgoing {
    Outgoing {
        data: data.to_string(),
        chat: Some(chat),
        sequence: 1,
        group: Some(GroupTarget {
            name: EVENT_NEW,
            except: except.to_vec(),
        }),
        ..Outgoing::default()
    }
}

async fn subscribe(cache: &Cache, gateway: &str) -> BoxStream<'static, redis::Msg> {
    let mut pubsub = cache.client().get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(cache.keys.gateway_channel(gateway))
        .await
        .unwrap();
    pubsub.into_on_message().boxed()
}

async fn next_push(pushes: &mut BoxStream<'static, redis::Msg>) -> Vec<Delivery> {
    let msg = tokio::time::timeout(Duration::from_secs(5), pushes.next())
        .await
        .expect("a push within 5 s")
        .unwrap();
    serde_json::from_slice::<Push>(msg.get_payload_bytes())
        .unwrap()
        .into_deliveries()
}

async fn all_ids(cache: &Cache, key: &str) -> Vec<String> {
    let mut c = cache
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap();
    entries.into_iter().map(|e| e.0).collect()
}

#[tokio::test]
async fn ids_grow_across_user_streams_and_chat_timelines_and_group_events_go_to_followers_only() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let cache = &app.cache;
    let (sender, member, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let chat = Uuid::new_v4();
    cache.follow_chats("gw-1", &[chat]).await.unwrap();
    cache.register_conn("gw-2", other, "s2").await.unwrap();
    let (mut gw1, mut gw2) = (
        subscribe(cache, "gw-1").await,
        subscribe(cache, "gw-2").await,
    );

    cache
        .publish_events(&[to_users(r#"{"n":1}"#, &[(member, EVENT_NEW)])])
        .await
        .unwrap();
    let mut send = to_group(r#"{"n":2}"#, chat, &[sender]);
    send.targets = vec![(sender, EVENT_SAVED)];
    cache.publish_events(&[send]).await.unwrap();
    cache
        .publish_events(&[to_users(
            r#"{"n":3}"#,
            &[(member, EVENT_NEW), (other, EVENT_NEW)],
        )])
        .await
        .unwrap();

    let pushed = next_push(&mut gw1).await;
    assert_eq!(pushed.len(), 1, "gw-1 holds no user: only the group event");
    let Delivery::Group {
        chat: c,
        except,
        event,
    } = &pushed[0]
    else {
        panic!("a group delivery, got {pushed:?}");
    };
    assert_eq!((*c, &**except), (chat, &[sender][..]));
    assert_eq!(&*event.name, EVENT_NEW);
    let group_id = event.offset.unwrap();
    let other_push = next_push(&mut gw2).await;
    assert!(
        matches!(&other_push[..], [Delivery::User(u, e)] if *u == other && e.data.get() == r#"{"n":3}"#),
        "gw-2 follows no chat: its first push is the third event, got {other_push:?}"
    );

    let chat_ids = all_ids(cache, &cache.keys.chat_events(chat)).await;
    assert_eq!(chat_ids, vec![group_id.to_string()], "appended once");
    let sender_ids = all_ids(cache, &cache.keys.user_events(sender)).await;
    assert_eq!(sender_ids, chat_ids, "the sender's copy has the same id");
    let member_ids: Vec<Offset> = all_ids(cache, &cache.keys.user_events(member))
        .await
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(member_ids.len(), 2);
    assert!(
        member_ids[0] < group_id && group_id < member_ids[1],
        "one clock: {member_ids:?} around {group_id}"
    );
}

#[tokio::test]
async fn read_timeline_merges_dedupes_and_honours_upto_and_except() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[])).await;
    let cache = &app.cache;
    let (u, someone) = (Uuid::new_v4(), Uuid::new_v4());
    let (current, left) = (Uuid::new_v4(), Uuid::new_v4());
    let start = cache.read_timeline(u, &[], None, true).await.unwrap().end;

    cache
        .publish_events(&[to_group(r#"{"e":1}"#, current, &[])])
        .await
        .unwrap();
    // u's own copy and the group's share one id: read once, u's copy.
    let mut own = to_group(r#"{"e":2}"#, current, &[u]);
    own.targets = vec![(u, EVENT_SAVED)];
    cache.publish_events(&[own]).await.unwrap();
    cache
        .publish_events(&[to_group(r#"{"e":3}"#, left, &[someone])])
        .await
        .unwrap();
    let removed = Outgoing {
        membership: Some(Membership::Left),
        chat: Some(left),
        ..to_users(r#"{"e":4}"#, &[(u, EVENT_CHAT_REMOVED)])
    };
    cache.publish_events(&[removed]).await.unwrap();
    cache
        .publish_events(&[
            to_group(r#"{"e":5}"#, left, &[]),
            to_group(r#"{"e":6}"#, current, &[u]),
        ])
        .await
        .unwrap();

    let gone = cache.left_groups(u).await.unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].0, left);
    let upto = gone[0].1;
    let groups = [(current, None), (left, Some(upto))];
    let read = cache
        .read_timeline(u, &groups, Some(start), false)
        .await
        .unwrap();
    let seen: Vec<(&str, Option<Uuid>)> = read
        .entries
        .iter()
        .map(|s| (s.data.as_str(), s.group))
        .collect();
    assert_eq!(
        seen,
        vec![
            (r#"{"e":1}"#, Some(current)),
            (r#"{"e":2}"#, None),
            (r#"{"e":3}"#, Some(left)),
            (r#"{"e":4}"#, None),
        ],
        "merged by id; e5 is past the leave, e6 excepts u"
    );
    assert_eq!(read.entries[1].name, EVENT_SAVED);
    assert_eq!(read.entries[3].membership, Some(Membership::Left));
    assert_eq!(read.entries[3].offset, upto);
    assert!(read.recoverable && read.complete);
    assert!(read.end > upto && read.end == read.last);

    let joined = Outgoing {
        membership: Some(Membership::Joined),
        chat: Some(left),
        ..to_users(r#"{"e":7}"#, &[(u, EVENT_CHAT_UPDATED)])
    };
    cache.publish_events(&[joined]).await.unwrap();
    assert!(
        cache.left_groups(u).await.unwrap().is_empty(),
        "joining again forgets the leave"
    );
}

#[tokio::test]
async fn an_offset_is_recoverable_unless_a_stream_lost_what_follows_it_or_redis_lost_the_clock() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[("RECOVERY_MAX_EVENTS", "5")])).await;
    let cache = &app.cache;
    let u = Uuid::new_v4();
    let (busy, fresh) = (Uuid::new_v4(), Uuid::new_v4());
    let start = cache.read_timeline(u, &[], None, true).await.unwrap().end;
    let read = |groups: Vec<(Uuid, Option<Offset>)>, after| async move {
        cache
            .read_timeline(u, &groups, Some(after), false)
            .await
            .unwrap()
    };

    // A chat timeline that did not exist at the offset lost nothing.
    for i in 0..3 {
        cache
            .publish_events(&[to_group(&format!(r#"{{"i":{i}}}"#), fresh, &[])])
            .await
            .unwrap();
    }
    let r = read(vec![(fresh, None)], start).await;
    assert!(r.recoverable, "a timeline created after the offset");
    assert_eq!(r.entries.len(), 3);

    // A timeline trimmed past the offset did. MAXLEN ~ trims whole nodes: far more
    // than the cap is needed to see a trim.
    for _ in 0..5 {
        let batch: Vec<Outgoing> = (0..100).map(|_| to_group("{}", busy, &[])).collect();
        cache.publish_events(&batch).await.unwrap();
    }
    let r = read(vec![(fresh, None), (busy, None)], start).await;
    assert!(
        !r.recoverable,
        "the busy timeline was trimmed after the offset"
    );
    let recent = r.entries.last().unwrap().offset;
    assert!(
        read(vec![(fresh, None), (busy, None)], recent)
            .await
            .recoverable
    );
    assert!(
        !read(vec![], Offset::new(u64::MAX / 2, 0)).await.recoverable,
        "an offset from the future"
    );

    // Redis lost its data (here: the clock): older offsets predate the new clock.
    let mut c = cache
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("DEL")
        .arg(cache.keys.clock(Uuid::nil()))
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    cache
        .publish_events(&[to_group("{}", fresh, &[])])
        .await
        .unwrap();
    let r = read(vec![(fresh, None)], recent).await;
    assert!(r.since > recent, "a new clock");
    assert!(!r.recoverable, "an offset older than the clock's since");
}

#[tokio::test]
async fn a_forgotten_gateway_follows_no_chat_and_idle_timelines_are_swept() {
    let app = spawn_with(Mode::ApiOnly, test_config(&[("RECOVERY_WINDOW_SECS", "1")])).await;
    let cache = &app.cache;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    cache.follow_chats("gw-x", &[a, b]).await.unwrap();
    cache.follow_chats("gw-y", &[a]).await.unwrap();
    cache.forget_gateway("gw-x", 0).await.unwrap();
    let mut c = cache
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let (fa, fb, left): (Vec<String>, Vec<String>, Vec<String>) = redis::pipe()
        .smembers(cache.keys.chat_gateways(a))
        .smembers(cache.keys.chat_gateways(b))
        .smembers(cache.keys.gateway_chats("gw-x"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((fa, fb, left), (vec!["gw-y".to_string()], vec![], vec![]));

    cache
        .publish_events(&[to_group("{}", a, &[])])
        .await
        .unwrap();
    // The window under test is 1 s: the idle chat's only event ages past it.
    let aged: Offset = all_ids(cache, &cache.keys.chat_events(a)).await[0]
        .parse()
        .unwrap();
    poll::until_older_than(aged.ms, Duration::from_secs(1)).await;
    cache
        .publish_events(&[to_group("{}", b, &[])])
        .await
        .unwrap();
    assert_eq!(cache.sweep_streams().await.unwrap(), 1);
    assert!(all_ids(cache, &cache.keys.chat_events(a)).await.is_empty());
    assert_eq!(all_ids(cache, &cache.keys.chat_events(b)).await.len(), 1);
}
