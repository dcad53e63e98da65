//! The large-group figures as text (per size, then the headline table) and the
//! issue's targets they speak to.

use std::fmt::Write as _;

use crate::{
    large::{LargeFigures, SizeFigures},
    report::{Target, target},
};

fn cpu_of(f: &SizeFigures, name: &str) -> f64 {
    f.cpu_us_per_message
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0.0, |(_, c)| *c)
}

fn net_of(f: &SizeFigures, name: &str) -> f64 {
    f.cpu_us_per_message_net
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0.0, |(_, c)| *c)
}

fn rate_text(f: &SizeFigures) -> String {
    match f.max_sustained_rate {
        None => format!("none (< {})", f.ramp.first().map_or(0.0, |s| s.rate)),
        Some(r) if f.ramp_exhausted => format!(">= {r}"),
        Some(r) => format!("{r}"),
    }
}

pub fn size_text(f: &SizeFigures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  group of {} ({} online, {}/{} sockets in {:.1} s, {} handshakes retried), setup {:.1} s, load average before {}",
        f.members,
        f.online,
        f.sockets_connected,
        f.online,
        f.connect_secs,
        f.connect_retries,
        f.setup_secs,
        f.load_average_before
    );
    let _ = writeln!(
        out,
        "    {} msg/s (sent {:.1}/s): sent {} accepted {} failed {} | lost {} msgs ({} events) dup {} ooo {} unknown {} | drain {:.1} s",
        f.rate,
        f.fixed.sent_per_s,
        f.fixed.sent,
        f.fixed.accepted,
        f.fixed.failed,
        f.fixed.lost_messages,
        f.fixed.lost_events,
        f.duplicated,
        f.out_of_order,
        f.unknown_events,
        f.drain_secs
    );
    let _ = writeln!(
        out,
        "    e2e ms p50 {:.1} p95 {:.1} p99 {:.1} max {:.1} (n={}); 202 p99 {:.1} ms",
        f.e2e.p50_ms, f.e2e.p95_ms, f.e2e.p99_ms, f.e2e.max_ms, f.e2e.count, f.accept.p99_ms
    );
    let per: Vec<String> = f
        .cpu_us_per_message
        .iter()
        .map(|(n, c)| format!("{n} {c:.0}"))
        .collect();
    let _ = writeln!(out, "    CPU µs per message: {}", per.join(", "));
    let net: Vec<String> = f
        .cpu_us_per_message_net
        .iter()
        .map(|(n, c)| format!("{n} {c:.0}"))
        .collect();
    let _ = writeln!(
        out,
        "    CPU µs per message, net of idle: {}",
        net.join(", ")
    );
    let _ = writeln!(
        out,
        "    Redis memory per message: used_memory {:.0} B, run keys {:.0} B ({} -> {} keys); one event {:.0} B",
        f.used_memory_per_message,
        f.run_keys_bytes_per_message,
        f.redis_before.run_keys,
        f.redis_after.run_keys,
        f.event_bytes
    );
    let _ = writeln!(
        out,
        "    machine busy {:.0}% of all cores, other processes {:.0}% of a core",
        f.usage.machine_busy_pct, f.usage.other_cpu_pct
    );
    let steps: Vec<String> = f
        .ramp
        .iter()
        .map(|s| {
            format!(
                "{}/s p99 {:.0} ms lost {}{}",
                s.rate,
                s.e2e.p99_ms,
                s.count.lost_messages,
                if s.pass { "" } else { " ✗" }
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "    ramp: {}; highest sustained {}",
        steps.join(", "),
        rate_text(f)
    );
    if !f.errors.is_empty() {
        let _ = writeln!(out, "    errors: {:?}", f.errors);
    }
    out
}

/// The human-readable summary, with a table of the headline figures.
pub fn text(l: &LargeFigures) -> String {
    let mut out = String::new();
    for f in &l.sizes {
        out.push_str(&size_text(f));
    }
    let _ = writeln!(
        out,
        "  | members | online | Redis µs/msg | worker µs/msg | gateways µs/msg | api µs/msg | Redis B/msg (used_memory / run keys) | e2e p50 / p99 ms | lost | max msg/s (p99 ≤ 1 s) |"
    );
    let _ = writeln!(out, "  (CPU: gross / net of idle)");
    for f in &l.sizes {
        let _ = writeln!(
            out,
            "  | {} | {} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {} | {} |",
            f.members,
            f.online,
            cpu_of(f, "redis"),
            net_of(f, "redis"),
            cpu_of(f, "worker"),
            net_of(f, "worker"),
            cpu_of(f, "gateways"),
            net_of(f, "gateways"),
            cpu_of(f, "api"),
            net_of(f, "api"),
            f.used_memory_per_message,
            f.run_keys_bytes_per_message,
            f.e2e.p50_ms,
            f.e2e.p99_ms,
            f.fixed.lost_messages,
            rate_text(f)
        );
    }
    out
}

/// The targets this run speaks to (issue 27).
pub fn targets(l: &LargeFigures) -> Vec<Target> {
    let mut out = Vec::new();
    let find = |n: usize| l.sizes.iter().find(|f| f.members == n);
    if let Some(f) = find(5000) {
        out.push(target(
            "5,000-member group, 10% online, 20 msg/s",
            "e2e p99 <= 200 ms to every online member, 0 lost",
            format!(
                "p99 {:.0} ms, lost {} ({} msg/s, {} online)",
                f.e2e.p99_ms, f.fixed.lost_messages, f.rate, f.online
            ),
            f.e2e.p99_ms <= 200.0 && f.fixed.lost_messages == 0 && f.e2e.count > 0,
        ));
        out.push(target(
            "Redis memory per message, 5,000 members",
            "<= 10x one copy of the event",
            format!(
                "{:.0} B (run keys) vs one event {:.0} B",
                f.run_keys_bytes_per_message, f.event_bytes
            ),
            f.run_keys_bytes_per_message <= 10.0 * f.event_bytes,
        ));
        if let Some(small) = find(100) {
            let (a, b) = (net_of(small, "redis"), net_of(f, "redis"));
            out.push(target(
                "Redis CPU per message, 5,000 vs 100 members",
                "within 1.5x (same number online)",
                format!(
                    "{b:.0} vs {a:.0} µs net ({:.1}x; online {} vs {})",
                    b / a.max(1.0),
                    f.online,
                    small.online
                ),
                b <= 1.5 * a,
            ));
        }
    }
    out
}
