//! Large groups, `--churn`: the cost of one membership change in a group at its size
//! with its online members connected: a member joining, leaving, and a rename, each
//! timed until every online member got its `chat.updated`, with the CPU of each
//! process and service and Redis's memory before and after.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use hyper::Method;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::{
    http::{Conn, bearer},
    large_redis::{self, RedisMemory},
    large_track::GroupTracker,
    usage::{Probe, Usage},
};

/// How long one operation may take to reach every online member.
const REACH: Duration = Duration::from_secs(120);
/// CPU is counted until every online member saw the event plus this tail, for the
/// work that follows the last delivery (stream writes of offline members, trims).
const TAIL: Duration = Duration::from_secs(1);

/// One membership operation and what it cost (means over `--churn-rounds` rounds: CPU
/// is read in 10 ms ticks, so one operation alone rounds to 0 or 10,000 µs).
#[derive(Debug, Clone, Serialize)]
pub struct ChurnOp {
    /// `join`, `leave` or `rename`.
    pub op: &'static str,
    pub rounds: usize,
    pub status: u16,
    /// The REST call's answer time.
    pub answer_ms: f64,
    /// From the call to the last online member's `chat.updated`; `None`: not all in time
    /// (in some round).
    pub reach_ms: Option<f64>,
    /// The slowest round's.
    pub reach_max_ms: Option<f64>,
    pub seen: u64,
    pub expected: u64,
    /// CPU µs of each process and service over the op's window (gross, net of idle).
    pub cpu_us: Vec<(String, f64)>,
    pub cpu_us_net: Vec<(String, f64)>,
    pub window_secs: f64,
    pub redis_before: RedisMemory,
    pub redis_after: RedisMemory,
}

impl ChurnOp {
    pub fn used_memory_delta(&self) -> i64 {
        self.redis_after.used_memory as i64 - self.redis_before.used_memory as i64
    }

    pub fn run_keys_delta(&self) -> i64 {
        self.redis_after.run_keys_bytes as i64 - self.redis_before.run_keys_bytes as i64
    }

    fn cpu(list: &[(String, f64)], name: &str) -> f64 {
        list.iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, c)| *c)
    }

    /// One line: the figures the issue asks for.
    pub fn line(&self, members: usize) -> String {
        let reach = self.reach_ms.map_or_else(
            || format!("not all ({}/{})", self.seen, self.expected),
            |r| format!("{r:.0} ms"),
        );
        let (c, n) = (&self.cpu_us, &self.cpu_us_net);
        format!(
            "    churn {} ({} members, mean of {}): HTTP {} in {:.0} ms, every online member ({}) in {reach} (max {}); CPU µs (net of idle): redis {:.0} ({:.0}), worker {:.0} ({:.0}), gateways {:.0} ({:.0}), api {:.0} ({:.0}); Redis used_memory Δ {} KB, run keys Δ {} KB",
            self.op,
            members,
            self.rounds,
            self.status,
            self.answer_ms,
            self.expected,
            self.reach_max_ms
                .map_or("-".into(), |r| format!("{r:.0} ms")),
            Self::cpu(c, "redis"),
            Self::cpu(n, "redis"),
            Self::cpu(c, "worker"),
            Self::cpu(n, "worker"),
            Self::cpu(c, "gateways"),
            Self::cpu(n, "gateways"),
            Self::cpu(c, "api"),
            Self::cpu(n, "api"),
            self.used_memory_delta() / 1024,
            self.run_keys_delta() / 1024,
        )
    }
}

/// Where and as whom the operations are made.
pub struct Churn<'a> {
    pub api: std::net::SocketAddr,
    pub chat: &'a str,
    pub owner_token: &'a str,
    /// A user outside the group, who joins and then leaves.
    pub newcomer: &'a str,
    pub prefix: &'a str,
    pub procs: &'a [(&'a str, u32)],
    pub idle: &'a Usage,
}

