//! Resource use of processes from `/proc`: CPU seconds (`utime + stime` of
//! `/proc/<pid>/stat`), resident memory (`VmRSS`) and its peak (`VmHWM`), and the
//! same summed over the service processes found by name (PostgreSQL, Redis, RabbitMQ).

use std::collections::HashMap;

use serde::Serialize;

/// One reading of one process.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    pub cpu_secs: f64,
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// CPU seconds (user + system) of a process, from `/proc/<pid>/stat`.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of the man page, so utime (14) and stime (15) are 11 and 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

fn status_kb(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU, RSS and peak RSS of a process; `None` once it is gone.
pub fn sample(pid: u32) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Sample {
        cpu_secs: cpu_secs(pid)?,
        rss_kb: status_kb(&status, "VmRSS:"),
        hwm_kb: status_kb(&status, "VmHWM:"),
    })
}

/// The command name (`/proc/<pid>/comm`).
fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The service groups whose CPU is reported: label and the command names that form it.
pub const SERVICES: &[(&str, &[&str])] = &[
    ("postgresql", &["postgres"]),
    ("redis", &["redis-server"]),
    ("rabbitmq", &["beam.smp", "erl_child_setup", "epmd"]),
];

/// CPU seconds and command name of every process, by pid.
#[derive(Debug, Clone, Default)]
pub struct ServiceSnapshot(HashMap<u32, (String, f64)>);

impl ServiceSnapshot {
    /// Reads every process of `/proc` once (bounded by the number of processes).
    pub fn take() -> Self {
        let mut all = HashMap::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Self(all);
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let (Some(name), Some(cpu)) = (comm(pid), cpu_secs(pid)) {
                all.insert(pid, (name, cpu));
            }
        }
        Self(all)
    }

    /// CPU seconds of each process between `earlier` and `self` (processes that
    /// started in between count from zero; ones that ended in between are missed).
    fn used_since<'a>(
        &'a self,
        earlier: &'a ServiceSnapshot,
    ) -> impl Iterator<Item = (u32, &'a str, f64)> + 'a {
        self.0.iter().map(|(pid, (name, cpu))| {
            let before = earlier
                .0
                .get(pid)
                .filter(|(n, _)| n == name)
                .map_or(0.0, |(_, c)| *c);
            (*pid, name.as_str(), (cpu - before).max(0.0))
        })
    }

    /// CPU seconds each service group used between `earlier` and `self`.
    pub fn since(&self, earlier: &ServiceSnapshot) -> Vec<(&'static str, f64)> {
        SERVICES
            .iter()
            .map(|(label, names)| {
                let used = self
                    .used_since(earlier)
                    .filter(|(_, name, _)| names.contains(name))
                    .map(|(_, _, cpu)| cpu)
                    .sum();
                (*label, used)
            })
            .collect()
    }

    /// The busiest other processes (not a service, not in `known`), by command name.
    pub fn others_since(
        &self,
        earlier: &ServiceSnapshot,
        known: &[u32],
        top: usize,
    ) -> Vec<(String, f64)> {
        let mut by_name: HashMap<&str, f64> = HashMap::new();
        for (pid, name, cpu) in self.used_since(earlier) {
            let service = SERVICES.iter().any(|(_, names)| names.contains(&name));
            if !service && !known.contains(&pid) && cpu > 0.0 {
                *by_name.entry(name).or_default() += cpu;
            }
        }
        let mut v: Vec<(String, f64)> = by_name
            .into_iter()
            .map(|(n, c)| (n.to_string(), c))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.truncate(top);
        v
    }
}

/// Total and idle jiffies of the whole machine (`/proc/stat`, first line).
pub fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total, idle))
}

/// Online cores.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Percent of all cores busy over `window` (blocks the calling thread).
pub fn machine_busy_over(window: std::time::Duration) -> Option<f64> {
    let (t0, i0) = machine_jiffies()?;
    std::thread::sleep(window);
    let (t1, i1) = machine_jiffies()?;
    (t1 > t0).then(|| 100.0 * (1.0 - i1.saturating_sub(i0) as f64 / (t1 - t0) as f64))
}

/// Raises the soft open-files limit to the hard limit (for 10,000 sockets; children inherit it).
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read only the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return 0;
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_kb > 0 && s.hwm_kb >= s.rss_kb);
        assert!(s.cpu_secs >= 0.0);
    }
}
