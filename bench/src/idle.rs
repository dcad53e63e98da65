//! The idle-capacity scenario: N authenticated sockets connected to one gateway and
//! held (answering Engine.IO pings) for `--hold` seconds; reports the time to
//! connect them all and the gateway's resident memory, total and per connection.
//! With `--cycles K` (churn) it connects, holds and closes them K times and reports
//! the gateway's RSS after each close: memory must come back, and not grow per cycle.

use std::{collections::HashMap, sync::atomic::Ordering::Relaxed, time::Duration};

use anyhow::{bail, ensure};
use serde::Serialize;

use crate::{
    cli::Args,
    deploy::{Deployment, Isolation},
    flow, procstat,
    recv::{self, Recipient},
    usage::{Probe, Usage},
};

#[derive(Debug, Clone, Serialize)]
pub struct IdleFigures {
    pub sockets: usize,
    pub connected: usize,
    pub failed: usize,
    pub errors: HashMap<String, usize>,
    pub minted_tokens: bool,
    pub users_secs: f64,
    /// First handshake started → last one finished.
    pub connect_secs: f64,
    pub connects_per_s: f64,
    pub hold_secs: f64,
    /// Fewest sockets open at any check during the hold.
    pub min_open_during_hold: u64,
    pub open_after_hold: u64,
    pub events_received: u64,
    pub gateway_rss_before_kb: u64,
    pub gateway_rss_after_kb: u64,
    pub gateway_peak_rss_kb: u64,
    /// (RSS after − RSS before) / connected.
    pub gateway_bytes_per_socket: f64,
    /// Gateway RSS a few seconds after every socket closed.
    pub gateway_rss_after_close_kb: u64,
    /// Every cycle (connect, hold, close), the first included.
    pub cycles: Vec<Cycle>,
    /// Over connect + hold.
    pub usage: Usage,
}

/// One connect-hold-close cycle: the gateway's RSS when all were open and after they closed.
#[derive(Debug, Clone, Serialize)]
pub struct Cycle {
    pub connected: usize,
    pub rss_open_kb: u64,
    pub rss_after_close_kb: u64,
}

/// How long after the last close the gateway's RSS is read.
const AFTER_CLOSE: Duration = Duration::from_secs(3);

/// Connects every recipient's socket to the gateway (bounded concurrency, 5 min at most).
async fn open_fleet(
    args: &Args,
    dep: &Deployment,
    recipients: Vec<Recipient>,
) -> (recv::Fleet, recv::ConnectStats) {
    recv::connect_fleet(
        dep.gateway,
        recipients,
        None,
        args.connect_concurrency,
        Duration::from_secs(300),
    )
    .await
}

pub async fn run(args: &Args, dep: &Deployment, iso: &Isolation) -> anyhow::Result<IdleFigures> {
    let n = args.sockets;
    ensure!(n > 0, "--sockets must be at least 1");
    let Some(gw) = dep.gateway_pid() else {
        bail!("no gateway process")
    };
    eprintln!("[bench] setting up {n} users");
    let (users, minted, users_secs) = flow::users(args, dep, iso, n).await?;
    let tokens: Vec<String> = users.into_iter().map(|u| u.token).collect();
    let recipients = || -> Vec<Recipient> {
        tokens
            .iter()
            .map(|t| Recipient {
                token: t.clone(),
                slots: HashMap::new(),
            })
            .collect()
    };
    // Let the gateway settle after setup traffic before the baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = procstat::sample(gw).unwrap_or_default();
    let procs: Vec<(&str, u32)> = dep.procs.iter().map(|p| (p.name, p.pid())).collect();
    let first = Probe::take(&procs);
    eprintln!(
        "[bench] connecting {n} sockets to {} ({} at a time)",
        dep.gateway, args.connect_concurrency
    );
    let (fleet, conn) = open_fleet(args, dep, recipients()).await;
    eprintln!(
        "[bench] {} connected, {} failed in {:.2}s; holding {:.0}s",
        conn.connected, conn.failed, conn.secs, args.hold
    );
    let hold = Duration::from_secs_f64(args.hold.max(0.0));
    let hold_end = tokio::time::Instant::now() + hold;
    let mut min_open = fleet.open.load(Relaxed);
    while tokio::time::Instant::now() < hold_end {
        tokio::time::sleep(Duration::from_secs(1).min(hold)).await;
        min_open = min_open.min(fleet.open.load(Relaxed));
    }
    let after = procstat::sample(gw).unwrap_or_default();
    let usage = Probe::take(&procs).since(&first);
    let open_after_hold = fleet.open.load(Relaxed);
    let events_received = fleet.events.load(Relaxed);
    fleet.shutdown().await;
    tokio::time::sleep(AFTER_CLOSE).await;
    let after_close = procstat::sample(gw).unwrap_or_default();
    let mut cycles = vec![Cycle {
        connected: conn.connected,
        rss_open_kb: after.rss_kb,
        rss_after_close_kb: after_close.rss_kb,
    }];
    for k in 2..=args.cycles {
        let (fleet, c) = open_fleet(args, dep, recipients()).await;
        tokio::time::sleep(hold).await;
        let open = procstat::sample(gw).unwrap_or_default();
        fleet.shutdown().await;
        tokio::time::sleep(AFTER_CLOSE).await;
        let closed = procstat::sample(gw).unwrap_or_default();
        eprintln!(
            "[bench] cycle {k}: {} connected, RSS {} MB open, {} MB after close",
            c.connected,
            open.rss_kb / 1024,
            closed.rss_kb / 1024
        );
        cycles.push(Cycle {
            connected: c.connected,
            rss_open_kb: open.rss_kb,
            rss_after_close_kb: closed.rss_kb,
        });
    }
    let grown_kb = after.rss_kb.saturating_sub(before.rss_kb);
    Ok(IdleFigures {
        sockets: n,
        connected: conn.connected,
        failed: conn.failed,
        errors: conn.errors,
        minted_tokens: minted,
        users_secs,
        connect_secs: conn.secs,
        connects_per_s: if conn.secs > 0.0 {
            conn.connected as f64 / conn.secs
        } else {
            0.0
        },
        hold_secs: hold.as_secs_f64(),
        min_open_during_hold: min_open,
        open_after_hold,
        events_received,
        gateway_rss_before_kb: before.rss_kb,
        gateway_rss_after_kb: after.rss_kb,
        gateway_peak_rss_kb: after.hwm_kb,
        gateway_bytes_per_socket: if conn.connected > 0 {
            grown_kb as f64 * 1024.0 / conn.connected as f64
        } else {
            0.0
        },
        gateway_rss_after_close_kb: after_close.rss_kb,
        cycles,
        usage,
    })
}
