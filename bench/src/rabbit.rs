//! RabbitMQ housekeeping through `rabbitmqctl`: a vhost per run, and the depth of
//! its queues at the end (messages ready + unacknowledged).

use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde::Serialize;

fn ctl(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run rabbitmqctl")?;
    if !out.status.success() {
        bail!(
            "rabbitmqctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates `vhost` and gives `guest` every permission on it.
pub fn add_vhost(vhost: &str) -> anyhow::Result<()> {
    ctl(&["-q", "add_vhost", vhost])?;
    ctl(&[
        "-q",
        "set_permissions",
        "-p",
        vhost,
        "guest",
        ".*",
        ".*",
        ".*",
    ])?;
    Ok(())
}

/// Deletes `vhost` with its queues (best effort).
pub fn delete_vhost(vhost: &str) {
    if let Err(e) = ctl(&["-q", "delete_vhost", vhost]) {
        eprintln!("[bench] {e}");
    }
}

/// One queue's depth (RabbitMQ's statistics, refreshed every few seconds).
#[derive(Debug, Clone, Serialize)]
pub struct QueueDepth {
    pub name: String,
    pub ready: u64,
    pub unacked: u64,
    /// ready + unacked.
    pub messages: u64,
}

/// Every queue of `vhost` with its message counts.
pub fn queue_depths(vhost: &str) -> anyhow::Result<Vec<QueueDepth>> {
    let out = ctl(&[
        "-q",
        "list_queues",
        "-p",
        vhost,
        "--no-table-headers",
        "name",
        "messages_ready",
        "messages_unacknowledged",
        "messages",
    ])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?.to_string();
            let mut num = || it.next()?.parse().ok();
            Some(QueueDepth {
                name,
                ready: num()?,
                unacked: num()?,
                messages: num()?,
            })
        })
        .collect())
}