/// `rounds` times join, leave, rename, one after another; each measured alone, then
/// averaged per kind.
pub async fn run(
    c: &Churn<'_>,
    tracker: &Arc<GroupTracker>,
    online: u64,
    rounds: usize,
) -> anyhow::Result<Vec<ChurnOp>> {
    let chat = c.chat;
    let auth = bearer(c.owner_token)?;
    let mut conn = Conn::new(c.api);
    let mut all: Vec<Vec<ChurnOp>> = vec![Vec::new(), Vec::new(), Vec::new()];
    for round in 0..rounds.max(1) {
        let ops: [(&'static str, Method, String, Option<serde_json::Value>); 3] = [
            (
                "join",
                Method::POST,
                format!("/chats/{chat}/participants"),
                Some(json!({"userIds": [c.newcomer]})),
            ),
            (
                "leave",
                Method::DELETE,
                format!("/chats/{chat}/participants/{}", c.newcomer),
                None,
            ),
            (
                "rename",
                Method::PATCH,
                format!("/chats/{chat}"),
                Some(json!({"title": format!("renamed large group {round}")})),
            ),
        ];
        for (k, (op, method, path, body)) in ops.into_iter().enumerate() {
            let one = once(
                c,
                tracker,
                &mut conn,
                &auth,
                online,
                (op, method, path, body),
            )
            .await?;
            all[k].push(one);
        }
    }
    Ok(all.into_iter().filter_map(mean).collect())
}

type Op = (&'static str, Method, String, Option<serde_json::Value>);

async fn once(
    c: &Churn<'_>,
    tracker: &Arc<GroupTracker>,
    conn: &mut Conn,
    auth: &hyper::header::HeaderValue,
    expected: u64,
    (op, method, path, body): Op,
) -> anyhow::Result<ChurnOp> {
    let redis_before = large_redis::memory_of(c.prefix).await?;
    let start = tracker.updated();
    let first = Probe::take(c.procs);
    let t = Instant::now();
    let body = body.map(|b| Bytes::from(b.to_string()));
    let r = conn.request(method, &path, Some(auth), body).await?;
    let answer_ms = t.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(
        r.status.is_success(),
        "churn {op}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    let reached = tracker.wait_updated(start + expected, t + REACH).await;
    let reach_ms = reached.then(|| t.elapsed().as_secs_f64() * 1e3);
    tokio::time::sleep(TAIL).await;
    let usage = Probe::take(c.procs).since(&first);
    let seen = tracker.updated() - start;
    let redis_after = large_redis::memory_of(c.prefix).await?;
    Ok(ChurnOp {
        op,
        rounds: 1,
        status: r.status.as_u16(),
        answer_ms,
        reach_ms,
        reach_max_ms: reach_ms,
        seen,
        expected,
        cpu_us: crate::usage::per_message(&usage, None, 1.0),
        cpu_us_net: crate::usage::per_message(&usage, Some(c.idle), 1.0),
        window_secs: usage.window_secs,
        redis_before,
        redis_after,
    })
}

/// The mean of several rounds of one operation (memory: first round's before, and the
/// before + mean delta as after).
fn mean(ops: Vec<ChurnOp>) -> Option<ChurnOp> {
    let n = ops.len() as f64;
    let first = ops.first()?.clone();
    let avg = |f: &dyn Fn(&ChurnOp) -> f64| ops.iter().map(f).sum::<f64>() / n;
    let avg_cpu = |pick: &dyn Fn(&ChurnOp) -> &Vec<(String, f64)>| -> Vec<(String, f64)> {
        pick(&first)
            .iter()
            .map(|(name, _)| {
                let v = avg(&|o| {
                    pick(o)
                        .iter()
                        .find(|(x, _)| x == name)
                        .map_or(0.0, |(_, c)| *c)
                });
                (name.clone(), v)
            })
            .collect()
    };
    let all_reached = ops.iter().all(|o| o.reach_ms.is_some());
    let used = avg(&|o| o.used_memory_delta() as f64);
    let keys = avg(&|o| o.run_keys_delta() as f64);
    let mut redis_after = first.redis_before;
    redis_after.used_memory = (first.redis_before.used_memory as f64 + used).max(0.0) as u64;
    redis_after.run_keys_bytes = (first.redis_before.run_keys_bytes as f64 + keys).max(0.0) as u64;
    Some(ChurnOp {
        rounds: ops.len(),
        status: ops.iter().map(|o| o.status).max().unwrap_or(0),
        answer_ms: avg(&|o| o.answer_ms),
        reach_ms: all_reached.then(|| avg(&|o| o.reach_ms.unwrap_or(0.0))),
        reach_max_ms: all_reached
            .then(|| ops.iter().filter_map(|o| o.reach_ms).fold(0.0, f64::max)),
        seen: ops.iter().map(|o| o.seen).min().unwrap_or(0),
        cpu_us: avg_cpu(&|o| &o.cpu_us),
        cpu_us_net: avg_cpu(&|o| &o.cpu_us_net),
        window_secs: avg(&|o| o.window_secs),
        redis_after,
        ..first
    })
}
