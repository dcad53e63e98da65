//! The relay of chat changes an API process committed but did not hand to the broker
//! (it failed to publish or died): every few seconds, what is older than a grace period
//! is published to its chat's partition, then cleared. An announcement may so be sent
//! twice; `chat.updated` carries the whole chat and gateways drop a repeated version.
//! Also forgets applied lifecycle commands once no redelivery can come.

use std::{sync::Arc, time::Duration};

use super::Ctx;
use crate::{
    db::{lifecycle::purge_applied, manage},
    mq::{CONFIRM_TIMEOUT, Link, publish},
};

/// How often the outbox is looked at.
const EVERY: Duration = Duration::from_secs(2);
/// How old a change must be before the relay takes it over from its API process.
const GRACE_SECS: i32 = 5;
/// How long applied commands are remembered.
const APPLIED_KEPT_DAYS: i32 = 7;

pub async fn relay(link: Link, ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(EVERY);
    let mut rounds: u64 = 0;
    loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        rounds += 1;
        if rounds % 1800 == 1 {
            match purge_applied(&ctx.pool, APPLIED_KEPT_DAYS).await {
                Ok(n) => tracing::debug!(forgotten = n, "applied commands purged"),
                Err(e) => tracing::warn!(error = %e, "purging applied commands failed"),
            }
        }
        if let Err(e) = relay_once(&link, &ctx).await {
            tracing::warn!(error = %e, "outbox relay round failed");
        }
    }
}

async fn relay_once(link: &Link, ctx: &Ctx) -> anyhow::Result<()> {
    let stale = manage::stale_changes(&ctx.pool, GRACE_SECS, 100).await?;
    if stale.is_empty() {
        return Ok(());
    }
    let Some(session) = link.current() else {
        return Ok(());
    };
    for cmd in stale {
        let body = serde_json::to_vec(&cmd)?;
        let props = publish::json_properties(&cmd.command_id.to_string(), Default::default());
        publish::publish_confirmed(
            &session.publish,
            &ctx.topology.exchange,
            &ctx.topology.route(cmd.chat_id),
            &body,
            props,
            CONFIRM_TIMEOUT,
        )
        .await?;
        manage::forget_change(&ctx.pool, cmd.command_id).await?;
        metrics::counter!("courier_outbox_relayed_total").increment(1);
    }
    Ok(())
}
