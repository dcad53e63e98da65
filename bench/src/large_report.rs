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
    for op in &f.churn {
        let _ = writeln!(out, "{}", op.line(f.members));
    }
    out
}

/// `1234.5` → `1,235`.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < -0.5 { format!("-{out}") } else { out }
}

/// Bytes as the README writes them: `75.5 KB`, `392 KB`, `1.2 MB`.
fn kb(bytes: f64) -> String {
    let k = bytes / 1024.0;
    if k.abs() >= 1024.0 {
        format!("{:.1} MB", k / 1024.0)
    } else if k.abs() >= 100.0 {
        format!("{k:.0} KB")
    } else {
        format!("{k:.1} KB")
    }
}

/// The README's "highest sustained" cell: `1,280 (2,560: p99 1.2 s)`.
fn sustained_cell(f: &SizeFigures) -> String {
    let failed = f.ramp.iter().find(|s| !s.pass).map(|s| {
        let why = if s.count.lost_messages > 0 {
            format!("{} lost", s.count.lost_messages)
        } else if s.count.sent_per_s < 0.9 * s.rate {
            format!("sent {:.0}/s", s.count.sent_per_s)
        } else {
            format!("p99 {:.1} s", s.e2e.p99_ms / 1e3)
        };
        format!("{}: {why}", thousands(s.rate))
    });
    match (f.max_sustained_rate, failed) {
        (Some(r), _) if f.ramp_exhausted => format!(">= {}", thousands(r)),
        (Some(r), Some(fail)) => format!("{} ({fail})", thousands(r)),
        (Some(r), None) => thousands(r),
        (None, Some(fail)) => format!("none ({fail})"),
        (None, None) => "not measured".into(),
    }
}

/// One row of the README's "Large groups" table.
pub fn readme_row(f: &SizeFigures) -> String {
    let cell = |name: &str| {
        format!(
            "{} ({})",
            thousands(cpu_of(f, name)),
            thousands(net_of(f, name))
        )
    };
    format!(
        "| {} ({}) | {} | {} | {} | {} | {} / {} | {:.1} / {:.1} / {:.1} ms | {} of {} | {} |",
        thousands(f.members as f64),
        thousands(f.online as f64),
        cell("redis"),
        cell("worker"),
        cell("gateways"),
        cell("api"),
        kb(f.used_memory_per_message),
        kb(f.run_keys_bytes_per_message),
        f.e2e.p50_ms,
        f.e2e.p95_ms,
        f.e2e.p99_ms,
        f.fixed.lost_messages,
        f.fixed.accepted,
        sustained_cell(f)
    )
}

/// The README's churn table row: one operation at one size.
fn churn_row(f: &SizeFigures, op: &crate::large_churn::ChurnOp) -> String {
    let cpu = |name: &str| {
        let g = op
            .cpu_us
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, c)| *c);
        let n = op
            .cpu_us_net
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, c)| *c);
        format!("{} ({})", thousands(g), thousands(n))
    };
    format!(
        "| {} ({}) | {} | {:.0} ms | {} | {} | {} | {} | {} / {} |",
        thousands(f.members as f64),
        thousands(f.online as f64),
        op.op,
        op.answer_ms,
        op.reach_ms.map_or_else(
            || format!("not all ({}/{})", op.seen, op.expected),
            |r| format!("{r:.0} ms")
        ),
        cpu("redis"),
        cpu("worker"),
        cpu("gateways"),
        kb(op.used_memory_delta() as f64),
        kb(op.run_keys_delta() as f64),
    )
}

/// Redis CPU per message (net of idle) of the largest size ÷ the smallest's.
fn redis_ratio(l: &LargeFigures) -> Option<(f64, &SizeFigures, &SizeFigures)> {
    let small = l.sizes.iter().min_by_key(|f| f.members)?;
    let large = l.sizes.iter().max_by_key(|f| f.members)?;
    (large.members > small.members).then(|| {
        (
            net_of(large, "redis") / net_of(small, "redis").max(1.0),
            small,
            large,
        )
    })
}

/// The human-readable summary, with a table of the headline figures.
pub fn text(l: &LargeFigures) -> String {
    let mut out = String::new();
    for f in &l.sizes {
        out.push_str(&size_text(f));
    }
    let _ = writeln!(
        out,
        "  README format (CPU gross, net of idle in parentheses; {} gateways):",
        l.gateways
    );
    let _ = writeln!(
        out,
        "  | group (online) | Redis CPU µs/msg (net of idle) | worker µs/msg | gateways µs/msg (both) | api µs/msg | Redis memory per message: `used_memory` Δ / run's keys Δ | e2e p50 / p95 / p99 at {} msg/s | lost | highest sustained msg/s (p99 ≤ 1 s) |",
        l.sizes.first().map_or(0.0, |f| f.rate)
    );
    let _ = writeln!(out, "  |---|---|---|---|---|---|---|---|---|");
    for f in &l.sizes {
        let _ = writeln!(out, "  {}", readme_row(f));
    }
    if l.sizes.iter().any(|f| !f.churn.is_empty()) {
        let _ = writeln!(
            out,
            "  | group (online) | operation (mean of --churn-rounds) | HTTP answer | every online member had `chat.updated` | Redis CPU µs (net) | worker CPU µs (net) | gateways CPU µs (net) | Redis memory Δ: `used_memory` / run's keys |"
        );
        let _ = writeln!(out, "  |---|---|---|---|---|---|---|---|");
        for f in &l.sizes {
            for op in &f.churn {
                let _ = writeln!(out, "  {}", churn_row(f, op));
            }
        }
    }
    if let (Some(c), Some((ratio, small, large))) = (l.online_count, redis_ratio(l)) {
        let _ = writeln!(
            out,
            "  Redis CPU per message, {} vs {} members with {c} online: {:.0} vs {:.0} µs net of idle = {ratio:.2}x (gross {:.0} vs {:.0} µs = {:.2}x)",
            large.members,
            small.members,
            net_of(large, "redis"),
            net_of(small, "redis"),
            cpu_of(large, "redis"),
            cpu_of(small, "redis"),
            cpu_of(large, "redis") / cpu_of(small, "redis").max(1.0)
        );
    }
    if let Some(why) = &l.stopped {
        let _ = writeln!(out, "  STOPPED: {why}");
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
    if let Some(why) = &l.stopped {
        out.push(target(
            "every size of --sizes measured",
            "no stop by the Redis growth guard",
            why.clone(),
            false,
        ));
    }
    if let (Some(c), Some((ratio, small, large))) = (l.online_count, redis_ratio(l)) {
        out.push(target(
            "Redis CPU per message, largest vs smallest size, same number online",
            "within 1.5x",
            format!(
                "{:.0} vs {:.0} µs net ({ratio:.2}x; {} vs {} members, {c} online)",
                net_of(large, "redis"),
                net_of(small, "redis"),
                large.members,
                small.members
            ),
            ratio <= 1.5,
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::{kb, thousands};

    #[test]
    fn readme_numbers() {
        assert_eq!(thousands(1326.4), "1,326");
        assert_eq!(thousands(23413.0), "23,413");
        assert_eq!(thousands(999.6), "1,000");
        assert_eq!(thousands(12.0), "12");
        assert_eq!(thousands(-1500.0), "-1,500");
        assert_eq!(kb(75.5 * 1024.0), "75.5 KB");
        assert_eq!(kb(392.0 * 1024.0), "392 KB");
        assert_eq!(kb(1.5 * 1024.0 * 1024.0), "1.5 MB");
    }
}
