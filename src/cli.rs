//! What the thin binaries call: load config, build a role, run it until a signal.

use std::process::ExitCode;

use crate::{config::Config, server};

#[derive(Debug, Clone, Copy)]
pub enum Role {
    Api,
    Worker,
    Gateway,
    AllInOne,
}

fn load() -> Result<Config, ExitCode> {
    crate::telemetry::init();
    Config::from_env().map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(78)
    })
}

pub async fn run_role(role: Role) -> ExitCode {
    let config = match load() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let built = match role {
        Role::Api => crate::api::build(&config).await,
        Role::Worker => crate::worker::build(&config).await,
        Role::Gateway => crate::gateway::build(&config).await,
        Role::AllInOne => crate::all_in_one::build(&config).await,
    };
    let service = match built {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{role:?}: cannot start: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match service.run_until_stopped(server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{role:?}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub async fn migrate() -> ExitCode {
    let config = match load() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match crate::db::migrate(&config).await {
        Ok(()) => {
            tracing::info!("migrations applied");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("migrate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `courier dlq list|replay|count [--limit N] [--id BROKER_MESSAGE_ID]`: prints JSON.
pub async fn dlq(args: &[String]) -> ExitCode {
    let usage = "usage: courier dlq list|replay|count [--limit N] [--id BROKER_MESSAGE_ID]";
    let config = match load() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut limit = 100usize;
    let mut id: Option<String> = None;
    let mut rest = args.iter().skip(1);
    while let Some(flag) = rest.next() {
        match (flag.as_str(), rest.next()) {
            ("--limit", Some(n)) if n.parse::<usize>().is_ok_and(|n| n > 0) => {
                limit = n.parse().unwrap_or(100)
            }
            ("--id", Some(v)) => id = Some(v.clone()),
            _ => {
                eprintln!("{usage}");
                return ExitCode::from(2);
            }
        }
    }
    let result = match args.first().map(String::as_str) {
        Some("list") => crate::mq::dlq::list(&config, limit)
            .await
            .and_then(|l| Ok(serde_json::to_string_pretty(&l)?)),
        Some("replay") => crate::mq::dlq::replay(&config, limit, id.as_deref())
            .await
            .and_then(|r| Ok(serde_json::to_string(&r)?)),
        Some("count") => crate::mq::dlq::depth(&config)
            .await
            .map(|n| format!("{{\"count\":{n}}}")),
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dlq: {e:#}");
            ExitCode::FAILURE
        }
    }
}
