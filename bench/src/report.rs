//! The results of a run: one JSON document (`<out>/<scenario>-<timestamp>.json`),
//! a plain-text table on stdout, and each project target with its measured value.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::{
    ceiling::CeilingFigures,
    cli::{Args, Scenario},
    deploy::Isolation,
    flow::FlowFigures,
    idle::IdleFigures,
    search::SearchFigures,
    usage::Usage,
};

/// One target of the project, as measured.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    pub target: String,
    pub measured: String,
    pub pass: bool,
}

pub(crate) fn target(name: &str, goal: &str, measured: String, pass: bool) -> Target {
    Target {
        name: name.into(),
        target: goal.into(),
        measured,
        pass,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub started_at: String,
    pub courier_commit: Option<String>,
    /// Percent of all cores busy in the second before the run started.
    pub machine_busy_before_pct: Option<f64>,
    pub args: Args,
    pub isolation: Isolation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<CeilingFigures>,
    /// Groups with `--sizes`: one large group per size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub large_groups: Option<crate::large::LargeFigures>,
    pub targets: Vec<Target>,
}

/// `YYYY-MM-DDTHH:MM:SSZ` and `YYYYMMDD-HHMMSS` of now (UTC), without a date library.
pub fn timestamps() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    (
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"),
        format!("{y:04}{m:02}{d:02}-{hh:02}{mm:02}{ss:02}"),
    )
}

/// The project's targets that this run speaks to.
pub fn targets(args: &Args, flow: Option<&FlowFigures>, idle: Option<&IdleFigures>) -> Vec<Target> {
    let mut out = Vec::new();
    if let Some(f) = flow {
        let s = &f.summary;
        let clean = s.lost_messages == 0 && s.duplicated == 0 && s.out_of_order == 0;
        let flaws = format!(
            "lost {} / dup {} / ooo {}",
            s.lost_messages, s.duplicated, s.out_of_order
        );
        match args.scenario {
            Scenario::Throughput => {
                out.push(target(
                    "sustained throughput, 1,000 recipients, 60 s",
                    ">= 5000 msg/s accepted and delivered for 60 s",
                    format!(
                        "{:.0} accepted/s, {:.0} delivered/s over {:.0} s, {} sockets",
                        s.accepted_per_s,
                        s.delivered_events_per_s,
                        s.window_secs,
                        f.setup.sockets_connected
                    ),
                    s.accepted_per_s >= 5000.0
                        && s.delivered_events_per_s >= 5000.0
                        && s.window_secs >= 60.0
                        && f.setup.sockets_connected >= 1000,
                ));
                out.push(target(
                    "no loss, duplicates or reordering",
                    "0 / 0 / 0",
                    flaws,
                    clean,
                ));
            }
            Scenario::Latency => {
                out.push(target(
                    "end-to-end p99 at 1,000 msg/s offered",
                    "<= 50 ms",
                    format!("{:.1} ms (offered {:.0}/s)", s.e2e.p99_ms, s.offered_per_s),
                    s.e2e.p99_ms <= 50.0 && s.e2e.count > 0 && s.offered_per_s >= 950.0,
                ));
                out.push(target(
                    "202 p99 at 1,000 msg/s offered",
                    "<= 10 ms",
                    format!("{:.1} ms", s.accept.p99_ms),
                    s.accept.p99_ms <= 10.0 && s.accept.count > 0 && s.offered_per_s >= 950.0,
                ));
                out.push(target(
                    "no loss, duplicates or reordering",
                    "0 / 0 / 0",
                    flaws,
                    clean,
                ));
            }
            Scenario::Groups => {
                out.push(target(
                    "groups of 10, delivered events",
                    ">= 20000 events/s",
                    format!(
                        "{:.0} events/s (groups of {})",
                        s.delivered_events_per_s, args.group_size
                    ),
                    s.delivered_events_per_s >= 20000.0 && args.group_size == 10,
                ));
                out.push(target(
                    "no loss, duplicates or reordering",
                    "0 / 0 / 0",
                    flaws,
                    clean,
                ));
            }
            Scenario::Idle | Scenario::Search | Scenario::Ceiling => {}
        }
    }
    if let Some(i) = idle {
        let mb = i.gateway_peak_rss_kb as f64 / 1024.0;
        out.push(target(
            "10,000 idle sockets on one gateway",
            "10000 held, gateway peak RSS <= 150 MB",
            format!(
                "{} held, peak RSS {mb:.1} MB (RSS {:.1} MB)",
                i.open_after_hold,
                i.gateway_rss_after_kb as f64 / 1024.0
            ),
            i.open_after_hold >= 10_000 && mb <= 150.0,
        ));
        out.push(target(
            "idle memory per socket",
            "<= 12 KB",
            format!("{:.1} KB", i.gateway_bytes_per_socket / 1024.0),
            i.gateway_bytes_per_socket <= 12.0 * 1024.0,
        ));
        let start = i.gateway_rss_before_kb as f64 / 1024.0;
        let worst = i
            .cycles
            .iter()
            .map(|c| c.rss_after_close_kb as f64 / 1024.0)
            .fold(0.0, f64::max);
        out.push(target(
            "gateway RSS after every socket closed (each cycle)",
            "within 30 MB of the start",
            format!(
                "start {start:.1} MB, after close {} MB",
                i.cycles
                    .iter()
                    .map(|c| format!("{:.1}", c.rss_after_close_kb as f64 / 1024.0))
                    .collect::<Vec<_>>()
                    .join(" / ")
            ),
            worst - start <= 30.0,
        ));
    }
    out
}

