//! A fake gateway: registers one connection per user under the id "gw-probe", follows
//! their groups as a gateway does (and the groups a push says they joined or left), and
//! subscribes to that gateway's channel, so a test sees exactly what the worker pushes,
//! as (recipient, event) pairs.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use courier::{
    cache::Cache,
    domain::events::{Delivery, Event, Membership, Push},
};
use futures::{StreamExt, stream::BoxStream};
use uuid::Uuid;

use super::{TestApp, TestUser};

const GATEWAY: &str = "gw-probe";

pub struct Probe {
    pushes: BoxStream<'static, redis::Msg>,
    pending: VecDeque<(Uuid, Event)>,
    cache: Cache,
    /// The probe's users in each group they are in.
    groups: HashMap<Uuid, Vec<Uuid>>,
}

impl Probe {
    pub async fn new(app: &TestApp, users: &[&TestUser]) -> Self {
        let mut groups: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for u in users {
            app.cache
                .register_conn(GATEWAY, u.id, &format!("s-{}", u.id))
                .await
                .unwrap();
            for g in courier::db::chats::group_ids_of(&app.pool, u.id)
                .await
                .unwrap()
            {
                groups.entry(g).or_default().push(u.id);
            }
        }
        let chats: Vec<Uuid> = groups.keys().copied().collect();
        app.cache.follow_chats(GATEWAY, &chats).await.unwrap();
        let mut pubsub = app.cache.client().get_async_pubsub().await.unwrap();
        pubsub
            .subscribe(app.cache.keys.gateway_channel(GATEWAY))
            .await
            .unwrap();
        Probe {
            pushes: pubsub.into_on_message().boxed(),
            pending: VecDeque::new(),
            cache: app.cache.clone(),
            groups,
        }
    }

    /// The events of the next push, as (recipient, event) pairs.
    pub async fn next_push(&mut self) -> Vec<(Uuid, Event)> {
        let msg = tokio::time::timeout(Duration::from_secs(10), self.pushes.next())
            .await
            .expect("a push within 10 s")
            .expect("the subscription is open");
        let push: Push = serde_json::from_slice(msg.get_payload_bytes()).unwrap();
        let mut out = Vec::new();
        for d in push.into_deliveries() {
            match d {
                Delivery::User(user, event) => {
                    if let Some(chat) = event.chat {
                        self.membership(user, chat, event.membership).await;
                    }
                    out.push((user, event));
                }
                Delivery::Group {
                    chat,
                    except,
                    event,
                } => {
                    for u in self.groups.get(&chat).into_iter().flatten() {
                        if !except.contains(u) {
                            out.push((*u, event.clone()));
                        }
                    }
                }
            }
        }
        out
    }

    /// Follows (or stops following, for `user`) a group a push says they joined or left.
    async fn membership(&mut self, user: Uuid, chat: Uuid, change: Option<Membership>) {
        match change {
            Some(Membership::Joined) => {
                self.groups.entry(chat).or_default().push(user);
                self.cache.follow_chats(GATEWAY, &[chat]).await.unwrap();
            }
            Some(Membership::Left) => {
                if let Some(users) = self.groups.get_mut(&chat) {
                    users.retain(|u| *u != user);
                }
            }
            None => {}
        }
    }

    /// The next pushed event matching `pred` (others are skipped).
    pub async fn next_where(&mut self, pred: impl Fn(&Event) -> bool) -> (Uuid, Event) {
        loop {
            while let Some(e) = self.pending.pop_front() {
                if pred(&e.1) {
                    return e;
                }
            }
            let events = self.next_push().await;
            self.pending.extend(events);
        }
    }

    /// The next pushed event named `name`.
    pub async fn next(&mut self, name: &str) -> (Uuid, Event) {
        self.next_where(|e| &*e.name == name).await
    }
}
