//! `bench`: load benchmark of Courier on this machine. Starts the release binaries
//! against the local PostgreSQL, Redis and RabbitMQ (isolated per run), runs one
//! scenario with its own HTTP senders and Socket.IO receivers on one tokio runtime,
//! prints the figures and writes them as JSON. Talks only to 127.0.0.1.

mod ceiling;
mod cli;
mod deploy;
mod flow;
mod http;
mod idle;
mod large;
mod large_churn;
mod large_redis;
mod large_report;
mod large_track;
mod load;
mod mint;
mod procstat;
mod rabbit;
mod recv;
mod report;
mod search;
mod setup;
mod sio;
mod track;
mod usage;

use std::process::ExitCode;

use clap::Parser;

use crate::{
    cli::{Args, Scenario},
    deploy::{Deployment, Isolation},
    report::Report,
};

fn main() -> ExitCode {
    let args = Args::parse();
    let nofile = procstat::raise_nofile();
    if args.scenario == Scenario::Idle && nofile < args.sockets as u64 + 1000 {
        eprintln!(
            "[bench] open-files limit is {nofile}: too low for {} sockets",
            args.sockets
        );
        return ExitCode::from(2);
    }
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("[bench] cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(all_pass) => {
            if all_pass {
                ExitCode::SUCCESS
            } else {
                // Figures were measured and written; a missed target is not a crash.
                ExitCode::from(3)
            }
        }
        Err(e) => {
            eprintln!("[bench] failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the scenario; `Ok(true)` if every target it speaks to was met.
async fn run(args: Args) -> anyhow::Result<bool> {
    let (started_at, stamp) = report::timestamps();
    let busy_before = procstat::machine_busy_over(std::time::Duration::from_secs(1));
    if let Some(b) = busy_before.filter(|b| *b > 10.0) {
        eprintln!(
            "[bench] warning: the machine is already {b:.0}% busy; figures will be disturbed"
        );
    }
    let tls = args.tls_ca.as_ref().map(|ca| deploy::TlsServices {
        ca: ca.clone(),
        pg_root_cert: args.pg_root_cert.clone(),
        redis_port: args.redis_tls_port,
        amqps_port: args.amqps_port,
    });
    let iso = Isolation::new(tls.as_ref());
    let log_dir = args
        .out_dir
        .join("logs")
        .join(format!("{stamp}-{}", iso.tag));
    eprintln!(
        "[bench] {:?} ({:?}, services {}): database {}, vhost {}, logs in {}",
        args.scenario,
        args.mode,
        args.transport(),
        iso.database,
        iso.vhost,
        log_dir.display()
    );
    let dep = match Deployment::start(
        args.mode,
        args.gateway_count(),
        &args.bin_dir,
        &iso,
        &args.env,
        &args.db_settings,
        &log_dir,
    )
    .await
    {
        Ok(d) => d,
        Err(e) => {
            if !args.keep {
                iso.cleanup();
            }
            return Err(e);
        }
    };
    // The ceiling runs first, while Courier's processes stand idle.
    let ceiling = match args.scenario {
        Scenario::Ceiling => {
            eprintln!("[bench] broker-only ceiling");
            Some(ceiling::run(&args, &iso).await)
        }
        _ => None,
    };
    let large_groups = if args.large_groups() {
        Some(large::run(&args, &dep, &iso).await)
    } else {
        None
    };
    let (flow, idle, search) = match args.scenario {
        _ if args.large_groups() => (None, None, None),
        Scenario::Idle => (None, Some(idle::run(&args, &dep, &iso).await), None),
        Scenario::Search => (None, None, Some(search::run(&args, &dep, &iso).await)),
        _ => (Some(flow::run(&args, &dep, &iso).await), None, None),
    };
    dep.stop();
    if !args.keep {
        iso.cleanup();
    }
    let flow = flow.transpose()?;
    let idle = idle.transpose()?;
    let search = search.transpose()?;
    let ceiling = ceiling.transpose()?;
    let large_groups = large_groups.transpose()?;
    let mut targets = report::targets(&args, flow.as_ref(), idle.as_ref());
    targets.extend(search.as_ref().map(report::search_target));
    targets.extend(report::ceiling_target(ceiling.as_ref(), flow.as_ref()));
    targets.extend(large_groups.iter().flat_map(large_report::targets));
    let report = Report {
        scenario: args.scenario,
        started_at,
        courier_commit: courier_commit(&args),
        machine_busy_before_pct: busy_before,
        args: args.clone(),
        isolation: iso,
        flow,
        idle,
        search,
        ceiling,
        large_groups,
        targets,
    };
    print!("{}", report::text(&report));
    let path = report::write(&report, &args.out_dir, &stamp)?;
    println!("results: {}", path.display());
    Ok(report.targets.iter().all(|t| t.pass))
}

/// `git rev-parse --short HEAD` of the Courier checkout the binaries come from
/// (`COURIER_COMMIT` wins, for binaries built elsewhere).
fn courier_commit(args: &Args) -> Option<String> {
    if let Ok(c) = std::env::var("COURIER_COMMIT") {
        return Some(c);
    }
    let dir = args.bin_dir.parent()?.parent()?;
    let dir = if dir.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        dir
    };
    let out = std::process::Command::new("git")
        .args(["-C", &dir.to_string_lossy(), "rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    let rev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = std::process::Command::new("git")
        .args([
            "-C",
            &dir.to_string_lossy(),
            "status",
            "--porcelain",
            "--",
            "src",
            "bin",
            "Cargo.toml",
            "Cargo.lock",
        ])
        .output()
        .ok()
        .is_some_and(|o| !o.stdout.is_empty());
    (!rev.is_empty()).then(|| if dirty { format!("{rev}-dirty") } else { rev })
}
