//! Large groups: the shared Redis server's memory (whole server and the run's own
//! keys) and the growth guard that stops a run before it exhausts the machine.

use std::{process::Command, time::Duration};

use serde::Serialize;

/// Redis memory at one moment.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RedisMemory {
    /// `INFO memory` `used_memory` of the whole server (other tenants included).
    pub used_memory: u64,
    /// Σ `MEMORY USAGE key SAMPLES 0` over the run's keys (its prefix only).
    pub run_keys_bytes: u64,
    pub run_keys: u64,
}

fn sh(script: &str) -> String {
    Command::new("sh")
        .args(["-c", script])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// `INFO memory` `used_memory` of the Redis server (0 if unreadable).
pub fn used_memory() -> u64 {
    sh("redis-cli -h 127.0.0.1 INFO memory")
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Resolves once Redis's `used_memory` has grown by more than `limit_mb` since the
/// call (checked every 2 s): Redis is shared, and a 5,000-member run once grew it
/// to 23 GB until the kernel killed it.
pub async fn guard(limit_mb: u64) -> u64 {
    let start = tokio::task::spawn_blocking(used_memory).await.unwrap_or(0);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = tokio::task::spawn_blocking(used_memory).await.unwrap_or(0);
        if now.saturating_sub(start) > limit_mb << 20 {
            return now;
        }
    }
}

fn memory(prefix: &str) -> RedisMemory {
    let used_memory = used_memory();
    let sizes = sh(&format!(
        "redis-cli -h 127.0.0.1 --scan --pattern '{prefix}*' | sed 's/^/MEMORY USAGE /; s/$/ SAMPLES 0/' | redis-cli -h 127.0.0.1"
    ));
    let sizes: Vec<u64> = sizes
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    RedisMemory {
        used_memory,
        run_keys_bytes: sizes.iter().sum(),
        run_keys: sizes.len() as u64,
    }
}

/// `memory` off the runtime's threads.
pub async fn memory_of(prefix: &str) -> anyhow::Result<RedisMemory> {
    let p = prefix.to_string();
    Ok(tokio::task::spawn_blocking(move || memory(&p)).await?)
}
