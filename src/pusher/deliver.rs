//! Sending one notification to one device and settling what the push service said:
//! sent (remembered for dedupe), gone (the device is forgotten), retry later (a job on
//! a retry queue, honouring `Retry-After`), or failed (dead-lettered with the reason).

use lapin::{BasicProperties, types::FieldTable};
use uuid::Uuid;

use super::{Ctx, Failure, jobs::Job, topology::PushTopology};
use crate::{
    db::push::Stored as Device,
    domain::push::Payload,
    mq::{
        CONFIRM_TIMEOUT, HEADER_ATTEMPTS, HEADER_LAST_ERROR, HEADER_REASON, HEADER_SOURCE_QUEUE,
        Session, long_string,
        publish::{json_properties, publish_confirmed},
    },
    push::{Outcome, SendOpts, Target, Urgency},
};

/// One push to make.
pub struct Push<'a> {
    pub device: &'a Device,
    pub chat: Uuid,
    /// The message that led this push (its dedupe key).
    pub lead: Uuid,
    pub seq: i64,
    pub payload: Payload,
    pub urgent: bool,
    /// 1 for the first attempt.
    pub attempt: u32,
}

impl Push<'_> {
    /// This push as a job: to retry, or to dead-letter.
    fn into_job(self, last_error: &str) -> Job {
        Job::Retry {
            device: self.device.id,
            user: self.device.user_id,
            chat: self.chat,
            lead: self.lead,
            seq: self.seq,
            payload: self.payload,
            urgent: self.urgent,
            attempt: self.attempt,
            last_error: last_error.to_string(),
        }
    }
}

fn target(d: &Device) -> Option<Target> {
    match d.kind.as_str() {
        "webpush" => Some(Target::WebPush {
            endpoint: d.endpoint.clone(),
            p256dh: d.p256dh.clone()?,
            auth: d.auth.clone()?,
        }),
        "fcm" => Some(Target::Fcm {
            token: d.endpoint.clone(),
        }),
        _ => None,
    }
}

/// Sends `p` and settles the outcome. Errors are the pusher's own (Redis, PostgreSQL,
/// the broker): the caller retries the whole delivery, and the dedupe markers keep
/// what was already sent from being sent again.
pub async fn push(ctx: &Ctx, session: &Session, p: Push<'_>) -> Result<(), Failure> {
    let kind = p.device.kind.clone();
    let (device, attempt) = (p.device.id, p.attempt);
    let Some(target) = target(p.device) else {
        metrics::counter!("courier_push_failed_total", "kind" => kind, "reason" => "malformed")
            .increment(1);
        return Ok(());
    };
    let opts = SendOpts {
        ttl: ctx.ttl,
        urgency: if p.urgent {
            Urgency::High
        } else {
            Urgency::Normal
        },
        topic: p.chat.simple().to_string(),
        collapse_key: p.chat.to_string(),
    };
    let started = std::time::Instant::now();
    let outcome = ctx.sender.send(&target, &p.payload, &opts).await;
    metrics::histogram!("courier_push_send_seconds", "kind" => kind.clone())
        .record(started.elapsed().as_secs_f64());
    match outcome {
        Outcome::Sent => {
            ctx.cache.push_sent(p.device.id, p.lead).await?;
            metrics::counter!("courier_push_sent_total", "kind" => kind).increment(1);
            let lag = (chrono::Utc::now() - p.payload.sent_at).num_milliseconds();
            metrics::histogram!("courier_push_lag_seconds").record(lag.max(0) as f64 / 1000.0);
        }
        Outcome::Gone => {
            crate::db::push::prune(&ctx.pool, p.device.id).await?;
            tracing::info!(device = %p.device.id, %kind, "push service says the device is gone; forgotten");
            metrics::counter!("courier_push_pruned_total", "kind" => kind).increment(1);
        }
        Outcome::Retry { after, reason } => {
            let job = p.into_job(&reason);
            if attempt >= super::topology::MAX_ATTEMPTS {
                dead_letter(ctx, session, &job, "retries_exhausted", &reason).await?;
                metrics::counter!("courier_push_failed_total", "kind" => kind, "reason" => "retries_exhausted")
                    .increment(1);
            } else {
                let delay = PushTopology::retry_level(attempt, after);
                let queue = ctx.topology.retry_queue(delay);
                enqueue(session, &queue, &job, attempt).await?;
                tracing::debug!(%device, %reason, ?delay, "push deferred");
                metrics::counter!("courier_push_retried_total", "kind" => kind).increment(1);
            }
        }
        Outcome::Failed { reason } => {
            let job = p.into_job(&reason);
            dead_letter(ctx, session, &job, "rejected", &reason).await?;
            tracing::warn!(%device, %kind, %reason, "push rejected; dead-lettered");
            metrics::counter!("courier_push_failed_total", "kind" => kind, "reason" => "rejected")
                .increment(1);
        }
    }
    Ok(())
}

