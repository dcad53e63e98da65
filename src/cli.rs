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
