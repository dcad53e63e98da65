//! The `worker` role of Courier (see `courier::worker`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    courier::cli::run_role(courier::cli::Role::Worker).await
}