/// Queues one of the pusher's jobs on `queue` (through the default exchange).
pub async fn enqueue(
    session: &Session,
    queue: &str,
    job: &Job,
    attempts: u32,
) -> Result<(), Failure> {
    let mut headers = FieldTable::default();
    headers.insert(
        HEADER_ATTEMPTS.into(),
        lapin::types::AMQPValue::LongUInt(attempts),
    );
    publish_job(session, queue, job, json_properties(&job_id(job), headers)).await
}

async fn dead_letter(
    ctx: &Ctx,
    session: &Session,
    job: &Job,
    reason: &str,
    last_error: &str,
) -> Result<(), Failure> {
    let attempts = match job {
        Job::Retry { attempt, .. } => *attempt,
        Job::Flush { .. } => 1,
    };
    let mut headers = FieldTable::default();
    headers.insert(HEADER_REASON.into(), long_string(reason));
    headers.insert(HEADER_LAST_ERROR.into(), long_string(last_error));
    headers.insert(HEADER_SOURCE_QUEUE.into(), long_string(&ctx.topology.queue));
    headers.insert(
        HEADER_ATTEMPTS.into(),
        lapin::types::AMQPValue::LongUInt(attempts),
    );
    let dlq = ctx.topology.dlq();
    publish_job(session, &dlq, job, json_properties(&job_id(job), headers)).await
}

/// Dead-letters a delivery the pusher cannot read (reason `malformed`).
pub async fn dead_letter_raw(
    ctx: &Ctx,
    session: &Session,
    body: &[u8],
    error: &str,
) -> Result<(), Failure> {
    let mut headers = FieldTable::default();
    headers.insert(HEADER_REASON.into(), long_string("malformed"));
    headers.insert(HEADER_LAST_ERROR.into(), long_string(error));
    headers.insert(HEADER_SOURCE_QUEUE.into(), long_string(&ctx.topology.queue));
    let props = json_properties(&Uuid::new_v4().to_string(), headers);
    publish_confirmed(
        &session.publish,
        "",
        &ctx.topology.dlq(),
        body,
        props,
        CONFIRM_TIMEOUT,
    )
    .await?;
    Ok(())
}

fn job_id(job: &Job) -> String {
    match job {
        Job::Flush { device, chat, .. } => format!("push:flush:{device}:{chat}"),
        Job::Retry {
            device,
            lead,
            attempt,
            ..
        } => format!("push:retry:{device}:{lead}:{attempt}"),
    }
}

async fn publish_job(
    session: &Session,
    queue: &str,
    job: &Job,
    props: BasicProperties,
) -> Result<(), Failure> {
    let body = serde_json::to_vec(job).map_err(|e| Failure::Internal(e.to_string()))?;
    publish_confirmed(&session.publish, "", queue, &body, props, CONFIRM_TIMEOUT).await?;
    Ok(())
}
