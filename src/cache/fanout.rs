//! Publishing in Redis Cluster mode. A group event goes to each member's own stream
//! (a chat's timeline would live in another slot than its members' streams and
//! clocks), so group targets are expanded to the members first; then the targets are
//! split by slot and the publish script runs once per slot, on the node serving it.
//!
//! The slots' calls are not one transaction: when some fail (their master is lost)
//! and others went through, returning the error would have the worker publish the
//! batch again and the others' users get its events twice. So a failed slot is tried
//! again here, alone, until its replica is promoted ([`SLOT_PATIENCE`]).

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use futures::{StreamExt, TryStreamExt};
use uuid::Uuid;

use super::{Cache, cluster::key_slot, events::Part};
use crate::domain::events::Outgoing;

/// How many slots' publish calls are in flight at once.
const IN_FLIGHT: usize = 32;
/// How long one slot's publish is retried before the batch fails (a failover takes
/// the cluster's node timeout plus an election: seconds).
const SLOT_PATIENCE: Duration = Duration::from_secs(60);

/// The targets of one event in one slot (`expanded`: group members).
struct Share {
    event: usize,
    expanded: bool,
    targets: Vec<(Uuid, &'static str)>,
}

impl Cache {
    pub(super) async fn publish_split(
        &self,
        events: &[Outgoing],
        keep: bool,
    ) -> redis::RedisResult<()> {
        let members = self.group_members(events).await?;
        let mut slots: HashMap<u16, Vec<Share>> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            let mut add = |user: Uuid, name: &'static str, expanded: bool| {
                let slot = key_slot(self.keys.user_events(user).as_bytes());
                let shares = slots.entry(slot).or_default();
                match shares.last_mut() {
                    Some(s) if s.event == i && s.expanded == expanded => {
                        s.targets.push((user, name));
                    }
                    _ => shares.push(Share {
                        event: i,
                        expanded,
                        targets: vec![(user, name)],
                    }),
                }
            };
            for (user, name) in &e.targets {
                add(*user, name, false);
            }
            let (Some(g), Some(chat)) = (Self::group_of(e), e.chat) else {
                continue;
            };
            let own: HashSet<Uuid> = e.targets.iter().map(|(u, _)| *u).collect();
            for user in members.get(&chat).into_iter().flatten() {
                if !own.contains(user) && !g.except.contains(user) {
                    add(*user, g.name, true);
                }
            }
        }
        futures::stream::iter(slots.into_values())
            .map(|shares| async move {
                let parts: Vec<Part<'_>> = shares
                    .iter()
                    .map(|s| Part {
                        event: &events[s.event],
                        targets: &s.targets,
                        group: None,
                        expanded: s.expanded,
                    })
                    .collect();
                let deadline = tokio::time::Instant::now() + SLOT_PATIENCE;
                let mut backoff = crate::backoff::Backoff::new(
                    Duration::from_millis(100),
                    Duration::from_secs(1),
                );
                loop {
                    let mut conn = self.conn.clone();
                    match self
                        .invocation(&parts, keep)
                        .invoke_async::<()>(&mut conn)
                        .await
                    {
                        Err(e)
                            if !matches!(e.retry_method(), redis::RetryMethod::NoRetry)
                                && tokio::time::Instant::now() < deadline =>
                        {
                            tracing::warn!(error = %e, "publish to a cluster slot failed; retrying");
                            tokio::time::sleep(backoff.next_delay()).await;
                        }
                        done => return done,
                    }
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    /// The members of the group chats `events` go to.
    async fn group_members(
        &self,
        events: &[Outgoing],
    ) -> redis::RedisResult<HashMap<Uuid, Vec<Uuid>>> {
        let mut chats: Vec<Uuid> = events
            .iter()
            .filter(|e| Self::group_of(e).is_some())
            .filter_map(|e| e.chat)
            .collect();
        if chats.is_empty() {
            return Ok(HashMap::new());
        }
        chats.sort();
        chats.dedup();
        let Some(pool) = &self.pool else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "cluster mode needs the database for group members",
            )));
        };
        self.members(pool, &chats).await.map_err(|e| match e {
            super::membership::LookupError::Redis(e) => e,
            super::membership::LookupError::Db(e) => redis::RedisError::from((
                redis::ErrorKind::Io,
                "group members unavailable",
                e.to_string(),
            )),
        })
    }
}
