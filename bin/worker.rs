//! The `worker` role of Courier (see `courier::worker`; `worker --help`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    courier::cli::role_args(courier::cli::Role::Worker);
    courier::cli::run_role(courier::cli::Role::Worker).await
}
