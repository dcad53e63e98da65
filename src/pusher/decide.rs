//! Who gets a push for a message, and when: after `PUSH_DELAY_MS`, every member with a
//! registered device except the sender, unless they are connected, have read it,
//! blocked the sender, or muted the chat (a mention still notifies unless the mute
//! covers mentions); then at most one push per device and chat per coalescing window,
//! with a trailing flush when more messages came in it.

use std::collections::HashMap;

use chrono::Utc;
use uuid::Uuid;

use super::{
    Ctx, Failure,
    deliver::{self, Push},
    jobs::{self, Job},
};
use crate::{
    cache::push::{Claim, Claimant},
    db::{push::Stored as Device, pusher::MemberState},
    domain::message::Message,
    mq::Session,
};

fn dropped(reason: &'static str, n: usize) {
    metrics::counter!("courier_push_dropped_total", "reason" => reason).increment(n as u64);
}

/// Whether a muted chat keeps this message quiet for the member.
fn silenced(state: &MemberState, mention: bool) -> bool {
    !state.settings.pushes(Utc::now(), mention)
}

/// Waits until `at`, or fails with `Stopping` when the pusher stops first.
async fn wait_until(ctx: &Ctx, at: chrono::DateTime<Utc>) -> Result<(), Failure> {
    let Ok(left) = (at - Utc::now()).to_std() else {
        return Ok(());
    };
    tokio::select! {
        _ = ctx.stop.cancelled() => Err(Failure::Stopping),
        _ = tokio::time::sleep(left) => Ok(()),
    }
}

/// `message.created`: the pushes it causes.
pub async fn message(ctx: &Ctx, session: &Session, m: &Message) -> Result<(), Failure> {
    let devices = crate::db::push::of_chat(&ctx.pool, m.chat_id, m.sender_id).await?;
    if devices.is_empty() {
        return Ok(());
    }
    wait_until(ctx, m.sent_at + ctx.delay).await?;
    let mut by_user: HashMap<Uuid, Vec<Device>> = HashMap::new();
    for d in devices {
        by_user.entry(d.user_id).or_default().push(d);
    }
    let users: Vec<Uuid> = by_user.keys().copied().collect();
    let online = ctx.cache.connected_now(&users).await?;
    let mut offline = Vec::with_capacity(users.len());
    for (u, on) in users.iter().zip(online) {
        if on {
            dropped("online", by_user[u].len());
        } else {
            offline.push(*u);
        }
    }
    if offline.is_empty() {
        return Ok(());
    }
    let states = crate::db::pusher::member_states(&ctx.pool, m.chat_id, &offline).await?;
    let blocks = ctx.cache.blocks_near(&ctx.pool, &offline).await?;
    for state in &states {
        let devices = &by_user[&state.user_id];
        let mention = m.mentions.contains(&state.user_id);
        let reason = if state.last_read_sequence >= m.sequence || state.latest.is_none() {
            Some("read")
        } else if blocks
            .get(&state.user_id)
            .is_some_and(|r| r.blocking.contains(&m.sender_id))
        {
            Some("blocked")
        } else if silenced(state, mention) {
            Some("muted")
        } else {
            None
        };
        if let Some(reason) = reason {
            dropped(reason, devices.len());
            continue;
        }
        let Some((payload, seq)) = jobs::notification(m.chat_id, state) else {
            continue;
        };
        for d in devices {
            let claim = ctx
                .cache
                .push_claim(
                    (d.id, m.chat_id),
                    (m.id, seq),
                    ctx.coalesce,
                    Claimant::Message { mention },
                )
                .await?;
            match claim {
                Claim::Duplicate => dropped("duplicate", 1),
                Claim::Coalesced { schedule_flush } => {
                    dropped("coalesced", 1);
                    if schedule_flush {
                        let job = Job::Flush {
                            device: d.id,
                            user: d.user_id,
                            chat: m.chat_id,
                        };
                        let queue = ctx.topology.flush_queue();
                        if let Err(e) = deliver::enqueue(session, &queue, &job, 1).await {
                            // Unmark it, so the retried delivery schedules the flush again.
                            ctx.cache.push_trail_done(d.id, m.chat_id).await?;
                            return Err(e);
                        }
                    }
                }
                Claim::Send => {
                    let push = Push {
                        device: d,
                        chat: m.chat_id,
                        lead: m.id,
                        seq,
                        payload: payload.clone(),
                        urgent: mention,
                        attempt: 1,
                    };
                    deliver::push(ctx, session, push).await?;
                }
            }
        }
    }
    Ok(())
}

/// A coalescing window closed with messages in it: one more push if any is still
/// unread and newer than the last push.
pub async fn flush(
    ctx: &Ctx,
    session: &Session,
    (device, user, chat): (Uuid, Uuid, Uuid),
) -> Result<(), Failure> {
    let outcome = flush_once(ctx, session, device, user, chat).await;
    if outcome.is_ok() {
        ctx.cache.push_trail_done(device, chat).await?;
    }
    outcome
}

async fn flush_once(
    ctx: &Ctx,
    session: &Session,
    device: Uuid,
    user: Uuid,
    chat: Uuid,
) -> Result<(), Failure> {
    let Some(d) = crate::db::push::of_user(&ctx.pool, device, user).await? else {
        return Ok(());
    };
    if ctx.cache.connected_now(&[user]).await?.first() == Some(&true) {
        dropped("online", 1);
        return Ok(());
    }
    let trail = ctx.cache.push_trail(device, chat).await?;
    let states = crate::db::pusher::member_states(&ctx.pool, chat, &[user]).await?;
    let Some(state) = states.first() else {
        return Ok(());
    };
    let Some(latest) = state
        .latest
        .as_ref()
        .filter(|l| l.sequence > trail.pushed_seq)
    else {
        // Nothing arrived since the last push, or the member read it.
        return Ok(());
    };
    if silenced(state, trail.mention) {
        dropped("muted", 1);
        return Ok(());
    }
    let Some((payload, seq)) = jobs::notification(chat, state) else {
        return Ok(());
    };
    let lead = latest.id;
    let claim = ctx
        .cache
        .push_claim((device, chat), (lead, seq), ctx.coalesce, Claimant::Flush)
        .await?;
    if claim != Claim::Send {
        // A racing push (a redelivered one, after a crash) took this notification.
        dropped("duplicate", 1);
        return Ok(());
    }
    let push = Push {
        device: &d,
        chat,
        lead,
        seq,
        payload,
        urgent: trail.mention,
        attempt: 1,
    };
    deliver::push(ctx, session, push).await
}

/// A deferred push comes due: the same notification again, unless the device is gone.
pub async fn retry(ctx: &Ctx, session: &Session, job: Job) -> Result<(), Failure> {
    let Job::Retry {
        device,
        user,
        chat,
        lead,
        seq,
        payload,
        urgent,
        attempt,
        ..
    } = job
    else {
        return Ok(());
    };
    let Some(d) = crate::db::push::of_user(&ctx.pool, device, user).await? else {
        return Ok(());
    };
    let push = Push {
        device: &d,
        chat,
        lead,
        seq,
        payload,
        urgent,
        attempt: attempt + 1,
    };
    deliver::push(ctx, session, push).await
}
