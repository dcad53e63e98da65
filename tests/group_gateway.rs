//! The gateway's side of group timelines, through real SSE clients of the in-process
//! app: group events reach the members' connections but `except`, in id order; an
//! offset is recovered across the user's stream and their groups' timelines; a join
//! brings the group's events after it in order (even those published before the
//! gateway followed the chat); a leave ends them.

mod common;

use std::time::Duration;

use common::{TestApp, TestUser, spawn_app};
use courier::domain::events::{
    EVENT_CHAT_REMOVED, EVENT_CHAT_UPDATED, EVENT_PINS, EVENT_RECOVERED, GroupTarget, Membership,
    Outgoing,
};
use serde_json::Value;
use uuid::Uuid;

/// One SSE event: name, `id:` (the offset), data.
#[derive(Debug, Clone)]
struct Frame {
    event: String,
    id: Option<String>,
    data: Value,
}

struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    async fn open(app: &TestApp, user: &TestUser, last_event_id: Option<&str>) -> Self {
        let mut req = app
            .http
            .get(format!("{}/events", app.addr))
            .bearer_auth(&user.token);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200);
        Sse {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (pings skipped), within 10 s.
    async fn next(&mut self) -> Frame {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let mut frame = Frame {
                        event: String::new(),
                        id: None,
                        data: Value::Null,
                    };
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            frame.event = v.trim().to_string();
                        } else if let Some(v) = line.strip_prefix("id:") {
                            frame.id = Some(v.trim().to_string());
                        } else if let Some(v) = line.strip_prefix("data:") {
                            frame.data = serde_json::from_str(v.trim()).unwrap_or(Value::Null);
                        }
                    }
                    if !frame.event.is_empty() {
                        return frame;
                    }
                    continue;
                }
                let chunk = self.response.chunk().await.unwrap().expect("stream open");
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("an SSE event within 10 s")
    }

    /// The next event this test published (the app's own, e.g. from the group's
    /// creation, are skipped).
    async fn next_n(&mut self) -> Frame {
        loop {
            let f = self.next().await;
            if f.data.get("n").is_some() {
                return f;
            }
        }
    }

    /// Reads up to `session.recovered`; returns what came before it and its payload.
    async fn opening(&mut self) -> (Vec<Frame>, Value) {
        let mut before = Vec::new();
        loop {
            let f = self.next().await;
            if f.event == EVENT_RECOVERED {
                return (before, f.data);
            }
            before.push(f);
        }
    }
}