/// The search scenario's target: every kind of query answered within 100 ms at p99.
pub fn search_target(s: &SearchFigures) -> Target {
    let worst = s.kinds.iter().map(|k| k.p99_ms).fold(0.0, f64::max);
    let errors: usize = s.kinds.iter().map(|k| k.errors).sum();
    target(
        "search latency over 1,000,000 messages",
        "p99 <= 100 ms for every kind of query, no errors",
        format!(
            "worst p99 {worst:.1} ms, {errors} errors, {} messages",
            s.messages
        ),
        worst <= 100.0 && errors == 0 && s.messages >= 1_000_000 && !s.kinds.is_empty(),
    )
}

/// The ceiling scenario's target: Courier's throughput at least 60% of the broker alone.
pub fn ceiling_target(c: Option<&CeilingFigures>, f: Option<&FlowFigures>) -> Option<Target> {
    let (c, f) = (c?, f?);
    let s = &f.summary;
    let fraction = if c.confirmed_per_s > 0.0 {
        s.accepted_per_s / c.confirmed_per_s
    } else {
        0.0
    };
    Some(target(
        "throughput as a fraction of the broker-only ceiling",
        ">= 60%, 0 lost/dup/ooo",
        format!(
            "{:.0}% ({:.0} of {:.0} msg/s; lost {} / dup {} / ooo {})",
            fraction * 100.0,
            s.accepted_per_s,
            c.confirmed_per_s,
            s.lost_messages,
            s.duplicated,
            s.out_of_order
        ),
        fraction >= 0.6 && s.lost_messages == 0 && s.duplicated == 0 && s.out_of_order == 0,
    ))
}

