//! CPU and memory used during the measurement window by each Courier process, the
//! services (PostgreSQL, Redis, RabbitMQ), the bench itself and the whole machine:
//! two probes, one at the window's start and one at its end.

use std::time::Instant;

use serde::Serialize;

use crate::procstat::{self, Sample, ServiceSnapshot};

/// Everything read at one moment.
pub struct Probe {
    at: Instant,
    procs: Vec<(String, u32, Option<Sample>)>,
    services: ServiceSnapshot,
    bench: Option<Sample>,
    machine: Option<(u64, u64)>,
}

/// One process's use over the window; `peak_rss_kb` is VmHWM since it started.
#[derive(Debug, Clone, Serialize)]
pub struct ProcUsage {
    pub name: String,
    pub pid: u32,
    pub cpu_secs: f64,
    /// Percent of one core over the window.
    pub cpu_pct: f64,
    pub cpu_secs_total: f64,
    pub rss_kb: u64,
    pub peak_rss_kb: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceUsage {
    pub name: String,
    pub cpu_secs: f64,
    pub cpu_pct: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub window_secs: f64,
    pub courier: Vec<ProcUsage>,
    pub services: Vec<ServiceUsage>,
    /// The load generator (this process).
    pub bench: ProcUsage,
    /// Percent of all cores busy over the window (100 = every core).
    pub machine_busy_pct: f64,
    /// CPU of processes not listed above (e.g. a compiler), % of one core: anything
    /// large here means the figures were disturbed.
    pub other_cpu_pct: f64,
    /// The busiest of those other processes: command name and CPU seconds.
    pub other_top: Vec<(String, f64)>,
}

impl Probe {
    pub fn take(procs: &[(&str, u32)]) -> Self {
        Self {
            at: Instant::now(),
            procs: procs
                .iter()
                .map(|(n, pid)| (n.to_string(), *pid, procstat::sample(*pid)))
                .collect(),
            services: ServiceSnapshot::take(),
            bench: procstat::sample(std::process::id()),
            machine: procstat::machine_jiffies(),
        }
    }

    /// What was used between `earlier` and this probe.
    pub fn since(&self, earlier: &Probe) -> Usage {
        let secs = self.at.duration_since(earlier.at).as_secs_f64().max(1e-9);
        let pct = |cpu: f64| 100.0 * cpu / secs;
        let usage = |name: &str, pid: u32, now: Option<Sample>, before: Option<Sample>| {
            let now = now.unwrap_or_default();
            let cpu = now.cpu_secs - before.map(|b| b.cpu_secs).unwrap_or(0.0);
            ProcUsage {
                name: name.to_string(),
                pid,
                cpu_secs: cpu.max(0.0),
                cpu_pct: pct(cpu.max(0.0)),
                cpu_secs_total: now.cpu_secs,
                rss_kb: now.rss_kb,
                peak_rss_kb: now.hwm_kb,
            }
        };
        let courier: Vec<ProcUsage> = self
            .procs
            .iter()
            .map(|(name, pid, now)| {
                let before = earlier
                    .procs
                    .iter()
                    .find(|(_, p, _)| p == pid)
                    .and_then(|(_, _, s)| *s);
                usage(name, *pid, *now, before)
            })
            .collect();
        let services: Vec<ServiceUsage> = self
            .services
            .since(&earlier.services)
            .into_iter()
            .map(|(name, cpu)| ServiceUsage {
                name: name.to_string(),
                cpu_secs: cpu,
                cpu_pct: pct(cpu),
            })
            .collect();
        let machine_busy_pct = match (earlier.machine, self.machine) {
            (Some((t0, i0)), Some((t1, i1))) if t1 > t0 => {
                100.0 * (1.0 - (i1.saturating_sub(i0)) as f64 / (t1 - t0) as f64)
            }
            _ => 0.0,
        };
        let bench = usage("bench", std::process::id(), self.bench, earlier.bench);
        let known: f64 = courier.iter().map(|p: &ProcUsage| p.cpu_pct).sum::<f64>()
            + services
                .iter()
                .map(|s: &ServiceUsage| s.cpu_pct)
                .sum::<f64>()
            + bench.cpu_pct;
        let other_cpu_pct = (machine_busy_pct * procstat::cores() as f64 - known).max(0.0);
        let mut known: Vec<u32> = courier.iter().map(|p| p.pid).collect();
        known.push(std::process::id());
        let other_top = self.services.others_since(&earlier.services, &known, 5);
        Usage {
            window_secs: secs,
            courier,
            services,
            bench,
            machine_busy_pct,
            other_cpu_pct,
            other_top,
        }
    }
}

/// CPU µs per message of each process and service over `usage`, less the CPU each
/// used at its `idle` rate over as long a time when given; plus the gateways' sum and the total.
pub fn per_message(usage: &Usage, idle: Option<&Usage>, messages: f64) -> Vec<(String, f64)> {
    let window = usage.window_secs;
    let idle_rate = |name: &str| -> f64 {
        idle.map_or(0.0, |i| {
            let secs = i
                .courier
                .iter()
                .chain(std::iter::once(&i.bench))
                .find(|p| p.name == name)
                .map(|p| p.cpu_secs)
                .or_else(|| {
                    i.services
                        .iter()
                        .find(|s| s.name == name)
                        .map(|s| s.cpu_secs)
                })
                .unwrap_or(0.0);
            secs / i.window_secs.max(1e-9)
        })
    };
    let per = |name: &str, cpu: f64| (cpu - idle_rate(name) * window).max(0.0) * 1e6 / messages;
    let mut cpu: Vec<(String, f64)> = usage
        .courier
        .iter()
        .chain(std::iter::once(&usage.bench))
        .map(|p| (p.name.clone(), per(&p.name, p.cpu_secs)))
        .chain(
            usage
                .services
                .iter()
                .map(|s| (s.name.clone(), per(&s.name, s.cpu_secs))),
        )
        .collect();
    let gateways: f64 = cpu
        .iter()
        .filter(|(n, _)| n.starts_with("gateway"))
        .map(|(_, c)| c)
        .sum();
    let total: f64 = cpu.iter().map(|(_, c)| c).sum();
    cpu.push(("gateways".into(), gateways));
    cpu.push(("total".into(), total));
    cpu
}
