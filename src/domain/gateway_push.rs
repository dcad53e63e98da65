//! What the notification channel carries to a gateway: each payload once, then the
//! deliveries it asks for (to a user's connections, or to a group's members on the
//! gateway), in offset order: pushes reach a gateway in that order, and what a gateway
//! may have missed (it lost its subscription or its routing entries) it reads back.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::events::{Event, Membership};

/// What a gateway receives on its channel: payloads once, then one target per
/// (payload, recipient) with that recipient on this gateway, and one per (payload,
/// group chat) this gateway follows.
#[derive(Debug, Deserialize)]
pub struct Push {
    /// Payloads.
    pub d: Vec<Box<RawValue>>,
    /// The chat of each payload ("" when none).
    pub c: Vec<String>,
    /// The sequence of each payload (0 when none).
    pub s: Vec<i64>,
    /// `[payload index, user, offset, event name]`; the offset is "" for ephemeral
    /// events.
    pub t: Vec<(usize, Uuid, String, String)>,
    /// The membership code (`Membership::code`) of each payload's per-user targets;
    /// empty when none has one.
    #[serde(default)]
    pub m: Vec<u8>,
    /// `[payload index, chat, offset, event name, except]`: to every member of the group
    /// on this gateway but `except`.
    #[serde(default)]
    pub g: Vec<(usize, Uuid, String, String, Vec<Uuid>)>,
}

/// One delivery a push asks of a gateway.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// To one user's connections.
    User(Uuid, Event),
    /// To the connections of a group's members, but `except`.
    Group {
        chat: Uuid,
        except: Arc<[Uuid]>,
        event: Event,
    },
}

impl Delivery {
    /// A per-user delivery as (recipient, event); `None` for a group's.
    pub fn into_user(self) -> Option<(Uuid, Event)> {
        match self {
            Self::User(u, e) => Some((u, e)),
            Self::Group { .. } => None,
        }
    }
}

impl Push {
    fn event(
        &self,
        data: &[Arc<RawValue>],
        (i, offset, name): (usize, &str, String),
        membership: Option<Membership>,
    ) -> Option<Event> {
        Some(Event {
            name: Arc::from(name),
            data: data.get(i)?.clone(),
            chat: self.c.get(i).and_then(|c| Uuid::parse_str(c).ok()),
            sequence: self.s.get(i).copied().unwrap_or(0),
            offset: if offset.is_empty() {
                None
            } else {
                Some(offset.parse().ok()?)
            },
            membership,
        })
    }

    /// The push's deliveries in stream order (by payload; a payload's per-user and
    /// group deliveries share its offset).
    pub fn into_deliveries(mut self) -> Vec<Delivery> {
        let data: Vec<Arc<RawValue>> = std::mem::take(&mut self.d)
            .into_iter()
            .map(Arc::from)
            .collect();
        let mut out: Vec<(usize, Delivery)> = Vec::with_capacity(self.t.len() + self.g.len());
        for (i, user, offset, name) in std::mem::take(&mut self.t) {
            let m = Membership::from_code(self.m.get(i).copied().unwrap_or(0));
            if let Some(e) = self.event(&data, (i, &offset, name), m) {
                out.push((i, Delivery::User(user, e)));
            }
        }
        for (i, chat, offset, name, except) in std::mem::take(&mut self.g) {
            if let Some(event) = self.event(&data, (i, &offset, name), None) {
                let except = Arc::from(except);
                out.push((
                    i,
                    Delivery::Group {
                        chat,
                        except,
                        event,
                    },
                ));
            }
        }
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, d)| d).collect()
    }
}