/// Writes the JSON and returns its path.
pub fn write(report: &Report, out_dir: &Path, stamp: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out_dir)?;
    let mode = serde_json::to_value(report.args.mode)?;
    let mode = mode.as_str().unwrap_or("run");
    let scenario = serde_json::to_value(report.scenario)?;
    let scenario = scenario.as_str().unwrap_or("run");
    let transport = match report.args.transport() {
        "tls" => "-tls",
        _ => "",
    };
    let path = out_dir.join(format!("{scenario}-{mode}{transport}-{stamp}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(report)?)?;
    Ok(path)
}

fn usage_text(out: &mut String, u: &Usage) {
    let _ = writeln!(
        out,
        "  CPU over the {:.1} s window (% of one core), memory now / peak:",
        u.window_secs
    );
    for p in u.courier.iter().chain(std::iter::once(&u.bench)) {
        let _ = writeln!(
            out,
            "    {:<10} {:>7.2} s {:>6.1}%   RSS {:>7.1} MB  peak {:>7.1} MB",
            p.name,
            p.cpu_secs,
            p.cpu_pct,
            p.rss_kb as f64 / 1024.0,
            p.peak_rss_kb as f64 / 1024.0
        );
    }
    for s in &u.services {
        let _ = writeln!(
            out,
            "    {:<10} {:>7.2} s {:>6.1}%",
            s.name, s.cpu_secs, s.cpu_pct
        );
    }
    let _ = writeln!(
        out,
        "    machine busy {:.1}% of all cores; other processes {:.1}% of a core{}",
        u.machine_busy_pct,
        u.other_cpu_pct,
        if u.other_cpu_pct > 15.0 {
            "  <-- DISTURBED: something else was using the CPU"
        } else {
            ""
        }
    );
    if !u.other_top.is_empty() {
        let top: Vec<String> = u
            .other_top
            .iter()
            .map(|(n, c)| format!("{n} {c:.2} s"))
            .collect();
        let _ = writeln!(out, "    busiest other processes: {}", top.join(", "));
    }
}

/// The human-readable summary.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== {:?} ({:?}, services {}) at {}",
        r.scenario,
        r.args.mode,
        r.args.transport(),
        r.started_at
    );
    if let Some(c) = &r.ceiling {
        let _ = writeln!(
            out,
            "  broker alone: {:.0} msg/s confirmed, {:.0} msg/s consumed ({} publishers, {} partitions, {} B bodies, {:.0} s), {} failed, RabbitMQ {:.0} µs CPU/msg",
            c.confirmed_per_s,
            c.consumed_per_s,
            c.publishers,
            c.partitions,
            c.body_bytes,
            c.window_secs,
            c.nacked_or_failed,
            c.rabbitmq_cpu_us_per_message
        );
    }
    if let Some(f) = &r.flow {
        let s = &f.summary;
        let st = &f.setup;
        let _ = writeln!(
            out,
            "  setup: {} users ({}) in {:.1} s, {} chats in {:.1} s, {}/{} sockets in {:.1} s",
            st.users,
            if st.minted_tokens {
                "minted"
            } else {
                "registered"
            },
            st.users_secs,
            st.chats,
            st.chats_secs,
            st.sockets_connected,
            st.sockets,
            st.connect_secs
        );
        let _ = writeln!(
            out,
            "  offered {:.0} msg/s (target {}), accepted {:.0} msg/s, delivered {:.0} events/s, {} senders, {:.0} s window",
            s.offered_per_s,
            f.offered_rate_target
                .map_or("max".into(), |r| format!("{r:.0}")),
            s.accepted_per_s,
            s.delivered_events_per_s,
            f.senders,
            s.window_secs
        );
        let _ = writeln!(
            out,
            "  e2e ms   p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}  (n={})",
            s.e2e.p50_ms, s.e2e.p95_ms, s.e2e.p99_ms, s.e2e.max_ms, s.e2e.count
        );
        let _ = writeln!(
            out,
            "  202 ms   p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}  (n={})",
            s.accept.p50_ms, s.accept.p95_ms, s.accept.p99_ms, s.accept.max_ms, s.accept.count
        );
        let _ = writeln!(
            out,
            "  totals: offered {} accepted {} failed {} delivered {}/{} | lost {} msgs ({} events) dup {} ooo {} unknown {} | drain {:.1} s",
            s.offered,
            s.accepted,
            s.failed,
            s.delivered_events,
            s.expected_events,
            s.lost_messages,
            s.lost_events,
            s.duplicated,
            s.out_of_order,
            s.unknown_events,
            f.drain_secs
        );
        if !s.errors.is_empty() {
            let _ = writeln!(out, "  errors: {:?}", s.errors);
        }
        let m = &f.streams;
        let _ = writeln!(
            out,
            "  Redis event streams at end: {} users, {:.1} MB, {:.1} KB per user (largest {:.1} KB)",
            m.users,
            m.bytes as f64 / 1e6,
            m.bytes as f64 / 1e3 / m.users.max(1) as f64,
            m.max_bytes as f64 / 1e3
        );
        let _ = writeln!(
            out,
            "  RabbitMQ queue depth at end: {} ({} queues)",
            f.queue_depth_total,
            f.queues.len()
        );
        usage_text(&mut out, &f.usage);
        let per: Vec<String> = f
            .cpu_us_per_message
            .iter()
            .map(|(n, c)| format!("{n} {c:.0}"))
            .collect();
        let _ = writeln!(out, "  CPU µs per accepted message: {}", per.join(", "));
    }
    if let Some(i) = &r.idle {
        let _ = writeln!(
            out,
            "  {} of {} sockets connected in {:.2} s ({:.0}/s), {} open after {:.0} s hold (min {}), {} failed",
            i.connected,
            i.sockets,
            i.connect_secs,
            i.connects_per_s,
            i.open_after_hold,
            i.hold_secs,
            i.min_open_during_hold,
            i.failed
        );
        let _ = writeln!(
            out,
            "  gateway RSS {:.1} MB -> {:.1} MB (peak {:.1} MB), {:.1} KB per socket; {:.1} MB after closing",
            i.gateway_rss_before_kb as f64 / 1024.0,
            i.gateway_rss_after_kb as f64 / 1024.0,
            i.gateway_peak_rss_kb as f64 / 1024.0,
            i.gateway_bytes_per_socket / 1024.0,
            i.gateway_rss_after_close_kb as f64 / 1024.0
        );
        if !i.errors.is_empty() {
            let _ = writeln!(out, "  connect errors: {:?}", i.errors);
        }
        usage_text(&mut out, &i.usage);
    }
    if let Some(s) = &r.search {
        out.push_str(&crate::search::text(s));
    }
    if let Some(l) = &r.large_groups {
        out.push_str(&crate::large_report::text(l));
    }
    let _ = writeln!(out, "  targets:");
    for t in &r.targets {
        let _ = writeln!(
            out,
            "    [{}] {}: {} (target {})",
            if t.pass { "PASS" } else { "MISS" },
            t.name,
            t.measured,
            t.target
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_well_formed() {
        let (iso, stamp) = super::timestamps();
        assert_eq!(iso.len(), 20);
        assert_eq!(stamp.len(), 15);
        assert!(iso.starts_with("20"));
    }
}