fn group_event(chat: Uuid, n: u32, except: &[Uuid]) -> Outgoing {
    Outgoing {
        data: format!(r#"{{"n":{n}}}"#),
        chat: Some(chat),
        group: Some(GroupTarget {
            name: EVENT_PINS,
            except: except.to_vec(),
        }),
        ..Outgoing::default()
    }
}

fn to_user(user: Uuid, name: &'static str, chat: Uuid, n: u32, m: Option<Membership>) -> Outgoing {
    Outgoing {
        data: format!(r#"{{"n":{n}}}"#),
        chat: Some(chat),
        targets: vec![(user, name)],
        membership: m,
        ..Outgoing::default()
    }
}

fn n(f: &Frame) -> i64 {
    f.data["n"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn group_events_reach_members_in_order_recover_and_follow_joins_and_leaves() {
    let app = spawn_app().await;
    let (alice, bob, carol) = (
        app.register("alice").await,
        app.register("bob").await,
        app.register("carol").await,
    );
    let chat = app.group_chat(&alice, &[&bob]).await;
    let publish = |events: Vec<Outgoing>| {
        let cache = app.cache.clone();
        async move { cache.publish_events(&events).await.unwrap() }
    };

    // Bob's groups are loaded at opening: the chat's events come to him, but those
    // that except him.
    let mut bob_sse = Sse::open(&app, &bob, None).await;
    let (_, opened) = bob_sse.opening().await;
    assert_eq!(opened["recovered"], false);
    publish(vec![group_event(chat, 1, &[alice.id])]).await;
    publish(vec![
        group_event(chat, 2, &[bob.id]),
        group_event(chat, 3, &[]),
    ])
    .await;
    let (e1, e3) = (bob_sse.next_n().await, bob_sse.next_n().await);
    assert_eq!((e1.event.as_str(), n(&e1), n(&e3)), (EVENT_PINS, 1, 3));
    assert!(e1.id.is_some() && e3.id.is_some());
    let seen = e3.id.clone().unwrap();
    assert_eq!(
        e3.data["offset"],
        seen.as_str(),
        "the offset is in the payload too"
    );

    // Away: what the group got meanwhile comes back with his offset, in id order with
    // his own events.
    drop(bob_sse);
    publish(vec![group_event(chat, 4, &[])]).await;
    publish(vec![to_user(bob.id, EVENT_CHAT_UPDATED, chat, 5, None)]).await;
    publish(vec![group_event(chat, 6, &[bob.id])]).await;
    let mut bob_sse = Sse::open(&app, &bob, Some(&seen)).await;
    let (replay, recovered) = bob_sse.opening().await;
    assert_eq!(recovered["recovered"], true, "{recovered}");
    assert_eq!(
        replay.iter().map(n).filter(|n| *n > 0).collect::<Vec<_>>(),
        vec![4, 5],
        "{replay:?}"
    );

    // Carol joins another group, whose event right after the join is published before
    // this gateway follows that chat: she gets both, in order, then live ones.
    let other = Uuid::new_v4();
    let mut carol_sse = Sse::open(&app, &carol, None).await;
    carol_sse.opening().await;
    publish(vec![
        to_user(
            carol.id,
            EVENT_CHAT_UPDATED,
            other,
            10,
            Some(Membership::Joined),
        ),
        group_event(other, 11, &[]),
    ])
    .await;
    let (joined, first) = (carol_sse.next_n().await, carol_sse.next_n().await);
    assert_eq!(
        (joined.event.as_str(), n(&joined)),
        (EVENT_CHAT_UPDATED, 10)
    );
    assert_eq!((first.event.as_str(), n(&first)), (EVENT_PINS, 11));
    publish(vec![group_event(other, 12, &[])]).await;
    assert_eq!(n(&carol_sse.next_n().await), 12);

    // She leaves it: nothing more of it.
    publish(vec![
        to_user(
            carol.id,
            EVENT_CHAT_REMOVED,
            other,
            13,
            Some(Membership::Left),
        ),
        group_event(other, 14, &[]),
    ])
    .await;
    publish(vec![group_event(other, 15, &[])]).await;
    publish(vec![to_user(carol.id, EVENT_CHAT_UPDATED, chat, 16, None)]).await;
    let got: Vec<i64> = vec![n(&carol_sse.next_n().await), n(&carol_sse.next_n().await)];
    assert_eq!(got, vec![13, 16], "14 and 15 came after she left");

    // Bob, still connected, got the group's later events live; carol's none of his.
    publish(vec![group_event(chat, 7, &[])]).await;
    assert_eq!(n(&bob_sse.next_n().await), 7);
}

#[tokio::test]
async fn after_redis_lost_its_data_the_gateway_follows_its_groups_again() {
    let app = spawn_app().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let chat = app.group_chat(&alice, &[&bob]).await;
    let mut bob_sse = Sse::open(&app, &bob, None).await;
    bob_sse.opening().await;
    let gateways = |cache: courier::cache::Cache| async move {
        let mut c = cache
            .client()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        redis::cmd("SMEMBERS")
            .arg(cache.keys.chat_gateways(chat))
            .query_async::<Vec<String>>(&mut c)
            .await
            .unwrap()
    };
    let gw = app.config.gateway_id.clone();
    assert_eq!(gateways(app.cache.clone()).await, vec![gw.clone()]);

    // A flush: routing, follows and clock gone. The lease notices within a second.
    app.cache.purge_prefix().await.unwrap();
    common::poll::until("the chat to be followed again", || {
        let (cache, gw) = (app.cache.clone(), gw.clone());
        async move { (gateways(cache).await == vec![gw]).then_some(()) }
    })
    .await;
    app.cache
        .publish_events(&[group_event(chat, 1, &[alice.id])])
        .await
        .unwrap();
    assert_eq!(n(&bob_sse.next_n().await), 1);
}
