//! The groups scenario with `--sizes`: one large group per size, members minted by
//! SQL and added through the REST API, `--online` of them connected (one socket each,
//! alternating over the gateways). Per size: a fixed offered rate (`--rate`) for
//! warm-up + duration, with CPU per message of each process and service and Redis
//! memory per message over it; then a ramp of rates until p99 passes the limit.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, bail, ensure};
use hyper::StatusCode;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::{
    cli::Args,
    deploy::{Deployment, Isolation},
    http::{Conn, bearer},
    large_churn::{self, Churn, ChurnOp},
    large_redis::{self, RedisMemory},
    large_track::{self, GroupTracker, PhaseCount, Send},
    mint, setup,
    track::Percentiles,
    usage::{Probe, Usage},
};

/// Participants per `POST /chats` or `POST /chats/:id/participants` (the API's limit).
const BATCH: usize = 1000;
/// Handshakes in flight at once, at most (200 at once got `unavailable` refusals).
const CONNECT_CONCURRENCY: usize = 50;
/// Sender connections for `rate`: one per 10 msg/s (a send's 202 can take 100 ms
/// and more here), 16 to 256.
fn senders(rate: f64) -> usize {
    ((rate / 10.0).ceil() as usize).clamp(16, 256)
}

/// A ramp step counts only if its senders kept up: at least this share of the rate.
const KEPT_UP: f64 = 0.9;
/// Idle interval before the fixed phase: each process's CPU rate over it is the
/// baseline subtracted for the "net" CPU per message.
const IDLE_BASELINE: Duration = Duration::from_secs(5);
/// After a ramp step, how long its last messages may take before counting as late.
const STEP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub rate: f64,
    pub count: PhaseCount,
    pub e2e: Percentiles,
    pub pass: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SizeFigures {
    pub members: usize,
    pub online: usize,
    pub sockets_connected: usize,
    pub socket_errors: std::collections::HashMap<String, usize>,
    pub setup_secs: f64,
    pub connect_secs: f64,
    /// Handshakes that failed and were tried again (refused `unavailable`, timeouts).
    pub connect_retries: u64,
    pub load_average_before: String,
    pub rate: f64,
    /// Warm-up + measured messages of the fixed phase.
    pub fixed: PhaseCount,
    /// e2e of the measured part (after the warm-up): REST send → `chat.message.new`.
    pub e2e: Percentiles,
    pub accept: Percentiles,
    /// Seconds after the fixed phase's last send until every online member had every message.
    pub drain_secs: f64,
    /// CPU from the fixed phase's first send to its drain, ÷ its accepted messages.
    pub cpu_us_per_message: Vec<(String, f64)>,
    /// The same minus each one's idle CPU rate (over 5 s just before) times the window.
    pub cpu_us_per_message_net: Vec<(String, f64)>,
    pub usage: Usage,
    pub idle_usage: Usage,
    pub redis_before: RedisMemory,
    pub redis_after: RedisMemory,
    pub used_memory_per_message: f64,
    pub run_keys_bytes_per_message: f64,
    /// Mean `chat.message.new` packet received (one copy of the event), bytes.
    pub event_bytes: f64,
    pub ramp: Vec<Step>,
    /// The last ramp rate with p99 ≤ the limit and nothing lost; `None`: not even the first.
    pub max_sustained_rate: Option<f64>,
    /// Every ramp rate passed (the highest sustained rate is at least the last one).
    pub ramp_exhausted: bool,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub unknown_events: u64,
    pub errors: std::collections::BTreeMap<String, u64>,
    /// `--churn`: join, leave, rename (after the fixed phase, before the ramp).
    pub churn: Vec<ChurnOp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LargeFigures {
    pub gateways: usize,
    /// `--online-count`: the same number online at every size.
    pub online_count: Option<usize>,
    pub sizes: Vec<SizeFigures>,
    /// Why the run stopped before its last size (the Redis growth guard); the sizes
    /// measured before it are kept.
    pub stopped: Option<String>,
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub async fn run(args: &Args, dep: &Deployment, iso: &Isolation) -> anyhow::Result<LargeFigures> {
    let (mut sizes, mut stopped) = (Vec::new(), None);
    for &n in &args.sizes {
        let limit = args.redis_growth_limit_mb;
        // Dropping `one_size` on the guard closes its sockets (their tasks are aborted);
        // the caller then stops the deployment and removes the run's keys.
        let figures = tokio::select! {
            f = one_size(args, dep, iso, n) => f?,
            used = large_redis::guard(limit) => {
                let why = format!(
                    "group of {n}: Redis used_memory grew by more than {limit} MB (now {} MB); stopped (--redis-growth-limit-mb)",
                    used >> 20
                );
                eprintln!("[bench] {why}");
                stopped = Some(why);
                break;
            }
        };
        sizes.push(figures);
    }
    Ok(LargeFigures {
        gateways: dep.gateways.len(),
        online_count: args.online_count,
        sizes,
        stopped,
    })
}

/// Mints `n` + 1 users and makes user 0 the owner of a group with the first `n`
/// (the last one stays outside, for `--churn`'s join).
async fn group(
    dep: &Deployment,
    iso: &Isolation,
    n: usize,
) -> anyhow::Result<(Vec<setup::User>, String)> {
    let (url, secret, tag) = (
        iso.database_url(),
        iso.jwt_secret.clone(),
        format!("{}s{n}", iso.tag),
    );
    let users =
        tokio::task::spawn_blocking(move || mint::users(&url, &secret, &tag, n + 1)).await??;
    let mut conn = Conn::new(dep.api);
    let owner = users[0].token.as_str();
    let ids: Vec<&str> = users[1..n].iter().map(|u| u.id.as_str()).collect();
    let mut batches = ids.chunks(BATCH);
    let first = batches.next().unwrap_or(&[]);
    let body =
        json!({"type": "group", "title": format!("large group {n}"), "participantIds": first});
    let r = setup::post(&mut conn, "/chats", Some(owner), &body).await?;
    ensure!(
        r.status == StatusCode::CREATED,
        "create group: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    let chat: serde_json::Value = serde_json::from_slice(&r.body).context("chat answer")?;
    let chat = chat["id"].as_str().context("chat id")?.to_string();
    for batch in batches {
        let path = format!("/chats/{chat}/participants");
        let r = setup::post(&mut conn, &path, Some(owner), &json!({"userIds": batch})).await?;
        ensure!(
            r.status.is_success(),
            "add participants: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    Ok((users, chat))
}

async fn one_size(
    args: &Args,
    dep: &Deployment,
    iso: &Isolation,
    n: usize,
) -> anyhow::Result<SizeFigures> {
    ensure!(n >= 2, "a group size must be at least 2");
    let load_average_before = load_average();
    let t = std::time::Instant::now();
    eprintln!("[bench] group of {n}: minting users, creating the group");
    let (users, chat) = group(dep, iso, n).await?;
    let online = args
        .online_count
        .unwrap_or((n as f64 * args.online).round() as usize)
        .clamp(1, n - 1);
    let rate = args.offered_rate().unwrap_or(20.0);
    let (warmup, duration) = (args.warmup.max(0.0), args.duration_secs().max(1.0));
    let fixed_msgs = (rate * (warmup + duration)).ceil() as usize + senders(rate);
    let ramp_msgs: usize = args
        .ramp
        .iter()
        .map(|r| (r * args.step).ceil() as usize + senders(*r))
        .sum();
    let capacity = (1 + fixed_msgs + ramp_msgs).min(args.max_messages as usize);
    // Phases: 0 barrier, 1 warm-up, 2 measured, 3.. ramp steps.
    let tracker = Arc::new(GroupTracker::new(
        capacity,
        3 + args.ramp.len(),
        online as u32,
    )?);
    let tokens: Vec<String> = users[1..=online].iter().map(|u| u.token.clone()).collect();
    eprintln!(
        "[bench] group of {n}: connecting {online} members to {} gateways",
        dep.gateways.len()
    );
    let members = large_track::connect(
        &dep.gateways,
        tokens,
        tracker.clone(),
        args.connect_concurrency.min(CONNECT_CONCURRENCY),
    )
    .await;
    if members.connected < online {
        let (errors, connected) = (members.errors.clone(), members.connected);
        members.close().await;
        bail!("only {connected}/{online} sockets connected: {errors:?}");
    }
    let to = Arc::new(Send {
        api: dep.api,
        path: format!("/chats/{chat}/messages"),
        auth: bearer(&users[0].token)?,
    });
    // Barrier: one message that every online member gets (their routing is in place).
    large_track::send(
        to.clone(),
        tracker.clone(),
        1.0,
        0.5,
        1,
        (0, 0, Duration::ZERO),
    )
    .await;
    if !tracker
        .wait_drained(0..1, Instant::now() + Duration::from_secs(60))
        .await
    {
        members.close().await;
        bail!("group of {n}: the first message did not reach every online member in 60 s");
    }
    let setup_secs = t.elapsed().as_secs_f64();

    eprintln!("[bench] group of {n}: {rate} msg/s for {warmup:.0} s + {duration:.0} s");
    let redis_before = large_redis::memory_of(&iso.redis_prefix).await?;
    let procs: Vec<(&str, u32)> = dep.procs.iter().map(|p| (p.name, p.pid())).collect();
    let idle_start = Probe::take(&procs);
    tokio::time::sleep(IDLE_BASELINE).await;
    let idle_usage = Probe::take(&procs).since(&idle_start);
    let first = Probe::take(&procs);
    let from = tracker.mark();
    let warm = Duration::from_secs_f64(warmup);
    large_track::send(
        to.clone(),
        tracker.clone(),
        rate,
        warmup + duration,
        senders(rate),
        (1, 2, warm),
    )
    .await;
    let sent_end = Instant::now();
    let range = from..tracker.mark();
    let grace = Duration::from_secs_f64(args.grace_secs());
    tracker.wait_drained(range.clone(), sent_end + grace).await;
    let drain_secs = sent_end.elapsed().as_secs_f64();
    let usage = Probe::take(&procs).since(&first);
    let redis_after = large_redis::memory_of(&iso.redis_prefix).await?;
    let fixed = tracker.count(range);
    let messages = fixed.accepted.max(1) as f64;
    let cpu = crate::usage::per_message(&usage, None, messages);
    let cpu_net = crate::usage::per_message(&usage, Some(&idle_usage), messages);
    let delta = |a: u64, b: u64| (b as f64 - a as f64) / messages;

    let churn = if args.churn {
        eprintln!("[bench] group of {n}: membership churn (join, leave, rename)");
        let c = Churn {
            api: dep.api,
            chat: &chat,
            owner_token: &users[0].token,
            newcomer: &users[n].id,
            prefix: &iso.redis_prefix,
            procs: &procs,
            idle: &idle_usage,
        };
        let ops = large_churn::run(&c, &tracker, online as u64, args.churn_rounds).await?;
        for op in &ops {
            eprintln!("{}", op.line(n));
        }
        ops
    } else {
        Vec::new()
    };
    let (ramp, max_sustained_rate) = ramp(args, &to, &tracker, n).await;
    // Let any backlog finish before the next size (bounded), then count every loss again.
    let all = 0..tracker.mark();
    tracker.wait_drained(all, Instant::now() + grace).await;
    let (duplicated, out_of_order, unknown_events) = tracker.flaws();
    let figures = SizeFigures {
        members: n,
        online,
        sockets_connected: members.connected,
        socket_errors: members.errors.clone(),
        setup_secs,
        connect_secs: members.secs,
        connect_retries: members.retries,
        load_average_before,
        rate,
        fixed,
        e2e: tracker.e2e(2),
        accept: tracker.accept(2),
        drain_secs,
        cpu_us_per_message: cpu,
        cpu_us_per_message_net: cpu_net,
        usage,
        idle_usage,
        used_memory_per_message: delta(redis_before.used_memory, redis_after.used_memory),
        run_keys_bytes_per_message: delta(redis_before.run_keys_bytes, redis_after.run_keys_bytes),
        redis_before,
        redis_after,
        event_bytes: tracker.mean_event_bytes(),
        ramp_exhausted: ramp.iter().all(|s| s.pass) && !ramp.is_empty(),
        ramp,
        max_sustained_rate,
        duplicated,
        out_of_order,
        unknown_events,
        errors: tracker.errors(),
        churn,
    };
    members.close().await;
    eprint!("{}", crate::large_report::size_text(&figures));
    Ok(figures)
}

/// Steps the rate up until p99 passes the limit or a message is lost or refused.
async fn ramp(
    args: &Args,
    to: &Arc<Send>,
    tracker: &Arc<GroupTracker>,
    n: usize,
) -> (Vec<Step>, Option<f64>) {
    let (mut steps, mut best) = (Vec::new(), None);
    for (i, &rate) in args.ramp.iter().enumerate() {
        let phase = (3 + i) as u8;
        let from = tracker.mark();
        large_track::send(
            to.clone(),
            tracker.clone(),
            rate,
            args.step,
            senders(rate),
            (phase, phase, Duration::ZERO),
        )
        .await;
        let range = from..tracker.mark();
        tracker
            .wait_drained(range.clone(), Instant::now() + STEP_GRACE)
            .await;
        let count = tracker.count(range);
        let e2e = tracker.e2e(phase);
        let pass = count.lost_messages == 0
            && count.failed == 0
            && count.unanswered == 0
            && count.accepted > 0
            && count.sent_per_s >= KEPT_UP * rate
            && e2e.p99_ms <= args.p99_limit_ms;
        eprintln!(
            "[bench] group of {n}: ramp {rate} msg/s (sent {:.0}/s): p50 {:.0} ms p99 {:.0} ms, {} accepted, {} not at every member after {}s, {} failed: {}",
            count.sent_per_s,
            e2e.p50_ms,
            e2e.p99_ms,
            count.accepted,
            count.lost_messages,
            STEP_GRACE.as_secs(),
            count.failed,
            if pass { "pass" } else { "stop" }
        );
        steps.push(Step {
            rate,
            count,
            e2e,
            pass,
        });
        if !pass {
            break;
        }
        best = Some(rate);
    }
    (steps, best)
}
