//! A fake gateway: registers one connection per user under the id "gw-probe" and
//! subscribes to that gateway's channel, so a test sees exactly what the worker pushes.

use std::{collections::VecDeque, time::Duration};

use courier::domain::events::{Delivery, Event, Push};
use futures::{StreamExt, stream::BoxStream};
use uuid::Uuid;

use super::{TestApp, TestUser};

pub struct Probe {
    pushes: BoxStream<'static, redis::Msg>,
    pending: VecDeque<(Uuid, Event)>,
}

impl Probe {
    pub async fn new(app: &TestApp, users: &[&TestUser]) -> Self {
        for u in users {
            app.cache
                .register_conn("gw-probe", u.id, &format!("s-{}", u.id))
                .await
                .unwrap();
        }
        let mut pubsub = app.cache.client().get_async_pubsub().await.unwrap();
        pubsub
            .subscribe(app.cache.keys.gateway_channel("gw-probe"))
            .await
            .unwrap();
        Probe {
            pushes: pubsub.into_on_message().boxed(),
            pending: VecDeque::new(),
        }
    }

    /// The events of the next push, as (recipient, event) pairs.
    pub async fn next_push(&mut self) -> Vec<(Uuid, Event)> {
        let msg = tokio::time::timeout(Duration::from_secs(10), self.pushes.next())
            .await
            .expect("a push within 10 s")
            .expect("the subscription is open");
        let push: Push = serde_json::from_slice(msg.get_payload_bytes()).unwrap();
        push.into_deliveries()
            .into_iter()
            .filter_map(Delivery::into_user)
            .collect()
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
