//! The message-flow scenarios (throughput, latency, groups): users, chats and
//! receiving sockets are set up, then the senders load the API for warm-up +
//! duration while a probe reads CPU and memory at the window's edges, then the
//! run waits (bounded) for the last deliveries and reads the broker's queue depth.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use anyhow::{bail, ensure};
use serde::Serialize;
use tokio::time::Instant;

use crate::{
    cli::{Args, Scenario},
    deploy::{Deployment, Isolation},
    http::bearer,
    load::{self, Plan, Target},
    mint, rabbit,
    recv::{self, Recipient},
    setup::{self, ChatSpec, User},
    track::{Summary, Tracker},
    usage::{Probe, Usage},
};

/// Wait before reading queue depths (RabbitMQ's statistics interval is 5 s).
const QUEUE_STATS_DELAY: Duration = Duration::from_secs(6);

/// Pause after the sockets connected, so their routing entries are in Redis.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize)]
pub struct SetupFigures {
    pub users: usize,
    pub minted_tokens: bool,
    pub users_secs: f64,
    pub chats: usize,
    pub chats_secs: f64,
    pub recipients_per_chat: usize,
    pub sockets: usize,
    pub sockets_connected: usize,
    pub socket_errors: HashMap<String, usize>,
    pub connect_secs: f64,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    pub t_s: u32,
    pub offered: u64,
    pub accepted: u64,
    pub delivered: u64,
    pub open_sockets: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlowFigures {
    pub setup: SetupFigures,
    pub offered_rate_target: Option<f64>,
    pub senders: usize,
    pub summary: Summary,
    /// Seconds after the load ended until every accepted message was delivered
    /// (equal to the grace period if some never were).
    pub drain_secs: f64,
    pub usage: Usage,
    /// CPU microseconds per accepted message over the window, by process or service
    /// (on 2 cores, 5,000 msg/s leaves 400 µs per message for everything together).
    pub cpu_us_per_message: Vec<(String, f64)>,
    pub queues: Vec<rabbit::QueueDepth>,
    pub queue_depth_total: u64,
    pub timeline: Vec<Tick>,
    /// Redis memory held by the users' event streams at the end (recovery by offset).
    pub streams: crate::deploy::StreamMemory,
}

/// Makes `count` users, minting or registering them as `args` says.
pub async fn users(
    args: &Args,
    dep: &Deployment,
    iso: &Isolation,
    count: usize,
) -> anyhow::Result<(Vec<User>, bool, f64)> {
    let t = std::time::Instant::now();
    let minted = args.mint(count);
    let users = if minted {
        let (url, secret, tag) = (iso.database_url(), iso.jwt_secret.clone(), iso.tag.clone());
        tokio::task::spawn_blocking(move || mint::users(&url, &secret, &tag, count)).await??
    } else {
        setup::register(dep.api, &iso.tag, count, args.setup_concurrency).await?
    };
    Ok((users, minted, t.elapsed().as_secs_f64()))
}

/// The chats, each recipient's slot in each of its chats, and recipients per chat.
type Topology = (Vec<ChatSpec>, Vec<HashMap<u32, u8>>, usize);

/// Chats and each recipient's slot in them; users are `[senders..., recipients...]`.
fn topology(args: &Args) -> anyhow::Result<Topology> {
    let (s, r, c) = (args.sender_users.max(1), args.recipients, args.chat_count());
    ensure!(r > 0 && c > 0, "need at least one recipient and one chat");
    let per_chat = if args.scenario == Scenario::Groups {
        ensure!(
            (2..=33).contains(&args.group_size),
            "--group-size must be 2 to 33"
        );
        ensure!(
            args.group_size - 1 <= r,
            "--group-size - 1 must not exceed --recipients"
        );
        args.group_size - 1
    } else {
        1
    };
    let mut slots = vec![HashMap::new(); r];
    let specs = (0..c)
        .map(|i| {
            let others: Vec<usize> = (0..per_chat)
                .map(|j| {
                    let rec = (i * per_chat + j) % r;
                    slots[rec].insert(i as u32, j as u8);
                    s + rec
                })
                .collect();
            // Direct chats beyond R pair the same recipient with another sender.
            ChatSpec {
                owner: (i + i / r) % s,
                others,
                group: per_chat > 1,
            }
        })
        .collect();
    Ok((specs, slots, per_chat))
}

pub async fn run(args: &Args, dep: &Deployment, iso: &Isolation) -> anyhow::Result<FlowFigures> {
    let (specs, slots, per_chat) = topology(args)?;
    let n_users = args.sender_users.max(1) + args.recipients;
    eprintln!("[bench] setting up {n_users} users, {} chats", specs.len());
    let (users, minted, users_secs) = users(args, dep, iso, n_users).await?;
    let users = Arc::new(users);
    let t = std::time::Instant::now();
    let specs = Arc::new(specs);
    let chat_ids = setup::create_chats(
        dep.api,
        users.clone(),
        specs.clone(),
        args.setup_concurrency * 2,
    )
    .await?;
    let chats_secs = t.elapsed().as_secs_f64();
    let mut unique = chat_ids.clone();
    unique.sort();
    unique.dedup();
    ensure!(
        unique.len() == chat_ids.len(),
        "two chat indices got the same chat (too many direct chats for the users)"
    );

    let tracker = Arc::new(Tracker::new(&vec![per_chat as u32; chat_ids.len()])?);
    let recipients: Vec<Recipient> = slots
        .into_iter()
        .enumerate()
        .map(|(i, slots)| Recipient {
            token: users[args.sender_users.max(1) + i].token.clone(),
            slots,
        })
        .collect();
    eprintln!(
        "[bench] connecting {} sockets to {}",
        recipients.len(),
        dep.gateway
    );
    let (fleet, conn) = recv::connect_fleet(
        dep.gateway,
        recipients,
        Some(tracker.clone()),
        args.connect_concurrency,
        Duration::from_secs(120),
    )
    .await;
    if conn.connected == 0 {
        fleet.shutdown().await;
        bail!("no socket connected: {:?}", conn.errors);
    }
    tokio::time::sleep(SETTLE).await;

    let targets: Arc<Vec<Target>> = Arc::new(
        chat_ids
            .iter()
            .zip(specs.iter())
            .map(|(id, spec)| {
                Ok(Target {
                    path: format!("/chats/{id}/messages"),
                    auth: bearer(&users[spec.owner].token)?,
                })
            })
            .collect::<anyhow::Result<_>>()?,
    );
    let warmup = Duration::from_secs_f64(args.warmup.max(0.0));
    let duration = Duration::from_secs_f64(args.duration_secs().max(0.1));
    let start = Instant::now() + Duration::from_millis(100);
    let plan = Plan {
        rate: args.offered_rate(),
        senders: args.sender_count(),
        start,
        end: start + warmup + duration,
        max_messages: args.max_messages,
    };
    let window_start_us = tracker.now_us() + (start + warmup - Instant::now()).as_micros() as u64;
    tracker.set_window(
        window_start_us,
        window_start_us + duration.as_micros() as u64,
    );

    let procs: Vec<(&str, u32)> = dep.procs.iter().map(|p| (p.name, p.pid())).collect();
    let probe = tokio::spawn({
        let procs: Vec<(String, u32)> = procs.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        async move {
            let procs: Vec<(&str, u32)> = procs.iter().map(|(n, p)| (n.as_str(), *p)).collect();
            tokio::time::sleep_until(start + warmup).await;
            let first = Probe::take(&procs);
            tokio::time::sleep_until(start + warmup + duration).await;
            Probe::take(&procs).since(&first)
        }
    });
    let grace = Duration::from_secs_f64(args.grace_secs().max(0.0));
    let stop_timeline = Arc::new(AtomicBool::new(false));
    let timeline = tokio::spawn(timeline(
        tracker.clone(),
        fleet.open.clone(),
        start,
        plan.end + grace,
        stop_timeline.clone(),
    ));
    eprintln!(
        "[bench] loading: {} senders, rate {}, {:.0}s warm-up + {:.0}s",
        plan.senders,
        plan.rate.map_or("max".to_string(), |r| format!("{r}/s")),
        warmup.as_secs_f64(),
        duration.as_secs_f64()
    );
    load::run(dep.api, targets, tracker.clone(), plan).await;

    let drain_deadline = plan.end + grace;
    while !tracker.drained() && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain_secs = Instant::now()
        .saturating_duration_since(plan.end)
        .as_secs_f64();
    let usage = probe.await?;
    stop_timeline.store(true, Relaxed);
    let timeline = timeline.await.unwrap_or_default();
    // RabbitMQ refreshes queue statistics every few seconds: let them catch up.
    tokio::time::sleep(QUEUE_STATS_DELAY).await;
    let vhost = iso.vhost.clone();
    let queues = tokio::task::spawn_blocking(move || rabbit::queue_depths(&vhost))
        .await?
        .unwrap_or_else(|e| {
            eprintln!("[bench] queue depth: {e}");
            Vec::new()
        });
    let summary = tracker.summary(duration.as_secs_f64());
    fleet.shutdown().await;
    let messages = (summary.accepted_per_s * summary.window_secs).max(1.0);
    let per_message = |cpu: f64| cpu * 1e6 / messages;
    let mut cpu_us_per_message: Vec<(String, f64)> = usage
        .courier
        .iter()
        .chain(std::iter::once(&usage.bench))
        .map(|p| (p.name.clone(), per_message(p.cpu_secs)))
        .chain(
            usage
                .services
                .iter()
                .map(|s| (s.name.clone(), per_message(s.cpu_secs))),
        )
        .collect();
    let total: f64 = cpu_us_per_message.iter().map(|(_, c)| c).sum();
    cpu_us_per_message.push(("total".into(), total));
    Ok(FlowFigures {
        setup: SetupFigures {
            users: n_users,
            minted_tokens: minted,
            users_secs,
            chats: chat_ids.len(),
            chats_secs,
            recipients_per_chat: per_chat,
            sockets: conn.connected + conn.failed,
            sockets_connected: conn.connected,
            socket_errors: conn.errors,
            connect_secs: conn.secs,
        },
        offered_rate_target: plan.rate,
        senders: plan.senders,
        summary,
        drain_secs,
        streams: iso.stream_memory(),
        usage,
        cpu_us_per_message,
        queue_depth_total: queues.iter().map(|q| q.messages).sum(),
        queues,
        timeline,
    })
}

/// Per-second counts until `until` or until `stop` is set.
async fn timeline(
    tracker: Arc<Tracker>,
    open: Arc<AtomicU64>,
    start: Instant,
    until: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Tick> {
    let mut ticks = Vec::new();
    let mut last = tracker.totals();
    let mut t: u32 = 0;
    while Instant::now() < until && !stop.load(Relaxed) {
        t += 1;
        tokio::time::sleep_until(start + Duration::from_secs(u64::from(t))).await;
        let now = tracker.totals();
        ticks.push(Tick {
            t_s: t,
            offered: now.0 - last.0,
            accepted: now.1 - last.1,
            delivered: now.2 - last.2,
            open_sockets: open.load(Relaxed),
        });
        last = now;
    }
    ticks
}
